/* rest.h: the REST API's front door. Every request passes rest_gate() (where
 * authentication will live) and is then routed to its handler (api.h). */
#ifndef VIGIL_REST_H
#define VIGIL_REST_H

#include <stdint.h>
#include <uv.h>

#include "controller/cluster.h"
#include "controller/http_server.h"
#include "controller/options.h"
#include "controller/auth.h"
#include "controller/peers.h"
#include "controller/status_driver.h"
#include "controller/store.h"
#include "controller/write_path.h"

/* What the handlers need, owned by the daemon (main.c); handlers borrow it. */
struct rest_context {
    uv_loop_t *loop;
    struct store *store;
    struct cluster *cluster;
    const struct vigild_options *opts;
    uint64_t node_id;
    const char *boot; /* this process's incarnation id */
    struct status_driver *status; /* this node's view of the cluster status */
    struct peers *peers;
    struct auth *auth;
    struct write_path *write_path; /* how writes reach the log (write_path.h) */
    int stopping;
};

/* The http_server handler; DATA is the struct rest_context. */
void rest_handle(struct http_request *req, void *data);

/* Routes REQ (already through the gate) to its handler. */
void rest_route(struct rest_context *ctx, struct http_request *req);

/* Who REQ was authenticated as (set by the gate; NULL on the open endpoints). */
const struct auth_identity *rest_identity(const struct http_request *req);

#endif
