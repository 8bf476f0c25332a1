/* se_stream.c: an SE session's LOGS and METRICS streams on its log node (se_stream.h). */
#include "controller/se_channel/se_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"

/* What tells the two kinds apart. */
struct se_stream__kind {
    const char *frame;        /* the frame's name, in the reasons */
    const char *records;      /* what it carries, in the reasons */
    enum se_frame_type ack;
    struct log_store_batch *(*batch_new)(const char *se_uuid, const char *se_name);
    int (*batch_add)(struct log_store_batch *batch, uint64_t seq, const json_t *record,
                     char *why, size_t why_len);
};

static const struct se_stream__kind se_stream__kinds[] = {
    [SE_STREAM_LOGS] = {"LOGS", "records", SE_FRAME_LOGS_ACK, log_store_batch_new,
                        log_store_batch_add},
    [SE_STREAM_METRICS] = {"METRICS", "metrics records", SE_FRAME_METRICS_ACK,
                           log_store_metrics_batch_new, log_store_metrics_batch_add},
};

void se_stream_init(struct se_stream *stream, enum se_stream_kind kind,
                    struct ssh_server_session *link, const char *se_uuid, const char *se_name)
{
    memset(stream, 0, sizeof *stream);
    stream->kind = kind;
    stream->link = link;
    stream->se_uuid = se_uuid;
    stream->se_name = se_name;
}

/* The log store made the oldest frame in flight of the stream DATA durable (or failed): its
 * ack goes out (the store calls back in submit order). A failed commit closes the session:
 * the SE keeps the records spooled and sends them again on its next session. */
static void se_stream__on_stored(void *data, const struct log_store_outcome *o)
{
    struct se_stream *st = data;
    const struct se_stream__kind *k = &se_stream__kinds[st->kind];
    uint64_t through = st->through[0];
    json_t *ack;
    char why[200];
    int rc;

    memmove(st->in_flight, st->in_flight + 1, (st->n - 1) * sizeof st->in_flight[0]);
    memmove(st->through, st->through + 1, (st->n - 1) * sizeof st->through[0]);
    st->n--;
    if (o->err != 0) {
        snprintf(why, sizeof why, "the log store could not store its %s: %s", k->records,
                 vigil_strerror(o->err));
        ssh_server_session_close(st->link, why); /* frees the session and ST */
        return;
    }
    if (o->duplicates > 0)
        vlog_info("se channel SE '%s': %s through seq %" PRIu64 ": %" PRIu64 " stored, %" PRIu64
                  " held already (dropped as duplicates)", st->se_name, k->frame, through,
                  o->stored, o->duplicates);
    ack = json_pack("{s:I}", "through_seq", (json_int_t)through);
    rc = ack != NULL ? ssh_server_session_send(st->link, k->ack, ack) : VIGIL_ENOMEM;
    if (rc != 0 && rc != VIGIL_ESHUTDOWN && rc != VIGIL_ETOOBIG)
        vlog_error("se channel SE '%s': cannot send %s: %s", st->se_name,
                   se_frame_type_name(k->ack), vigil_strerror(rc));
    json_decref(ack);
}

/* PAYLOAD's "first_seq" and "records" checked against the frame's bounds and the frames in
 * flight: 0 with *FIRST_SEQ and *RECORDS (borrowed), or VIGIL_EINVAL with WHY. */
static int se_stream__check(const struct se_stream *st, const json_t *payload,
                            uint64_t *first_seq, const json_t **records, char *why, size_t len)
{
    const struct se_stream__kind *k = &se_stream__kinds[st->kind];
    const json_t *first = json_object_get(payload, "first_seq");
    size_t n;

    *records = json_object_get(payload, "records");
    n = json_array_size(*records);
    if (!json_is_integer(first) || json_integer_value(first) < 0 || !json_is_array(*records) ||
        n == 0) {
        snprintf(why, len, "a malformed %s frame: it needs \"first_seq\" (a non-negative "
                 "integer) and \"records\" (a non-empty array)", k->frame);
        return VIGIL_EINVAL;
    }
    if (n > LOG_STORE_BATCH_MAX) {
        snprintf(why, len, "a %s frame of %zu records (at most %d)", k->frame, n,
                 LOG_STORE_BATCH_MAX);
        return VIGIL_EINVAL;
    }
    if (st->n >= SE_STREAM_IN_FLIGHT) {
        snprintf(why, len, "a %s frame while %d were not acknowledged yet (at most %d in "
                 "flight)", k->frame, SE_STREAM_IN_FLIGHT, SE_STREAM_IN_FLIGHT);
        return VIGIL_EINVAL;
    }
    *first_seq = (uint64_t)json_integer_value(first);
    return 0;
}

/* RECORDS (consecutive seqs from FIRST_SEQ) into a new batch of ST's kind: the batch, or
 * NULL with WHY. */
static struct log_store_batch *se_stream__batch(const struct se_stream *st, uint64_t first_seq,
                                                const json_t *records, char *why, size_t len)
{
    const struct se_stream__kind *k = &se_stream__kinds[st->kind];
    struct log_store_batch *batch = k->batch_new(st->se_uuid, st->se_name);
    size_t i;
    json_t *r;

    if (batch == NULL) {
        snprintf(why, len, "out of memory storing its %s frame", k->frame);
        return NULL;
    }
    json_array_foreach(records, i, r) {
        json_t *seq = json_object_get(r, "seq");
        char bad[200];
        int err;
        if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != first_seq + i) {
            snprintf(why, len, "a %s frame whose record %zu has seq %s where %" PRIu64
                     " follows (first_seq %" PRIu64 "; seqs must be consecutive)", k->frame, i,
                     json_is_integer(seq) ? "another" : "none", first_seq + i, first_seq);
            log_store_batch_free(batch);
            return NULL;
        }
        err = k->batch_add(batch, first_seq + i, r, bad, sizeof bad);
        if (err != 0) {
            snprintf(why, len, "a %s frame with a bad record (seq %" PRIu64 "): %s", k->frame,
                     first_seq + i, err == VIGIL_EINVAL || err == VIGIL_ETOOBIG
                                        ? bad : vigil_strerror(err));
            log_store_batch_free(batch);
            return NULL;
        }
    }
    return batch;
}

int se_stream_receive(struct se_stream *stream, struct log_store *store, const json_t *payload,
                      char *why, size_t why_len)
{
    const struct se_stream__kind *k = &se_stream__kinds[stream->kind];
    const json_t *records = NULL;
    struct log_store_batch *batch;
    uint64_t first_seq = 0;

    if (se_stream__check(stream, payload, &first_seq, &records, why, why_len) != 0)
        return VIGIL_EINVAL;
    if (store == NULL) {
        if (!stream->unstored_told)
            vlog_warn("se channel SE '%s': %s frames not stored (this node has no log store): "
                      "they stay unacknowledged, spooled on the SE", stream->se_name, k->frame);
        stream->unstored_told = 1;
        return 0;
    }
    batch = se_stream__batch(stream, first_seq, records, why, why_len);
    if (batch == NULL)
        return VIGIL_EINVAL;
    stream->in_flight[stream->n] = batch;
    stream->through[stream->n] = first_seq + json_array_size(records) - 1;
    stream->n++;
    log_store_submit(store, batch, se_stream__on_stored, stream);
    return 0;
}

void se_stream_cancel(struct se_stream *stream)
{
    for (unsigned i = 0; i < stream->n; i++) /* stored all the same, never acked here */
        log_store_batch_cancel(stream->in_flight[i]);
    stream->n = 0;
}
