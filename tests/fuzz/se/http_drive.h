/* http_drive.h: feeds a byte stream through http_msg the way vigil-se's proxy does (in
 * reads whose sizes come from the input, the rebuilt head sent with the first body bytes
 * of its read or at the read's end, body spans forwarded raw) and checks what would go out
 * against http_ref's reading of the same bytes: the same messages accepted or the stream
 * refused, each head and body byte for byte, the key value, the head untouched once closed.
 * Aborts (with what differed on stderr) when they disagree; also checks http_msg's own
 * invariants on any input. */
#ifndef VIGIL_FUZZ_HTTP_DRIVE_H
#define VIGIL_FUZZ_HTTP_DRIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DATA (SIZE bytes, borrowed) as a client's requests (RESPONSE false) or a server's
 * responses (true; also as answers to HEAD requests). */
void http_drive_check(const uint8_t *data, size_t size, bool response);

#endif
