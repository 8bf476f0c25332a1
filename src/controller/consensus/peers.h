/* peers.h: the liveness channel between controller nodes. Raft's API tells nothing about
 * other nodes, so every node asks every other member for its report
 * (GET /api/internal/peer on its API address) every interval, and keeps what it learned:
 * reachable or not, applied index, role, leader, term, status and any failure reported.
 * A member is reachable while its last answer is younger than the window.
 * All on the loop thread. */
#ifndef VIGIL_PEERS_H
#define VIGIL_PEERS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "controller/consensus/cluster.h"
#include "controller/net/http_client.h"
#include "controller/store/store.h"

struct peers;

struct peer_state {
    uint64_t id;
    bool known;           /* its API address is in the store */
    bool reachable;       /* answered within the window */
    bool ever_reachable;  /* answered at least once since this node started */
    int64_t last_ok_ms;   /* monotonic time of the last answer, 0 = never */
    uint64_t applied_index;
    uint64_t leader_id;
    uint64_t term;
    char boot[40];        /* its process incarnation ("" = never heard) */
    bool se_ready;        /* its last report said its SE channel admits SEs ("se_ready") */
    json_t *report;       /* its last answer (borrowed from peers; NULL = none) */
};

/* Called when a member's reachability changes (ID became REACHABLE or not), and with
 * REACHABLE true when it answers as a new incarnation (restarted unseen). PREV_BOOT is the
 * incarnation seen before ("" if none). */
typedef void (*peers_change_cb)(void *data, uint64_t id, bool reachable, const char *prev_boot);

/* Starts polling. CLIENT, STORE and CLUSTER are borrowed and must outlive the peers.
 * Returns an object owned by the caller (peers_close), or NULL. */
struct peers *peers_start(uv_loop_t *loop, struct http_client *client, struct store *store,
                          struct cluster *cluster, uint64_t self_id, unsigned interval_ms,
                          unsigned window_ms, peers_change_cb cb, void *data);

/* Called after every answer from a member, once its state above is updated (ID's state
 * from peers_get). */
typedef void (*peers_answer_cb)(void *data, uint64_t id);

/* Sets the answer callback (NULL for none); DATA is given to it. */
void peers_set_answer_cb(struct peers *p, peers_answer_cb cb, void *data);

/* The state of member ID (not self), or NULL if ID is not a member. Borrowed until the
 * next loop iteration. */
const struct peer_state *peers_get(struct peers *p, uint64_t id);

/* Adds HEADER ("Name: value"; borrowed, read at every poll, "" for none) to every poll
 * request (the node credential), and polls with SCHEME ("http" or "https", static). */
void peers_set_header(struct peers *p, const char *header, const char *scheme);

/* Node records ([{"id", "api_address", ...}], stolen) to use for members the store does
 * not list yet: a restarted node's store lacks them until it replayed its log, but it
 * must poll its peers from the start (to see, at an election, who is missing). */
void peers_set_known_nodes(struct peers *p, json_t *nodes);

/* The name of node ID from the fallback records into OUT; 1 if found. */
int peers_known_name(struct peers *p, uint64_t id, char *out, size_t len);

void peers_close(struct peers *p);

#endif
