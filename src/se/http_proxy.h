/* http_proxy.h: the HTTP/1.1 reverse proxy of HTTP virtual services.
 *
 * Per client connection: requests are parsed one at a time (pipelined requests wait in
 * order), each goes to a server chosen by the pool (pooled keep-alive server connections
 * are reused), bodies stream both ways with backpressure (a side stops reading while its
 * peer has unwritten data), and every request makes one log record. Local answers: 400
 * (malformed), 408 (request head too slow), 431 (head too large), 501 (upgrade/CONNECT),
 * 502 (server refused, reset or answered garbage), 503 (no server up), 504 (server
 * timeout). Loop thread only. */
#ifndef VIGIL_SE_HTTP_PROXY_H
#define VIGIL_SE_HTTP_PROXY_H

#include <netinet/in.h>

struct se_listener;

struct se_engine;

/* Takes over the accepted, non-blocking socket FD from listener L (borrowed; a reference
 * is kept while the connection lives) for engine E (its listener_accept_fn). On failure FD
 * is closed. */
void http_proxy_accept(void *e, struct se_listener *l, int fd, const struct sockaddr_in *peer);

#endif
