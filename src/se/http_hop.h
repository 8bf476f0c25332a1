/* http_hop.h: what of an HTTP/1.x head is for this hop only, over the text of a head that
 * http_msg rebuilt: header lines "Name: value\r\n" (no bare CR or LF, no folded lines),
 * from an offset (the end of the start line) to the end, without the closing empty line.
 *
 * Pure functions on the caller's buffer: they allocate nothing, keep no state and may run
 * on any thread. */
#ifndef VIGIL_SE_HTTP_HOP_H
#define VIGIL_SE_HTTP_HOP_H

#include <stdint.h>

/* Most names a head's Connection lines may list, and most bytes of them (over either,
 * http_hop_strip refuses the head). */
#define HTTP_HOP_NAMES_MAX 32
#define HTTP_HOP_NAMES_BYTES 512

/* A span of a head that the caller follows across removals (len 0: none). */
struct http_hop_span {
    uint32_t off, len;
};

enum http_hop_flags {
    HTTP_HOP_FRAMING = 1 /* also remove Content-Length and Transfer-Encoding (a response
                          * whose status has no body: 1xx, 204) */
};

/* Removes, in place, the hop-by-hop header lines of HEAD[FROM, *LEN): Connection,
 * Keep-Alive, Proxy-Connection, TE and Upgrade always, and every header that a Connection
 * line names (RFC 9110 7.6.1; names case-insensitive, comma lists, any number of
 * Connection lines, before or after the lines they name), except Host, Content-Length and
 * Transfer-Encoding, which a Connection line cannot take away (the raw body's framing and
 * the routing stay as parsed). With HTTP_HOP_FRAMING, Content-Length and
 * Transfer-Encoding go too. HEAD (borrowed) stays NUL-terminated at the new *LEN.
 * TRACK (may be NULL) is moved with the bytes it covers, or set to {0, 0} when its line
 * goes or when it covers nothing (len 0).
 * Returns 0, or VIGIL_EINVAL when the Connection lines name more than HTTP_HOP_NAMES_MAX
 * names or HTTP_HOP_NAMES_BYTES bytes of them (HEAD is then left as it was). */
int http_hop_strip(char *head, uint32_t *len, uint32_t from, unsigned flags,
                   struct http_hop_span *track);

#endif
