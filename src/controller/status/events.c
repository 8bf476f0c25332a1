#include "controller/status/events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"

#define EVENTS__TICK_MS 50
/* Bound on queued observations (~300 bytes each): past it the oldest are dropped, counted,
 * one line when an episode starts and one with the count when it ends. 1000 SEs make
 * several per SE at each flap of their sessions. */
#define EVENTS__MAX_PENDING 50000
/* One send holds at most STORE_OBSERVATIONS_MAX observations and about this many bytes of
 * them (the API takes bodies up to 1 MiB; one observation is far smaller). */
#define EVENTS__GROUP_BYTES ((size_t)512 * 1024)

struct events__item {
    json_t *cmd;
    size_t bytes; /* CMD's compact JSON text */
    struct events__item *next;
};

struct events {
    uv_loop_t *loop;
    struct cluster *cluster;
    struct leader_link *link;
    uint64_t self_id;
    char boot[40];
    uv_timer_t timer;
    struct events__item *head, *tail;
    size_t pending;
    uint64_t seq;       /* numbers this incarnation's status moves */
    size_t in_flight;   /* how many of the oldest observations are on their way (0: none) */
    uint64_t dropped;   /* dropped in the current episode (0: none) */
    int closing;
    int timer_closed;
};

static void events__push(struct events *e, json_t *cmd)
{
    struct events__item *it;
    if (cmd == NULL) { /* json_pack failed: a queued NULL would stall the outbox for good */
        vlog_error("events: an observation could not be made (out of memory or a missing "
                   "field); it is lost");
        return;
    }
    it = calloc(1, sizeof *it);
    if (it == NULL) {
        vlog_error("events: out of memory, an observation is lost");
        json_decref(cmd);
        return;
    }
    it->cmd = cmd;
    it->bytes = json_dumpb(cmd, NULL, 0, JSON_COMPACT);
    if (e->tail != NULL)
        e->tail->next = it;
    else
        e->head = it;
    e->tail = it;
    if (++e->pending > EVENTS__MAX_PENDING) {
        /* The oldest not on its way (those are kept until their answer). */
        struct events__item *prev = NULL, *old = e->head;
        for (size_t k = 0; k < e->in_flight && old != NULL; k++) {
            prev = old;
            old = old->next;
        }
        if (old == NULL || old == it)
            return;
        if (e->dropped++ == 0)
            vlog_error("events: more than %d observations wait for quorum; dropping the oldest "
                       "(counted, one line when it ends)", EVENTS__MAX_PENDING);
        if (prev != NULL)
            prev->next = old->next;
        else
            e->head = old->next;
        if (e->tail == old)
            e->tail = prev;
        json_decref(old->cmd);
        free(old);
        e->pending--;
    }
}

static void events__pop(struct events *e)
{
    struct events__item *it = e->head;
    if (it == NULL)
        return;
    e->head = it->next;
    if (e->head == NULL)
        e->tail = NULL;
    json_decref(it->cmd);
    free(it);
    e->pending--;
}

static void events__flush(struct events *e);

/* The flight of the oldest E->in_flight observations ended: ANSWERED (they were recorded,
 * or refused for good, which sending again cannot change) drops them; otherwise they are
 * kept and sent again at the next tick. */
static void events__done(struct events *e, int answered)
{
    size_t n = e->in_flight;

    e->in_flight = 0;
    if (e->closing) {
        if (e->timer_closed)
            free(e);
        return;
    }
    if (!answered)
        return;
    while (n-- > 0)
        events__pop(e);
    if (e->dropped > 0 && e->pending < EVENTS__MAX_PENDING / 2) {
        vlog_error("events: %llu observations were dropped while quorum was away (the outbox "
                   "holds %d at most)", (unsigned long long)e->dropped, EVENTS__MAX_PENDING);
        e->dropped = 0;
    }
    events__flush(e);
}

static void events__on_committed(void *data, int status, struct store_result *res)
{
    struct events *e = data;
    if (status == 0 && store_outcome_refused(res->outcome))
        vlog_error("events: the leader refused an observation: %s", res->error);
    events__done(e, status == 0);
}

/* Kept unless the leader answered (and then sent again: duplicates are dropped at apply
 * time): 2xx recorded, or refused for good (below); this node leading now proposes it at
 * the next tick. */
static void events__on_sent(void *data, struct leader_link_result *r)
{
    struct events *e = data;
    /* Refused for good: a malformed command (400) or a store refusal (404, 409, 413).
     * 401/403 are not: a node that has not learnt the cluster's credentials yet is refused
     * until it has (its node_register must still get through). */
    int refused = r->status == 400 || r->status == 404 || r->status == 409 || r->status == 413;
    int answered = r->outcome == LEADER_LINK_DONE &&
                   ((r->status >= 200 && r->status < 300) || refused);
    if (answered && r->status >= 300)
        vlog_error("events: the leader refused an observation (HTTP %ld): %s", r->status,
                   json_string_value(json_object_get(r->body, "error")));
    events__done(e, answered);
}

/* The oldest observations as one command: the oldest alone, or a group ("observations",
 * store.h) of up to STORE_OBSERVATIONS_MAX of them and about EVENTS__GROUP_BYTES. Sets *N
 * to how many it holds. Returns a new reference, or NULL (out of memory). */
static json_t *events__oldest(struct events *e, size_t *n)
{
    json_t *cmds, *group;
    size_t bytes = 0;

    *n = 1;
    if (e->head->next == NULL)
        return json_incref(e->head->cmd);
    cmds = json_array();
    group = json_pack("{s:s, s:o}", "op", "observations", "cmds", cmds);
    if (group == NULL)
        return NULL;
    *n = 0;
    for (struct events__item *it = e->head; it != NULL && *n < STORE_OBSERVATIONS_MAX; it = it->next) {
        if (*n > 0 && bytes + it->bytes > EVENTS__GROUP_BYTES)
            break;
        json_array_append(cmds, it->cmd);
        bytes += it->bytes;
        (*n)++;
    }
    return group;
}

/* Sends the oldest observations if none are on their way. */
static void events__flush(struct events *e)
{
    char *text;
    json_t *cmd;
    size_t n;
    const char *const headers[] = {"Content-Type: application/json", NULL};
    struct leader_link_request rq = {.method = "POST", .target = "/api/internal/command",
                                     .headers = headers};

    if (e->closing || e->in_flight || e->head == NULL)
        return;
    if (cluster_is_leader(e->cluster)) {
        if (!cluster_leader_has_quorum(e->cluster) || (cmd = events__oldest(e, &n)) == NULL)
            return;
        if (cluster_propose(e->cluster, cmd, events__on_committed, e) == 0)
            e->in_flight = n;
        json_decref(cmd);
        return;
    }
    if (cluster_leader(e->cluster, NULL) == 0)
        return; /* the next tick looks again */
    if ((cmd = events__oldest(e, &n)) == NULL)
        return;
    text = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    if (text == NULL)
        return;
    rq.body = text;
    rq.len = strlen(text);
    if (leader_link_call(e->link, &rq, leader_link_deadline(e->link, NULL), events__on_sent, e) == 0)
        e->in_flight = n;
    free(text);
}

static void events__on_timer(uv_timer_t *t)
{
    events__flush(t->data);
}

struct events *events_start(uv_loop_t *loop, struct cluster *cluster, struct leader_link *link,
                            uint64_t self_id, const char *boot)
{
    struct events *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->loop = loop;
    e->cluster = cluster;
    e->link = link;
    e->self_id = self_id;
    snprintf(e->boot, sizeof e->boot, "%s", boot);
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    uv_timer_start(&e->timer, events__on_timer, EVENTS__TICK_MS, EVENTS__TICK_MS);
    return e;
}

void events_node_presence(struct events *e, uint64_t id, const char *boot, bool joined,
                          const char *role)
{
    if (boot == NULL || boot[0] == '\0')
        return; /* an incarnation never heard from cannot be said to leave */
    events__push(e, json_pack("{s:s, s:I, s:s, s:I, s:s}", "op",
                              joined ? "node_joined" : "node_left", "id", (json_int_t)id, "boot",
                              boot, "time", (json_int_t)time_now_ms(), "role", role));
    events__flush(e);
}

void events_status_changed(struct events *e, enum cluster_status from, enum cluster_status to,
                           const char *reason)
{
    char key[128], desc[200], name[32];
    snprintf(key, sizeof key, "status:%llu:%s:%llu", (unsigned long long)e->self_id, e->boot,
             (unsigned long long)++e->seq);
    snprintf(desc, sizeof desc, "Cluster status changed from %s to %s", status_name(from),
             status_name(to));
    snprintf(name, sizeof name, "node-%llu", (unsigned long long)e->self_id);
    events__push(e, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}}",
                              "op", "event_record", "key", key, "event_id",
                              "CLUSTER_STATUS_CHANGED", "time", (json_int_t)time_now_ms(),
                              "module", "CLUSTERMGR", "obj_type", "CLUSTER", "obj_name", "cluster",
                              "description", desc, "details", "from", status_name(from), "to",
                              status_name(to), "reason", reason));
    events__flush(e);
}

void events_leader_elected(struct events *e, uint64_t term)
{
    events__push(e, json_pack("{s:s, s:I, s:s, s:I, s:I}", "op", "leader_elected", "leader",
                              (json_int_t)e->self_id, "boot", e->boot, "term", (json_int_t)term,
                              "time", (json_int_t)time_now_ms()));
    events__flush(e);
}

void events_record(struct events *e, const char *event_id, const char *module,
                   const char *obj_type, const char *obj_name, const char *description,
                   json_t *details)
{
    char key[128];
    snprintf(key, sizeof key, "%s:%llu:%s:%llu", event_id, (unsigned long long)e->self_id, e->boot,
             (unsigned long long)++e->seq);
    events__push(e, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:O}", "op",
                              "event_record", "key", key, "event_id", event_id, "time",
                              (json_int_t)time_now_ms(), "module", module, "obj_type", obj_type,
                              "obj_name", obj_name, "description", description, "details",
                              details));
    events__flush(e);
}

void events_submit(struct events *e, json_t *cmd)
{
    events__push(e, cmd);
    events__flush(e);
}

static void events__on_closed(uv_handle_t *h)
{
    struct events *e = h->data;
    while (e->head != NULL)
        events__pop(e);
    e->timer_closed = 1;
    if (!e->in_flight)
        free(e);
    /* else: freed by the callback that ends the flight (events__done). */
}

void events_close(struct events *e)
{
    e->closing = 1;
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, events__on_closed);
}
