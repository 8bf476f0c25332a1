/* http_chunked.h: a strict reading of a chunked body's framing (RFC 9112 7.1), byte by
 * byte, over the raw spans http_msg forwards. http-parser 2.9 (Debian's build is not strict)
 * takes any two bytes after a chunk's data as its CRLF, a bare CR or LF in a chunk line or a
 * trailer, and a chunk-size byte of 0x80 or above as a hex digit (it indexes its table with
 * a signed char): "\xf2\r\n\r\n" ends a body, "5\xf2" is 0x50 bytes. The SE forwards those
 * bytes as they are, so a backend that reads them as the RFC says would frame the body
 * differently from the SE (request smuggling); http_msg refuses a body this reading
 * refuses, and one whose end it does not see where http-parser does.
 *
 * The grammar: chunk-size (HEXDIG, at most 16 significant) *(SP / HTAB) [";" extension]
 * CRLF, then that many data bytes and CRLF; after the last chunk (size 0), trailer lines
 * token ":" value CRLF, then CRLF. Extension and value bytes are HTAB, SP, VCHAR or
 * obs-text. Pure: no allocation, any thread. */
#ifndef VIGIL_SE_HTTP_CHUNKED_H
#define VIGIL_SE_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

struct http_chunked {
    uint64_t left;   /* data bytes still due in the current chunk */
    uint8_t state;   /* private */
    uint8_t digits;  /* significant digits of the size read so far */
    uint8_t zero;    /* the size read so far is 0 */
};

/* Gets C ready for a new body. */
void http_chunked_init(struct http_chunked *c);

/* Reads LEN bytes of P (borrowed), the body's next raw bytes. Returns 0 (all read, the
 * body goes on), 1 (the body ended after *USED bytes) or -1 (the byte at *USED breaks the
 * framing; C stays refused). */
int http_chunked_scan(struct http_chunked *c, const char *p, size_t len, size_t *used);

#endif
