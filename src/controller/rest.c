#include "controller/rest.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "controller/api.h"

/* What the gate learned about a request; lives as long as the request. */
struct rest_call {
    struct rest_context *ctx;
    struct http_request *req;
    struct auth_identity id;
};

const struct auth_identity *rest_identity(const struct http_request *req)
{
    struct rest_call *call = http_request_user(req);
    return call != NULL ? &call->id : NULL;
}

/* A health answer waiting for the loop's next idle phase. */
struct rest__health_check {
    uv_idle_t idle;
    struct http_request *req;
    uint64_t node_id;
};

static void rest__health_closed(uv_handle_t *h)
{
    free(h); /* the struct starts with its uv_idle_t */
}

static void rest__health_answer(uv_idle_t *h)
{
    struct rest__health_check *check = (struct rest__health_check *)h;
    http_request_respond(check->req, 200, json_pack("{s:s, s:I}", "status", "ok", "node_id",
                                                    (json_int_t)check->node_id));
    uv_idle_stop(h);
    uv_close((uv_handle_t *)h, rest__health_closed);
}

/* GET /api/healthz answers "ok" from the loop's idle phase, not from inside the HTTP
 * server's run: so an answer shows that the whole loop goes round (timers, raft's I/O,
 * signals), not only that the HTTP server runs. A loop stuck in one phase (issue 18: a
 * timer re-armed with 0 ms from its own callback, which kept running the HTTP server and
 * nothing else) then answers no health check, and the harness's watchdog sees it. */
static void rest__healthz(struct rest_context *ctx, struct http_request *req)
{
    struct rest__health_check *check = malloc(sizeof *check);
    if (check == NULL || uv_idle_init(ctx->loop, &check->idle) != 0) {
        free(check);
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    check->req = req;
    check->node_id = ctx->node_id;
    uv_idle_start(&check->idle, rest__health_answer);
}

/* The endpoints the contract leaves open: health, login, and the web UI's files. */
static int rest__is_open(const char *method, const char *path)
{
    if (strcmp(path, "/api/healthz") == 0)
        return 1;
    if (strcmp(path, "/api/login") == 0 && strcmp(method, "POST") == 0)
        return 1;
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
        (strcmp(path, "/") == 0 || strncmp(path, "/ui/", 4) == 0 || strcmp(path, "/ui") == 0))
        return 1;
    return 0;
}

static void rest__on_authenticated(void *data, unsigned status, const struct auth_identity *id,
                                   const char *message)
{
    struct rest_call *call = data;
    struct http_request *req = call->req;
    char why[256];

    if (status != 0) {
        if (status == 401)
            http_request_add_header(req, "WWW-Authenticate", "Basic realm=\"vigil\"");
        http_request_respond_error(req, status, "%s", message != NULL ? message : "refused");
        return;
    }
    call->id = *id;
    status = auth_authorize(id, http_request_method(req), http_request_path(req), why, sizeof why);
    if (status == 0)
        status = auth_csrf_check(call->ctx->auth, req, id, why, sizeof why);
    if (status != 0) {
        http_request_respond_error(req, status, "%s", why);
        return;
    }
    if (id->via == AUTH_VIA_SESSION) {
        /* Sliding idle timeout: the cookie carries the last activity. */
        char cookie[700];
        auth_session_cookie(call->ctx->auth, id, http_request_is_tls(req), cookie, sizeof cookie);
        http_request_add_header(req, "Set-Cookie", cookie);
    }
    rest_route(call->ctx, req);
}

/* The one function every request passes before its handler: refuses while stopping,
 * lets the contract's open endpoints through, and authenticates, authorises (role by
 * method and path) and CSRF-checks everything else. */
static void rest_gate(struct rest_context *ctx, struct http_request *req)
{
    struct rest_call *call;

    if (ctx->stopping) {
        /* Nothing of it reached the log: a forwarding node may retry elsewhere. */
        http_request_respond(req, 503, json_pack("{s:s, s:s}", "error", "this node is stopping",
                                                 "outcome", "not_applied"));
        return;
    }
    if (rest__is_open(http_request_method(req), http_request_path(req))) {
        rest_route(ctx, req);
        return;
    }
    call = http_request_user(req);
    if (call == NULL) {
        call = calloc(1, sizeof *call);
        if (call == NULL) {
            http_request_respond_error(req, 500, "out of memory");
            return;
        }
        call->ctx = ctx;
        call->req = req;
        http_request_set_user(req, call, free);
    }
    auth_authenticate(ctx->auth, req, rest__on_authenticated, call);
}

void rest_handle(struct http_request *req, void *data)
{
    rest_gate(data, req);
}

void rest_route(struct rest_context *ctx, struct http_request *req)
{
    const char *path = http_request_path(req);
    const char *method = http_request_method(req);
    char type_name[32];
    const char *rest;
    int type;

    if (strcmp(path, "/api/healthz") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            http_request_respond_error(req, 405, "%s is not allowed on %s", method, path);
            return;
        }
        rest__healthz(ctx, req);
        return;
    }
    if (strcmp(path, "/") == 0) {
        http_request_add_header(req, "Location", "/ui/");
        http_request_respond(req, 302, NULL);
        return;
    }
    if (strncmp(path, "/api/", 5) != 0) {
        http_request_respond_error(req, 404, "no such resource: %s", path);
        return;
    }
    path += 5;
    if (strcmp(path, "login") == 0 || strcmp(path, "logout") == 0 || strcmp(path, "session") == 0 ||
        strncmp(path, "user", 4) == 0 || strncmp(path, "token", 5) == 0) {
        if (api_auth_handle(ctx, req, path))
            return;
    }
    if (strcmp(path, "cluster") == 0 || strcmp(path, "cluster/") == 0) {
        api_cluster_handle(ctx, req, "");
        return;
    }
    if (strcmp(path, "event") == 0 || strcmp(path, "event/") == 0) {
        api_events_handle(ctx, req);
        return;
    }
    if (strncmp(path, "internal/", 9) == 0) {
        api_internal_handle(ctx, req, path + 9);
        return;
    }
    if (strncmp(path, "cluster/", 8) == 0) {
        api_cluster_handle(ctx, req, path + 8);
        return;
    }
    rest = strchr(path, '/');
    if (rest == NULL)
        rest = path + strlen(path);
    if ((size_t)(rest - path) >= sizeof type_name) {
        http_request_respond_error(req, 404, "no such resource: %s", http_request_path(req));
        return;
    }
    memcpy(type_name, path, (size_t)(rest - path));
    type_name[rest - path] = '\0';
    type = obj_type_from_name(type_name);
    if (type < 0) {
        http_request_respond_error(req, 404, "no such resource: %s", http_request_path(req));
        return;
    }
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        api_objects_handle(ctx, req, (enum obj_type)type, NULL);
        return;
    }
    rest++;
    if (strchr(rest, '/') != NULL) {
        http_request_respond_error(req, 404, "no such resource: %s", http_request_path(req));
        return;
    }
    api_objects_handle(ctx, req, (enum obj_type)type, rest);
}
