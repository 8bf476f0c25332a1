/* rest.c: the gate every request passes and the route table (rest.h). */
#include "controller/api/rest.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "controller/metrics/metrics.h"

struct rest__route {
    const char *name;
    size_t name_len;
    enum rest_match match;
    rest_handler_fn handler;
    void *area;
};

struct rest {
    uv_loop_t *loop;
    struct auth *auth;  /* borrowed */
    uint64_t node_id;
    int stopping;
    unsigned n_routes;
    struct rest__route routes[REST_ROUTES_MAX];
};

/* What the gate learned about a request; lives as long as the request. */
struct rest_call {
    struct rest *rest;
    struct http_request *req;
    struct auth_identity id;
};

struct rest *rest_new(uv_loop_t *loop, struct auth *auth, uint64_t node_id)
{
    struct rest *rest = calloc(1, sizeof *rest);
    if (rest == NULL)
        return NULL;
    rest->loop = loop;
    rest->auth = auth;
    rest->node_id = node_id;
    return rest;
}

int rest_add_route(struct rest *rest, const char *name, enum rest_match match,
                   rest_handler_fn handler, void *area)
{
    struct rest__route *r;
    if (rest->n_routes == REST_ROUTES_MAX)
        return VIGIL_ETOOBIG;
    r = &rest->routes[rest->n_routes++];
    r->name = name;
    r->name_len = strlen(name);
    r->match = match;
    r->handler = handler;
    r->area = area;
    return 0;
}

void rest_set_stopping(struct rest *rest)
{
    rest->stopping = 1;
}

void rest_free(struct rest *rest)
{
    free(rest);
}

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
static void rest__healthz(struct rest *rest, struct http_request *req)
{
    struct rest__health_check *check = malloc(sizeof *check);
    if (check == NULL || uv_idle_init(rest->loop, &check->idle) != 0) {
        free(check);
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    check->req = req;
    check->node_id = rest->node_id;
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

static void rest__route(struct rest *rest, struct http_request *req);

static void rest__on_authenticated(void *data, unsigned status, const struct auth_identity *id,
                                   const char *message)
{
    struct rest_call *call = data;
    struct http_request *req = call->req;
    char why[256];

    if (status == 503) {
        /* Not authenticated yet (a starting node without the cluster's credentials or
         * users): refused before anything reached the log, as the contract's outcome says. */
        http_request_respond(req, 503, json_pack("{s:s, s:s}", "error",
                                                 message != NULL ? message : "not ready",
                                                 "outcome", "not_applied"));
        return;
    }
    if (status != 0) {
        if (status == 401 || status == 429)
            metrics_count_auth_failure(METRICS_AUTH_UNAUTHENTICATED);
        else if (status == 403)
            metrics_count_auth_failure(METRICS_AUTH_FORBIDDEN);
        /* Not to the web UI's own calls (X-Requested-With): a browser would put up its own
         * password dialog over the UI's login page. */
        if (status == 401 && http_request_header(req, "X-Requested-With") == NULL)
            http_request_add_header(req, "WWW-Authenticate", "Basic realm=\"vigil\"");
        http_request_respond_error(req, status, "%s", message != NULL ? message : "refused");
        return;
    }
    call->id = *id;
    status = auth_authorize(id, http_request_method(req), http_request_path(req), why, sizeof why);
    if (status != 0) {
        metrics_count_auth_failure(METRICS_AUTH_FORBIDDEN);
    } else {
        status = auth_csrf_check(call->rest->auth, req, id, why, sizeof why);
        if (status != 0)
            metrics_count_auth_failure(METRICS_AUTH_CSRF);
    }
    if (status != 0) {
        http_request_respond_error(req, status, "%s", why);
        return;
    }
    if (id->via == AUTH_VIA_SESSION) {
        /* Sliding idle timeout: the cookie carries the last activity. */
        char cookie[700];
        auth_session_cookie(call->rest->auth, id, http_request_is_tls(req), cookie, sizeof cookie);
        http_request_add_header(req, "Set-Cookie", cookie);
    }
    rest__route(call->rest, req);
}

/* The one function every request passes before its handler: refuses while stopping,
 * lets the contract's open endpoints through, and authenticates, authorises (role by
 * method and path) and CSRF-checks everything else. */
static void rest__gate(struct rest *rest, struct http_request *req)
{
    struct rest_call *call;

    if (rest->stopping) {
        /* Nothing of it reached the log: a forwarding node may retry elsewhere. */
        http_request_respond(req, 503, json_pack("{s:s, s:s}", "error", "this node is stopping",
                                                 "outcome", "not_applied"));
        return;
    }
    if (rest__is_open(http_request_method(req), http_request_path(req))) {
        rest__route(rest, req);
        return;
    }
    call = http_request_user(req);
    if (call == NULL) {
        call = calloc(1, sizeof *call);
        if (call == NULL) {
            http_request_respond_error(req, 500, "out of memory");
            return;
        }
        call->rest = rest;
        call->req = req;
        http_request_set_user(req, call, free);
    }
    auth_authenticate(rest->auth, req, rest__on_authenticated, call);
}

void rest_handle(struct http_request *req, void *data)
{
    rest__gate(data, req);
}

/* The part of REST (the path after /api/) ROUTE matches, as the handler's SUB; NULL when
 * it does not match. */
static const char *rest__match(const struct rest__route *route, const char *rest)
{
    switch (route->match) {
    case REST_MATCH_EXACT:
        if (strncmp(rest, route->name, route->name_len) != 0)
            return NULL;
        rest += route->name_len;
        return strcmp(rest, "") == 0 || strcmp(rest, "/") == 0 ? "" : NULL;
    case REST_MATCH_UNDER:
        if (strncmp(rest, route->name, route->name_len) != 0 || rest[route->name_len] != '/')
            return NULL;
        return rest + route->name_len + 1;
    case REST_MATCH_ANY:
        return rest;
    case REST_MATCH_ROOT:
    case REST_MATCH_ROOT_PREFIX:
        return NULL; /* only rest__route_root's */
    }
    return NULL;
}

/* Routes REQ (through the gate) to the first route that matches and takes it. */
/* A route of a path outside /api/ (REST_MATCH_ROOT, _ROOT_PREFIX). Returns 1 when one
 * answered. */
static int rest__route_root(struct rest *rest, struct http_request *req, const char *path)
{
    for (unsigned i = 0; i < rest->n_routes; i++) {
        const struct rest__route *r = &rest->routes[i];
        if (r->match == REST_MATCH_ROOT && strcmp(r->name, path) == 0 &&
            r->handler(r->area, req, ""))
            return 1;
        if (r->match == REST_MATCH_ROOT_PREFIX && strncmp(r->name, path, r->name_len) == 0 &&
            r->handler(r->area, req, path + r->name_len))
            return 1;
    }
    return 0;
}

void rest_count_answer(void *data, const struct http_request *req, unsigned status)
{
    (void)data;
    metrics_count_api_request(metrics_path_class_of(http_request_path(req)), status);
}

static void rest__route(struct rest *rest, struct http_request *req)
{
    const char *path = http_request_path(req);
    const char *method = http_request_method(req);

    if (strcmp(path, "/api/healthz") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
            http_request_respond_error(req, 405, "%s is not allowed on %s", method, path);
            return;
        }
        rest__healthz(rest, req);
        return;
    }
    if (strcmp(path, "/") == 0) {
        http_request_add_header(req, "Location", "/ui/");
        http_request_respond(req, 302, NULL);
        return;
    }
    if (strncmp(path, "/api/", 5) != 0 && rest__route_root(rest, req, path))
        return;
    if (strncmp(path, "/api/", 5) == 0) {
        for (unsigned i = 0; i < rest->n_routes; i++) {
            const char *sub = rest__match(&rest->routes[i], path + 5);
            if (sub != NULL && rest->routes[i].handler(rest->routes[i].area, req, sub))
                return;
        }
    }
    http_request_respond_error(req, 404, "no such resource: %s", path);
}
