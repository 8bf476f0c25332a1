/* se_state.h: the SE's own state machine (the contract's GET /status "state").
 *
 * States: STANDALONE (--config-file: no controller, for the whole run), CONNECTING (not yet
 * registered with a controller), CONNECTED (a healthy session to a node that knows a leader
 * with quorum), CONTROLLER_HEARTBEAT_FAILED (every such session missed a heartbeat) and
 * HEADLESS (every one missed --miss-limit; traffic is still served).
 *
 * Legal moves (the contract's state flow; nothing else):
 *   CONNECTING                  -> CONNECTED                    registered with a controller
 *   CONNECTED                   -> CONTROLLER_HEARTBEAT_FAILED  heartbeats missed
 *   CONTROLLER_HEARTBEAT_FAILED -> HEADLESS                     --miss-limit misses
 *   CONTROLLER_HEARTBEAT_FAILED -> CONNECTED                    a heartbeat answered again
 *   HEADLESS                    -> CONNECTED                    a controller of a working
 *                                                               cluster answered
 * STANDALONE is only ever an initial state and has no move. se_state_move is the one
 * function that changes the state; it refuses (and logs) any other move and records each
 * accepted one, with its reason, in a history. No allocation; loop thread only. */
#ifndef VIGIL_SE_SE_STATE_H
#define VIGIL_SE_SE_STATE_H

#include <stdbool.h>
#include <stdint.h>

enum se_state {
    SE_STATE_STANDALONE = 0,
    SE_STATE_CONNECTING,
    SE_STATE_CONNECTED,
    SE_STATE_CONTROLLER_HEARTBEAT_FAILED,
    SE_STATE_HEADLESS,
    SE_STATE__COUNT
};

#define SE_STATE_HISTORY_MAX 64
#define SE_STATE_REASON_MAX 128

struct se_state_record {
    enum se_state state;
    int64_t time_ms; /* wall clock */
    char reason[SE_STATE_REASON_MAX];
};

/* Owned by its embedder (main). */
struct se_state_machine {
    enum se_state current;
    int64_t since_ms;
    struct se_state_record history[SE_STATE_HISTORY_MAX]; /* ring, oldest at history_start */
    unsigned history_start;
    unsigned history_len;
};

/* "STANDALONE", "CONNECTING", ... (static strings, the contract's exact words); "?" for a
 * value out of range. */
const char *se_state_name(enum se_state s);

/* True when the table allows FROM -> TO. */
bool se_state_move_legal(enum se_state from, enum se_state to);

/* Starts SM in INITIAL (STANDALONE or CONNECTING) at NOW_MS with REASON (borrowed), the
 * first history record. Returns 0, or VIGIL_EINVAL for another initial state (SM is then
 * CONNECTING). */
int se_state_init(struct se_state_machine *sm, enum se_state initial, const char *reason,
                  int64_t now_ms);

/* Moves SM to TO with REASON (borrowed: what was observed) at NOW_MS. Returns 0, or
 * VIGIL_EINVAL for a move the table refuses (logged; nothing changes). */
int se_state_move(struct se_state_machine *sm, enum se_state to, const char *reason,
                  int64_t now_ms);

/* The state of SM. */
enum se_state se_state_current(const struct se_state_machine *sm);

/* The I-th record of the history, oldest first (I < se_state_history_len), borrowed. */
unsigned se_state_history_len(const struct se_state_machine *sm);
const struct se_state_record *se_state_history_at(const struct se_state_machine *sm, unsigned i);

#endif
