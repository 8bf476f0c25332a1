#include "controller/consensus/leader_link.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"

struct leader_link {
    uv_loop_t *loop;
    struct cluster *cluster;
    struct store *store;
    struct http_client *client;
    uint64_t self_id;
    const char *scheme;
    const char *node_header;
    unsigned election_timeout_ms;
    struct leader_call *calls;   /* every call not yet freed */
    int stopping;
    int closing;
};

/* One leader_link_call, from the call to its callback (and its timer's close). */
struct leader_call {
    struct leader_link *link;
    struct leader_call *prev, *next;
    char method[16];
    char *target;
    char *headers[LEADER_LINK_MAX_HEADERS + 1];
    char *body;
    size_t len;
    int read_only;
    int64_t deadline_ms;
    leader_link_cb cb;
    void *data;
    uv_timer_t timer;          /* the next attempt */
    int in_flight;             /* an HTTP request whose callback has not run */
    int ended;                 /* CB ran */
};

static void link__attempt(struct leader_call *call);

static void link__maybe_free_link(struct leader_link *l)
{
    if (l->closing && l->calls == NULL)
        free(l);
}

/* Frees CALL and its copies of the request (it is in no list). */
static void link__free_call(struct leader_call *call)
{
    free(call->target);
    for (int i = 0; call->headers[i] != NULL; i++)
        free(call->headers[i]);
    free(call->body);
    free(call);
}

static void link__on_call_closed(uv_handle_t *h)
{
    struct leader_call *call = h->data;
    struct leader_link *l = call->link;

    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        l->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    link__free_call(call);
    link__maybe_free_link(l);
}

/* Runs CB once with RESULT and closes the call. */
static void link__end(struct leader_call *call, struct leader_link_result *result)
{
    call->ended = 1;
    uv_timer_stop(&call->timer);
    call->cb(call->data, result);
    uv_close((uv_handle_t *)&call->timer, link__on_call_closed);
}

static void link__end_with(struct leader_call *call, enum leader_link_outcome outcome,
                           const char *why)
{
    struct leader_link_result r = {.outcome = outcome, .why = why};
    link__end(call, &r);
}

static void link__on_timer(uv_timer_t *t)
{
    link__attempt(t->data);
}

/* A not-applied attempt: again after LEADER_LINK_RETRY_MS, or NOT_APPLIED WHY once the
 * deadline would pass (or the node stops). */
static void link__retry(struct leader_call *call, const char *why)
{
    if (call->link->stopping) {
        link__end_with(call, LEADER_LINK_NOT_APPLIED, "this node is stopping");
        return;
    }
    if (time_mono_ms() + LEADER_LINK_RETRY_MS > call->deadline_ms) {
        link__end_with(call, LEADER_LINK_NOT_APPLIED, why);
        return;
    }
    uv_timer_start(&call->timer, link__on_timer, LEADER_LINK_RETRY_MS, 0);
}

static const char *link__outcome_of(const json_t *answer)
{
    return json_string_value(json_object_get(answer, "outcome"));
}

/* Index and entry headers of a successful answer into R. */
static void link__read_index(const char *headers, struct leader_link_result *r)
{
    char value[32];
    if (r->status >= 300)
        return;
    if (http_client_header(headers, LEADER_LINK_INDEX_HEADER, value, sizeof value))
        r->index = strtoull(value, NULL, 10);
    if (http_client_header(headers, LEADER_LINK_ENTRY_HEADER, value, sizeof value))
        r->entry_id = strtoull(value, NULL, 10);
}

static void link__on_answer(void *data, int err, long status, const char *body, size_t len,
                            const char *headers)
{
    struct leader_call *call = data;
    struct leader_link_result r = {.outcome = LEADER_LINK_DONE, .status = status};
    const char *outcome;

    call->in_flight = 0;
    if (err == HTTP_CLIENT_ENOTSENT || err == VIGIL_ESHUTDOWN) {
        link__retry(call, "no leader with quorum is reachable");
        return;
    }
    if (err != 0) {
        if (call->read_only)
            link__retry(call, "the leader did not answer");
        else
            link__end_with(call, LEADER_LINK_UNKNOWN, "the leader did not answer in time");
        return;
    }
    r.body = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    outcome = status == 503 ? link__outcome_of(r.body) : NULL;
    if (outcome != NULL && strcmp(outcome, "not_applied") == 0) {
        const char *why = json_string_value(json_object_get(r.body, "error"));
        bool disk_full = why != NULL && strncmp(why, "disk full", 9) == 0;
        json_decref(r.body);
        link__retry(call, disk_full ? LEADER_LINK_DISK_FULL : "no leader with quorum");
        return;
    }
    if (outcome != NULL && strcmp(outcome, "unknown") == 0) {
        r.outcome = LEADER_LINK_UNKNOWN;
        r.why = json_string_value(json_object_get(r.body, "error")) ?: "the outcome is unknown";
    }
    if (len > 0 && r.body == NULL)
        r.body = json_pack("{s:s}", "error", "the leader sent an answer that is not JSON");
    link__read_index(headers, &r);
    link__end(call, &r);
    json_decref(r.body);
}

/* Sends CALL to LEADER. Returns NULL, or why it could not be started (nothing was sent). */
static const char *link__send(struct leader_call *call, uint64_t leader)
{
    struct leader_link *l = call->link;
    char addr[128], url[1200], by[64], budget[64];
    const char *headers[LEADER_LINK_MAX_HEADERS + 4];
    size_t n = 0;
    int64_t left = call->deadline_ms - time_mono_ms();

    if (!store_node_api_address(l->store, leader, addr, sizeof addr))
        return "the leader's API address is not known yet";
    snprintf(url, sizeof url, "%s://%s%s", l->scheme, addr, call->target);
    snprintf(by, sizeof by, LEADER_LINK_FORWARDED_HEADER ": %llu", (unsigned long long)l->self_id);
    headers[n++] = by;
    if (left < 1)
        left = 1;
    snprintf(budget, sizeof budget, LEADER_LINK_BUDGET_HEADER ": %lld",
             (long long)(left > LEADER_LINK_RELAY_MS ? left - LEADER_LINK_RELAY_MS : 0));
    headers[n++] = budget;
    if (l->node_header != NULL && l->node_header[0] != '\0')
        headers[n++] = l->node_header;
    for (int i = 0; call->headers[i] != NULL; i++)
        headers[n++] = call->headers[i];
    headers[n] = NULL;
    /* No longer than the deadline: the leader was asked to answer within the budget. */
    if (http_client_request(l->client, call->method, url, headers, call->body, call->len,
                            (unsigned)left, link__on_answer, call) != 0)
        return "cannot reach the leader";
    call->in_flight = 1;
    return NULL;
}

static void link__attempt(struct leader_call *call)
{
    struct leader_link *l = call->link;
    uint64_t leader;
    const char *why;

    if (l->stopping) {
        link__end_with(call, LEADER_LINK_NOT_APPLIED, "this node is stopping");
        return;
    }
    if (cluster_is_leader(l->cluster)) {
        link__end_with(call, LEADER_LINK_SELF, "this node is the leader");
        return;
    }
    leader = cluster_leader(l->cluster, NULL);
    if (leader == 0 || leader == l->self_id) {
        link__retry(call, "no leader with quorum");
        return;
    }
    why = link__send(call, leader);
    if (why != NULL)
        link__retry(call, why);
}

struct leader_link *leader_link_new(uv_loop_t *loop, struct cluster *cluster, struct store *store,
                                    struct http_client *client, uint64_t self_id,
                                    const char *scheme, const char *node_header,
                                    unsigned election_timeout_ms)
{
    struct leader_link *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->loop = loop;
    l->cluster = cluster;
    l->store = store;
    l->client = client;
    l->self_id = self_id;
    l->scheme = scheme;
    l->node_header = node_header;
    l->election_timeout_ms = election_timeout_ms;
    return l;
}

int64_t leader_link_deadline(const struct leader_link *l, const char *budget)
{
    int64_t now = time_mono_ms(), deadline = now + 2 * (int64_t)l->election_timeout_ms - 30;
    char *end;
    long long ms;

    if (budget == NULL || *budget == '\0')
        return deadline;
    errno = 0;
    ms = strtoll(budget, &end, 10);
    if (errno != 0 || *end != '\0' || ms < 0)
        return deadline;
    return now + ms < deadline ? now + ms : deadline;
}

uint64_t leader_link_self(const struct leader_link *l)
{
    return l->self_id;
}

/* Copies RQ into CALL; false when out of memory (CALL then holds what was copied). */
static bool link__copy(struct leader_call *call, const struct leader_link_request *rq)
{
    snprintf(call->method, sizeof call->method, "%s", rq->method);
    call->target = strdup(rq->target);
    if (call->target == NULL)
        return false;
    for (int i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        if ((call->headers[i] = strdup(rq->headers[i])) == NULL)
            return false;
    }
    if (rq->body != NULL && rq->len > 0) {
        call->body = malloc(rq->len);
        if (call->body == NULL)
            return false;
        memcpy(call->body, rq->body, rq->len);
        call->len = rq->len;
    }
    call->read_only = rq->read_only;
    return true;
}

int leader_link_call(struct leader_link *l, const struct leader_link_request *rq,
                     int64_t deadline_ms, leader_link_cb cb, void *data)
{
    struct leader_call *call;
    int n = 0;

    while (rq->headers != NULL && rq->headers[n] != NULL)
        n++;
    if (n > LEADER_LINK_MAX_HEADERS)
        return VIGIL_EINVAL;
    call = calloc(1, sizeof *call);
    if (call == NULL)
        return VIGIL_ENOMEM;
    call->link = l;
    call->cb = cb;
    call->data = data;
    call->deadline_ms = deadline_ms;
    if (!link__copy(call, rq)) {
        link__free_call(call);
        return VIGIL_ENOMEM;
    }
    call->next = l->calls;
    if (l->calls != NULL)
        l->calls->prev = call;
    l->calls = call;
    uv_timer_init(l->loop, &call->timer);
    call->timer.data = call;
    /* The first attempt on the next loop iteration: CB never runs inside this call. */
    uv_timer_start(&call->timer, link__on_timer, 0, 0);
    return 0;
}

void leader_link_stop(struct leader_link *l)
{
    struct leader_call *call, *next;

    l->stopping = 1;
    for (call = l->calls; call != NULL; call = next) {
        next = call->next;
        if (!call->ended && !call->in_flight)
            link__end_with(call, LEADER_LINK_NOT_APPLIED, "this node is stopping");
    }
}

void leader_link_close(struct leader_link *l)
{
    leader_link_stop(l);
    l->closing = 1;
    link__maybe_free_link(l);
}
