/* libFuzzer target for the request path of vigil-se (client to server): the input is what
 * a client sends, fed through http_msg as the proxy reads it, and what would go to the
 * server (rebuilt heads, raw bodies and chunk framing) checked byte for byte against an
 * independent reference reading (http_ref.c), as are accepting and refusing; plus
 * http_msg's own invariants and the log record of each request (http_drive.c).
 *
 * Build and run: see docs/hacking.md, "Fuzzing". */
#include <stdint.h>

#include "http_drive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_drive_check(data, size, false);
    return 0;
}
