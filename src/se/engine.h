/* engine.h: the SE's running state: the current configuration generation, the listeners,
 * the runtime pools and servers (health, connection counts, idle server connections), the
 * log sink, and the one function that applies a configuration (engine_apply_config), used
 * by the standalone config file and SIGHUP today and by the controller channel later.
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

#include "se/balance.h"
#include "se/health.h"
#include "se/log_record.h"
#include "se/log_seq.h"
#include "se/log_sink.h"
#include "se/metrics.h"
#include "se/se_config.h"

/* Timeouts and limits of the proxies (defaults in engine_limits_default). */
struct se_limits {
    uint32_t connect_ms;      /* server connect */
    uint32_t server_ms;       /* server response / inactivity while a request is in flight */
    uint32_t client_head_ms;  /* a request head must arrive within this (slow clients) */
    uint32_t client_idle_ms;  /* keep-alive wait for the next request */
    uint32_t tcp_idle_ms;     /* TCP services: no byte either way for this long */
    uint32_t linger_ms;       /* after the last response, before closing */
    uint32_t head_limit;      /* request / response head size, bytes */
    uint32_t idle_per_server; /* pooled idle server connections kept per server */
};

struct probe;

/* A pool's server at run time, shared by every generation that has the same pool (by uuid,
 * else name) and ip:port, so health and pooled connections survive reloads. */
struct se_server {
    int refs;
    struct se_engine *engine;
    char *pool_key;
    struct se_server_config cfg;
    char label[24];           /* "ip:port" */
    uint64_t ring_key;        /* balance_hash of label */
    enum health_state state;  /* over every monitor: DOWN if any is DOWN, else UP if any UP */
    char reason[96];
    size_t n_probes;
    struct probe **probes;
    struct se_monitor_config *monitors; /* copies, n_probes of them */
    uint32_t active;          /* requests or TCP connections in progress */
    void *idle_head;          /* pooled HTTP server connections (http_proxy's list) */
    uint32_t n_idle;
    bool retired;             /* no longer in the current configuration */
    struct se_server *next;   /* engine's list */
};

struct se_pool {
    int refs;
    const struct se_pool_config *cfg; /* borrowed from the generation the se_vs holds */
    size_t n;
    struct se_server **servers;
    struct balance_rr rr;
    int64_t *current;         /* smooth weighted round robin state */
    uint32_t *weights;
    bool *eligible;           /* scratch for picks */
    uint32_t *active;         /* scratch for picks */
    bool weighted;
    struct balance_ring *ring;
};

struct se_vs {
    int refs;
    struct se_config *gen;
    const struct se_vs_config *cfg;
    struct se_pool *pool;
    struct metrics_vs *metrics;
};

struct se_listener;
struct se_conn;

/* What a stop asks of a proxy's client connection (see engine_drain). */
struct se_conn_ops {
    /* The SE stops: close now if no request is in flight, else finish it and close. */
    void (*drain)(struct se_conn *c);
    /* The drain deadline passed: close now (a request cut off is logged). */
    void (*abort)(struct se_conn *c);
};

/* Embedded in each proxy's client connection; listed by the engine while it is open. */
struct se_conn {
    const struct se_conn_ops *ops;
    struct se_conn *prev, *next;
};

struct se_engine {
    uv_loop_t *loop;
    const char *se_name;          /* borrowed */
    struct se_config *config;     /* current generation (one reference) */
    uint64_t config_version;
    struct se_listener *listeners;
    struct se_server *servers;
    struct log_sink *sink;        /* borrowed */
    struct log_seq *seq;          /* borrowed */
    struct se_limits limits;
    uint64_t open_connections;    /* client + server sockets of the proxies */
    uint64_t max_connections;     /* accepting pauses above this */
    bool accept_paused;
    uv_timer_t accept_timer;
    struct se_conn *conns;        /* open client connections of the proxies */
    uint64_t n_conns;
    bool draining;
    void (*drained)(void *arg);   /* called once when draining and no connection is left */
    void *drained_arg;
};

/* The defaults, overridden by VIGIL_SE_LIMITS="connect_ms=..,server_ms=..,..." (names as
 * the struct fields) when set. Returns 0 or VIGIL_EINVAL naming the bad entry in ERR. */
int engine_limits_default(struct se_limits *out, char *err, size_t errlen);

/* Initialises E on LOOP (borrowed, as are NAME, SINK and SEQ). */
void engine_init(struct se_engine *e, uv_loop_t *loop, const char *name, struct log_sink *sink,
                 struct log_seq *seq, const struct se_limits *limits);

/* Applies generation GEN (takes over the caller's reference): opens listeners for new
 * services, closes removed ones, points kept ones at their new se_vs, builds the runtime
 * pools (keeping the state of servers that stay) and restarts changed health monitors.
 * Connections in flight keep the generation they started with. Listeners that cannot be
 * opened are logged, counted in *FAILED_LISTENERS (may be NULL) and the rest applies.
 * Returns 0 or VIGIL_ENOMEM (then nothing changed). */
int engine_apply_config(struct se_engine *e, struct se_config *gen, int *failed_listeners);

/* Chooses a server of VS's pool for a new request or connection: enabled, not DOWN, by
 * the pool's algorithm (HASH is used by consistent hash), avoiding AVOID (may be NULL)
 * when another is eligible. Returns a borrowed server or NULL when none is eligible. */
struct se_server *engine_pick_server(struct se_vs *vs, uint64_t hash, const struct se_server *avoid);

/* Numbers record R with the next sequence number and hands it to the log sink. */
void engine_log(struct se_engine *e, struct log_record *r);

/* A proxy opened (DELTA 1) or closed (-1) a socket; accepting pauses near the fd limit. */
void engine_count_socket(struct se_engine *e, int delta);

/* Called by the listener when accept fails for lack of descriptors. */
void engine_pause_accepting(struct se_engine *e);

/* Called when a server's aggregate health may have changed (by health probes). */
void engine_server_health_changed(struct se_server *s);

/* The GET /status document (caller owns). CONTROLLERS: addresses from the command line. */
json_t *engine_status_json(struct se_engine *e, const char *state, const char (*controllers)[72],
                           size_t n_controllers);

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
