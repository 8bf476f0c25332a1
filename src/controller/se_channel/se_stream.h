/* se_stream.h: one of an SE session's two delivered streams on its log node, LOGS (the
 * access-log records) or METRICS (the per-second metrics records), the same protocol for
 * both (docs/architecture.md, "Access logs" and "The SE channel's frames"): a frame
 * {"first_seq", "records": [...]} holds 1 to LOG_STORE_BATCH_MAX records with the
 * consecutive seqs from first_seq (each stream its own sequence space); at most
 * SE_STREAM_IN_FLIGHT frames are unacknowledged; each frame is one log store batch, acked
 * ({"through_seq"}: LOGS_ACK or METRICS_ACK) once durable, in frame order. A malformed
 * frame, or a failed commit, closes the session. Everything here runs on the loop. */
#ifndef VIGIL_SE_CHANNEL_SE_STREAM_H
#define VIGIL_SE_CHANNEL_SE_STREAM_H

#include <stddef.h>
#include <jansson.h>

#include "controller/logs/log_store.h"
#include "controller/se_channel/se_stream-t.h"
#include "controller/se_channel/ssh_server.h"

/* Makes STREAM (the caller's, embedded in its session) an empty stream of KIND on LINK
 * for the SE SE_UUID / SE_NAME (all borrowed: they must outlive the stream). */
void se_stream_init(struct se_stream *stream, enum se_stream_kind kind,
                    struct ssh_server_session *link, const char *se_uuid, const char *se_name);

/* A frame of STREAM's kind with PAYLOAD (borrowed): checked, every record checked
 * (log_store_batch_add / log_store_metrics_batch_add) and handed to STORE (borrowed; NULL:
 * this node has none, the frame is left unacknowledged, spooled on the SE, and that is
 * logged once per stream). Its ack goes out once the store made it durable; a failed
 * commit closes the session then (ssh_server_session_close, with the reason). Returns 0,
 * or VIGIL_EINVAL with a one-line reason in WHY naming the bad part (nothing stored: the
 * caller closes the session). */
int se_stream_receive(struct se_stream *stream, struct log_store *store, const json_t *payload,
                      char *why, size_t why_len);

/* The session closes: the frames in flight are still committed but never acked (their
 * callbacks will not run). STREAM must not be used afterwards. */
void se_stream_cancel(struct se_stream *stream);

#endif
