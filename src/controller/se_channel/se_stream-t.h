/* se_stream-t.h: the type of one of an SE session's two delivered streams on its log node
 * (LOGS or METRICS; se_stream.h), embedded in the session (se_session.c). */
#ifndef VIGIL_SE_CHANNEL_SE_STREAM_T_H
#define VIGIL_SE_CHANNEL_SE_STREAM_T_H

#include <stdint.h>

/* Frames of one stream an SE may have unacknowledged on one session (the agreed wire
 * format, docs/architecture.md "The SE channel's frames"). */
#define SE_STREAM_IN_FLIGHT 4

struct log_store_batch;
struct ssh_server_session;

enum se_stream_kind {
    SE_STREAM_LOGS,    /* LOGS -> the records, LOGS_ACK */
    SE_STREAM_METRICS, /* METRICS -> the per-second metrics records, METRICS_ACK */
};

/* Owned by the session that embeds it (se_stream_init); its fields are se_stream.c's. */
struct se_stream {
    enum se_stream_kind kind;
    struct ssh_server_session *link; /* the session's (borrowed) */
    const char *se_uuid, *se_name;   /* the session's (borrowed, as long as the stream) */
    /* The frames handed to the log store and not yet acked, oldest first, and the
     * through_seq each one's ack will carry. */
    struct log_store_batch *in_flight[SE_STREAM_IN_FLIGHT];
    uint64_t through[SE_STREAM_IN_FLIGHT];
    unsigned n;
    int unstored_told; /* "no log store here" logged for this stream */
};

#endif
