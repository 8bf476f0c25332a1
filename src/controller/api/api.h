/* api.h: the REST handlers, one file per area (api_objects.c, api_cluster.c, api_auth.c,
 * api_events.c). Each answers a request exactly once, now or later. Loop thread only. */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "common/objects.h"
#include "controller/net/http_server.h"
#include "controller/api/api_outcome.h"
#include "controller/auth/auth.h"
#include "controller/consensus/cluster.h"
#include "controller/consensus/peers.h"
#include "controller/logs/log_store.h"
#include "controller/net/http_client.h"
#include "controller/api/rest.h"
#include "controller/se_channel/se_session.h"
#include "controller/se_channel/ssh_server.h"
#include "controller/status/status_driver.h"
#include "controller/store/store.h"
#include "controller/vip/vip.h"
#include "controller/api/write_path.h"

/* Each area is an object main builds (its fields borrowed, for the daemon's life) and
 * registers with the router; its handlers see only that object and the request. */

/* Config objects: /api/<type> and /api/<type>/<uuid> (contract "Config objects"). */
struct api_objects {
    struct store *store;
    struct cluster *cluster;
    struct write_path *write_path;
    struct se_sessions *se_sessions; /* this node's SE sessions (heartbeat ages), or NULL */
};

/* The cluster: /api/cluster, /api/cluster/runtime, and /api/internal/<...>, the nodes' own
 * channel (peer reports, commands via the leader). */
struct api_cluster {
    struct store *store;
    struct cluster *cluster;
    struct status_driver *status;   /* this node's view of the cluster status */
    struct peers *peers;
    struct write_path *write_path;
    uint64_t node_id;
    const char *boot;               /* this process's incarnation id */
    const char *cluster_name;       /* --cluster-name, until the store has one */
    const char *vip;                /* --vip, or "" */
    struct se_sessions *se_sessions; /* NULL until the SE channel serves (and once it stops) */
    const char *rebuild_report;     /* what a rebuilding node reports to peers ("" or NULL: none) */
    struct vip *vip_mgr;            /* the cluster IP's manager (--vip), or NULL */
    int64_t started_ms;             /* wall-clock time this process started */
};

/* Authentication: /api/login, /api/logout, /api/session, /api/user[/NAME], /api/token[/ID]. */
struct api_auth {
    struct auth *auth;
    struct store *store;
    struct write_path *write_path;
};

/* Events: GET /api/event. */
struct api_events {
    struct store *store;
};

/* Analytics: GET /api/analytics/logs/virtualservice/<uuid>, /api/analytics/logs/summary,
 * /api/analytics/metrics/virtualservice/<uuid> (merged over the members), and their
 * node-local variants under /api/internal/analytics/ (api_analytics.c). */
struct api_analytics {
    struct log_store *log_store;  /* this node's; NULL: none (it counts as unreachable) */
    struct store *store;          /* the members' API addresses */
    struct cluster *cluster;      /* the members */
    struct http_client *client;   /* the road to the other nodes */
    uint64_t node_id;
    const char *scheme;           /* "http" or "https" (static) */
    const char *node_header;      /* this node's credential header (read at each call) */
};

/* GET /metrics (api_metrics.c): this node's Prometheus text. */
struct api_metrics {
    struct cluster *cluster;
    struct status_driver *status;
    struct ssh_server *se_server;   /* NULL until the SE channel serves (and once it stops) */
    uint64_t node_id;
    const char *node_name;
};

/* Register each area's routes with REST (the areas borrowed, outliving REST). Order
 * matters, as routes are tried in order: auth first (it takes only its own paths), objects
 * last (it takes /api/<type>: anything no other area took). Each returns 0 or
 * VIGIL_ETOOBIG (the route table is full). */
int api_auth_register(struct rest *rest, struct api_auth *area);
int api_cluster_register(struct rest *rest, struct api_cluster *area);
int api_events_register(struct rest *rest, struct api_events *area);
/* Before api_cluster_register (its "internal" route would take internal/analytics). */
int api_analytics_register(struct rest *rest, struct api_analytics *area);
int api_objects_register(struct rest *rest, struct api_objects *area);
/* Anywhere in the order: its one path is outside /api/. */
int api_metrics_register(struct rest *rest, struct api_metrics *area);
/* The web UI's files (api_ui.c): /ui/<file> and /ui (a redirect to /ui/); anywhere in the
 * order, its paths are outside /api/. It has no area object. */
int api_ui_register(struct rest *rest);
/* The UI file NAME ("" for index.html), or NULL: borrowed, static. */
const struct ui_asset *api_ui_find(const char *name);

/* What the areas' GET answers are made of, for those that show them elsewhere too (the
 * live stream's snapshots, api_stream.c). Each returns a new reference owned by the
 * caller; loop thread.
 * api_cluster_doc: the body of GET /api/cluster (its "nodes" even before the cluster has
 * its uuid, when GET /api/cluster answers 503).
 * api_cluster_runtime: the body of GET /api/cluster/runtime.
 * api_objects_list: the objects of TYPE as GET /api/<type> lists them (runtime fields
 * included), OFFSET/LIMIT applied; *TOTAL = how many there are in all. */
json_t *api_cluster_doc(struct api_cluster *area);
json_t *api_cluster_runtime(struct api_cluster *area);
json_t *api_objects_list(struct api_objects *area, enum obj_type type, int64_t offset,
                         int64_t limit, int64_t *total);

/* Reads ?page= and ?page_size= (defaults 1 and 100, page_size at most 1000). Returns 0,
 * or answers 400 itself and returns VIGIL_EINVAL. */
int api_paging(struct http_request *req, int64_t *offset, int64_t *limit);

/* REQ's body as a JSON object (a new reference), or NULL after answering 400 with what is
 * wrong: no body, invalid JSON (its line, column and reason, e.g. a \u0000 in a string),
 * a duplicate key, or a value that is no object. */
json_t *api_body_object(struct http_request *req);

/* {"count": TOTAL, "results": LIST (stolen)}. */
json_t *api_collection(json_t *list, int64_t total);

#endif
