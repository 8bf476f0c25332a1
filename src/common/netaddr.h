/* netaddr.h: "HOST:PORT" endpoints as given on command lines. */
#ifndef VIGIL_NETADDR_H
#define VIGIL_NETADDR_H

#include <netinet/in.h>
#include <stdint.h>

#define NETADDR_HOST_MAX 64

struct netaddr {
    char host[NETADDR_HOST_MAX]; /* numeric IPv4 address, e.g. "127.0.0.1" */
    uint16_t port;
};

/* Parses "A.B.C.D:PORT" (port 1-65535) into OUT. Returns 0 or VIGIL_EINVAL. */
int netaddr_parse(const char *s, struct netaddr *out);

/* Fills SA from A. Returns 0 or VIGIL_EINVAL. */
int netaddr_to_sockaddr(const struct netaddr *a, struct sockaddr_in *sa);

/* True for 0.0.0.0. */
int netaddr_is_wildcard(const struct netaddr *a);

#endif
