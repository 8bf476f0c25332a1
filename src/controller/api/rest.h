/* rest.h: the REST API's front door. Every request passes the gate (refused while the node
 * stops; the contract's open endpoints let through; everything else authenticated,
 * authorised by role and CSRF-checked) and is then routed by a table of routes that the
 * API's areas (api.h) register. The router knows no handler: a handler is a function and
 * the area object it serves, both given at registration. The request carries who it was
 * authenticated as (rest_identity). Loop thread only. */
#ifndef VIGIL_REST_H
#define VIGIL_REST_H

#include <stdint.h>
#include <uv.h>

#include "controller/auth/auth.h"
#include "controller/net/http_server.h"

struct rest;

/* How a route's NAME matches a path /api/<rest>: */
enum rest_match {
    REST_MATCH_EXACT, /* REST is NAME or NAME/; the handler gets SUB "" */
    REST_MATCH_UNDER, /* REST starts with NAME/; SUB is what follows the slash (maybe "") */
    REST_MATCH_ANY,   /* any REST (NAME unused); SUB is REST: for an area that parses its paths */
    REST_MATCH_ROOT,  /* a path outside /api/ equal to NAME ("/metrics"); SUB is "" */
    REST_MATCH_ROOT_PREFIX, /* a path outside /api/ starting with NAME ("/ui/"); SUB is the rest */
};

/* A route's handler: answers REQ (borrowed; answered exactly once, now or later) for AREA
 * (the object given with the route). SUB is borrowed for the call only. Returns 1 when it
 * answered or will, 0 when the path is not one of its own (the next route is tried). */
typedef int (*rest_handler_fn)(void *area, struct http_request *req, const char *sub);

/* Creates the front door on LOOP with AUTH (borrowed; authenticates and authorises),
 * answering health checks with NODE_ID. Returns NULL when out of memory; free with
 * rest_free. */
struct rest *rest_new(uv_loop_t *loop, struct auth *auth, uint64_t node_id);

/* Adds a route, tried after those added before it: NAME (borrowed, must outlive REST) matched
 * by MATCH; HANDLER called with AREA (borrowed, must outlive REST). Returns 0, or
 * VIGIL_ETOOBIG when the table (REST_ROUTES_MAX) is full. */
#define REST_ROUTES_MAX 20
int rest_add_route(struct rest *rest, const char *name, enum rest_match match,
                   rest_handler_fn handler, void *area);

/* From now on every request is answered 503 not_applied ("this node is stopping"). */
void rest_set_stopping(struct rest *rest);

/* An http_server_set_answered_cb callback (DATA unused): counts each answer by its path's
 * class and status (metrics_count_api_request). */
void rest_count_answer(void *data, const struct http_request *req, unsigned status);

/* The http_server handler; DATA is the struct rest. */
void rest_handle(struct http_request *req, void *data);

/* Who REQ was authenticated as (set by the gate; NULL on the open endpoints). Borrowed,
 * valid as long as REQ. */
const struct auth_identity *rest_identity(const struct http_request *req);

/* Frees REST (no request may be in flight: the HTTP server is closed first). */
void rest_free(struct rest *rest);

#endif
