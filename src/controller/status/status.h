/* status.h: the cluster status machine of the contract ("status is exactly one of the
 * seed's words"). status_move() is the only function that changes a status; it checks the
 * move against the contract's table of legal moves and records it in the history. */
#ifndef VIGIL_STATUS_H
#define VIGIL_STATUS_H

#include <stdint.h>
#include <jansson.h>

enum cluster_status {
    STATUS_NOT_RESPONSIVE = 0,
    STATUS_ERRORS,
    STATUS_RESTORING,
    STATUS_WAITING_FOR_SES,
    STATUS_COPYING_DB,
    STATUS_READY,
    STATUS__COUNT
};

#define STATUS_HISTORY_MAX 128
#define STATUS_REASON_MAX 512

struct status_record {
    enum cluster_status status;
    int64_t time_ms;
    char reason[STATUS_REASON_MAX];
};

/* Owned by its embedder; no allocation. */
struct status_machine {
    enum cluster_status current;
    int64_t since_ms;
    char reason[STATUS_REASON_MAX];
    struct status_record history[STATUS_HISTORY_MAX]; /* ring */
    unsigned history_start;
    unsigned history_len;
};

/* "Ready", "Not Responsive", ... (static strings, the contract's exact words). */
const char *status_name(enum cluster_status s);

/* Starts in Not Responsive at NOW_MS, recorded as the first history entry. */
void status_init(struct status_machine *sm, int64_t now_ms, const char *reason);

/* True if the contract allows FROM -> TO. */
int status_move_legal(enum cluster_status from, enum cluster_status to);

/* Moves to TO with REASON (what was observed) at NOW_MS. Returns 0, or VIGIL_EINVAL for
 * an illegal move, which changes nothing (and is logged). Moving to the current status
 * is illegal too: callers move only on a change. */
int status_move(struct status_machine *sm, enum cluster_status to, const char *reason,
                int64_t now_ms);

/* Replaces the reason of the current status (what it is waiting for now), without a move;
 * the history keeps the reason given at the move. */
void status_set_reason(struct status_machine *sm, const char *reason);

/* [{"status", "time", "reason"}], oldest first. New reference. */
json_t *status_history_json(const struct status_machine *sm);

#endif
