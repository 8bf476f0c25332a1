/* cluster.h: the raft glue. The only module that calls libraft (so a move to another raft
 * implementation with the same API touches one file). It owns the raft instance, its
 * libuv I/O backend, and drives the store as the state machine.
 *
 * Entries: a proposed command is a JSON object; its raft payload is an 8-byte header
 * ("VGC1", little-endian u32 length) plus the JSON text, zero-padded to a multiple of 8
 * (libraft 0.15 decodes unpadded payloads wrongly during catch-up).
 * All functions run on the loop thread. */
#ifndef VIGIL_CLUSTER_H
#define VIGIL_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "controller/store/store.h"

#define CLUSTER_MAX_NODES 9

struct cluster;

struct cluster_member {
    uint64_t id;
    char address[80]; /* raft address, "HOST:PORT" */
};

struct cluster_config {
    uint64_t id;                /* this node's raft id (>= 1) */
    const char *raft_address;   /* this node's raft "HOST:PORT" */
    const char *raft_dir;       /* directory for the raft log and snapshots */
    /* Initial voters, used only when raft_dir holds no state yet. */
    struct cluster_member voters[CLUSTER_MAX_NODES];
    unsigned n_voters;
    unsigned heartbeat_ms;
    unsigned election_timeout_ms;
    unsigned snapshot_threshold; /* entries between snapshots */
    unsigned snapshot_trailing;  /* entries kept behind a snapshot */
    int rebuilding;              /* --rebuild: an emptied raft_dir, never bootstrapped */
};

/* Outcome of a proposal, as the REST API reports it:
 *   0                  committed and applied; RES holds the store's result
 *   VIGIL_ENOTLEADER   refused before entering the log: never applied
 *   VIGIL_ENOQUORUM    refused before entering the log (leader without a recent majority)
 *   VIGIL_ESHUTDOWN    refused before entering the log: the node stopped first
 *   VIGIL_ENOSPC       refused before entering the log: this leader's disk is full
 *   VIGIL_ETIMEDOUT    entered the log but the outcome is unknown (leadership lost,
 *                      shutdown): it may still be applied later
 * RES is owned by the callee for the callback's duration only; take what you keep
 * (e.g. move res->body out and set it to NULL). */
typedef void (*cluster_propose_cb)(void *data, int status, struct store_result *res);

/* Opens the raft state in CFG->raft_dir (bootstrapping CFG's voters when it is empty),
 * loads the latest snapshot into STORE (borrowed, must outlive the cluster), replays the
 * log and starts raft. Returns 0 and *OUT (owned, released by cluster_close), or a
 * negative code with a one-line reason in ERR: VIGIL_ECORRUPT for damaged state,
 * VIGIL_EIO for other failures (e.g. the raft address in use). */
int cluster_start(uv_loop_t *loop, const struct cluster_config *cfg, struct store *store,
                  struct cluster **out, char *err, size_t errlen);

/* Proposes command CMD (borrowed: its text is taken now); CB may be NULL when nobody
 * waits. Proposals made during one loop iteration go to raft together, after the
 * iteration's I/O (a uv_check handle), as one entry of up to FSM_BATCH_MAX commands: one
 * append, one message per follower and one transaction for all of them, instead of one
 * each; every command keeps its own result, and the entry's index is every one's index.
 * Returns 0 when CB will be called exactly once later (never from inside this call), or
 * VIGIL_ENOTLEADER / VIGIL_ENOSPC (disk full) / VIGIL_ENOMEM / VIGIL_ESHUTDOWN at once
 * (CB is then not called). RES->entry_id is the entry's unique tag (see
 * cluster_applied_entry_id). */
int cluster_propose(struct cluster *c, json_t *cmd, cluster_propose_cb cb, void *data);

/* Calls CB(data, 0) once every entry committed before this call is applied locally and
 * this node has confirmed it still leads (raft_barrier); CB(data, VIGIL_E*) otherwise.
 * Returns 0 when CB will be called, or VIGIL_ENOTLEADER / VIGIL_ESHUTDOWN at once. */
int cluster_barrier(struct cluster *c, void (*cb)(void *data, int status), void *data);

bool cluster_is_leader(struct cluster *c);

/* True if this node leads and heard from a majority of voters (itself included) within
 * the last election timeout (raft's own contact tracking, remembered across the moments
 * raft clears it); the election it won counts as such a contact, from the first call in
 * its term, until the followers answer. */
bool cluster_leader_has_quorum(struct cluster *c);
/* Leader's id (0 when none is known) and raft address (borrowed, may be NULL). */
/* How long a leader waits for the answer to a snapshot it sent before it gives up and
 * probes the follower again (libraft's install-snapshot timeout; CLUSTER_INSTALL_TIMEOUT_MS
 * unless set). A rebuilt node's answer is below the match index the leader kept for its
 * old incarnation, and libraft 0.15 ignores it: the leader waits this long
 * (docs/reliability.md). Loop thread. */
#define CLUSTER_INSTALL_TIMEOUT_MS 30000
#define CLUSTER_INSTALL_TIMEOUT_REBUILD_MS 3000
void cluster_set_install_timeout(struct cluster *c, unsigned ms);

/* The liveness channel sees peer ID again after it was unreachable (a healed partition, a
 * resumed or restarted node): ends raft's streams with it, which may be stuck in TCP's
 * retransmission backoff, so that libraft connects again at once (raft_transport_kick).
 * Loop thread. */
void cluster_peer_back(struct cluster *c, uint64_t id);

uint64_t cluster_leader(struct cluster *c, const char **address);
uint64_t cluster_term(struct cluster *c);
uint64_t cluster_applied_index(struct cluster *c);
uint64_t cluster_commit_index(struct cluster *c);

/* This node's raft role ("follower", "candidate", "leader", "unavailable": static). */
const char *cluster_role_name(struct cluster *c);

/* The raft log this node holds in memory (the entries since the last snapshot, kept for
 * followers): how many entries, their payload bytes, and the last snapshot's index (0:
 * none). Loop thread; walks the entries (a few thousand at most). */
void cluster_log_size(struct cluster *c, uint64_t *entries, uint64_t *bytes,
                      uint64_t *snapshot_index);

/* The unique tag of the entry this node applied at INDEX into *ENTRY_ID (0 when that entry
 * carried none). Returns 0, or VIGIL_ENOTFOUND when this node did not apply INDEX one
 * entry at a time recently (not yet, long ago, or within a snapshot). */
int cluster_applied_entry_id(struct cluster *c, uint64_t index, uint64_t *entry_id);

/* Called once this node has applied the index waited for (STATUS 0), or with
 * VIGIL_ESHUTDOWN when the cluster closes first. */
typedef void (*cluster_wait_cb)(void *data, int status);

/* Calls CB(DATA, 0) once this node has applied INDEX (from the apply path, on the loop's
 * next iteration after the entry's apply or a snapshot that covers it), or before
 * returning when INDEX is applied already. Returns 0 (CB runs exactly once, unless
 * cancelled), or VIGIL_ENOMEM / VIGIL_ESHUTDOWN (closing) at once with CB not called.
 * Cluster_close calls every waiting CB with VIGIL_ESHUTDOWN. */
int cluster_wait_applied(struct cluster *c, uint64_t index, cluster_wait_cb cb, void *data);

/* Withdraws every wait made with CB and DATA that has not run: CB is not called for them
 * (e.g. the waiter's own deadline passed). No-op when none waits. */
void cluster_wait_cancel(struct cluster *c, cluster_wait_cb cb, void *data);

/* Members of the current configuration (voters), at most MAX, returns how many. */
unsigned cluster_members(struct cluster *c, struct cluster_member *out, unsigned max);

/* Called on every change of (role, leader, term) observed; set with cluster_set_watch. */
typedef void (*cluster_watch_cb)(void *data);
void cluster_set_watch(struct cluster *c, cluster_watch_cb cb, void *data);

/* Test-only fault knob, a slow disk: every log append completes MS ms after the previous
 * one did (0 = off). This node then stores and applies entries late, while its loop keeps
 * answering (raft, the API, the liveness channel). */
void cluster_set_apply_delay(struct cluster *c, unsigned ms);

/* Hands leadership to a caught-up voter if this node leads and has one, then stops
 * raft, fails every pending proposal (VIGIL_ETIMEDOUT) and frees C. DONE(data) runs
 * once everything is closed. */
void cluster_close(struct cluster *c, void (*done)(void *data), void *data);

#endif
