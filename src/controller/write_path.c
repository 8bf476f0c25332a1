#include "controller/write_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/api.h"

#define WRITE_PATH__RETRY_MS 20
/* How long a relayed answer waits for this node to apply the write (then it goes anyway). */
#define WRITE_PATH__CATCH_UP_MS 1000
#define WRITE_PATH__DISK_FULL "disk full on the leader: its data dir is under the free-space " \
                              "reserve; free space there (writes resume by themselves)"

struct write_op {
    struct rest_context *ctx;
    struct http_request *req;
    json_t *cmd;            /* NULL: forward-only (a read) */
    void (*local)(struct rest_context *ctx, struct http_request *req); /* for reads */
    json_t *answer;         /* answer to a successful commit instead of the store's */
    int send_command;       /* a follower sends CMD to the leader, not the request */
    int64_t deadline_ms;    /* monotonic: give up retrying not-applied attempts */
    uv_timer_t timer;
    int answered;
    int raft_pending;       /* a proposal whose callback has not run */
    int forward_pending;    /* a forwarded request whose answer has not come */
    /* A relayed answer waiting until this node applied its index. */
    uint64_t relay_index;
    uint64_t relay_entry_id;  /* 0: the leader sent none (an older version) */
    int64_t relay_deadline_ms;
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
    if (op->answered && !op->raft_pending && !op->forward_pending &&
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

static void write__on_relay_timer(uv_timer_t *t)
{
    struct write_op *op = t->data;
    bool applied = cluster_applied_index(op->ctx->cluster) >= op->relay_index;
    if (applied || time_mono_ms() >= op->relay_deadline_ms || op->ctx->stopping) {
        json_t *body = op->relay_body;
        uint64_t id = 0;
        op->relay_body = NULL;
        if (applied && op->relay_entry_id != 0 &&
            (cluster_applied_entry_id(op->ctx->cluster, op->relay_index, &id) != 0 ||
             id != op->relay_entry_id)) {
            /* The entry here at that index is not (or cannot be shown to be) this write. */
            json_decref(body);
            write__unknown(op, "the leader's answer names an entry this node applied as "
                               "another write (or cannot check)");
        } else {
            write__answer(op, op->relay_status, body);
        }
        write__maybe_free(op);
        return;
    }
    uv_timer_start(&op->timer, write__on_relay_timer, 2, 0);
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

static void write__retry(struct write_op *op, const char *why)
{
    if (time_mono_ms() + WRITE_PATH__RETRY_MS > op->deadline_ms) {
        write__not_applied(op, why);
        write__maybe_free(op);
        return;
    }
    uv_timer_start(&op->timer, write__on_timer, WRITE_PATH__RETRY_MS, 0);
}

static void write__on_committed(void *data, int status, struct store_result *res)
{
    struct write_op *op = data;
    char index[32];

    op->raft_pending = 0;
    if ((status == VIGIL_ENOTLEADER || status == VIGIL_ENOQUORUM) && !op->answered) {
        /* Lost leadership between the proposal and the end of the loop iteration, when
         * queued proposals go to raft: never in the log. */
        write__retry(op, "no leader with quorum");
        return;
    } else if (status == VIGIL_ENOSPC && !op->answered) {
        write__retry(op, WRITE_PATH__DISK_FULL);
        return;
    } else if (status == VIGIL_ESHUTDOWN) {
        write__not_applied(op, "this node is stopping");
    } else if (status != 0) {
        write__unknown(op, "leadership was lost before the write was committed");
    } else if (store_outcome_refused(res->outcome)) {
        write__answer(op, api_status_of(res->outcome), json_pack("{s:s}", "error", res->error));
    } else {
        snprintf(index, sizeof index, "%llu",
                 (unsigned long long)(res->index - (op->ctx->opts->test_wrong_answer_index &&
                                                    res->index > 1)));
        http_request_add_header(op->req, WRITE_PATH_INDEX_HEADER, index);
        snprintf(index, sizeof index, "%llu", (unsigned long long)res->entry_id);
        http_request_add_header(op->req, WRITE_PATH_ENTRY_HEADER, index);
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

static void write__on_forwarded(void *data, int err, long status, const char *body, size_t len,
                              const char *headers)
{
    struct write_op *op = data;
    json_t *answer;

    op->forward_pending = 0;
    if (op->answered) {
        write__maybe_free(op);
        return;
    }
    if (err == HTTP_CLIENT_ENOTSENT || err == VIGIL_ESHUTDOWN) {
        write__retry(op, "no leader with quorum is reachable");
        return;
    }
    if (err != 0) {
        if (op->cmd == NULL)
            write__retry(op, "the leader did not answer");
        else
            write__unknown(op, "the leader did not answer in time");
        write__maybe_free(op);
        return;
    }
    answer = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    if (status == 503 && answer != NULL &&
        json_object_get(answer, "outcome") != NULL &&
        strcmp(json_string_value(json_object_get(answer, "outcome")) ?: "", "not_applied") == 0) {
        const char *why = json_string_value(json_object_get(answer, "error"));
        bool disk_full = why != NULL && strncmp(why, "disk full", 9) == 0;
        json_decref(answer);
        write__retry(op, disk_full ? WRITE_PATH__DISK_FULL : "no leader with quorum");
        return;
    }
    if (len > 0 && answer == NULL)
        answer = json_pack("{s:s}", "error", "the leader sent an answer that is not JSON");
    {
        char index[32];
        if (status < 300 && http_client_header(headers, WRITE_PATH_INDEX_HEADER, index, sizeof index)) {
            op->relay_index = strtoull(index, NULL, 10);
            op->relay_entry_id = 0;
            if (http_client_header(headers, WRITE_PATH_ENTRY_HEADER, index, sizeof index))
                op->relay_entry_id = strtoull(index, NULL, 10);
            op->relay_status = (unsigned)status;
            op->relay_body = answer;
            op->relay_deadline_ms = time_mono_ms() + WRITE_PATH__CATCH_UP_MS;
            http_request_add_header(op->req, WRITE_PATH_INDEX_HEADER, index);
            write__on_relay_timer(&op->timer);
            return;
        }
    }
    write__answer(op, (unsigned)status, answer);
    write__maybe_free(op);
}

static void write__forward(struct write_op *op, uint64_t leader)
{
    struct rest_context *ctx = op->ctx;
    char addr[128], url[1024], by[64], query[256] = "";
    const char *keys[] = {"consistent", "page", "page_size", NULL};
    const char *content_type = http_request_header(op->req, "Content-Type");
    char ct[200];
    const char *headers[6];
    char behalf[200];
    const struct auth_identity *id = rest_identity(op->req);
    size_t body_len, n = 0;
    const char *body = http_request_body(op->req, &body_len);
    int64_t left = op->deadline_ms - time_mono_ms();

    if (!store_node_api_address(ctx->store, leader, addr, sizeof addr)) {
        write__retry(op, "the leader's API address is not known yet");
        return;
    }
    for (int i = 0; keys[i] != NULL; i++) {
        const char *v = http_request_query(op->req, keys[i]);
        size_t used = strlen(query);
        if (v != NULL && strlen(v) < 32)
            snprintf(query + used, sizeof query - used, "%c%s=%s", used ? '&' : '?', keys[i], v);
    }
    if (op->send_command)
        snprintf(url, sizeof url, "%s://%s/api/internal/command", ctx->scheme, addr);
    else
        snprintf(url, sizeof url, "%s://%s%s%s", ctx->scheme, addr, http_request_path(op->req),
                 query);
    snprintf(by, sizeof by, WRITE_PATH_FORWARDED_HEADER ": %llu", (unsigned long long)ctx->node_id);
    headers[n++] = by;
    if (ctx->node_header[0] != '\0')
        headers[n++] = ctx->node_header;
    if (id != NULL && !op->send_command) {
        /* The leader trusts this node's authentication of the client. */
        snprintf(behalf, sizeof behalf, AUTH_ON_BEHALF_HEADER ": %s:%s", id->user, id->role);
        headers[n++] = behalf;
    }
    if (op->send_command) {
        char *text = json_dumps(op->cmd, JSON_COMPACT);
        int rv;
        if (text == NULL) {
            write__retry(op, "out of memory");
            return;
        }
        headers[n++] = "Content-Type: application/json";
        headers[n] = NULL;
        rv = http_client_request(ctx->client, "POST", url, headers, text, strlen(text),
                                 (unsigned)(left < 200 ? 200 : left) + 1000, write__on_forwarded, op);
        free(text);
        if (rv != 0) {
            write__retry(op, "cannot reach the leader");
            return;
        }
        op->forward_pending = 1;
        return;
    }
    if (content_type != NULL && strlen(content_type) < 150) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        headers[n++] = ct;
    }
    headers[n] = NULL;
    if (left < 200)
        left = 200;
    if (http_client_request(ctx->client, http_request_method(op->req), url, headers,
                            body_len > 0 ? body : NULL, body_len, (unsigned)left + 1000,
                            write__on_forwarded, op) != 0) {
        write__retry(op, "cannot reach the leader");
        return;
    }
    op->forward_pending = 1;
}

static void write__attempt(struct write_op *op)
{
    struct rest_context *ctx = op->ctx;
    uint64_t leader = cluster_leader(ctx->cluster, NULL);

    if (ctx->stopping) {
        write__not_applied(op, "this node is stopping");
        write__maybe_free(op);
        return;
    }
    if (op->cmd == NULL && cluster_is_leader(ctx->cluster)) {
        op->answered = 1;
        op->local(ctx, op->req);
        write__maybe_free(op);
        return;
    }
    if (op->cmd != NULL && cluster_is_leader(ctx->cluster)) {
        int rv;
        /* A leader that has not heard from a majority within an election timeout
         * refuses before the log (the write could not commit). */
        if (!cluster_leader_has_quorum(ctx->cluster)) {
            write__retry(op, "the leader has not heard from a majority");
            return;
        }
        rv = cluster_propose(ctx->cluster, op->cmd, write__on_committed, op);
        if (rv == 0) {
            int64_t left = op->deadline_ms - time_mono_ms();
            op->raft_pending = 1;
            if (left < (int64_t)ctx->opts->election_timeout_ms)
                left = ctx->opts->election_timeout_ms;
            uv_timer_start(&op->timer, write__on_timer, (uint64_t)left, 0);
            return;
        }
        if (rv == VIGIL_ENOTLEADER || rv == VIGIL_ENOQUORUM) {
            write__retry(op, "no leader with quorum");
            return;
        }
        if (rv == VIGIL_ENOSPC) {
            write__retry(op, WRITE_PATH__DISK_FULL);
            return;
        }
        write__answer(op, 500, json_pack("{s:s}", "error", vigil_strerror(rv)));
        write__maybe_free(op);
        return;
    }
    if (leader != 0 && leader != ctx->node_id &&
        http_request_header(op->req, WRITE_PATH_FORWARDED_HEADER) == NULL) {
        write__forward(op, leader);
        return;
    }
    if (http_request_header(op->req, WRITE_PATH_FORWARDED_HEADER) != NULL) {
        /* Forwarded to us, but we do not lead (any more): the origin retries. */
        write__not_applied(op, "this node is not the leader");
        write__maybe_free(op);
        return;
    }
    write__retry(op, "no leader with quorum");
}

static void write__start(struct rest_context *ctx, struct http_request *req, json_t *cmd,
                         void (*local)(struct rest_context *ctx, struct http_request *req),
                         json_t *answer, int send_command)
{
    struct write_op *op = calloc(1, sizeof *op);
    if (op == NULL) {
        json_decref(cmd);
        json_decref(answer);
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    op->ctx = ctx;
    op->req = req;
    op->cmd = cmd;
    op->local = local;
    op->answer = answer;
    op->send_command = send_command;
    /* Answer within 2 election timeouts, with a little room for the answer itself. */
    op->deadline_ms = time_mono_ms() + 2 * (int64_t)ctx->opts->election_timeout_ms - 30;
    uv_timer_init(ctx->loop, &op->timer);
    op->timer.data = op;
    write__attempt(op);
}

void write_path_submit(struct rest_context *ctx, struct http_request *req, json_t *cmd)
{
    write__start(ctx, req, cmd, NULL, NULL, 0);
}

void write_path_submit_command(struct rest_context *ctx, struct http_request *req, json_t *cmd)
{
    write__start(ctx, req, cmd, NULL, NULL, 1);
}

void write_path_submit_with_answer(struct rest_context *ctx, struct http_request *req,
                                   json_t *cmd, json_t *answer)
{
    write__start(ctx, req, cmd, NULL, answer, 0);
}

void write_path_forward(struct rest_context *ctx, struct http_request *req,
                        void (*local)(struct rest_context *ctx, struct http_request *req))
{
    write__start(ctx, req, NULL, local, NULL, 0);
}
