/* log_delivery.c: spooled records to the log node as LOGS frames, LOGS_ACKs into the spool
 * (see log_delivery.h). */
#include "se/log_delivery.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"

/* A frame sent to the target and not wholly acknowledged. */
struct log_delivery__flight {
    uint64_t last_seq;
    size_t bytes;
};

struct log_delivery {
    uv_loop_t *loop;
    struct log_spool *spool;
    struct log_delivery_transport t;
    void *target;             /* NULL: none */
    uint64_t next_seq;        /* the next peek starts here */
    uint64_t sent_through;    /* highest seq sent to the target (0: none yet) */
    uint64_t acked_through;   /* highest seq the target acknowledged (may be above the
                               * spool's mark until the coalesced commit) */
    struct log_delivery__flight flights[LOG_DELIVERY_WINDOW_FRAMES]; /* oldest first */
    unsigned n_flights;
    size_t flight_bytes;
    int64_t last_commit_mono_ms;
    bool peek_failed;         /* logged once until a peek works again */

    struct buf frame;         /* the LOGS payload being built */
    uint64_t frame_first;
    uint64_t frame_last;
    size_t frame_records;

    uv_timer_t pump_timer;    /* one shot: the next pump while records wait (see .h) */
    uv_timer_t ack_timer;     /* the coalesced commit */
    unsigned handles_open;
    struct log_delivery_stats stats;
};

static void log_delivery__handle_closed(uv_handle_t *h)
{
    struct log_delivery *d = h->data;
    if (--d->handles_open == 0) {
        buf_free(&d->frame);
        free(d);
    }
}

/* Writes the acks taken to the spool (its mark, fsynced) when they are above its mark. */
static void log_delivery__commit(struct log_delivery *d)
{
    int rc;

    uv_timer_stop(&d->ack_timer);
    if (d->acked_through <= log_spool_acked_through(d->spool))
        return;
    d->last_commit_mono_ms = time_mono_ms();
    d->stats.spool_acks++;
    rc = log_spool_ack(d->spool, d->acked_through);
    if (rc != 0) /* the old mark holds: those records are sent again after a reconnection */
        vlog_error("log_delivery: cannot record the ack through seq %" PRIu64 ": %s",
                   d->acked_through, vigil_strerror(rc));
}

static void log_delivery__on_ack_timer(uv_timer_t *t)
{
    log_delivery__commit(t->data);
}

/* A peek callback: adds REC to the frame being built, or stops (returns 1, REC left out) at
 * a gap in the seqs or when REC would pass the frame's limits. */
static int log_delivery__add_record(void *arg, const struct log_spool_record *rec)
{
    struct log_delivery *d = arg;
    size_t len = rec->len;
    char head[64];
    int n;

    if (len > 0 && rec->data[len - 1] == '\n')
        len--;
    if (d->frame_records > 0 &&
        (rec->seq != d->frame_last + 1 || d->frame_records >= LOG_DELIVERY_FRAME_RECORDS ||
         d->frame.len + 1 + len + 2 > LOG_DELIVERY_FRAME_BYTES))
        return 1;
    if (d->frame_records == 0) {
        n = snprintf(head, sizeof head, "{\"first_seq\":%" PRIu64 ",\"records\":[", rec->seq);
        if (buf_append(&d->frame, head, (size_t)n) != 0)
            return 1;
        d->frame_first = rec->seq;
    } else if (buf_append(&d->frame, ",", 1) != 0) {
        return 1;
    }
    if (buf_append(&d->frame, rec->data, len) != 0)
        return 1;
    d->frame_last = rec->seq;
    d->frame_records++;
    return 0;
}

/* Builds the next frame from NEXT_SEQ into D->frame. Returns the records in it (0: nothing
 * to send now), or VIGIL_EIO / VIGIL_ENOMEM. */
static int log_delivery__build(struct log_delivery *d)
{
    int rc;

    d->frame.len = 0;
    d->frame_records = 0;
    rc = log_spool_peek(d->spool, d->next_seq, LOG_DELIVERY_FRAME_RECORDS,
                        LOG_DELIVERY_FRAME_BYTES, log_delivery__add_record, d);
    if (rc < 0) {
        if (!d->peek_failed)
            vlog_error("log_delivery: cannot read the spool from seq %" PRIu64 ": %s; trying "
                       "again", d->next_seq, vigil_strerror(rc));
        d->peek_failed = true;
        return rc;
    }
    d->peek_failed = false;
    if (d->frame_records == 0)
        return 0;
    if (buf_append(&d->frame, "]}", 2) != 0)
        return VIGIL_ENOMEM;
    return (int)d->frame_records;
}

/* True when the window and the target's queue take one more frame. */
static bool log_delivery__window_open(const struct log_delivery *d)
{
    return d->target != NULL && d->n_flights < LOG_DELIVERY_WINDOW_FRAMES &&
           d->flight_bytes < LOG_DELIVERY_WINDOW_BYTES &&
           d->t.queued(d->target) < LOG_DELIVERY_QUEUE_MAX;
}

static void log_delivery__on_pump_timer(uv_timer_t *t);

/* Arms the pump timer (one shot, LOG_DELIVERY_PUMP_MS) when records wait to be sent to a
 * target and it is not armed; stops it when nothing waits: an idle SE wakes for nothing. */
static void log_delivery__arm(struct log_delivery *d)
{
    bool waiting = d->target != NULL && d->next_seq <= log_spool_last_seq(d->spool);

    if (!waiting)
        uv_timer_stop(&d->pump_timer);
    else if (!uv_is_active((uv_handle_t *)&d->pump_timer))
        uv_timer_start(&d->pump_timer, log_delivery__on_pump_timer, LOG_DELIVERY_PUMP_MS, 0);
}

/* The spool wrote a batch (log_spool_set_on_written): send it within LOG_DELIVERY_PUMP_MS
 * (records written meanwhile go in the same frames). Never pumps here: the spool is in
 * one of its own calls. */
static void log_delivery__on_written(void *arg)
{
    log_delivery__arm(arg);
}

/* Sends frames while the window is open and records wait; stops early when a frame cannot
 * be built or sent (the pump timer, armed after, or a new target tries again). */
static void log_delivery__send_frames(struct log_delivery *d)
{
    while (log_delivery__window_open(d) && d->next_seq <= log_spool_last_seq(d->spool)) {
        struct log_delivery__flight *f;
        if (log_delivery__build(d) <= 0)
            return;
        if (d->t.send(d->target, d->frame.data, d->frame.len) != 0)
            return; /* the session is going: its owner sets a new target */
        f = &d->flights[d->n_flights++];
        f->last_seq = d->frame_last;
        f->bytes = d->frame.len;
        d->flight_bytes += f->bytes;
        d->sent_through = d->frame_last;
        d->next_seq = d->frame_last + 1;
        d->stats.frames_sent++;
        d->stats.records_sent += d->frame_records;
        if (d->n_flights > d->stats.max_frames_in_flight)
            d->stats.max_frames_in_flight = d->n_flights;
    }
}

void log_delivery_pump(struct log_delivery *d)
{
    log_delivery__send_frames(d);
    buf_trim(&d->frame, 2 * LOG_DELIVERY_FRAME_BYTES);
    log_delivery__arm(d);
}

static void log_delivery__on_pump_timer(uv_timer_t *t)
{
    log_delivery_pump(t->data);
}

int log_delivery_create(uv_loop_t *loop, struct log_spool *spool,
                        const struct log_delivery_transport *t, struct log_delivery **out)
{
    struct log_delivery *d = calloc(1, sizeof *d);

    if (d == NULL)
        return VIGIL_ENOMEM;
    d->loop = loop;
    d->spool = spool;
    d->t = *t;
    d->next_seq = log_spool_first_unacked(spool);
    d->acked_through = log_spool_acked_through(spool);
    buf_init(&d->frame);
    uv_timer_init(loop, &d->pump_timer);
    uv_timer_init(loop, &d->ack_timer);
    d->pump_timer.data = d->ack_timer.data = d;
    d->handles_open = 2;
    log_spool_set_on_written(spool, log_delivery__on_written, d);
    *out = d;
    return 0;
}

void log_delivery_set_target(struct log_delivery *d, void *session)
{
    log_delivery__commit(d);
    d->target = session;
    d->n_flights = 0;
    d->flight_bytes = 0;
    d->sent_through = 0;
    d->acked_through = log_spool_acked_through(d->spool);
    d->next_seq = log_spool_first_unacked(d->spool);
    if (session == NULL) {
        uv_timer_stop(&d->pump_timer);
        return;
    }
    d->stats.restarts++;
    log_delivery_pump(d);
}

void *log_delivery_target(const struct log_delivery *d)
{
    return d->target;
}

/* THROUGH (checked) was acknowledged: frames wholly at or below it leave the window. */
static void log_delivery__release(struct log_delivery *d, uint64_t through)
{
    unsigned done = 0;

    while (done < d->n_flights && d->flights[done].last_seq <= through)
        d->flight_bytes -= d->flights[done++].bytes;
    memmove(d->flights, d->flights + done, (d->n_flights - done) * sizeof *d->flights);
    d->n_flights -= done;
}

int log_delivery_on_ack(struct log_delivery *d, void *session, const json_t *payload,
                        const char *address)
{
    json_t *v = json_object_get(payload, "through_seq");
    int64_t now = time_mono_ms(), wait;
    uint64_t through;

    if (session == NULL || session != d->target)
        return 0; /* an old log node's, or before its WELCOME: delivery starts over anyway */
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        d->stats.bad_acks++;
        vlog_warn("log_delivery %s: %s refused: through_seq must be a non-negative "
                  "integer", address, d->t.ack_name != NULL ? d->t.ack_name : "LOGS_ACK");
        return VIGIL_EINVAL;
    }
    through = (uint64_t)json_integer_value(v);
    if (through <= d->acked_through) {
        d->stats.acks++;
        return 0; /* records already acknowledged (or held): nothing new */
    }
    if (through > d->sent_through) {
        d->stats.bad_acks++;
        vlog_warn("log_delivery %s: %s refused: through_seq %" PRIu64 " is above the last "
                  "record sent on this session (%" PRIu64 ")", address,
                  d->t.ack_name != NULL ? d->t.ack_name : "LOGS_ACK", through, d->sent_through);
        return VIGIL_EINVAL;
    }
    d->stats.acks++;
    d->acked_through = through;
    log_delivery__release(d, through);
    wait = LOG_DELIVERY_ACK_MS - (now - d->last_commit_mono_ms);
    if (wait <= 0 || log_spool_ack_would_free(d->spool, through))
        log_delivery__commit(d);
    else if (!uv_is_active((uv_handle_t *)&d->ack_timer))
        uv_timer_start(&d->ack_timer, log_delivery__on_ack_timer, (uint64_t)wait, 0);
    log_delivery_pump(d);
    return 0;
}

void log_delivery_stats(const struct log_delivery *d, struct log_delivery_stats *out)
{
    *out = d->stats;
    out->frames_in_flight = d->n_flights;
}

void log_delivery_close(struct log_delivery *d)
{
    log_delivery__commit(d);
    log_spool_set_on_written(d->spool, NULL, NULL);
    d->target = NULL;
    uv_close((uv_handle_t *)&d->pump_timer, log_delivery__handle_closed);
    uv_close((uv_handle_t *)&d->ack_timer, log_delivery__handle_closed);
}
