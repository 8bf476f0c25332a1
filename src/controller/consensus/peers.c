#include "controller/consensus/peers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/vlog.h"

struct peers {
    uv_loop_t *loop;
    struct http_client *client;
    struct store *store;
    struct cluster *cluster;
    uint64_t self_id;
    unsigned interval_ms;
    unsigned window_ms;
    peers_change_cb cb;
    void *cb_data;
    peers_answer_cb answer_cb;
    void *answer_data;
    uv_timer_t timer;
    struct peer_state states[CLUSTER_MAX_NODES];
    int in_flight[CLUSTER_MAX_NODES];
    unsigned n;
    const char *header;
    const char *scheme;
    int closing;
    int polls_in_flight;
    json_t *known_nodes; /* fallback node records (see peers_set_known_nodes) */
    int64_t last_tick_ms;  /* monotonic time of the last poll round (0: none yet) */
    int64_t grace_until_ms; /* until then nobody is declared unreachable (after a stall) */
};

struct peers__poll {
    struct peers *p;
    uint64_t id;
};

static struct peer_state *peers__slot(struct peers *p, uint64_t id)
{
    for (unsigned i = 0; i < p->n; i++)
        if (p->states[i].id == id)
            return &p->states[i];
    return NULL;
}

static void peers__set_reachable(struct peers *p, struct peer_state *s, bool reachable,
                                 const char *prev_boot)
{
    if (s->reachable == reachable)
        return;
    s->reachable = reachable;
    vlog_info("peers: node %llu is %s", (unsigned long long)s->id,
              reachable ? "reachable" : "unreachable");
    if (p->cb != NULL)
        p->cb(p->cb_data, s->id, reachable, prev_boot);
}

static void peers__free_if_done(struct peers *p)
{
    if (!p->closing || p->polls_in_flight > 0 || p->timer.data != NULL)
        return;
    for (unsigned i = 0; i < p->n; i++)
        json_decref(p->states[i].report);
    json_decref(p->known_nodes);
    free(p);
}

static void peers__on_answer(void *data, int err, long status, const char *body, size_t len,
                              const char *headers)
{
    struct peers__poll *poll = data;
    struct peers *p = poll->p;
    struct peer_state *s;
    json_t *report;

    p->polls_in_flight--;
    if (p->closing) {
        free(poll);
        peers__free_if_done(p);
        return;
    }
    s = peers__slot(p, poll->id);
    if (s == NULL) {
        free(poll);
        return;
    }
    p->in_flight[s - p->states] = 0;
    free(poll);
    if (err != 0 || status != 200)
        return;
    report = json_loadb(body, len, 0, NULL);
    if (report == NULL || (uint64_t)json_integer_value(json_object_get(report, "node_id")) != s->id) {
        json_decref(report);
        return;
    }
    json_decref(s->report);
    s->report = report;
    s->last_ok_ms = time_mono_ms();
    s->ever_reachable = true;
    s->applied_index = (uint64_t)json_integer_value(json_object_get(report, "applied_index"));
    s->leader_id = (uint64_t)json_integer_value(json_object_get(report, "leader_id"));
    s->term = (uint64_t)json_integer_value(json_object_get(report, "term"));
    s->se_ready = json_is_true(json_object_get(report, "se_ready"));
    {
        const char *boot = json_string_value(json_object_get(report, "boot"));
        char prev[sizeof s->boot];
        snprintf(prev, sizeof prev, "%s", s->boot);
        if (boot != NULL && strcmp(boot, s->boot) != 0) {
            snprintf(s->boot, sizeof s->boot, "%s", boot);
            if (s->reachable && prev[0] != '\0') {
                /* Restarted within the window: a new incarnation joined. */
                vlog_info("peers: node %llu restarted", (unsigned long long)s->id);
                if (p->cb != NULL)
                    p->cb(p->cb_data, s->id, true, prev);
            }
        }
        peers__set_reachable(p, s, true, prev);
    }
    if (p->answer_cb != NULL)
        p->answer_cb(p->answer_data, s->id);
}

void peers_set_answer_cb(struct peers *p, peers_answer_cb cb, void *data)
{
    p->answer_cb = cb;
    p->answer_data = data;
}

/* Finds member ID's API address in the store's node records. */
static int peers__find_address(json_t *nodes, uint64_t id, char *out, size_t len)
{
    json_t *rec;
    size_t i;
    json_array_foreach(nodes, i, rec)
    {
        const char *api = json_string_value(json_object_get(rec, "api_address"));
        if ((uint64_t)json_integer_value(json_object_get(rec, "id")) == id && api != NULL) {
            snprintf(out, len, "%s", api);
            return 1;
        }
    }
    return 0;
}

static int peers__api_address(struct peers *p, uint64_t id, char *out, size_t len)
{
    return store_node_api_address(p->store, id, out, len) ||
           peers__find_address(p->known_nodes, id, out, len);
}

int peers_known_name(struct peers *p, uint64_t id, char *out, size_t len)
{
    json_t *rec;
    size_t i;
    json_array_foreach(p->known_nodes, i, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "name"));
        if ((uint64_t)json_integer_value(json_object_get(rec, "id")) == id && name != NULL) {
            snprintf(out, len, "%s", name);
            return 1;
        }
    }
    return 0;
}

void peers_set_known_nodes(struct peers *p, json_t *nodes)
{
    json_decref(p->known_nodes);
    p->known_nodes = nodes;
}

static void peers__on_timer(uv_timer_t *t)
{
    struct peers *p = t->data;
    struct cluster_member members[CLUSTER_MAX_NODES];
    unsigned n = cluster_members(p->cluster, members, CLUSTER_MAX_NODES);
    struct peer_state next[CLUSTER_MAX_NODES];
    int next_in_flight[CLUSTER_MAX_NODES];
    unsigned m = 0;
    int64_t now = time_mono_ms();

    /* Follow membership: keep what we knew of members that stay. */
    memset(next, 0, sizeof next);
    memset(next_in_flight, 0, sizeof next_in_flight);
    for (unsigned i = 0; i < n; i++) {
        struct peer_state *old;
        if (members[i].id == p->self_id)
            continue;
        old = peers__slot(p, members[i].id);
        if (old != NULL) {
            next[m] = *old;
            next_in_flight[m] = p->in_flight[old - p->states];
            old->report = NULL;
        } else {
            next[m].id = members[i].id;
        }
        m++;
    }
    for (unsigned i = 0; i < p->n; i++)
        json_decref(p->states[i].report);
    /* This node's own loop stalled past the window (SIGSTOP, a starved or frozen host): the
     * silence was its own, not the peers'. Declaring them unreachable now would report
     * each of them leaving and joining again (and a deposed leader's status moves) within
     * a millisecond, from stale timers; they get a whole window to answer again instead. */
    if (p->last_tick_ms != 0 && now - p->last_tick_ms > (int64_t)p->window_ms) {
        vlog_warn("peers: this node's loop stalled for %lld ms: its peers get %u ms to answer "
                  "before any counts as unreachable", (long long)(now - p->last_tick_ms),
                  p->window_ms);
        p->grace_until_ms = now + p->window_ms;
    }
    p->last_tick_ms = now;
    memcpy(p->states, next, sizeof next);
    memcpy(p->in_flight, next_in_flight, sizeof next_in_flight);
    p->n = m;

    for (unsigned i = 0; i < p->n; i++) {
        struct peer_state *s = &p->states[i];
        char addr[128], url[200];
        const char *headers[2] = {p->header != NULL && p->header[0] ? p->header : NULL, NULL};
        struct peers__poll *poll;

        if (s->last_ok_ms != 0 && now - s->last_ok_ms > (int64_t)p->window_ms &&
            now >= p->grace_until_ms)
            peers__set_reachable(p, s, false, s->boot);
        s->known = peers__api_address(p, s->id, addr, sizeof addr);
        if (!s->known || p->in_flight[i])
            continue;
        snprintf(url, sizeof url, "%s://%s/api/internal/peer", p->scheme, addr);
        poll = malloc(sizeof *poll);
        if (poll == NULL)
            continue;
        poll->p = p;
        poll->id = s->id;
        if (http_client_request(p->client, "GET", url, headers, NULL, 0, p->window_ms,
                                peers__on_answer, poll) == 0) {
            p->in_flight[i] = 1;
            p->polls_in_flight++;
        } else {
            free(poll);
        }
    }
}

struct peers *peers_start(uv_loop_t *loop, struct http_client *client, struct store *store,
                          struct cluster *cluster, uint64_t self_id, unsigned interval_ms,
                          unsigned window_ms, peers_change_cb cb, void *data)
{
    struct peers *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->client = client;
    p->store = store;
    p->cluster = cluster;
    p->self_id = self_id;
    p->interval_ms = interval_ms;
    p->window_ms = window_ms;
    p->cb = cb;
    p->cb_data = data;
    p->scheme = "http";
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    uv_timer_start(&p->timer, peers__on_timer, 0, interval_ms);
    return p;
}

const struct peer_state *peers_get(struct peers *p, uint64_t id)
{
    return peers__slot(p, id);
}

void peers_set_header(struct peers *p, const char *header, const char *scheme)
{
    p->header = header;
    p->scheme = scheme;
}

static void peers__on_timer_closed(uv_handle_t *h)
{
    struct peers *p = h->data;
    p->timer.data = NULL;
    peers__free_if_done(p);
}

void peers_close(struct peers *p)
{
    p->closing = 1;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, peers__on_timer_closed);
}
