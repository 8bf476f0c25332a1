/* log_spool.h: the access-log spool of an SE with controllers: an append-only on-disk
 * queue of records waiting for delivery to the controller, behind the log_sink interface,
 * plus the reader side (peek, ack) that the delivery code uses. Loop thread only.
 *
 * On disk, DIR/spool/ holds:
 *   NNNNNNNNNNNNNNNNNNNN.seg  segments, numbered from 1 (20 decimal digits), appended in
 *                             order; a new one starts when the current one would pass the
 *                             segment size. Each is a run of frames, no file header:
 *        offset 0  4 bytes  magic F5 56 53 31 ("\xF5VS1"; 0xF5 never occurs in UTF-8 text,
 *                           the 1 is the format version)
 *               4  u32 LE   payload length L (1 .. LOG_RECORD_LINE_MAX)
 *               8  u64 LE   the record's seq (strictly increasing through the spool)
 *              16  u32 LE   CRC-32C of bytes 4..15 followed by the payload
 *              20  L bytes  the payload: the record's JSON line from log_record_encode,
 *                           '\n' included, stored and sent as is
 *   acked                     the ack mark: the highest seq the controller acknowledged,
 *                             decimal and '\n', replaced atomically (file_write_atomic)
 *
 * "Reached the spool": a record reached the spool once its frame was written with
 * write(2) to its segment. The spool batches: append() encodes into memory, and a
 * uv_check handle writes the batch at the first check phase after the append: the end of
 * the same loop iteration for records appended from I/O, idle or (libuv 1.44) timer
 * callbacks, the next one for records appended after it (close callbacks, other check
 * handles); an idle handle, active while a batch waits, keeps any poll before that from
 * blocking, so a record never waits for an event. A batch of 256 KiB, flush(), peek(),
 * ack() and close() write at once. The page cache survives the process: kill -9 of the SE
 * loses nothing that reached the spool, only records appended since the last check phase.
 *
 * fsync policy: data written is fsynced (asynchronously, on libuv's thread pool) 100 ms
 * after the first write since the last fsync (a one-shot timer: an idle spool wakes
 * nobody) and whenever 4 MiB were written since the last one, and a finished segment is
 * fsynced (with the directory) when the next one starts. A power loss therefore costs at
 * most the records written in the last ~100 ms (or 4 MiB), never a record before an older
 * fsync. The ack mark is fsynced before any segment is deleted: after a power loss acked
 * records are never delivered again, and a record lost from the unsynced tail leaves no
 * gap the controller would wait for (the next seq comes from log_seq, which skips ahead).
 *
 * Cap: the bytes of all segments plus the batch in memory never exceed CAP_BYTES. A record
 * that would pass it is dropped and counted (dropped); the first drop of an episode is
 * logged once and counted in drop_episodes (and reported through on_drop_episode); the
 * episode ends when an ack deletes a segment. A failed write drops its batch the same way.
 * Space is freed by deleting whole segments, so the segment size is at most cap / 4.
 *
 * Recovery (open): every segment is read; every whole frame with a valid CRC and a seq above
 * the previous one is kept, in order. Bytes after the last valid frame of the newest
 * segment are a torn tail: the segment is truncated there and one line logs the file, the
 * offset and the bytes dropped. Bad bytes followed by a valid frame are damage: the reader
 * resynchronises on the next magic whose frame checks out, counts the bytes skipped and logs
 * one line per segment. Segments wholly at or below the ack mark are deleted.
 *
 * What the delivery side (log_delivery.c) does: peek from log_spool_first_unacked() (or
 * from the seq after the last one sent, while sends are in flight), send the payloads in
 * order, and call log_spool_ack() with the highest seq the controller confirmed it stored
 * (coalesced, at most every ~100 ms: each call fsyncs twice). After a
 * reconnection it peeks again from log_spool_first_unacked(): records sent but not acked
 * are sent again, so the controller must drop a seq it already stored (per SE name). */
#ifndef VIGIL_SE_LOG_SPOOL_H
#define VIGIL_SE_LOG_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "se/log_sink.h"

/* The default of --spool-cap-mb. */
#define LOG_SPOOL_DEFAULT_CAP_MB 1024

struct log_spool;

struct log_spool_options {
    uint64_t cap_bytes;     /* the size cap (0: LOG_SPOOL_DEFAULT_CAP_MB MiB) */
    uint64_t segment_bytes; /* a segment's size (0: 16 MiB); at most cap / 4, at least 64 KiB */
    const char *subdir;     /* the spool's folder in DIR (NULL: "spool"; borrowed, must
                             * outlive the spool): the metrics spool is "spool-metrics" */
    /* Called (may be NULL) on the loop thread when a drop episode starts, with its number
     * (1, 2, ...) and ARG: the caller raises SE_LOGS_DROPPED. */
    void (*on_drop_episode)(void *arg, uint64_t episode);
    void *arg;
};

/* What the last open found on disk. */
struct log_spool_recovery {
    uint64_t segments;       /* segment files read */
    uint64_t records;        /* whole valid records found (acked ones too) */
    uint64_t torn_bytes;     /* bytes cut from the newest segment's tail */
    uint64_t damaged_bytes;  /* bytes skipped inside segments (damage) */
    uint64_t damaged_ranges; /* runs of bad bytes skipped */
};

/* One record handed to a peek callback. DATA (LEN bytes, the JSON line with its '\n') is
 * borrowed: valid only during the callback. */
struct log_spool_record {
    uint64_t seq;
    const char *data;
    size_t len;
};

/* Called by log_spool_peek for each record, in seq order; returns 0 to go on, non-zero to
 * stop after this record. It must not call the spool (copy what it keeps). */
typedef int (*log_spool_record_fn)(void *arg, const struct log_spool_record *rec);

/* Opens (creating) DIR/spool (or DIR/OPTS->subdir) on LOOP and recovers what it holds (see above). SE_NAME
 * (borrowed, must outlive the spool) goes into each record; OPTS (borrowed, may be NULL)
 * is copied. Returns 0 and the spool in *OUT, owned by the caller and freed through
 * log_sink_close(log_spool_sink(spool)) (which writes and fsyncs what is pending; run the
 * loop until the close completes), or VIGIL_EIO / VIGIL_ECORRUPT (an unreadable ack mark) /
 * VIGIL_ENOMEM; then *OUT is untouched. */
int log_spool_open(uv_loop_t *loop, const char *dir, const char *se_name,
                   const struct log_spool_options *opts, struct log_spool **out);

/* The spool as a log sink (borrowed from SPOOL, same lifetime). append() takes records with
 * strictly increasing seq; a record whose seq is not above the last one is refused
 * (VIGIL_EINVAL, counted dropped). stats(): generated and dropped count this run,
 * acked the records acknowledged this run, spooled the records not yet acked (on disk or
 * in the batch being written). */
struct log_sink *log_spool_sink(struct log_spool *spool);

/* Appends a record that is not an access-log record (the SE's per-second metrics,
 * vs_metrics.h): LINE (LEN bytes, borrowed) is its JSON object with "seq" SEQ, ending in
 * '\n', stored and delivered as is. As the sink's append() otherwise: SEQ must be above
 * the last one (else VIGIL_EINVAL), the cap applies (VIGIL_ENOSPC), a line over
 * LOG_RECORD_LINE_MAX or without its '\n' is VIGIL_ETOOBIG; each refusal counted dropped. */
int log_spool_append_line(struct log_spool *spool, uint64_t seq, const char *line, size_t len);

/* Writes the pending batch, then calls FN(ARG, record) for the records with seq >= FROM_SEQ
 * in order, up to MAX_RECORDS and MAX_BYTES of payload (at least one record when there is
 * one, whatever its size), or until FN returns non-zero. Returns the number of records
 * given (0: none yet), or VIGIL_EIO when a segment cannot be read. */
int log_spool_peek(struct log_spool *spool, uint64_t from_seq, size_t max_records,
                   size_t max_bytes, log_spool_record_fn fn, void *arg);

/* The controller stored every record with seq <= THROUGH_SEQ: records the new mark durably
 * (DIR/spool/acked, fsynced; a synchronous write of a few bytes), then deletes the segments
 * holding only acked records. A mark at or below the current one changes nothing. Returns
 * 0, VIGIL_EINVAL when THROUGH_SEQ is above the last seq appended, or a negative errno
 * when the mark cannot be written (then nothing is deleted and the old mark holds). */
int log_spool_ack(struct log_spool *spool, uint64_t through_seq);

/* Where delivery peeks from after a (re)connection: one above the ack mark (seqs need not
 * be consecutive: peek gives the first record at or above it). */
uint64_t log_spool_first_unacked(const struct log_spool *spool);

/* The ack mark: the highest seq acknowledged (0: none yet). */
uint64_t log_spool_acked_through(const struct log_spool *spool);

/* Drop episodes started since open (each one reported once through on_drop_episode). */
uint64_t log_spool_drop_episodes(const struct log_spool *spool);

/* The highest seq appended (0: none yet; recovered at open). */
uint64_t log_spool_last_seq(const struct log_spool *spool);

/* What the cap cost this run, for the HEARTBEAT's "logs" (the controller raises
 * SE_LOGS_DROPPED once per episode from it). */
struct log_spool_drops {
    uint64_t dropped;         /* records dropped this run (the sink's stats' dropped) */
    uint64_t episodes;        /* drop episodes started this run */
    uint64_t episode_dropped; /* records dropped in the newest episode (kept once it ended) */
    uint64_t cap_bytes;       /* the size cap */
};

/* Fills *OUT. */
void log_spool_drops(const struct log_spool *spool, struct log_spool_drops *out);

/* 1 when log_spool_ack(SPOOL, THROUGH_SEQ) would delete a segment (free space, end a drop
 * episode), else 0: the delivery side acks at once then instead of waiting to coalesce. */
int log_spool_ack_would_free(const struct log_spool *spool, uint64_t through_seq);

/* Bytes the spool occupies on disk and in its pending batch (what the cap limits). */
uint64_t log_spool_bytes(const struct log_spool *spool);

/* Has FN(ARG) called on the loop thread each time a batch of records reached the spool
 * (was written to its segment), from inside the spool's calls (append, flush, peek, ack,
 * close, the end of a loop iteration): FN must not call the spool (arm a timer instead).
 * One watcher; FN NULL removes it. The delivery side sends new records on it instead of
 * polling the spool. */
void log_spool_set_on_written(struct log_spool *spool, void (*fn)(void *arg), void *arg);

/* What open recovered, into *OUT. */
void log_spool_recovery(const struct log_spool *spool, struct log_spool_recovery *out);

#endif
