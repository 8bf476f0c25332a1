/* engine-t.h: the SE's runtime types that several modules embed or read (the engine, its
 * servers, pools and services, the proxies' limits and connection list). Functions are in
 * engine.h; see it for lifetimes. Types only: this header calls nothing. */
#ifndef VIGIL_SE_ENGINE_T_H
#define VIGIL_SE_ENGINE_T_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "se/balance.h"
#include "se/conn_pool-t.h"
#include "se/health.h"
#include "se/metrics.h"
#include "se/se_config.h"

struct se_listener;

/* Takes over the accepted, non-blocking socket FD (peer PEER) from listener L, for ARG
 * (the engine). */
typedef void listener_accept_fn(void *arg, struct se_listener *l, int fd,
                                const struct sockaddr_in *peer);

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
    struct conn_pool idle;    /* pooled idle HTTP server connections */
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
struct log_sink;
struct log_seq;
struct vs_metrics;

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
    struct vs_metrics *metrics;   /* borrowed; NULL: no per-second metrics (standalone) */
    struct se_limits limits;
    uint64_t open_connections;    /* client + server sockets of the proxies */
    uint64_t max_connections;     /* accepting pauses above this */
    listener_accept_fn *accept;   /* hands accepted sockets to a proxy (set by main) */
    bool accept_paused;
    uv_timer_t accept_timer;
    struct se_conn *conns;        /* open client connections of the proxies */
    uint64_t n_conns;
    bool draining;
    void (*drained)(void *arg);   /* called once when draining and no connection is left */
    void *drained_arg;
};

#endif
