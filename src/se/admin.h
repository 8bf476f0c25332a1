/* admin.h: the SE's admin HTTP server (--admin): GET /status (contract JSON) and
 * GET /metrics (Prometheus text). One request per connection. Loop thread only. */
#ifndef VIGIL_SE_ADMIN_H
#define VIGIL_SE_ADMIN_H

#include <jansson.h>
#include <stddef.h>

#include "common/netaddr.h"

struct se_engine;
struct admin;

/* What the admin server reports; borrowed, must outlive the server. */
struct admin_source {
    struct se_engine *engine;
    const char *(*state)(void *arg);  /* the SE state word, e.g. "STANDALONE" */
    void *arg;
    json_t *(*controllers)(void *arg); /* the /status "controllers" array (a new one) */
};

/* Listens on ADDR. Returns 0 and the server in *OUT (owned by the caller, closed with
 * admin_close) or a negative errno (e.g. -EADDRINUSE). */
int admin_start(struct se_engine *e, const struct netaddr *addr, const struct admin_source *src,
                struct admin **out);

/* Stops listening (connections in progress finish). */
void admin_close(struct admin *a);

#endif
