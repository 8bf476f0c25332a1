/* tcp_proxy.h: the byte-stream proxy of TCP virtual services: one server connection per
 * client connection, bytes both ways with backpressure, half-close passed on (an EOF from
 * one side becomes a shutdown towards the other), an idle timeout, and one log record per
 * connection. With no server up the client is closed at once. Loop thread only. */
#ifndef VIGIL_SE_TCP_PROXY_H
#define VIGIL_SE_TCP_PROXY_H

#include <netinet/in.h>

struct se_listener;

/* Takes over the accepted, non-blocking socket FD from listener L for engine E (a
 * struct se_engine; its listener_accept_fn). On failure FD is closed. */
void tcp_proxy_accept(void *e, struct se_listener *l, int fd, const struct sockaddr_in *peer);

#endif
