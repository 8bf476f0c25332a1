/* write_path.h: how a write reaches the raft log from any node (contract "Writes may be
 * sent to any node"). On the leader the command is proposed; on a follower the HTTP
 * request goes to the leader's API over the leader link (leader_link.h) and its answer is
 * relayed once this node has applied it (cluster_wait_applied). While no leader with
 * quorum is known the attempt is retried until the deadline (2 election timeouts), then
 * answered 503 "not_applied". A write already in the log when leadership is lost is
 * answered 503 "unknown". Only not-applied refusals are ever retried. A leader whose disk
 * is full refuses before the log (retried, then 503 not_applied "disk full on the
 * leader ..."); it hands leadership over, so the retries usually reach a leader with room.
 * All on the loop thread. */
#ifndef VIGIL_WRITE_PATH_H
#define VIGIL_WRITE_PATH_H

#include <jansson.h>
#include <uv.h>

#include "controller/consensus/cluster.h"
#include "controller/consensus/leader_link.h"
#include "controller/net/http_server.h"

struct write_path;
struct auth_identity;

/* Who REQ was authenticated as (NULL for none): a follower forwards it to the leader. */
typedef const struct auth_identity *(*write_path_identity_fn)(const struct http_request *req);

/* Makes the write path. CLUSTER and LINK are borrowed and must outlive it; ELECTION_TIMEOUT_MS
 * is the cluster's (--election-timeout-ms: a relayed answer waits at least that long for the
 * leader); IDENTITY tells who a request was authenticated as. Returns an object owned by the
 * caller (write_path_free), or NULL (out of memory). */
struct write_path *write_path_new(uv_loop_t *loop, struct cluster *cluster,
                                  struct leader_link *link, unsigned election_timeout_ms,
                                  write_path_identity_fn identity);

/* Test knob (--test-wrong-answer-index, test builds only): when ON, a leader's answer names
 * the index before its entry's, as a leader that lost its log tail would. */
void write_path_set_wrong_answer_index(struct write_path *wp, int on);

/* The node is stopping: every write attempted from now on is answered 503 not_applied. */
void write_path_stop(struct write_path *wp);

/* Frees WP once no write is pending (after the loop has run down). */
void write_path_free(struct write_path *wp);

/* Submits command CMD (stolen) for REQ (borrowed until answered), which is answered
 * exactly once: the store's result, 503 not_applied / unknown, or 500. */
void write_path_submit(struct write_path *wp, struct http_request *req, json_t *cmd);

/* As write_path_submit, but a successful commit is answered with ANSWER (stolen) instead
 * of the store's result (for answers only the proposing node can make, e.g. a new token
 * shown once). */
void write_path_submit_with_answer(struct write_path *wp, struct http_request *req,
                                   json_t *cmd, json_t *answer);

/* As write_path_submit, but a follower sends CMD itself to the leader's
 * /api/internal/command (with this node's credential) rather than forwarding REQ: for
 * commands only this node can make from REQ (e.g. a logout knows the session id). CMD's op
 * must be one the internal command endpoint accepts. */
void write_path_submit_command(struct write_path *wp, struct http_request *req, json_t *cmd);

/* Forwards REQ as it is to the leader (for a follower's ?consistent=1 read). Should this
 * node become the leader while retrying, LOCAL(DATA, req) answers it instead. */
void write_path_forward(struct write_path *wp, struct http_request *req,
                        void (*local)(void *data, struct http_request *req), void *data);

#endif
