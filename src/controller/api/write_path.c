#include "controller/api/write_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/api/api_outcome.h"
#include "controller/auth/auth.h"

/* How long a relayed answer waits for this node to apply the write (then it goes anyway). */
#define WRITE_PATH__CATCH_UP_MS 1000

struct write_path {
    uv_loop_t *loop;
    struct cluster *cluster;
    struct leader_link *link;
    unsigned election_timeout_ms;
    int wrong_answer_index; /* test knob */
    write_path_identity_fn identity;
    int stopping;
};

struct write_op {
    struct write_path *wp;
    struct http_request *req;
    json_t *cmd;            /* NULL: forward-only (a read) */
    void (*local)(void *data, struct http_request *req); /* for reads */
    void *local_data;
    json_t *answer;         /* answer to a successful commit instead of the store's */
    int send_command;       /* a follower sends CMD to the leader, not the request */
    int64_t deadline_ms;    /* monotonic: give up retrying not-applied attempts */
    uv_timer_t timer;
    int answered;
    int raft_pending;       /* a proposal whose callback has not run */
    int forward_pending;    /* a leader link call whose callback has not run */
    int relay_waiting;      /* a cluster_wait_applied that has not run */
    /* A relayed answer waiting until this node applied its index. */
    uint64_t relay_index;
    uint64_t relay_entry_id;  /* 0: the leader sent none (an older version) */
    unsigned relay_status;
    json_t *relay_body;
};

static void write__attempt(struct write_op *op);

static void write__on_closed(uv_handle_t *h)
{
    struct write_op *op = h->data;
    json_decref(op->cmd);
    json_decref(op->answer);
    json_decref(op->relay_body);
    free(op);
}

static void write__maybe_free(struct write_op *op)
{
    if (op->answered && !op->raft_pending && !op->forward_pending && !op->relay_waiting &&
        !uv_is_closing((uv_handle_t *)&op->timer))
        uv_close((uv_handle_t *)&op->timer, write__on_closed);
}

static void write__answer(struct write_op *op, unsigned status, json_t *body)
{
    if (op->answered) {
        json_decref(body);
        return;
    }
    op->answered = 1;
    uv_timer_stop(&op->timer);
    http_request_respond(op->req, status, body);
}

static void write__not_applied(struct write_op *op, const char *why)
{
    write__answer(op, 503, json_pack("{s:s, s:s}", "error", why, "outcome", "not_applied"));
}

static void write__unknown(struct write_op *op, const char *why)
{
    write__answer(op, 503, json_pack("{s:s, s:s}", "error", why, "outcome", "unknown"));
}

/* Answers with the relayed answer; APPLIED: this node has applied its index. */
static void write__relay(struct write_op *op, bool applied)
{
    json_t *body = op->relay_body;
    uint64_t id = 0;

    op->relay_body = NULL;
    if (applied && op->relay_entry_id != 0 &&
        (cluster_applied_entry_id(op->wp->cluster, op->relay_index, &id) != 0 ||
         id != op->relay_entry_id)) {
        /* The entry here at that index is not (or cannot be shown to be) this write. */
        json_decref(body);
        write__unknown(op, "the leader's answer names an entry this node applied as "
                           "another write (or cannot check)");
    } else {
        write__answer(op, op->relay_status, body);
    }
    write__maybe_free(op);
}

static void write__on_relay_applied(void *data, int status)
{
    struct write_op *op = data;
    op->relay_waiting = 0;
    write__relay(op, status == 0);
}

/* The catch-up time is over: the answer goes anyway. */
static void write__on_relay_timer(uv_timer_t *t)
{
    struct write_op *op = t->data;
    cluster_wait_cancel(op->wp->cluster, write__on_relay_applied, op);
    op->relay_waiting = 0;
    write__relay(op, cluster_applied_index(op->wp->cluster) >= op->relay_index);
}

/* Relays the leader's successful answer R once this node has applied its index (or after
 * WRITE_PATH__CATCH_UP_MS). */
static void write__relay_when_applied(struct write_op *op, const struct leader_link_result *r)
{
    char index[32];

    op->relay_index = r->index;
    op->relay_entry_id = r->entry_id;
    op->relay_status = (unsigned)r->status;
    op->relay_body = r->body;
    snprintf(index, sizeof index, "%llu", (unsigned long long)r->index);
    http_request_add_header(op->req, LEADER_LINK_INDEX_HEADER, index);
    uv_timer_start(&op->timer, write__on_relay_timer, WRITE_PATH__CATCH_UP_MS, 0);
    op->relay_waiting = 1;
    if (cluster_wait_applied(op->wp->cluster, op->relay_index, write__on_relay_applied, op) != 0)
        write__on_relay_timer(&op->timer);
}

static void write__on_timer(uv_timer_t *t)
{
    struct write_op *op = t->data;
    if (op->raft_pending) {
        /* Deadline passed with the entry in the log: nobody can say yet. */
        write__unknown(op, "no quorum: the write is in the log but not committed");
        write__maybe_free(op);
        return;
    }
    write__attempt(op);
}

/* A refusal on this node (the leader): tried again until the deadline. */
static void write__retry(struct write_op *op, const char *why)
{
    if (time_mono_ms() + LEADER_LINK_RETRY_MS > op->deadline_ms) {
        write__not_applied(op, why);
        write__maybe_free(op);
        return;
    }
    uv_timer_start(&op->timer, write__on_timer, LEADER_LINK_RETRY_MS, 0);
}

static void write__on_committed(void *data, int status, struct store_result *res)
{
    struct write_op *op = data;
    char index[32];

    op->raft_pending = 0;
    if (op->answered) {
        /* Answered "unknown" at the deadline: the request is answered and may be gone (MHD
         * frees it with its connection); the outcome stays the store's. */
        write__maybe_free(op);
        return;
    }
    if (status == VIGIL_ENOTLEADER || status == VIGIL_ENOQUORUM) {
        /* Lost leadership between the proposal and the end of the loop iteration, when
         * queued proposals go to raft: never in the log. */
        write__retry(op, "no leader with quorum");
        return;
    } else if (status == VIGIL_ENOSPC) {
        write__retry(op, LEADER_LINK_DISK_FULL);
        return;
    } else if (status == VIGIL_ESHUTDOWN) {
        write__not_applied(op, "this node is stopping");
    } else if (status != 0) {
        write__unknown(op, "leadership was lost before the write was committed");
    } else if (store_outcome_refused(res->outcome)) {
        write__answer(op, api_status_of(res->outcome), json_pack("{s:s}", "error", res->error));
    } else {
        snprintf(index, sizeof index, "%llu",
                 (unsigned long long)(res->index - (op->wp->wrong_answer_index &&
                                                    res->index > 1)));
        http_request_add_header(op->req, LEADER_LINK_INDEX_HEADER, index);
        snprintf(index, sizeof index, "%llu", (unsigned long long)res->entry_id);
        http_request_add_header(op->req, LEADER_LINK_ENTRY_HEADER, index);
        if (op->answer != NULL) {
            write__answer(op, api_status_of(res->outcome), op->answer);
            op->answer = NULL;
        } else {
            write__answer(op, api_status_of(res->outcome),
                          res->outcome == STORE_REMOVED ? NULL : res->body);
            if (res->outcome != STORE_REMOVED)
                res->body = NULL; /* now the answer's */
        }
    }
    write__maybe_free(op);
}

static void write__on_leader_answer(void *data, struct leader_link_result *r)
{
    struct write_op *op = data;

    op->forward_pending = 0;
    if (op->answered) {
        write__maybe_free(op);
        return;
    }
    switch (r->outcome) {
    case LEADER_LINK_SELF:
        write__attempt(op); /* this node leads now */
        return;
    case LEADER_LINK_NOT_APPLIED:
        write__not_applied(op, r->why);
        break;
    case LEADER_LINK_UNKNOWN:
        write__unknown(op, r->why);
        break;
    case LEADER_LINK_DONE:
        if (r->index != 0) {
            write__relay_when_applied(op, r);
            r->body = NULL; /* now the relay's */
            return;
        }
        write__answer(op, (unsigned)r->status, json_incref(r->body));
        break;
    }
    write__maybe_free(op);
}

/* "?k=v&..." of the query parameters a forwarded request keeps, into QUERY. */
static void write__kept_query(struct http_request *req, char *query, size_t len)
{
    static const char *const keys[] = {"consistent", "page", "page_size", NULL};
    query[0] = '\0';
    for (int i = 0; keys[i] != NULL; i++) {
        const char *v = http_request_query(req, keys[i]);
        size_t used = strlen(query);
        if (v != NULL && strlen(v) < 32)
            snprintf(query + used, len - used, "%c%s=%s", used ? '&' : '?', keys[i], v);
    }
}

/* Sends the write (or read) to the leader over the leader link. */
static void write__forward(struct write_op *op)
{
    struct write_path *wp = op->wp;
    char target[1024], query[256], ct[200], behalf[200];
    const char *headers[3];
    const struct auth_identity *id = wp->identity(op->req);
    const char *content_type = http_request_header(op->req, "Content-Type");
    struct leader_link_request rq = {.method = http_request_method(op->req), .target = target,
                                     .headers = headers, .read_only = op->cmd == NULL};
    char *text = NULL;
    size_t n = 0;

    if (op->send_command) {
        text = json_dumps(op->cmd, JSON_COMPACT);
        if (text == NULL) {
            write__retry(op, "out of memory");
            return;
        }
        rq.method = "POST";
        snprintf(target, sizeof target, "/api/internal/command");
        headers[n++] = "Content-Type: application/json";
        rq.body = text;
        rq.len = strlen(text);
    } else {
        write__kept_query(op->req, query, sizeof query);
        snprintf(target, sizeof target, "%s%s", http_request_path(op->req), query);
        if (id != NULL) {
            /* The leader trusts this node's authentication of the client. */
            snprintf(behalf, sizeof behalf, AUTH_ON_BEHALF_HEADER ": %s:%s", id->user, id->role);
            headers[n++] = behalf;
        }
        if (content_type != NULL && strlen(content_type) < 150) {
            snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
            headers[n++] = ct;
        }
        rq.body = http_request_body(op->req, &rq.len);
        if (rq.len == 0)
            rq.body = NULL;
    }
    headers[n] = NULL;
    if (leader_link_call(wp->link, &rq, op->deadline_ms, write__on_leader_answer, op) != 0)
        write__retry(op, "out of memory");
    else
        op->forward_pending = 1;
    free(text);
}

static void write__attempt(struct write_op *op)
{
    struct write_path *wp = op->wp;

    if (wp->stopping) {
        write__not_applied(op, "this node is stopping");
        write__maybe_free(op);
        return;
    }
    if (op->cmd == NULL && cluster_is_leader(wp->cluster)) {
        op->answered = 1;
        op->local(op->local_data, op->req);
        write__maybe_free(op);
        return;
    }
    if (op->cmd != NULL && cluster_is_leader(wp->cluster)) {
        int rv;
        /* A leader that has not heard from a majority within an election timeout
         * refuses before the log (the write could not commit). */
        if (!cluster_leader_has_quorum(wp->cluster)) {
            write__retry(op, "the leader has not heard from a majority");
            return;
        }
        rv = cluster_propose(wp->cluster, op->cmd, write__on_committed, op);
        if (rv == 0) {
            /* In the log now: not committed by the deadline, it is answered unknown then. */
            int64_t left = op->deadline_ms - time_mono_ms();
            op->raft_pending = 1;
            uv_timer_start(&op->timer, write__on_timer, left > 1 ? (uint64_t)left : 1, 0);
            return;
        }
        if (rv == VIGIL_ENOTLEADER || rv == VIGIL_ENOQUORUM) {
            write__retry(op, "no leader with quorum");
            return;
        }
        if (rv == VIGIL_ENOSPC) {
            write__retry(op, LEADER_LINK_DISK_FULL);
            return;
        }
        write__answer(op, 500, json_pack("{s:s}", "error", vigil_strerror(rv)));
        write__maybe_free(op);
        return;
    }
    if (http_request_header(op->req, LEADER_LINK_FORWARDED_HEADER) != NULL) {
        /* Forwarded to us, but we do not lead (any more): the origin retries. */
        write__not_applied(op, "this node is not the leader");
        write__maybe_free(op);
        return;
    }
    write__forward(op);
}

static void write__start(struct write_path *wp, struct http_request *req, json_t *cmd,
                         void (*local)(void *data, struct http_request *req), void *local_data,
                         json_t *answer, int send_command)
{
    struct write_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        json_decref(cmd);
        json_decref(answer);
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    op->wp = wp;
    op->req = req;
    op->cmd = cmd;
    op->local = local;
    op->local_data = local_data;
    op->answer = answer;
    op->send_command = send_command;
    op->deadline_ms =
        leader_link_deadline(wp->link, http_request_header(req, LEADER_LINK_BUDGET_HEADER));
    uv_timer_init(wp->loop, &op->timer);
    op->timer.data = op;
    write__attempt(op);
}

struct write_path *write_path_new(uv_loop_t *loop, struct cluster *cluster,
                                  struct leader_link *link, unsigned election_timeout_ms,
                                  write_path_identity_fn identity)
{
    struct write_path *wp = calloc(1, sizeof *wp);
    if (wp == NULL)
        return NULL;
    wp->loop = loop;
    wp->cluster = cluster;
    wp->link = link;
    wp->election_timeout_ms = election_timeout_ms;
    wp->identity = identity;
    return wp;
}

void write_path_set_wrong_answer_index(struct write_path *wp, int on)
{
    wp->wrong_answer_index = on;
}

void write_path_stop(struct write_path *wp)
{
    wp->stopping = 1;
}

void write_path_free(struct write_path *wp)
{
    free(wp);
}

void write_path_submit(struct write_path *wp, struct http_request *req, json_t *cmd)
{
    write__start(wp, req, cmd, NULL, NULL, NULL, 0);
}

void write_path_submit_command(struct write_path *wp, struct http_request *req, json_t *cmd)
{
    write__start(wp, req, cmd, NULL, NULL, NULL, 1);
}

void write_path_submit_with_answer(struct write_path *wp, struct http_request *req,
                                   json_t *cmd, json_t *answer)
{
    write__start(wp, req, cmd, NULL, NULL, answer, 0);
}

void write_path_forward(struct write_path *wp, struct http_request *req,
                        void (*local)(void *data, struct http_request *req), void *data)
{
    write__start(wp, req, NULL, local, data, NULL, 0);
}
