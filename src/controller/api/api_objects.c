/* api_objects.c: CRUD for the config objects (contract "Config objects"). */
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/objects.h"
#include "common/timeutil.h"
#include "controller/api/api.h"
#include "controller/api/write_path.h"

/* A read waiting for a barrier (?consistent=1). */
struct api__read {
    struct api_objects *area;
    struct http_request *req;
    enum obj_type type;
    char uuid[OBJ_UUID_LEN + 1]; /* "" for the collection */
};

int api_paging(struct http_request *req, int64_t *offset, int64_t *limit)
{
    const char *p = http_request_query(req, "page");
    const char *ps = http_request_query(req, "page_size");
    long long page = 1, size = 100;
    char *end;

    if (p != NULL) {
        page = strtoll(p, &end, 10);
        if (*p == '\0' || *end != '\0' || page < 1 || page > 1000000000LL) {
            http_request_respond_error(req, 400,
                                       "page: must be a whole number from 1 to 1000000000");
            return VIGIL_EINVAL;
        }
    }
    if (ps != NULL) {
        size = strtoll(ps, &end, 10);
        if (*ps == '\0' || *end != '\0' || size < 1 || size > 1000) {
            http_request_respond_error(req, 400, "page_size: must be a whole number from 1 to 1000");
            return VIGIL_EINVAL;
        }
    }
    *offset = (page - 1) * size;
    *limit = size;
    return 0;
}

json_t *api_collection(json_t *list, int64_t total)
{
    return json_pack("{s:I, s:o}", "count", (json_int_t)total, "results", list);
}

static json_t *api__time_or_null(json_t *rt, const char *key)
{
    char ts[TIME_RFC3339_LEN];
    json_int_t ms = json_integer_value(json_object_get(rt, key));
    if (rt == NULL || ms <= 0)
        return json_null();
    time_format_rfc3339(ms, ts);
    return json_string(ts);
}

/* Adds the runtime fields an object type shows besides its config. A virtualservice's
 * "runtime" is its health and rates as the SEs connected to this node report them
 * (se_sessions_vs_runtime). A serviceengine's
 * come from the replicated runtime record (store_se.h); its last_heartbeat is the later
 * of the record's and what this node heard on its own session with the SE, and its
 * config_version is what the SE told this node it serves. */
static void api__decorate(struct api_objects *area, enum obj_type type, json_t *obj)
{
    json_t *rt;
    const char *uuid = json_string_value(json_object_get(obj, "uuid"));
    int up;
    struct se_sessions_heard heard = {0, -1, -1, -1};
    if (type == OBJ_VIRTUALSERVICE && uuid != NULL) {
        /* what the SEs connected here said of it (absent: none serves it, or none said, so
         * that the object is then exactly what was written) */
        rt = area->se_sessions != NULL ? se_sessions_vs_runtime(area->se_sessions, uuid) : NULL;
        if (rt != NULL)
            json_object_set_new(obj, "runtime", rt);
        return;
    }
    if (type != OBJ_SERVICEENGINE || uuid == NULL)
        return;
    rt = store_se_runtime(area->store, uuid);
    up = rt != NULL && json_integer_value(json_object_get(rt, "sessions")) > 0;
    if (area->se_sessions != NULL)
        se_sessions_heard(area->se_sessions, uuid, &heard);
    if (rt != NULL &&
        heard.last_heard_ms > json_integer_value(json_object_get(rt, "last_heartbeat_ms")))
        json_object_set_new(rt, "last_heartbeat_ms", json_integer((json_int_t)heard.last_heard_ms));
    json_object_set_new(obj, "oper_status", json_pack("{s:s}", "state", up ? "OPER_UP" : "OPER_DOWN"));
    json_object_set_new(obj, "controller_node",
                        rt != NULL && json_integer_value(json_object_get(rt, "controller_node")) > 0
                            ? json_incref(json_object_get(rt, "controller_node"))
                            : json_null());
    json_object_set_new(obj, "connected_since", up ? api__time_or_null(rt, "since_ms") : json_null());
    json_object_set_new(obj, "last_heartbeat", api__time_or_null(rt, "last_heartbeat_ms"));
    json_object_set_new(obj, "se_state",
                        rt != NULL ? json_incref(json_object_get(rt, "se_state")) : json_null());
    /* its log spool's counts as it last told this node (null: never told) */
    json_object_set_new(obj, "logs", heard.logs_spooled >= 0
                                         ? json_pack("{s:I, s:I}", "spooled",
                                                     (json_int_t)heard.logs_spooled, "dropped",
                                                     (json_int_t)(heard.logs_dropped > 0
                                                                      ? heard.logs_dropped
                                                                      : 0))
                                         : json_null());
    /* what the SE told this node it serves (null: no session to this node) */
    json_object_set_new(obj, "config_version", heard.config_version >= 0
                                                   ? json_integer((json_int_t)heard.config_version)
                                                   : json_null());
    json_decref(rt);
}

json_t *api_objects_list(struct api_objects *area, enum obj_type type, int64_t offset,
                         int64_t limit, int64_t *total)
{
    json_t *list = store_object_list(area->store, type, offset, limit, total), *item;
    size_t i;
    json_array_foreach(list, i, item) api__decorate(area, type, item);
    return list;
}

static void api__answer_read(struct api_objects *area, struct http_request *req,
                             enum obj_type type, const char *uuid)
{
    if (uuid == NULL || uuid[0] == '\0') {
        int64_t offset, limit, total;
        json_t *list;
        if (api_paging(req, &offset, &limit) != 0)
            return;
        list = api_objects_list(area, type, offset, limit, &total);
        http_request_respond(req, 200, api_collection(list, total));
        return;
    }
    {
        json_t *obj = obj_uuid_valid(uuid) ? store_object_get(area->store, type, uuid) : NULL;
        if (obj == NULL) {
            http_request_respond_error(req, 404, "no %s with uuid %s", obj_type_name(type), uuid);
            return;
        }
        api__decorate(area, type, obj);
        http_request_respond(req, 200, obj);
    }
}

static void api__on_barrier(void *data, int status)
{
    struct api__read *r = data;
    if (status != 0)
        http_request_respond(r->req, 503,
                             json_pack("{s:s}", "error", "no quorum: a consistent read is not possible"));
    else
        api__answer_read(r->area, r->req, r->type, r->uuid);
    free(r);
}

static void api__read(struct api_objects *area, struct http_request *req, enum obj_type type,
                      const char *uuid);

static int api__route(void *area, struct http_request *req, const char *sub);

/* A consistent read that reached the leader after all (see write_path_forward): answered
 * here as if it had come to the leader (the path is /api/<type>[/<uuid>]). */
static void api__read_on_leader(void *area, struct http_request *req)
{
    api__route(area, req, http_request_path(req) + strlen("/api/"));
}

static void api__read(struct api_objects *area, struct http_request *req, enum obj_type type,
                      const char *uuid)
{
    const char *consistent = http_request_query(req, "consistent");
    struct api__read *r;
    int rv;

    if (consistent == NULL || strcmp(consistent, "0") == 0 || strcmp(consistent, "false") == 0) {
        api__answer_read(area, req, type, uuid);
        return;
    }
    if (uuid != NULL && strlen(uuid) > OBJ_UUID_LEN) {
        http_request_respond_error(req, 404, "no %s with uuid %s", obj_type_name(type), uuid);
        return;
    }
    if (!cluster_is_leader(area->cluster)) {
        write_path_forward(area->write_path, req, api__read_on_leader, area);
        return;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    r->area = area;
    r->req = req;
    r->type = type;
    snprintf(r->uuid, sizeof r->uuid, "%s", uuid != NULL ? uuid : "");
    rv = cluster_barrier(area->cluster, api__on_barrier, r);
    if (rv != 0) {
        free(r);
        http_request_respond(req, 503,
                             json_pack("{s:s}", "error",
                                       rv == VIGIL_ENOTLEADER
                                           ? "this node is not the leader: a consistent read is not possible here"
                                           : vigil_strerror(rv)));
    }
}

static void api__propose(struct api_objects *area, struct http_request *req, json_t *cmd)
{
    write_path_submit(area->write_path, req, cmd);
}

/* Parses and validates the request body as an object of TYPE; answers 400 itself and
 * returns NULL when it is not one. */
json_t *api_body_object(struct http_request *req)
{
    size_t len;
    const char *text = http_request_body(req, &len);
    json_error_t jerr;
    json_t *body;

    if (len == 0) {
        http_request_respond_error(req, 400, "(body): a JSON object is required");
        return NULL;
    }
    body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        http_request_respond_error(req, 400, "(body): invalid JSON at line %d column %d: %s",
                                   jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        http_request_respond_error(req, 400, "(body): a JSON object is required");
        return NULL;
    }
    return body;
}

static json_t *api__body(struct http_request *req, enum obj_type type)
{
    json_t *body = api_body_object(req), *obj;
    char err[256];

    if (body == NULL)
        return NULL;
    obj = obj_validate(type, body, 0, err, sizeof err);
    json_decref(body);
    if (obj == NULL)
        http_request_respond_error(req, 400, "%s", err);
    return obj;
}

static void api__handle(struct api_objects *area, struct http_request *req, enum obj_type type,
                        const char *uuid)
{
    const char *method = http_request_method(req);
    const char *tname = obj_type_name(type);
    char new_uuid[OBJ_UUID_LEN + 1];
    json_t *obj;

    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
        api__read(area, req, type, uuid);
        return;
    }
    if (uuid == NULL) {
        if (strcmp(method, "POST") != 0) {
            http_request_respond_error(req, 405, "%s is not allowed on /api/%s", method, tname);
            return;
        }
        if ((obj = api__body(req, type)) == NULL)
            return;
        obj_uuid_generate(new_uuid);
        api__propose(area, req,
                     json_pack("{s:s, s:s, s:s, s:o}", "op", "object_create", "type", tname,
                               "uuid", new_uuid, "object", obj));
        return;
    }
    if (strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0) {
        http_request_respond_error(req, 405, "%s is not allowed on /api/%s/<uuid>", method, tname);
        return;
    }
    if (!obj_uuid_valid(uuid)) {
        http_request_respond_error(req, 404, "no %s with uuid %s", tname, uuid);
        return;
    }
    if (strcmp(method, "DELETE") == 0) {
        api__propose(area, req,
                     json_pack("{s:s, s:s, s:s}", "op", "object_delete", "type", tname, "uuid", uuid));
        return;
    }
    if ((obj = api__body(req, type)) == NULL)
        return;
    api__propose(area, req,
                 json_pack("{s:s, s:s, s:s, s:o}", "op", "object_update", "type", tname, "uuid",
                           uuid, "object", obj));
}

/* SUB is <type>, <type>/ or <type>/<uuid>; 0 when <type> names no object type (the router
 * answers 404), else answered. */
static int api__route(void *area, struct http_request *req, const char *sub)
{
    const char *slash = strchr(sub, '/');
    size_t len = slash != NULL ? (size_t)(slash - sub) : strlen(sub);
    char type_name[32];
    int type;

    if (len >= sizeof type_name)
        return 0;
    memcpy(type_name, sub, len);
    type_name[len] = '\0';
    type = obj_type_from_name(type_name);
    if (type < 0)
        return 0;
    if (slash == NULL || slash[1] == '\0') {
        api__handle(area, req, (enum obj_type)type, NULL);
        return 1;
    }
    if (strchr(slash + 1, '/') != NULL)
        return 0;
    api__handle(area, req, (enum obj_type)type, slash + 1);
    return 1;
}

int api_objects_register(struct rest *rest, struct api_objects *area)
{
    return rest_add_route(rest, "", REST_MATCH_ANY, api__route, area);
}
