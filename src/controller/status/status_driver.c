#include "controller/status/status_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "common/vlog.h"

#define STATUS_DRIVER__TICK_MS 50
/* A reachable member this far behind the leader's commit index, for this long, fell
 * behind and is catching up (a moment's lag under a heavy write load is not). */
#define STATUS_DRIVER__LAG_ENTRIES 1024
#define STATUS_DRIVER__LAG_MS 1000

struct status_driver {
    uv_loop_t *loop;
    struct cluster *cluster;
    struct peers *peers;
    struct store *store;
    uint64_t self_id;
    unsigned se_wait_s;
    struct status_machine sm;
    uv_timer_t timer;
    status_driver_move_cb move_cb;
    void *move_data;
    /* Leader side. */
    uint64_t led_term;          /* term in which this node last became leader (0 = none) */
    int64_t led_since_ms;       /* when it became leader in led_term */
    uint64_t committed_term;    /* term whose first entry (a barrier) is committed */
    int barrier_in_flight;
    uint64_t copy_target;       /* commit index when Copying began */
    json_t *awaited_ses;        /* SEs connected before quorum was lost (Waiting) */
    int64_t waiting_since_ms;   /* when Waiting began */
    int64_t started_ms;         /* when this process started driving (epoch ms) */
    int64_t lag_since_ms;       /* Ready: since when a member lags (0 = none does) */
    /* Follower side: the leader whose history is mirrored, and how far. */
    uint64_t mirror_leader;
    uint64_t mirror_term;
    int64_t mirror_upto_ms;
    uint64_t seen_leader;
    uint64_t seen_term;
    int closing;
};

static void status_driver__move(struct status_driver *d, enum cluster_status to,
                                const char *reason)
{
    enum cluster_status from = d->sm.current;
    if (status_move(&d->sm, to, reason, time_now_ms()) == 0 && d->move_cb != NULL)
        d->move_cb(d->move_data, from, to, reason, d->led_term != 0);
}

/* "node-2" from the store, or "node 2". */
static void status_driver__name(struct status_driver *d, uint64_t id, char *out, size_t len)
{
    json_t *nodes = store_nodes(d->store), *rec;
    size_t i;
    if (!peers_known_name(d->peers, id, out, len))
        snprintf(out, len, "node %llu", (unsigned long long)id);
    json_array_foreach(nodes, i, rec)
    {
        if ((uint64_t)json_integer_value(json_object_get(rec, "id")) == id)
            snprintf(out, len, "%s", json_string_value(json_object_get(rec, "name")));
    }
    json_decref(nodes);
}

static void status_driver__append(char *buf, size_t len, const char *text)
{
    size_t used = strlen(buf);
    if (used + 1 < len)
        snprintf(buf + used, len - used, "%s%s", used ? "; " : "", text);
}

static void status_driver__on_barrier(void *data, int status)
{
    struct status_driver *d = data;
    d->barrier_in_flight = 0;
    if (d->closing)
        return;
    if (status == 0)
        d->committed_term = cluster_term(d->cluster);
    status_driver_poke(d);
}

/* Members that are unreachable or report a failure, named in PROBLEMS. */
static int status_driver__problems(struct status_driver *d, char *problems, size_t len)
{
    struct cluster_member members[CLUSTER_MAX_NODES];
    unsigned n = cluster_members(d->cluster, members, CLUSTER_MAX_NODES);
    int count = 0;

    problems[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        const struct peer_state *ps;
        char name[128], text[400];
        json_t *errors;
        if (members[i].id == d->self_id)
            continue;
        ps = peers_get(d->peers, members[i].id);
        status_driver__name(d, members[i].id, name, sizeof name);
        if (ps != NULL && !ps->known)
            continue; /* never registered (a new cluster): nothing to observe yet */
        if (ps == NULL || !ps->reachable) {
            snprintf(text, sizeof text, "%s is unreachable", name);
            status_driver__append(problems, len, text);
            count++;
            continue;
        }
        errors = json_object_get(ps->report, "errors");
        if (json_array_size(errors) > 0) {
            snprintf(text, sizeof text, "%s reported: %s", name,
                     json_string_value(json_array_get(errors, 0)));
            status_driver__append(problems, len, text);
            count++;
        }
    }
    return count;
}

/* Reachable members that have not applied TARGET yet, named in WAITING. */
static int status_driver__laggards(struct status_driver *d, uint64_t target, char *waiting,
                                   size_t len)
{
    struct cluster_member members[CLUSTER_MAX_NODES];
    unsigned n = cluster_members(d->cluster, members, CLUSTER_MAX_NODES);
    int count = 0;

    waiting[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        const struct peer_state *ps;
        uint64_t applied;
        char name[128], text[300];
        if (members[i].id == d->self_id) {
            applied = cluster_applied_index(d->cluster);
        } else {
            ps = peers_get(d->peers, members[i].id);
            if (ps == NULL || !ps->reachable)
                continue;
            applied = ps->applied_index;
        }
        if (applied >= target)
            continue;
        status_driver__name(d, members[i].id, name, sizeof name);
        snprintf(text, sizeof text, "%s has applied %llu of %llu", name,
                 (unsigned long long)applied, (unsigned long long)target);
        status_driver__append(waiting, len, text);
        count++;
    }
    return count;
}

/* Waiting for Service Engines: true once every SE recorded as connected when Waiting
 * began has reconnected since, or --se-wait-s ran out; REASON says which. An SE is back
 * when a node reports a session with it opened after this process started or after
 * Waiting began, whichever is earlier: an SE that is back has a session with every node,
 * this one too, and a session of an earlier life (a node's row not reset yet) is older
 * than either (docs/architecture.md, "Waiting for Service Engines"). */
static int status_driver__ses_back(struct status_driver *d, char *reason, size_t len)
{
    json_t *now, *se;
    char missing[STATUS_REASON_MAX - 96] = "", back[STATUS_REASON_MAX - 96] = "";
    int n_missing = 0;
    size_t i;

    if (d->awaited_ses == NULL) {
        d->awaited_ses = store_se_connected(d->store);
        d->waiting_since_ms = time_now_ms();
    }
    if (json_array_size(d->awaited_ses) == 0) {
        snprintf(reason, len, "no Service Engine was connected before quorum was lost");
        goto done;
    }
    now = store_se_connected(d->store);
    json_array_foreach(d->awaited_ses, i, se)
    {
        const char *uuid = json_string_value(json_object_get(se, "uuid"));
        const char *name = json_string_value(json_object_get(se, "name"));
        json_t *cur;
        size_t j;
        int is_back = 0;
        json_array_foreach(now, j, cur)
        {
            if (strcmp(json_string_value(json_object_get(cur, "uuid")), uuid) == 0 &&
                json_integer_value(json_object_get(cur, "since_ms")) >=
                    (d->started_ms < d->waiting_since_ms ? d->started_ms : d->waiting_since_ms))
                is_back = 1;
        }
        status_driver__append(is_back ? back : missing, is_back ? sizeof back : sizeof missing,
                              name);
        n_missing += !is_back;
    }
    json_decref(now);
    if (n_missing == 0) {
        snprintf(reason, len, "every Service Engine connected before is back: %s", back);
        goto done;
    }
    if (time_now_ms() - d->waiting_since_ms >= (int64_t)d->se_wait_s * 1000) {
        snprintf(reason, len, "waited %u s for Service Engines; missing: %s", d->se_wait_s,
                 missing);
        goto done;
    }
    {
        char waiting[STATUS_REASON_MAX];
        snprintf(waiting, sizeof waiting, "waiting up to %u s for Service Engines: %s",
                 d->se_wait_s, missing);
        status_set_reason(&d->sm, waiting);
    }
    return 0;
done:
    json_decref(d->awaited_ses);
    d->awaited_ses = NULL;
    return 1;
}

static void status_driver__lead(struct status_driver *d, uint64_t term)
{
    char reason[STATUS_REASON_MAX], text[STATUS_REASON_MAX - 64];

    if (d->led_term != term) {
        /* Newly elected: the cluster had no working leader for a moment. */
        d->led_term = term;
        d->led_since_ms = time_now_ms();
        d->committed_term = 0;
        json_decref(d->awaited_ses);
        d->awaited_ses = NULL;
        if (d->sm.current != STATUS_NOT_RESPONSIVE) {
            snprintf(reason, sizeof reason, "leadership changed: this node leads term %llu",
                     (unsigned long long)term);
            status_driver__move(d, STATUS_NOT_RESPONSIVE, reason);
        }
        if (status_driver__problems(d, text, sizeof text) > 0) {
            snprintf(reason, sizeof reason, "leader elected in term %llu; %s",
                     (unsigned long long)term, text);
            status_driver__move(d, STATUS_ERRORS, reason);
        }
        snprintf(reason, sizeof reason, "node %llu elected leader in term %llu",
                 (unsigned long long)d->self_id, (unsigned long long)term);
        status_driver__move(d, STATUS_RESTORING, reason);
    }
    if (d->sm.current == STATUS_RESTORING) {
        if (d->committed_term != term) {
            if (!d->barrier_in_flight &&
                cluster_barrier(d->cluster, status_driver__on_barrier, d) == 0)
                d->barrier_in_flight = 1;
            return;
        }
        snprintf(reason, sizeof reason, "leader committed index %llu, the first of term %llu",
                 (unsigned long long)cluster_commit_index(d->cluster), (unsigned long long)term);
        status_driver__move(d, STATUS_WAITING_FOR_SES, reason);
    }
    if (d->sm.current == STATUS_WAITING_FOR_SES) {
        if (!status_driver__ses_back(d, reason, sizeof reason))
            return;
        status_driver__move(d, STATUS_COPYING_DB, reason);
        d->copy_target = cluster_commit_index(d->cluster);
    }
    if (d->sm.current == STATUS_COPYING_DB) {
        if (status_driver__laggards(d, d->copy_target, text, sizeof text) > 0) {
            snprintf(reason, sizeof reason, "waiting: %s", text);
            status_set_reason(&d->sm, reason);
            return;
        }
        snprintf(reason, sizeof reason, "every reachable member has applied index %llu",
                 (unsigned long long)d->copy_target);
        status_driver__move(d, STATUS_READY, reason);
    }
    if (d->sm.current == STATUS_READY) {
        uint64_t commit = cluster_commit_index(d->cluster);
        uint64_t target = commit > STATUS_DRIVER__LAG_ENTRIES ? commit - STATUS_DRIVER__LAG_ENTRIES : 0;
        if (status_driver__laggards(d, target, text, sizeof text) == 0) {
            d->lag_since_ms = 0;
        } else if (d->lag_since_ms == 0) {
            d->lag_since_ms = time_mono_ms();
        } else if (time_mono_ms() - d->lag_since_ms >= STATUS_DRIVER__LAG_MS) {
            snprintf(reason, sizeof reason, "a member fell behind: %s", text);
            status_driver__move(d, STATUS_COPYING_DB, reason);
            d->copy_target = commit;
            d->lag_since_ms = 0;
        }
    }
}

/* Follows the leader's status: applies the leader's history records that are newer than
 * what was mirrored, each only if it is a legal move from here. */
static void status_driver__mirror(struct status_driver *d, uint64_t leader, uint64_t term)
{
    const struct peer_state *ps = peers_get(d->peers, leader);
    json_t *history, *rec;
    size_t i;

    if (ps == NULL || ps->report == NULL || ps->term != term || ps->leader_id != leader)
        return;
    if (d->mirror_leader != leader || d->mirror_term != term) {
        d->mirror_leader = leader;
        d->mirror_term = term;
        d->mirror_upto_ms = 0;
    }
    /* Only what the leader did since it took over; before that it was a follower too. */
    {
        const char *since = json_string_value(json_object_get(ps->report, "led_since"));
        int64_t ms;
        if (since != NULL && time_parse_rfc3339(since, &ms) == 0 && ms > d->mirror_upto_ms)
            d->mirror_upto_ms = ms;
    }
    history = json_object_get(ps->report, "status_history");
    json_array_foreach(history, i, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "status"));
        const char *when = json_string_value(json_object_get(rec, "time"));
        const char *why = json_string_value(json_object_get(rec, "reason"));
        int64_t ms;
        int to = -1;
        if (name == NULL || when == NULL || time_parse_rfc3339(when, &ms) != 0)
            continue;
        if (ms < d->mirror_upto_ms)
            continue;
        d->mirror_upto_ms = ms;
        for (int s = 0; s < STATUS__COUNT; s++)
            if (strcmp(status_name((enum cluster_status)s), name) == 0)
                to = s;
        if (to < 0 || to == (int)d->sm.current ||
            !status_move_legal(d->sm.current, (enum cluster_status)to))
            continue;
        {
            char reason[STATUS_REASON_MAX];
            snprintf(reason, sizeof reason, "leader: %s", why != NULL ? why : "");
            status_driver__move(d, (enum cluster_status)to, reason);
        }
    }
    /* The leader's history may not reach back to its election (the ring keeps the newest
     * records): if its current status is still ahead of ours, walk the legal path to it,
     * each step naming what the leader reports. */
    {
        const char *cur = json_string_value(
            json_object_get(json_object_get(ps->report, "cluster_state"), "reason"));
        const char *cur_status = json_string_value(
            json_object_get(json_object_get(ps->report, "cluster_state"), "status"));
        static const enum cluster_status path[] = {STATUS_NOT_RESPONSIVE, STATUS_RESTORING,
                                                   STATUS_WAITING_FOR_SES, STATUS_COPYING_DB,
                                                   STATUS_READY};
        int target = -1, from = -1;
        for (int i = 0; i < 5 && cur_status != NULL; i++) {
            if (strcmp(status_name(path[i]), cur_status) == 0)
                target = i;
            if (path[i] == d->sm.current)
                from = i;
        }
        if (target > 0 && from >= 0 && from < target) {
            for (int i = from + 1; i <= target; i++) {
                char reason[STATUS_REASON_MAX];
                snprintf(reason, sizeof reason, "leader node %llu reports %s: %s",
                         (unsigned long long)leader, cur_status, cur != NULL ? cur : "");
                status_driver__move(d, path[i], reason);
            }
        }
        if (cur != NULL && cur_status != NULL && strcmp(cur_status, status_name(d->sm.current)) == 0) {
            char reason[STATUS_REASON_MAX];
            snprintf(reason, sizeof reason, "leader: %s", cur);
            status_set_reason(&d->sm, reason);
        }
    }
}

static void status_driver__evaluate(struct status_driver *d)
{
    char reason[STATUS_REASON_MAX];
    uint64_t leader, term;

    if (d->closing)
        return;
    leader = cluster_leader(d->cluster, NULL);
    term = cluster_term(d->cluster);
    if (leader == 0) {
        if (d->sm.current != STATUS_NOT_RESPONSIVE) {
            snprintf(reason, sizeof reason, "no leader with quorum known (term %llu)",
                     (unsigned long long)term);
            status_driver__move(d, STATUS_NOT_RESPONSIVE, reason);
        }
        d->led_term = 0;
        d->seen_leader = 0;
        d->mirror_leader = 0; /* follow the next leader's history from its start */
        return;
    }
    if (leader == d->self_id && cluster_is_leader(d->cluster)) {
        d->seen_leader = leader;
        d->seen_term = term;
        status_driver__lead(d, term);
        return;
    }
    if (leader != d->seen_leader || term != d->seen_term) {
        /* A different leader (or term) than the one followed: start over from it. */
        if (d->sm.current != STATUS_NOT_RESPONSIVE && d->seen_leader != 0) {
            snprintf(reason, sizeof reason, "leader changed to node %llu in term %llu",
                     (unsigned long long)leader, (unsigned long long)term);
            status_driver__move(d, STATUS_NOT_RESPONSIVE, reason);
        }
        d->seen_leader = leader;
        d->seen_term = term;
        d->mirror_leader = 0;
    }
    d->led_term = 0;
    status_driver__mirror(d, leader, term);
}

static void status_driver__on_timer(uv_timer_t *t)
{
    status_driver__evaluate(t->data);
}

struct status_driver *status_driver_start(uv_loop_t *loop, struct cluster *cluster,
                                          struct peers *peers, struct store *store,
                                          uint64_t self_id, unsigned se_wait_s)
{
    struct status_driver *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->loop = loop;
    d->cluster = cluster;
    d->peers = peers;
    d->store = store;
    d->self_id = self_id;
    d->se_wait_s = se_wait_s;
    d->started_ms = time_now_ms();
    status_init(&d->sm, time_now_ms(), "node started");
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, status_driver__on_timer, STATUS_DRIVER__TICK_MS,
                   STATUS_DRIVER__TICK_MS);
    return d;
}

void status_driver_set_move_cb(struct status_driver *d, status_driver_move_cb cb, void *data)
{
    d->move_cb = cb;
    d->move_data = data;
}

const struct status_machine *status_driver_status(struct status_driver *d)
{
    return &d->sm;
}

int64_t status_driver_led_since_ms(struct status_driver *d)
{
    return cluster_is_leader(d->cluster) && d->led_term == cluster_term(d->cluster)
               ? d->led_since_ms
               : 0;
}

void status_driver_poke(struct status_driver *d)
{
    status_driver__evaluate(d);
}

void status_driver_member_rejoined(struct status_driver *d, uint64_t id)
{
    char name[128], reason[STATUS_REASON_MAX];
    if (d->closing || d->sm.current != STATUS_READY || !cluster_is_leader(d->cluster))
        return;
    status_driver__name(d, id, name, sizeof name);
    d->copy_target = cluster_commit_index(d->cluster);
    snprintf(reason, sizeof reason, "%s rejoined and is catching up to index %llu", name,
             (unsigned long long)d->copy_target);
    status_driver__move(d, STATUS_COPYING_DB, reason);
}

static void status_driver__on_closed(uv_handle_t *h)
{
    struct status_driver *d = h->data;
    json_decref(d->awaited_ses);
    free(d);
}

void status_driver_close(struct status_driver *d)
{
    /* A barrier in flight is failed by raft's close before this runs (cluster closes
     * first), so nothing calls back into D after it is freed. */
    d->closing = 1;
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, status_driver__on_closed);
}
