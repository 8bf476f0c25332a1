/* libFuzzer target for the response path of vigil-se (server to client): the input is what
 * a backend answers, fed through http_msg as the proxy reads it (also as answers to HEAD
 * requests), and what would reach the client (rebuilt heads, interim answers, raw bodies,
 * chunk framing and trailers) checked byte for byte against an independent reference
 * reading (http_ref.c), as are accepting and refusing (http_drive.c).
 *
 * Build and run: see docs/hacking.md, "Fuzzing". */
#include <stdint.h>

#include "http_drive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_drive_check(data, size, true);
    return 0;
}
