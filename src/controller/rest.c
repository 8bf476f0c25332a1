#include "controller/rest.h"

#include <string.h>

#include "common/errors.h"
#include "controller/api.h"

/* The one function every request passes before its handler. Returns 0 to go on, or
 * answers REQ itself and returns non-zero. Authentication and authorisation (issue 5)
 * plug in here. */
static int rest_gate(struct rest_context *ctx, struct http_request *req)
{
    if (ctx->stopping) {
        http_request_respond_error(req, 503, "this node is stopping");
        return VIGIL_ESHUTDOWN;
    }
    return 0;
}

static void rest__healthz(struct rest_context *ctx, struct http_request *req)
{
    http_request_respond(req, 200, json_pack("{s:s, s:I}", "status", "ok", "node_id",
                                             (json_int_t)ctx->node_id));
}

void rest_handle(struct http_request *req, void *data)
{
    struct rest_context *ctx = data;
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
    if (rest_gate(ctx, req) != 0)
        return;

    if (strncmp(path, "/api/", 5) != 0) {
        http_request_respond_error(req, 404, "no such resource: %s", path);
        return;
    }
    path += 5;
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
