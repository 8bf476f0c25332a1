#include "common/netaddr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

int netaddr_parse(const char *s, struct netaddr *out)
{
    const char *colon = strrchr(s, ':');
    struct in_addr ia;
    char *end;
    long port;
    size_t hlen;

    if (colon == NULL)
        return VIGIL_EINVAL;
    hlen = (size_t)(colon - s);
    if (hlen == 0 || hlen >= sizeof out->host)
        return VIGIL_EINVAL;
    memcpy(out->host, s, hlen);
    out->host[hlen] = '\0';
    if (inet_pton(AF_INET, out->host, &ia) != 1)
        return VIGIL_EINVAL;
    if (colon[1] == '\0')
        return VIGIL_EINVAL;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return VIGIL_EINVAL;
    out->port = (uint16_t)port;
    return 0;
}

int netaddr_to_sockaddr(const struct netaddr *a, struct sockaddr_in *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(a->port);
    if (inet_pton(AF_INET, a->host, &sa->sin_addr) != 1)
        return VIGIL_EINVAL;
    return 0;
}

int netaddr_is_wildcard(const struct netaddr *a)
{
    return strcmp(a->host, "0.0.0.0") == 0;
}
