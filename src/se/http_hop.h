/* http_hop.h: what of an HTTP/1.x head is for this hop only, over the text of a head that
 * http_msg rebuilt: header lines "Name: value\r\n" (no bare CR or LF, no folded lines),
 * from an offset (the end of the start line) to the end, without the closing empty line.
 *
 * Pure functions on the caller's buffer: they allocate nothing, keep no state and may run
 * on any thread. */
#ifndef VIGIL_SE_HTTP_HOP_H
#define VIGIL_SE_HTTP_HOP_H

#include <stdbool.h>
#include <stddef.h>
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
    HTTP_HOP_FRAMING = 1, /* also remove Content-Length and Transfer-Encoding (a response
                           * whose status has no body: 1xx, 204) */
    HTTP_HOP_HOST = 2     /* also remove Host (a request whose target names its authority) */
};

/* Removes, in place, the hop-by-hop header lines of HEAD[FROM, *LEN): Connection,
 * Keep-Alive, Proxy-Connection, TE and Upgrade always, and every header that a Connection
 * line names (RFC 9110 7.6.1; names case-insensitive, comma lists, any number of
 * Connection lines, before or after the lines they name), except Host, Content-Length and
 * Transfer-Encoding, which a Connection line cannot take away (the raw body's framing and
 * the routing stay as parsed). With HTTP_HOP_FRAMING, Content-Length and
 * Transfer-Encoding go too; with HTTP_HOP_HOST, Host. HEAD (borrowed) stays
 * NUL-terminated at the new *LEN.
 * TRACK (may be NULL) is moved with the bytes it covers, or set to {0, 0} when its line
 * goes or when it covers nothing (len 0).
 * Returns 0, or VIGIL_EINVAL when the Connection lines name more than HTTP_HOP_NAMES_MAX
 * names or HTTP_HOP_NAMES_BYTES bytes of them that are not removed or kept by name anyway
 * (nor "close"); HEAD is then half stripped, to be refused. */
int http_hop_strip(char *head, uint32_t *len, uint32_t from, unsigned flags,
                   struct http_hop_span *track);

/* Removes, in place, every header line of HEAD[FROM, *LEN) named NAME (case-insensitive),
 * and writes their values into VALUES (CAP bytes, at least *LEN + 1 fits them all), each
 * without its surrounding spaces and tabs, in order, joined by ", " (empty values
 * skipped), NUL-terminated ("" when none). TRACK as for http_hop_strip. Returns how many
 * lines went. */
unsigned http_hop_take(char *head, uint32_t *len, uint32_t from, const char *name,
                       char *values, size_t cap, struct http_hop_span *track);

/* Whether V (LEN bytes, may be 0) is a valid Host value or authority: uri-host [":" port]
 * of RFC 3986 characters (reg-name, IPv4, [IP-literal]); no userinfo, path, space or
 * control byte. */
bool http_hop_host_valid(const char *v, size_t len);

/* Reads a request target T (LEN bytes, borrowed). Returns 0 when it is not in absolute form
 * (origin form "/...", asterisk form "*"); 1 for an http or https absolute form (scheme in
 * any case), writing into *AUTHORITY the span of its authority in T and into *PATH_OFF
 * where its path (or query, or the end) starts; VIGIL_EINVAL for another scheme, an empty
 * or invalid authority, or userinfo (RFC 9110 4.2.4). */
int http_hop_absolute(const char *t, size_t len, struct http_hop_span *authority,
                      uint32_t *path_off);

#endif
