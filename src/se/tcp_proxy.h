/* tcp_proxy.h: the byte-stream proxy of TCP virtual services: one server connection per
 * client connection, bytes both ways with backpressure, half-close passed on (an EOF from
 * one side becomes a shutdown towards the other), an idle timeout, and one log record per
 * connection. With no server up the client is closed at once. Loop thread only. */
#ifndef VIGIL_SE_TCP_PROXY_H
#define VIGIL_SE_TCP_PROXY_H

#include <netinet/in.h>

struct se_listener;

/* Takes over the accepted, non-blocking socket FD from listener L. On failure FD is
 * closed. */
void tcp_proxy_accept(struct se_listener *l, int fd, const struct sockaddr_in *peer);

#endif
