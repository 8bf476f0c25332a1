/* fsm.h: the raft state machine over the store. Encodes commands into raft payloads
 * (8-byte header "VGC1" + little-endian u32 length, JSON text, zero padding to a multiple
 * of 8: libraft 0.15 decodes unpadded payloads wrongly during catch-up) and applies,
 * snapshots and restores them. Kept apart from cluster.c so that unit tests can run it
 * on raft's in-memory fixture. */
#ifndef VIGIL_FSM_H
#define VIGIL_FSM_H

#include <jansson.h>
#include <raft.h>

#include "controller/store.h"

#define FSM_HEADER_SIZE 8

/* The state behind one struct raft_fsm; owned by its embedder. */
struct fsm_state {
    struct store *store;             /* borrowed */
    struct store_result last_result; /* the latest apply's outcome, taken by its proposer */
};

/* Sets FSM (version 3: the snapshot's hash is computed in raft's async work, off the loop)
 * up to apply into STORE (borrowed) through STATE. */
void fsm_init(struct raft_fsm *fsm, struct fsm_state *state, struct store *store);

/* Releases what STATE holds (not the store). */
void fsm_close(struct fsm_state *state);

/* Encodes CMD (borrowed) into *BUF, allocated with raft_malloc (ownership passes to
 * raft_apply, or free it with raft_free). Returns 0 or VIGIL_ENOMEM. */
int fsm_encode(json_t *cmd, struct raft_buffer *buf);

#endif
