/* write_path.h: how a write reaches the raft log from any node (contract "Writes may be
 * sent to any node"). On the leader the command is proposed; on a follower the HTTP
 * request is forwarded to the leader's API and its answer relayed. While no leader with
 * quorum is known the attempt is retried until the deadline (2 election timeouts), then
 * answered 503 "not_applied". A write already in the log when leadership is lost is
 * answered 503 "unknown". Only not-applied refusals are ever retried. A leader whose disk
 * is full refuses before the log (retried, then 503 not_applied "disk full on the
 * leader ..."); it hands leadership over, so the retries usually reach a leader with room.
 * All on the loop thread. */
#ifndef VIGIL_WRITE_PATH_H
#define VIGIL_WRITE_PATH_H

#include <jansson.h>

#include "controller/http_server.h"
#include "controller/rest.h"

/* The header a forwarded request carries (the forwarding node's id). A node that is not
 * the leader answers such a request 503 not_applied at once, so requests never loop. */
#define WRITE_PATH_FORWARDED_HEADER "X-Vigil-Forwarded-By"

/* The header a leader's answer to a write carries: the raft index of the entry. The
 * node that forwarded the write waits until it has applied that index before it relays
 * the answer, so a client reads its own writes on the node it wrote to. */
#define WRITE_PATH_INDEX_HEADER "X-Vigil-Index"

/* With the index, the entry's unique tag (cluster_applied_entry_id). The forwarding node
 * relays a success only when the entry it applied at that index carries this tag: the
 * index alone may name another write there (a leader that lost its log tail). Otherwise
 * the answer is 503 "unknown". */
#define WRITE_PATH_ENTRY_HEADER "X-Vigil-Entry"

/* Submits command CMD (stolen) for REQ, which is answered exactly once. */
void write_path_submit(struct rest_context *ctx, struct http_request *req, json_t *cmd);

/* As write_path_submit, but a successful commit is answered with ANSWER (stolen) instead
 * of the store's result (for answers only the proposing node can make, e.g. a new token
 * shown once). */
void write_path_submit_with_answer(struct rest_context *ctx, struct http_request *req,
                                   json_t *cmd, json_t *answer);

/* As write_path_submit, but a follower sends CMD itself to the leader's
 * /api/internal/command (with this node's credential) rather than forwarding REQ: for
 * commands only this node can make from REQ (e.g. a logout knows the session id). CMD's op
 * must be one the internal command endpoint accepts. */
void write_path_submit_command(struct rest_context *ctx, struct http_request *req, json_t *cmd);

/* Forwards REQ as it is to the leader (for a follower's ?consistent=1 read). Should this
 * node become the leader while retrying, LOCAL(ctx, req) answers it instead. */
void write_path_forward(struct rest_context *ctx, struct http_request *req,
                        void (*local)(struct rest_context *ctx, struct http_request *req));

#endif
