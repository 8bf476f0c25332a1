/* engine.c: configuration apply, runtime pools and servers, server choice, status. */
#include "se/engine.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "se/health_probe.h"
#include "se/conn_pool.h"
#include "se/listener.h"
#include "se/log_seq.h"
#include "se/vs_metrics.h"
#include "se/log_sink.h"

#define ENGINE__ACCEPT_RETRY_MS 100

int engine_limits_default(struct se_limits *l, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        size_t offset;
    } fields[] = {
        {"connect_ms", offsetof(struct se_limits, connect_ms)},
        {"server_ms", offsetof(struct se_limits, server_ms)},
        {"client_head_ms", offsetof(struct se_limits, client_head_ms)},
        {"client_idle_ms", offsetof(struct se_limits, client_idle_ms)},
        {"tcp_idle_ms", offsetof(struct se_limits, tcp_idle_ms)},
        {"linger_ms", offsetof(struct se_limits, linger_ms)},
        {"head_limit", offsetof(struct se_limits, head_limit)},
        {"idle_per_server", offsetof(struct se_limits, idle_per_server)},
    };
    const char *env = getenv("VIGIL_SE_LIMITS");
    char copy[512], *save = NULL, *item;

    l->connect_ms = 3000;
    l->server_ms = 30000;
    l->client_head_ms = 10000;
    l->client_idle_ms = 30000;
    l->tcp_idle_ms = 300000;
    l->linger_ms = 2000;
    l->head_limit = 16384;
    l->idle_per_server = 256;
    if (env == NULL || *env == '\0')
        return 0;
    snprintf(copy, sizeof copy, "%s", env);
    for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end;
        unsigned long v;
        size_t i;
        if (eq == NULL) {
            snprintf(err, errlen, "VIGIL_SE_LIMITS: \"%s\" is not NAME=VALUE", item);
            return VIGIL_EINVAL;
        }
        *eq = '\0';
        v = strtoul(eq + 1, &end, 10);
        for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (strcmp(fields[i].name, item) == 0)
                break;
        if (i == sizeof fields / sizeof fields[0] || *end != '\0' || eq[1] == '\0' || v == 0 ||
            v > 100000000) {
            snprintf(err, errlen, "VIGIL_SE_LIMITS: bad entry \"%s=%s\"", item, eq + 1);
            return VIGIL_EINVAL;
        }
        *(uint32_t *)((char *)l + fields[i].offset) = (uint32_t)v;
    }
    return 0;
}

void engine_init(struct se_engine *e, uv_loop_t *loop, const char *name, struct log_sink *sink,
                 struct log_seq *seq, const struct se_limits *limits, listener_accept_fn *accept)
{
    memset(e, 0, sizeof *e);
    e->loop = loop;
    e->se_name = name;
    e->sink = sink;
    e->seq = seq;
    e->limits = *limits;
    e->accept = accept;
    e->max_connections = 1000000;
    uv_timer_init(loop, &e->accept_timer);
    e->accept_timer.data = e;
    uv_unref((uv_handle_t *)&e->accept_timer);
}

/* ---- reference counts --------------------------------------------------------------- */

struct se_server *se_server_ref(struct se_server *s)
{
    s->refs++;
    return s;
}

static void engine__server_stop_probes(struct se_server *s)
{
    for (size_t i = 0; i < s->n_probes; i++) {
        probe_stop(s->probes[i]);
        free(s->monitors[i].http_request);
    }
    free(s->probes);
    free(s->monitors);
    s->probes = NULL;
    s->monitors = NULL;
    s->n_probes = 0;
}

void se_server_unref(struct se_server *s)
{
    struct se_server **pp;

    if (s == NULL || --s->refs > 0)
        return;
    for (pp = &s->engine->servers; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    engine__server_stop_probes(s);
    conn_pool_drop_all(&s->idle);
    free(s->pool_key);
    free(s);
}

static void engine__pool_unref(struct se_pool *p)
{
    if (p == NULL || --p->refs > 0)
        return;
    for (size_t i = 0; i < p->n; i++)
        se_server_unref(p->servers[i]);
    free(p->servers);
    free(p->current);
    free(p->weights);
    free(p->eligible);
    free(p->active);
    balance_ring_free(p->ring);
    free(p);
}

struct se_vs *se_vs_ref(struct se_vs *v)
{
    v->refs++;
    return v;
}

void se_vs_unref(struct se_vs *v)
{
    if (v == NULL || --v->refs > 0)
        return;
    engine__pool_unref(v->pool);
    metrics_vs_put(v->metrics);
    se_config_unref(v->gen);
    free(v);
}

/* ---- servers and health ------------------------------------------------------------- */

static void engine__server_aggregate(struct se_server *s)
{
    enum health_state st = HEALTH_UP;
    bool unknown = false;

    s->reason[0] = '\0';
    for (size_t i = 0; i < s->n_probes; i++) {
        const struct health *h = probe_health(s->probes[i]);
        if (h->state == HEALTH_DOWN) {
            st = HEALTH_DOWN;
            snprintf(s->reason, sizeof s->reason, "%.40s: %.50s",
                     probe_monitor_name(s->probes[i]), h->reason);
            break;
        }
        if (h->state == HEALTH_UNKNOWN)
            unknown = true;
    }
    if (st != HEALTH_DOWN && unknown)
        st = HEALTH_UNKNOWN;
    s->state = st;
}

/* A probe of server ARG changed its health: the aggregate may change. */
static void engine__on_probe_change(void *arg)
{
    struct se_server *s = arg;
    enum health_state before = s->state;
    engine__server_aggregate(s);
    if (before != s->state) {
        vlog_info("engine: server %s of pool %s is now %s%s%s", s->label, s->pool_key,
                  health_state_name(s->state), s->reason[0] ? ": " : "", s->reason);
        if (s->state == HEALTH_DOWN)
            conn_pool_drop_all(&s->idle);
    }
}

/* Gives S the monitors of pool config P in generation GEN; probes restart only when the
 * monitors differ from the running ones. */
static int engine__server_set_monitors(struct se_engine *e, struct se_server *s,
                                       const struct se_config *gen,
                                       const struct se_pool_config *p)
{
    bool same = s->n_probes == p->n_monitors;

    for (size_t i = 0; same && i < p->n_monitors; i++)
        same = se_monitor_config_equal(&s->monitors[i], &gen->monitors[p->monitors[i]]);
    if (same)
        return 0;
    engine__server_stop_probes(s);
    if (p->n_monitors > 0) {
        s->probes = calloc(p->n_monitors, sizeof *s->probes);
        s->monitors = calloc(p->n_monitors, sizeof *s->monitors);
        if (s->probes == NULL || s->monitors == NULL)
            return VIGIL_ENOMEM;
        for (size_t i = 0; i < p->n_monitors; i++) {
            const struct se_monitor_config *m = &gen->monitors[p->monitors[i]];
            s->monitors[i] = *m;
            s->monitors[i].name = NULL;
            s->monitors[i].uuid = NULL;
            s->monitors[i].http_request = m->http_request ? strdup(m->http_request) : NULL;
            s->probes[i] = probe_start(e->loop, &s->cfg.addr, s->label, s->pool_key, m,
                                       engine__on_probe_change, s);
            if (s->probes[i] == NULL)
                return VIGIL_ENOMEM;
            s->n_probes++;
        }
    }
    engine__server_aggregate(s);
    return 0;
}

static struct se_server *engine__server_get(struct se_engine *e, const char *pool_key,
                                            const struct se_server_config *cfg)
{
    struct se_server *s;

    for (s = e->servers; s; s = s->next) {
        if (strcmp(s->pool_key, pool_key) == 0 && s->cfg.port == cfg->port &&
            strcmp(s->cfg.ip, cfg->ip) == 0)
            return se_server_ref(s);
    }
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->pool_key = strdup(pool_key)) == NULL) {
        free(s);
        return NULL;
    }
    s->refs = 1;
    s->engine = e;
    s->cfg = *cfg;
    s->state = HEALTH_UP;
    snprintf(s->label, sizeof s->label, "%s:%u", cfg->ip, cfg->port);
    s->ring_key = balance_hash(s->label, strlen(s->label));
    s->next = e->servers;
    e->servers = s;
    return s;
}

static struct se_pool *engine__pool_build(struct se_engine *e, const struct se_config *gen,
                                          const struct se_pool_config *pc)
{
    struct se_pool *p = calloc(1, sizeof *p);
    const char *key = pc->uuid ? pc->uuid : pc->name;
    uint64_t *keys;

    if (p == NULL)
        return NULL;
    p->refs = 1;
    p->cfg = pc;
    p->n = pc->n_servers;
    p->servers = calloc(p->n + 1, sizeof *p->servers);
    p->current = calloc(p->n + 1, sizeof *p->current);
    p->weights = calloc(p->n + 1, sizeof *p->weights);
    p->eligible = calloc(p->n + 1, sizeof *p->eligible);
    p->active = calloc(p->n + 1, sizeof *p->active);
    keys = calloc(p->n + 1, sizeof *keys);
    if (!p->servers || !p->current || !p->weights || !p->eligible || !p->active || !keys)
        goto fail;
    for (size_t i = 0; i < p->n; i++) {
        struct se_server *s = engine__server_get(e, key, &pc->servers[i]);
        if (s == NULL)
            goto fail;
        p->servers[i] = s;
        s->cfg = pc->servers[i];
        s->retired = false;
        if (engine__server_set_monitors(e, s, gen, pc) != 0)
            goto fail;
        p->weights[i] = pc->servers[i].ratio;
        if (p->weights[i] != 1)
            p->weighted = true;
        keys[i] = s->ring_key;
    }
    if (pc->lb == SE_LB_CONSISTENT_HASH) {
        p->ring = balance_ring_build(keys, p->weights, p->n);
        if (p->ring == NULL)
            goto fail;
    }
    free(keys);
    return p;
fail:
    free(keys);
    engine__pool_unref(p);
    return NULL;
}

struct se_server *engine_pick_server(struct se_vs *vs, uint64_t hash, const struct se_server *avoid)
{
    struct se_pool *p = vs->pool;
    bool any = false;
    int i;

    for (size_t k = 0; k < p->n; k++) {
        struct se_server *s = p->servers[k];
        p->eligible[k] = s->cfg.enabled && s->state != HEALTH_DOWN && s != avoid;
        p->active[k] = s->active;
        any |= p->eligible[k];
    }
    if (!any)
        return NULL;
    switch (p->cfg->lb) {
    case SE_LB_LEAST_CONNECTIONS:
        i = balance_pick_least_connections(&p->rr, p->eligible, p->active, p->weights, p->n);
        break;
    case SE_LB_CONSISTENT_HASH:
        i = balance_ring_pick(p->ring, hash, p->eligible);
        break;
    default:
        i = balance_pick_round_robin(&p->rr, p->eligible, p->weighted ? p->weights : NULL,
                                     p->weighted ? p->current : NULL, p->n);
        break;
    }
    return i < 0 ? NULL : p->servers[i];
}

/* ---- apply ---------------------------------------------------------------------------- */

static void engine__listener_close(struct se_listener *l)
{
    se_vs_unref(listener_set_vs(l, NULL));
    listener_close(l);
}

static void engine__on_out_of_fds(void *arg)
{
    engine_pause_accepting(arg);
}

static struct se_listener *engine__find_listener(struct se_engine *e, const struct sockaddr_in *a)
{
    for (struct se_listener *l = e->listeners; l; l = l->next)
        if (l->addr.sin_addr.s_addr == a->sin_addr.s_addr && l->addr.sin_port == a->sin_port)
            return l;
    return NULL;
}

int engine_apply_config(struct se_engine *e, struct se_config *gen, int *failed_listeners)
{
    struct se_pool **pools = calloc(gen->n_pools + 1, sizeof *pools);
    struct se_vs **vss = calloc(gen->n_vs + 1, sizeof *vss);
    struct se_listener *keep = NULL, **tail = &keep, *l, *next;
    int failed = 0;
    size_t i;

    if (pools == NULL || vss == NULL)
        goto nomem;
    for (i = 0; i < gen->n_pools; i++) {
        pools[i] = engine__pool_build(e, gen, &gen->pools[i]);
        if (pools[i] == NULL)
            goto nomem;
    }
    for (i = 0; i < gen->n_vs; i++) {
        struct se_vs *v = calloc(1, sizeof *v);
        if (v == NULL)
            goto nomem;
        v->refs = 1;
        v->gen = se_config_ref(gen);
        v->cfg = &gen->vs[i];
        v->pool = pools[gen->vs[i].pool];
        v->pool->refs++;
        v->metrics = metrics_vs_get(gen->vs[i].name);
        vss[i] = v;
        if (v->metrics == NULL)
            goto nomem;
    }
    /* Listeners: keep those whose address stays, open new ones, close the rest. */
    for (i = 0; i < gen->n_vs; i++) {
        const struct se_vs_config *vc = &gen->vs[i];
        if (!vc->enabled)
            continue;
        for (size_t k = 0; k < vc->n_ports; k++) {
            struct sockaddr_in a = vc->vip;
            struct se_listener **pp;
            a.sin_port = htons(vc->ports[k]);
            /* move a matching listener from the old list to KEEP */
            for (pp = &e->listeners; *pp; pp = &(*pp)->next) {
                if ((*pp)->addr.sin_addr.s_addr == a.sin_addr.s_addr &&
                    (*pp)->addr.sin_port == a.sin_port)
                    break;
            }
            if (*pp != NULL) {
                l = *pp;
                *pp = l->next;
            } else {
                struct listener_hooks hooks = {e->accept, engine__on_out_of_fds, e};
                int err = listener_open(e->loop, &a, &hooks, e->accept_paused, &l);
                if (err != 0) {
                    vlog_error("engine: virtual service %s cannot listen on %s:%u: %s",
                               vc->name, vc->vip_text, vc->ports[k], uv_strerror(err));
                    failed++;
                    continue;
                }
                vlog_info("engine: virtual service %s listening on %s", vc->name, l->label);
            }
            se_vs_unref(listener_set_vs(l, se_vs_ref(vss[i])));
            l->next = NULL;
            *tail = l;
            tail = &l->next;
        }
    }
    for (l = e->listeners; l; l = next) {
        next = l->next;
        vlog_info("engine: closing listener %s", l->label);
        engine__listener_close(l);
    }
    e->listeners = keep;
    /* Servers of no pool of the new generation stop probing and drop idle connections. */
    for (struct se_server *s = e->servers; s; s = s->next) {
        bool used = false;
        for (i = 0; i < gen->n_pools && !used; i++)
            for (size_t k = 0; k < pools[i]->n && !used; k++)
                used = pools[i]->servers[k] == s;
        if (!used && !s->retired) {
            s->retired = true;
            engine__server_stop_probes(s);
            conn_pool_drop_all(&s->idle);
        }
    }
    for (i = 0; i < gen->n_pools; i++)
        engine__pool_unref(pools[i]);
    for (i = 0; i < gen->n_vs; i++)
        se_vs_unref(vss[i]);
    free(pools);
    free(vss);
    se_config_unref(e->config);
    e->config = gen;
    if (gen->version == 0)
        gen->version = e->config_version + 1;
    e->config_version = gen->version;
    if (failed_listeners)
        *failed_listeners = failed;
    vlog_info("engine: configuration version %llu applied (%zu virtual services, %zu pools, "
              "%zu health monitors)", (unsigned long long)gen->version, gen->n_vs,
              gen->n_pools, gen->n_monitors);
    return 0;
nomem:
    for (i = 0; pools && i < gen->n_pools; i++)
        engine__pool_unref(pools[i]);
    for (i = 0; vss && i < gen->n_vs; i++)
        se_vs_unref(vss[i]);
    free(pools);
    free(vss);
    se_config_unref(gen);
    return VIGIL_ENOMEM;
}

/* ---- logging and descriptors -------------------------------------------------------- */

void engine_log(struct se_engine *e, struct log_record *r)
{
    r->seq = log_seq_next(e->seq);
    r->se_name = e->se_name;
    log_sink_append(e->sink, r);
    if (e->metrics != NULL)
        vs_metrics_count(e->metrics, r, time_now_ms());
}

void engine_set_metrics(struct se_engine *e, struct vs_metrics *metrics)
{
    e->metrics = metrics;
}

static void engine__resume_accepting(struct se_engine *e)
{
    if (!e->accept_paused)
        return;
    e->accept_paused = false;
    for (struct se_listener *l = e->listeners; l; l = l->next)
        listener_resume(l);
}

static void engine__on_accept_timer(uv_timer_t *t)
{
    struct se_engine *e = t->data;
    if (e->open_connections < e->max_connections)
        engine__resume_accepting(e);
    else
        uv_timer_start(&e->accept_timer, engine__on_accept_timer, ENGINE__ACCEPT_RETRY_MS, 0);
}

void engine_pause_accepting(struct se_engine *e)
{
    if (!e->accept_paused) {
        e->accept_paused = true;
        for (struct se_listener *l = e->listeners; l; l = l->next)
            listener_pause(l);
    }
    uv_timer_start(&e->accept_timer, engine__on_accept_timer, ENGINE__ACCEPT_RETRY_MS, 0);
}

void engine_count_socket(struct se_engine *e, int delta)
{
    e->open_connections += (uint64_t)(int64_t)delta;
    if (delta > 0 && e->open_connections >= e->max_connections && !e->accept_paused) {
        vlog_warn("engine: %llu sockets open, at the limit; accepting pauses",
                  (unsigned long long)e->open_connections);
        engine_pause_accepting(e);
    }
}

void engine_stop(struct se_engine *e)
{
    for (struct se_listener *l = e->listeners, *next; l; l = next) {
        next = l->next;
        engine__listener_close(l);
    }
    e->listeners = NULL;
    for (struct se_server *s = e->servers; s; s = s->next) {
        s->retired = true; /* connections released from now on close instead of pooling */
        engine__server_stop_probes(s);
        conn_pool_drop_all(&s->idle);
    }
    uv_timer_stop(&e->accept_timer);
}

/* ---- client connections and the drain ------------------------------------------------ */

void engine_conn_add(struct se_engine *e, struct se_conn *c, const struct se_conn_ops *ops)
{
    c->ops = ops;
    c->prev = NULL;
    c->next = e->conns;
    if (e->conns)
        e->conns->prev = c;
    e->conns = c;
    e->n_conns++;
}

static void engine__check_drained(struct se_engine *e)
{
    void (*cb)(void *) = e->drained;

    if (!e->draining || e->conns != NULL || cb == NULL)
        return;
    e->drained = NULL;
    cb(e->drained_arg);
}

void engine_conn_remove(struct se_engine *e, struct se_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (e->conns == c)
        e->conns = c->next;
    else
        return; /* not listed */
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    e->n_conns--;
    engine__check_drained(e);
}

void engine_drain(struct se_engine *e, void (*drained)(void *arg), void *arg)
{
    e->draining = true;
    e->drained = drained;
    e->drained_arg = arg;
    for (struct se_conn *c = e->conns, *next; c; c = next) {
        next = c->next; /* C may close (and unlist itself) now */
        c->ops->drain(c);
    }
    engine__check_drained(e);
}

void engine_abort(struct se_engine *e)
{
    while (e->conns != NULL) {
        struct se_conn *c = e->conns;
        c->ops->abort(c);
        if (e->conns == c) /* refused to close: unlist it so the stop ends */
            engine_conn_remove(e, c);
    }
}

/* ---- status --------------------------------------------------------------------------- */

/* Whether every port of VC is listening with VC's own generation; *LIVE (may stay NULL)
 * gets the running se_vs of one of them. */
static bool engine__vs_listening(struct se_engine *e, const struct se_vs_config *vc,
                                 const struct se_vs **live)
{
    bool listening = vc->enabled && vc->n_ports > 0;
    for (size_t k = 0; k < vc->n_ports; k++) {
        struct sockaddr_in a = vc->vip;
        struct se_listener *l;
        a.sin_port = htons(vc->ports[k]);
        l = engine__find_listener(e, &a);
        if (l == NULL || l->vs == NULL || l->vs->cfg != vc)
            listening = false;
        else
            *live = l->vs;
    }
    return listening;
}

/* The running server of server K of pool PC, or NULL. */
static const struct se_server *engine__find_server(const struct se_engine *e,
                                                   const struct se_pool_config *pc, size_t k)
{
    const char *key = pc->uuid ? pc->uuid : pc->name;
    for (const struct se_server *s = e->servers; s; s = s->next)
        if (!s->retired && strcmp(s->pool_key, key) == 0 && s->cfg.port == pc->servers[k].port &&
            strcmp(s->cfg.ip, pc->servers[k].ip) == 0)
            return s;
    return NULL;
}

json_t *engine_vs_runtime(struct se_engine *e)
{
    json_t *list = json_array();
    const struct se_config *gen = e->config;

    for (size_t i = 0; gen && i < gen->n_vs; i++) {
        const struct se_vs_config *vc = &gen->vs[i];
        const struct se_pool_config *pc = &gen->pools[vc->pool];
        const struct se_vs *live = NULL;
        bool listening = engine__vs_listening(e, vc, &live);
        size_t up = 0, enabled = 0;
        const char *health;
        json_t *states = json_array();
        for (size_t k = 0; k < pc->n_servers; k++) {
            const struct se_server *s = engine__find_server(e, pc, k);
            if (s == NULL)
                continue;
            /* each server as its monitor sees it here (UNKNOWN before the first verdict) */
            json_array_append_new(states, json_pack("{s:s, s:i, s:s}", "ip", s->cfg.ip, "port",
                                                    s->cfg.port, "state",
                                                    s->cfg.enabled ? health_state_name(s->state)
                                                                   : "DISABLED"));
            if (!s->cfg.enabled)
                continue;
            enabled++;
            up += s->state != HEALTH_DOWN;
        }
        health = !vc->enabled                 ? "DISABLED"
                 : !listening || up == 0      ? "DOWN"
                 : up < enabled               ? "DEGRADED"
                                              : "UP";
        json_array_append_new(
            list, json_pack("{s:o, s:s, s:s, s:I, s:I, s:I, s:I, s:o}", "uuid",
                            vc->uuid ? json_string(vc->uuid) : json_null(), "name", vc->name,
                            "health", health, "servers_up", (json_int_t)up, "servers",
                            (json_int_t)enabled, "requests",
                            (json_int_t)(live ? live->metrics->requests : 0), "errors",
                            (json_int_t)(live ? live->metrics->responses[5] : 0),
                            "server_states", states));
    }
    return list;
}

json_t *engine_status_json(struct se_engine *e, const char *state, json_t *controllers)
{
    json_t *root = json_object(), *list = controllers ? controllers : json_array();
    json_t *vs = json_array(), *pools = json_array();
    struct log_sink_stats ls;
    const struct se_config *gen = e->config;

    log_sink_stats(e->sink, &ls);
    json_object_set_new(root, "name", json_string(e->se_name));
    json_object_set_new(root, "state", json_string(state));
    json_object_set_new(root, "controllers", list);
    json_object_set_new(root, "config_version", json_integer((json_int_t)e->config_version));
    json_object_set_new(root, "logs", json_pack("{sIsIsIsI}", "generated", (json_int_t)ls.generated,
                                                "acked", (json_int_t)ls.acked, "spooled",
                                                (json_int_t)ls.spooled, "dropped",
                                                (json_int_t)ls.dropped));
    for (size_t i = 0; gen && i < gen->n_vs; i++) {
        const struct se_vs_config *vc = &gen->vs[i];
        const struct se_vs *live = NULL;
        bool listening = engine__vs_listening(e, vc, &live);
        json_t *ports = json_array();
        for (size_t k = 0; k < vc->n_ports; k++)
            json_array_append_new(ports, json_integer(vc->ports[k]));
        json_array_append_new(vs, json_pack("{sssosbsIsssssosssI}", "name", vc->name, "uuid",
                                            vc->uuid ? json_string(vc->uuid) : json_null(),
                                            "listening", listening, "requests",
                                            (json_int_t)(live ? live->metrics->requests : 0),
                                            "application",
                                            vc->app == SE_APP_TCP ? "tcp" : "http", "vip",
                                            vc->vip_text, "ports", ports, "pool",
                                            gen->pools[vc->pool].name, "config_version",
                                            (json_int_t)gen->version));
    }
    for (size_t i = 0; gen && i < gen->n_pools; i++) {
        const struct se_pool_config *pc = &gen->pools[i];
        json_t *servers = json_array();
        for (size_t k = 0; k < pc->n_servers; k++) {
            const struct se_server *s = engine__find_server(e, pc, k);
            if (s == NULL)
                continue;
            json_array_append_new(servers, json_pack("{sssisbsssssIsI}", "ip", s->cfg.ip,
                                                     "port", s->cfg.port, "enabled",
                                                     s->cfg.enabled, "state",
                                                     health_state_name(s->state), "reason",
                                                     s->reason, "active", (json_int_t)s->active,
                                                     "idle_connections", (json_int_t)s->idle.n));
        }
        json_array_append_new(pools, json_pack("{sssoss}", "name", pc->name, "servers", servers,
                                               "lb_algorithm",
                                               pc->lb == SE_LB_LEAST_CONNECTIONS ? "LB_ALGORITHM_LEAST_CONNECTIONS"
                                               : pc->lb == SE_LB_CONSISTENT_HASH ? "LB_ALGORITHM_CONSISTENT_HASH"
                                                                                   : "LB_ALGORITHM_ROUND_ROBIN"));
    }
    json_object_set_new(root, "virtual_services", vs);
    json_object_set_new(root, "pools", pools);
    return root;
}
