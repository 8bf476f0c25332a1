/* api.h: the REST handlers, one file per area. Each answers REQ exactly once, now or
 * later. Path pieces are borrowed for the call only. */
#ifndef VIGIL_API_H
#define VIGIL_API_H

#include "common/objects.h"
#include "controller/http_server.h"
#include "controller/api_outcome.h"
#include "controller/rest.h"
#include "controller/store.h"

/* /api/<type> and /api/<type>/<uuid> (UUID NULL for the collection). */
void api_objects_handle(struct rest_context *ctx, struct http_request *req, enum obj_type type,
                        const char *uuid);

/* /api/cluster and /api/cluster/runtime (SUB is "" or "runtime"). */
void api_cluster_handle(struct rest_context *ctx, struct http_request *req, const char *sub);

/* /api/internal/<SUB>: the nodes' own channel (peer reports, commands via the leader). */
void api_internal_handle(struct rest_context *ctx, struct http_request *req, const char *sub);

/* /api/login, /api/logout, /api/session, /api/user[/NAME], /api/token[/ID] (SUB is the path
 * after /api/). Returns 1 when it answered (or will), 0 when SUB is none of these. */
int api_auth_handle(struct rest_context *ctx, struct http_request *req, const char *sub);

/* GET /api/event. */
void api_events_handle(struct rest_context *ctx, struct http_request *req);

/* Reads ?page= and ?page_size= (defaults 1 and 100, page_size at most 1000). Returns 0,
 * or answers 400 itself and returns VIGIL_EINVAL. */
int api_paging(struct http_request *req, int64_t *offset, int64_t *limit);

/* {"count": TOTAL, "results": LIST (stolen)}. */
json_t *api_collection(json_t *list, int64_t total);

#endif
