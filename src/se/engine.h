/* engine.h: the SE's running state: the current configuration generation, the listeners,
 * the runtime pools and servers (health, connection counts, idle server connections), the
 * log sink, and the one function that applies a configuration (engine_apply_config), used
 * by the standalone config file, SIGHUP and the configs the controllers push.
 *
 * Lifetimes: the engine is owned by main. Runtime virtual services (se_vs), pools and
 * servers are reference counted; a connection holds the se_vs of its request, which holds
 * its generation and pool, so a reload never pulls objects from under a request in flight.
 * Everything runs on the one SE loop thread. */
#ifndef VIGIL_SE_ENGINE_H
#define VIGIL_SE_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "se/engine-t.h"
#include "se/log_record.h"

/* The defaults, overridden by VIGIL_SE_LIMITS="connect_ms=..,server_ms=..,..." (names as
 * the struct fields) when set. Returns 0 or VIGIL_EINVAL naming the bad entry in ERR. */
int engine_limits_default(struct se_limits *out, char *err, size_t errlen);

/* Initialises E on LOOP (borrowed, as are NAME, SINK and SEQ); the listeners it opens hand
 * accepted sockets to ACCEPT (with E as its arg). */
void engine_init(struct se_engine *e, uv_loop_t *loop, const char *name, struct log_sink *sink,
                 struct log_seq *seq, const struct se_limits *limits, listener_accept_fn *accept);

/* Applies generation GEN (takes over the caller's reference) as config_version GEN->version
 * (a controller's), or, when that is 0, the one after the current (standalone): opens listeners for new
 * services, closes removed ones, points kept ones at their new se_vs, builds the runtime
 * pools (keeping the state of servers that stay) and restarts changed health monitors.
 * Connections in flight keep the generation they started with. Listeners that cannot be
 * opened are logged, counted in *FAILED_LISTENERS (may be NULL) and the rest applies.
 * Returns 0 or VIGIL_ENOMEM (then nothing changed). */
int engine_apply_config(struct se_engine *e, struct se_config *gen, int *failed_listeners);

/* What the proxies read of the engine: its loop and its limits (borrowed, E's). */
static inline uv_loop_t *engine_loop(const struct se_engine *e)
{
    return e->loop;
}

static inline const struct se_limits *engine_limits(const struct se_engine *e)
{
    return &e->limits;
}

/* Chooses a server of VS's pool for a new request or connection: enabled, not DOWN, by
 * the pool's algorithm (HASH is used by consistent hash), avoiding AVOID (may be NULL)
 * when another is eligible. Returns a borrowed server or NULL when none is eligible. */
struct se_server *engine_pick_server(struct se_vs *vs, uint64_t hash, const struct se_server *avoid);

/* Numbers record R with the next sequence number and hands it to the log sink, and
 * counts it into the per-second metrics when E has them. */
void engine_log(struct se_engine *e, struct log_record *r);

/* Counts every record logged from now on into METRICS (borrowed, must outlive E's use of
 * it; NULL: stop counting). */
void engine_set_metrics(struct se_engine *e, struct vs_metrics *metrics);

/* A proxy opened (DELTA 1) or closed (-1) a socket; accepting pauses near the fd limit. */
void engine_count_socket(struct se_engine *e, int delta);

/* Pauses accepting on every listener (descriptors ran low); a timer resumes it. */
void engine_pause_accepting(struct se_engine *e);

/* Each virtual service of the running config as the SE's HEARTBEAT reports it (a new
 * array): {"uuid" (or null), "name", "health": "UP" (every enabled server of its pool up
 * or unchecked) | "DEGRADED" (some down) | "DOWN" (none up, or not listening) |
 * "DISABLED", "servers_up", "servers" (enabled ones), "requests" and "errors" (5xx
 * answers): counters since the SE started, from which a node computes rates}. */
json_t *engine_vs_runtime(struct se_engine *e);

/* The GET /status document (caller owns), with STATE (borrowed) and CONTROLLERS (stolen:
 * the "controllers" array; NULL: an empty one). */
json_t *engine_status_json(struct se_engine *e, const char *state, json_t *controllers);

/* Stops accepting and probing, and closes pooled idle server connections (at shutdown);
 * connections in flight go on. */
void engine_stop(struct se_engine *e);

/* A proxy's client connection C (embedded in the proxy's own struct) opened with OPS
 * (static) / closed: the engine lists it while it is open. */
void engine_conn_add(struct se_engine *e, struct se_conn *c, const struct se_conn_ops *ops);
void engine_conn_remove(struct se_engine *e, struct se_conn *c);

/* Asks every listed connection to drain (ops->drain), and calls DRAINED(ARG) once when none
 * is left (at once when there is none). Call after engine_stop. */
void engine_drain(struct se_engine *e, void (*drained)(void *arg), void *arg);

/* Closes every listed connection now (ops->abort); a drain in progress then ends. */
void engine_abort(struct se_engine *e);

struct se_vs *se_vs_ref(struct se_vs *v);
void se_vs_unref(struct se_vs *v);
struct se_server *se_server_ref(struct se_server *s);
void se_server_unref(struct se_server *s);

#endif
