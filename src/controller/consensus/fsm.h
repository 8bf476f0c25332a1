/* fsm.h: the raft state machine over the store. Encodes commands into raft payloads
 * (8-byte header "VGC1" + little-endian u32 length, JSON text, zero padding to a multiple
 * of 8: libraft 0.15 decodes unpadded payloads wrongly during catch-up) and applies,
 * snapshots and restores them. Kept apart from cluster.c so that unit tests can run it
 * on raft's in-memory fixture. */
#ifndef VIGIL_FSM_H
#define VIGIL_FSM_H

#include <stdint.h>
#include <jansson.h>
#include <raft.h>

#include "controller/store/store.h"

#define FSM_HEADER_SIZE 8

/* Most commands one entry (a batch, see fsm_encode_batch_at) carries. */
#define FSM_BATCH_MAX 128

/* What apply hands raft as the result of an entry: one outcome per command it carried,
 * in order (a batch carries several). Owned by the fsm_state, valid until the next
 * apply; a proposer may take a result's body (set it to NULL). */
struct fsm_result {
    unsigned n;
    struct store_result *results;
};

/* How many of the latest applied entries' ids are remembered (fsm_applied_entry_id). */
#define FSM_ID_RING 8192

struct fsm__applied_id {
    uint64_t index, id;
};

/* The state behind one struct raft_fsm; owned by its embedder. */
struct fsm_state {
    struct store *store;             /* borrowed */
    struct raft *raft;               /* borrowed, or NULL: checks each entry's index */
    struct store_result results[FSM_BATCH_MAX]; /* the latest apply's outcomes */
    struct fsm_result last;          /* points into results */
    struct fsm__applied_id applied_ids[FSM_ID_RING]; /* by index % FSM_ID_RING */
    uint64_t snapshot_bytes;         /* size of the latest snapshot taken (0: none yet) */
    uint64_t snapshot_started_ns;    /* uv_hrtime() when the one being taken began, or 0 */
};

/* Sets FSM (version 3: the snapshot's hash is computed in raft's async work, off the loop)
 * up to apply into STORE (borrowed) through STATE. */
void fsm_init(struct raft_fsm *fsm, struct fsm_state *state, struct store *store);

/* Releases what STATE holds (not the store). */
void fsm_close(struct fsm_state *state);

/* Encodes CMD (borrowed) into *BUF, allocated with raft_malloc (ownership passes to
 * raft_apply, or free it with raft_free). Returns 0 or VIGIL_ENOMEM. */
int fsm_encode(json_t *cmd, struct raft_buffer *buf);

/* As fsm_encode, recording INDEX, the log index raft will append the entry at (its last
 * index + 1 when raft_apply is called at once). Apply then refuses to run an entry found
 * at any other index: a log that lost entries (a deleted segment) stops the node instead
 * of being applied shifted. Header "VGC2": 4-byte length, then the u64 index. */
int fsm_encode_at(json_t *cmd, uint64_t index, struct raft_buffer *buf);

/* As fsm_encode_at for N (1..FSM_BATCH_MAX) commands given as JSON texts TEXTS[i] of
 * LENS[i] bytes (borrowed): one command is encoded as itself, several as one batch
 * {"op":"batch","cmds":[...]} that apply runs in one transaction with one outcome per
 * command. Returns 0, VIGIL_EINVAL (N out of range) or VIGIL_ENOMEM. */
int fsm_encode_batch_at(const char *const texts[], const size_t lens[], unsigned n,
                        uint64_t index, struct raft_buffer *buf);

/* As fsm_encode_batch_at, also recording ENTRY_ID (not 0), the proposer's unique tag for
 * this entry (header "VGC3": length, u64 index, u64 id), which fsm_applied_entry_id gives
 * back once the entry is applied. Same returns. */
int fsm_encode_batch_id(const char *const texts[], const size_t lens[], unsigned n,
                        uint64_t index, uint64_t entry_id, struct raft_buffer *buf);

/* The id of the entry STATE applied at INDEX into *ENTRY_ID (0 for an entry without one).
 * Returns 0, or VIGIL_ENOTFOUND when INDEX is not among the last FSM_ID_RING entries this
 * node applied one by one (e.g. it came within a snapshot). */
int fsm_applied_entry_id(const struct fsm_state *state, uint64_t index, uint64_t *entry_id);

#endif
