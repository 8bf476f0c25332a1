/* leader_link.h: the one road from this node to the leader's API. Every call a node makes
 * to the leader (a forwarded client write or consistent read, an internal command, an
 * event report) goes through here: it finds the leader (cluster), its API address (the
 * store's node records), builds the URL (http or https), sends with this node's
 * credential header and LEADER_LINK_FORWARDED_HEADER, and classifies the outcome in one
 * place:
 *   LEADER_LINK_DONE         the leader answered (status, body, index and entry headers)
 *   LEADER_LINK_NOT_APPLIED  certainly not in the log: no leader (or no quorum) known,
 *                            no connection before sending, the leader answered 503
 *                            "not_applied"; retried until the deadline, then reported
 *   LEADER_LINK_UNKNOWN      sent, outcome not known: a timeout or a cut connection after
 *                            sending, the leader answered 503 "unknown" (it lost its role
 *                            with the write in its log); never retried
 *   LEADER_LINK_SELF         this node leads now: the caller does the work here
 * All on the loop thread. */
#ifndef VIGIL_LEADER_LINK_H
#define VIGIL_LEADER_LINK_H

#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "controller/consensus/cluster.h"
#include "controller/net/http_client.h"
#include "controller/store/store.h"

/* The header every call to the leader carries (this node's id). A node that is not the
 * leader answers such a request 503 not_applied at once, so requests never loop. */
#define LEADER_LINK_FORWARDED_HEADER "X-Vigil-Forwarded-By"

/* The header a leader's answer to a write carries: the raft index of the entry. The node
 * that forwarded the write waits until it has applied that index before it relays the
 * answer, so a client reads its own writes on the node it wrote to. */
#define LEADER_LINK_INDEX_HEADER "X-Vigil-Index"

/* With the index, the entry's unique tag (cluster_applied_entry_id). The forwarding node
 * relays a success only when the entry it applied at that index carries this tag: the
 * index alone may name another write there (a leader that lost its log tail). */
#define LEADER_LINK_ENTRY_HEADER "X-Vigil-Entry"

/* The header every call to the leader carries: the milliseconds the sender still waits
 * for the answer. The leader answers within it (its retries of a not-applied write end
 * sooner), so a client's 503 comes within 2 election timeouts of its request to any node
 * (contract "Config objects"). */
#define LEADER_LINK_BUDGET_HEADER "X-Vigil-Budget-Ms"

/* What a forwarded call's budget keeps back for the answer's way back and its relay. */
#define LEADER_LINK_RELAY_MS 100

/* The reason a leader gives (503 not_applied) when its disk is full. */
#define LEADER_LINK_DISK_FULL "disk full on the leader: its data dir is under the free-space " \
                              "reserve; free space there (writes resume by themselves)"

/* Pause between two attempts of a not-applied call. */
#define LEADER_LINK_RETRY_MS 20

/* Headers a call may add (struct leader_link_request). */
#define LEADER_LINK_MAX_HEADERS 4

struct leader_link;

enum leader_link_outcome {
    LEADER_LINK_DONE,
    LEADER_LINK_NOT_APPLIED,
    LEADER_LINK_UNKNOWN,
    LEADER_LINK_SELF,
};

/* How a call ended; borrowed for the callback's duration only. */
struct leader_link_result {
    enum leader_link_outcome outcome;
    const char *why;  /* NOT_APPLIED, UNKNOWN: one line for the client (borrowed) */
    long status;      /* DONE: the leader's HTTP status */
    json_t *body;     /* DONE: the leader's JSON answer or NULL (none); the callback may
                       * steal it (set it to NULL). A body that is not JSON is replaced by
                       * {"error": "the leader sent an answer that is not JSON"}. */
    uint64_t index;   /* DONE with status < 300: LEADER_LINK_INDEX_HEADER, 0 when absent */
    uint64_t entry_id;/* DONE with status < 300: LEADER_LINK_ENTRY_HEADER, 0 when absent */
};

/* CB runs exactly once per call, later (never from inside leader_link_call). */
typedef void (*leader_link_cb)(void *data, struct leader_link_result *result);

/* One call. Every pointer is borrowed for the leader_link_call only (all is copied). */
struct leader_link_request {
    const char *method;          /* "GET", "POST", ... */
    const char *target;          /* path and query, e.g. "/api/pool?page=2" */
    const char *const *headers;  /* up to LEADER_LINK_MAX_HEADERS more "Name: value" lines,
                                  * NULL-terminated; or NULL */
    const char *body;            /* LEN bytes, or NULL */
    size_t len;
    int read_only;               /* nothing to apply: a failure after sending is retried too */
};

/* Starts the link. CLUSTER, STORE and CLIENT are borrowed and must outlive it (until
 * leader_link_close); SCHEME ("http" or "https") is static; NODE_HEADER ("X-Vigil-Node-Auth:
 * ...", "" until known) is borrowed and read at every send. SELF_ID is this node's id,
 * ELECTION_TIMEOUT_MS sets the deadline (leader_link_deadline). Returns an object owned by
 * the caller (leader_link_close), or NULL (out of memory). */
struct leader_link *leader_link_new(uv_loop_t *loop, struct cluster *cluster, struct store *store,
                                    struct http_client *client, uint64_t self_id,
                                    const char *scheme, const char *node_header,
                                    unsigned election_timeout_ms);

/* The deadline (monotonic ms) of an attempt started now: 2 election timeouts, with a
 * little room for the answer itself; sooner when BUDGET (a request's
 * LEADER_LINK_BUDGET_HEADER value, borrowed, or NULL) gives less time. A budget that is not
 * a whole number is ignored. */
int64_t leader_link_deadline(const struct leader_link *l, const char *budget);

/* This node's id (for callers that compare it with the leader's). */
uint64_t leader_link_self(const struct leader_link *l);

/* Sends RQ to the leader, retrying not-applied attempts every LEADER_LINK_RETRY_MS until
 * DEADLINE_MS (monotonic), then CB(DATA, result) once with one of the four outcomes.
 * Returns 0 (CB will run), or VIGIL_EINVAL (more than 4 headers) / VIGIL_ENOMEM (CB not
 * called). After leader_link_stop every
 * call ends NOT_APPLIED "this node is stopping" at its next attempt. */
int leader_link_call(struct leader_link *l, const struct leader_link_request *rq,
                     int64_t deadline_ms, leader_link_cb cb, void *data);

/* The node is stopping: calls waiting to retry end at once (NOT_APPLIED), new calls end
 * at their first attempt. Calls in flight end when the HTTP client closes. */
void leader_link_stop(struct leader_link *l);

/* Stops (if not yet) and frees L once the last call has ended; nothing may be called on L
 * afterwards. */
void leader_link_close(struct leader_link *l);

#endif
