/* log_store.h: this node's access-log store (issue 13; docs/architecture.md, "Access
 * logs"). The records an SE sends on LOGS frames to the node live here, in DIR/logs.db:
 * SQLite in WAL mode with synchronous=FULL, outside raft (each node holds the records it
 * received; the API merges the nodes' answers). A record is unique by (SE, seq): a
 * duplicate is dropped and counted for its SE. The SE's per-second metrics (METRICS frames,
 * their own sequence numbers) live beside them in the table "metrics", unique by (SE, seq)
 * too; a duplicate is dropped and counted apart (se_counts.metrics_duplicates_rejected),
 * so the records' summary (missing, duplicates_rejected) speaks of records only. Schema
 * version 2; a version 1 store (records only) is migrated in place when opened.
 *
 * Writes: every batch submitted during one loop iteration goes into one transaction,
 * committed on libuv's thread pool (one writer at a time), so the loop never waits for an
 * fsync; each batch's callback runs on the loop once its records are durable (or were held
 * already), in the order the batches were submitted. Retention (oldest first, by the
 * records' timestamps) runs in the writer after a commit, at most once a second: the age
 * bound deletes records and metrics records alike, the size bound deletes records only
 * (metrics are bounded by age: one small row per SE, virtual service and second).
 * Reads run on the loop thread on a second connection (WAL: they never wait for the
 * writer).
 *
 * Everything here is called on the loop thread. */
#ifndef VIGIL_LOGS_LOG_STORE_H
#define VIGIL_LOGS_LOG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

/* A LOGS frame holds at most this many records (the agreed wire format). */
#define LOG_STORE_BATCH_MAX 1024
/* A record's JSON text may be at most this long (a URI is cut at 2 KiB by the SE). */
#define LOG_STORE_RECORD_MAX 16384
/* A metrics record covers this long (the agreed wire format: one second). */
#define LOG_STORE_METRICS_INTERVAL_MS 1000

struct log_store;
struct log_store_batch;

struct log_store_config {
    const char *dir;           /* the node's data dir (borrowed for log_store_open) */
    uint64_t retention_bytes;  /* the store's size bound (pages in use) */
    int64_t retention_ms;      /* records older than this (their timestamp) are deleted */
    int64_t retention_every_ms;/* the pause between two retention passes (0: 1000) */
    unsigned commit_delay_ms;  /* the writer sleeps this long before each commit (tests; 0) */
};

/* Opens DIR/logs.db (made when absent). A version 1 store (records and se_counts only) is
 * migrated in place to version 2 (the metrics table added, its data kept; logged). A store
 * that cannot be opened, fails PRAGMA quick_check, cannot be migrated or has another
 * schema (an unknown version, tables missing) is moved aside to DIR/damaged-logs-<time>.db
 * (with its -wal and -shm files) and a new empty one is made: DAMAGE (DAMAGE_LEN bytes)
 * then holds one line saying what was found and where it went, else "". Returns the store
 * (owned by the caller, log_store_close), or NULL with a one-line reason in ERR (the new
 * store could not be made either: the node then runs without one). */
struct log_store *log_store_open(uv_loop_t *loop, const struct log_store_config *cfg,
                                 char *damage, size_t damage_len, char *err, size_t err_len);

/* A batch of one SE's records, to be filled (log_store_batch_add) and submitted. SE_UUID
 * and SE_NAME are copied: the session's authenticated SE, which keys the records. Returns
 * the batch (owned by the caller until log_store_submit; log_store_batch_free), or NULL
 * (out of memory). */
struct log_store_batch *log_store_batch_new(const char *se_uuid, const char *se_name);

/* Adds RECORD (borrowed; an object as the SE's log_record_encode writes it) with sequence
 * number SEQ. Returns 0, or VIGIL_EINVAL with a one-line reason naming the bad field in
 * WHY (the batch is unchanged; also for a batch of metrics), or VIGIL_ENOMEM /
 * VIGIL_ETOOBIG (over LOG_STORE_BATCH_MAX records, or a record over LOG_STORE_RECORD_MAX
 * bytes). */
int log_store_batch_add(struct log_store_batch *batch, uint64_t seq, const json_t *record,
                        char *why, size_t why_len);

/* A batch of one SE's per-second metrics records (METRICS frames), filled with
 * log_store_metrics_batch_add; otherwise as log_store_batch_new (submitted, cancelled and
 * freed by the same functions, committed in the same transactions as the records). */
struct log_store_batch *log_store_metrics_batch_new(const char *se_uuid, const char *se_name);

/* Adds METRIC (borrowed; an object of the wire format, docs/architecture.md "The SE
 * channel's frames": {"seq", "se_name", "vs_uuid" (or null), "vs_name", "timestamp" (RFC
 * 3339, the start of a second), "interval_ms": LOG_STORE_METRICS_INTERVAL_MS, "requests",
 * "status_classes": {"1xx", "2xx", "3xx", "4xx", "5xx", "other"} (summing to requests),
 * "bytes_in", "bytes_out", "latency_histogram": {"BUCKET": count} (buckets of
 * common/latency.h, counts summing to at most requests)}) with sequence number SEQ (the
 * metrics' own). Returns 0, or VIGIL_EINVAL with a one-line reason naming the bad field in
 * WHY (the batch is unchanged; also for a batch of records), or VIGIL_ENOMEM /
 * VIGIL_ETOOBIG (over LOG_STORE_BATCH_MAX records). */
int log_store_metrics_batch_add(struct log_store_batch *batch, uint64_t seq,
                                const json_t *metric, char *why, size_t why_len);

/* How many records (of either kind) BATCH holds. */
size_t log_store_batch_size(const struct log_store_batch *batch);

/* Frees a batch never submitted. */
void log_store_batch_free(struct log_store_batch *batch);

/* What became of a batch: ERR 0 (every record is durable: STORED new ones and DUPLICATES
 * that were held already), VIGIL_EIO (nothing of the transaction was stored) or
 * VIGIL_ESHUTDOWN (the store closed first). */
struct log_store_outcome {
    int err;
    uint64_t stored;
    uint64_t duplicates;
};
typedef void (*log_store_done_cb)(void *data, const struct log_store_outcome *outcome);

/* Queues BATCH (stolen) for the commit at the end of this loop iteration. CB(DATA, outcome)
 * runs exactly once on the loop, after the commit, in submit order, unless
 * log_store_batch_cancel is called first. BATCH stays valid (for log_store_batch_cancel)
 * until CB ran. */
void log_store_submit(struct log_store *store, struct log_store_batch *batch,
                      log_store_done_cb cb, void *data);

/* The submitter goes away (its session closed): BATCH's callback will not run; the records
 * are still committed. BATCH must not be used afterwards. */
void log_store_batch_cancel(struct log_store_batch *batch);

/* A query's filter (strings borrowed). */
struct log_store_filter {
    const char *vs_uuid;   /* the virtual service */
    int64_t since_ms;      /* record timestamps from ... */
    int64_t until_ms;      /* ... through (inclusive) */
    int status_class;      /* 1-5 (1xx-5xx), 0: any */
    const char *client_ip; /* or NULL: any */
};

/* Records matching F, newest first (timestamp, then se_name, then seq descending), at most
 * LIMIT, in the contract's shape ({"se_name", "seq", "timestamp", ...}); *TOTAL gets how
 * many match in all. Returns a new array, or NULL (VIGIL_EIO: logged). */
json_t *log_store_query(struct log_store *store, const struct log_store_filter *f,
                        int64_t limit, int64_t *total);

/* Per SE that ever sent a batch here: {"se_name", "records", "first_seq", "last_seq",
 * "missing" (seqs absent inside [first_seq, last_seq]), "duplicates_rejected"}; first_seq
 * and last_seq null while it holds no record. A new array, or NULL (VIGIL_EIO). */
json_t *log_store_summary(struct log_store *store);

/* The mergeable metrics of virtual service F->vs_uuid from the stored per-second metrics
 * records whose second starts in [F->since_ms, F->until_ms] (the access-log records are not
 * read; F's status_class and client_ip are not used: aggregates carry neither, and the API
 * refuses them; docs/api.md, "Analytics"): {"requests", "status_classes": {"1xx".."5xx",
 * "other"}, "bytes_in", "bytes_out", "latency_histogram": {"BUCKET": count} (the SEs'
 * buckets summed, only those not 0), "series": [{"time_ms", "requests", "errors_4xx",
 * "errors_5xx", "bytes_in", "bytes_out"}] (the seconds summed into steps of STEP_MS from
 * since_ms, only the steps that hold a second, oldest first)}. A new object, or NULL
 * (VIGIL_EIO: logged). Loop thread. */
json_t *log_store_metrics(struct log_store *store, const struct log_store_filter *f,
                          int64_t step_ms);

/* Stops: batches not yet committed are committed when a commit is running, then every
 * callback still due runs with VIGIL_ESHUTDOWN or its outcome; the databases close and
 * STORE is freed once the writer is idle. Nothing may be called on STORE afterwards. */
void log_store_close(struct log_store *store);

#endif
