/* log_delivery.h: sends the spooled access-log records (log_spool) to the SE's log node as
 * LOGS frames and records the node's LOGS_ACKs in the spool. Loop thread only.
 *
 * Wire (docs/architecture.md, "The SE channel's frames"):
 *   LOGS      {"first_seq": N, "records": [R, ...]}: records with consecutive seqs from
 *             first_seq (a gap in the spool starts a new frame), each R the record's JSON
 *             line as log_record_encode wrote it (without its '\n'; it carries "seq"), at
 *             most LOG_DELIVERY_FRAME_RECORDS records and LOG_DELIVERY_FRAME_BYTES of payload.
 *   LOGS_ACK  {"through_seq": N}: the node stored durably (or already held) every record
 *             with seq <= N it was sent; acks come in order.
 *
 * Flow control: to one session only (the target: the log node's, set by the owner), oldest
 * first, at most LOG_DELIVERY_WINDOW_FRAMES frames and LOG_DELIVERY_WINDOW_BYTES bytes sent
 * and not wholly acknowledged, and no new frame while the session holds
 * LOG_DELIVERY_QUEUE_MAX bytes not yet written. Frames go out as bulk frames, behind the
 * control frames (heartbeats never wait behind logs). The data plane never waits: records
 * keep going to the spool whatever delivery does. The spool tells delivery when it wrote a
 * batch (log_spool_set_on_written): new records are sent LOG_DELIVERY_PUMP_MS later (those
 * written meanwhile share the frames); while records wait for room in the window, delivery
 * looks again every LOG_DELIVERY_PUMP_MS (and at each ack); with nothing to send, no timer
 * runs (an idle SE wakes only for its heartbeats).
 *
 * Acks are coalesced: log_spool_ack (a synchronous write with two fsyncs) runs at most every
 * LOG_DELIVERY_ACK_MS, at once when the ack would delete a segment (space, the end of a drop
 * episode), and before the target changes or delivery closes. A new target (or the same
 * session opened again) starts from log_spool_first_unacked(): what was in flight and not
 * acknowledged is sent again (the node drops a seq it already holds). */
#ifndef VIGIL_SE_LOG_DELIVERY_H
#define VIGIL_SE_LOG_DELIVERY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "se/log_spool.h"

#define LOG_DELIVERY_FRAME_RECORDS 1024
#define LOG_DELIVERY_FRAME_BYTES (1u << 20)
#define LOG_DELIVERY_WINDOW_FRAMES 4
#define LOG_DELIVERY_WINDOW_BYTES (4u << 20)
#define LOG_DELIVERY_QUEUE_MAX (1u << 20)
#define LOG_DELIVERY_PUMP_MS 20
#define LOG_DELIVERY_ACK_MS 100

struct log_delivery;

/* How frames reach a session; SESSION is the owner's (opaque here). */
struct log_delivery_transport {
    /* Queues one LOGS frame whose payload is TEXT (LEN bytes, borrowed) on SESSION. Returns
     * 0, or a negative code (nothing queued: delivery waits for a new target). */
    int (*send)(void *session, const char *text, size_t len);
    /* Bytes queued on SESSION and not yet written. */
    size_t (*queued)(void *session);
    /* The acknowledging frame's name in log lines ("LOGS_ACK" when NULL). */
    const char *ack_name;
};

/* Counters, for tests and logs. */
struct log_delivery_stats {
    uint64_t frames_sent;
    uint64_t records_sent;        /* resends included */
    uint64_t restarts;            /* targets set (each resends from the ack mark) */
    uint64_t acks;                /* LOGS_ACKs taken */
    uint64_t bad_acks;            /* LOGS_ACKs refused (logged) */
    uint64_t spool_acks;          /* log_spool_ack calls (coalesced) */
    unsigned frames_in_flight;    /* now */
    unsigned max_frames_in_flight;
};

/* Makes a delivery on LOOP for SPOOL (borrowed; it must outlive the delivery) through T
 * (copied). No target yet. Returns 0 and the delivery in *OUT (owned by the caller, ended
 * with log_delivery_close), or VIGIL_ENOMEM (*OUT untouched). */
int log_delivery_create(uv_loop_t *loop, struct log_spool *spool,
                        const struct log_delivery_transport *t, struct log_delivery **out);

/* Delivers to SESSION from now on (borrowed; NULL: to none, records wait in the spool):
 * commits the acks taken so far to the spool, forgets what was in flight, and starts again
 * from log_spool_first_unacked(). Call it with the log node's session once its WELCOME came
 * (also when it is the same session opened again), and with NULL when that session closes
 * or another node becomes the log node. */
void log_delivery_set_target(struct log_delivery *d, void *session);

/* The current target (NULL: none). */
void *log_delivery_target(const struct log_delivery *d);

/* A LOGS_ACK PAYLOAD (borrowed) arrived on SESSION. From the target: frames acknowledged
 * through "through_seq" leave the window, the ack reaches the spool (coalesced), and more is
 * sent. From another session: ignored (0). Returns 0, or VIGIL_EINVAL for a malformed ack or
 * one above the last seq sent to the target (one line logged naming ADDRESS, borrowed;
 * nothing changes). */
int log_delivery_on_ack(struct log_delivery *d, void *session, const json_t *payload,
                        const char *address);

/* Sends what the window and the target's queue allow now (also run by the pump timer). */
void log_delivery_pump(struct log_delivery *d);

/* Fills *OUT. */
void log_delivery_stats(const struct log_delivery *d, struct log_delivery_stats *out);

/* Commits the acks taken to the spool, stops, and frees D once its timers closed (run the
 * loop). D must not be used afterwards; the spool is not touched after this returns. */
void log_delivery_close(struct log_delivery *d);

#endif
