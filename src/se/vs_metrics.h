/* vs_metrics.h: the SE's per-virtual-service metrics, counted each second and spooled so
 * that analytics have no gap (issue 13, "Metrics without a gap"; docs/architecture.md).
 *
 * Every access-log record the engine makes (engine_log) is counted into the cell of its
 * virtual service for the second in which it was logged (the request's end): requests,
 * status classes, bytes in and out, and a latency histogram of total_ms in the buckets
 * of common/latency.h. Once a second has ended, each of its cells becomes one metrics
 * record, numbered from DIR/metrics.seq (log_seq.h: never reused), and goes into the
 * metrics spool (log_spool_append_line), which the controller link delivers to the log
 * node as METRICS frames. A second without requests makes no record, and an idle SE no
 * wakeup: the one-shot timer is armed by the first count of a second.
 *
 * What a failure costs: kill -9 loses the counts of the second not yet ended (the
 * records of those requests are in the access-log spool already); a clean stop spools
 * the second in progress (a later record for the same second, from the next run, adds to
 * it: metrics records are summed). The spool's cap applies (a record that would pass it
 * is dropped and counted, in the metrics spool's own counters). Loop thread only. */
#ifndef VIGIL_SE_VS_METRICS_H
#define VIGIL_SE_VS_METRICS_H

#include <stdint.h>
#include <uv.h>

#include "se/log_record.h"
#include "se/log_seq.h"
#include "se/log_spool.h"

/* The metrics spool's folder in the data dir. */
#define VS_METRICS_SPOOL_DIR "spool-metrics"

struct vs_metrics;

/* Makes the counter on LOOP, numbering records with SEQ and spooling them into SPOOL
 * (both borrowed: they must outlive it; SEQ for DIR/metrics.seq, SPOOL for
 * DIR/spool-metrics). SE_NAME (borrowed) goes into each record. Returns 0 and *OUT (owned
 * by the caller, vs_metrics_close), or VIGIL_ENOMEM. */
int vs_metrics_create(uv_loop_t *loop, const char *se_name, struct log_seq *seq,
                      struct log_spool *spool, struct vs_metrics **out);

/* Counts record R (borrowed; its vs_uuid, vs_name, status, bytes and total_ms) into the
 * current second at the wall clock NOW_MS. */
void vs_metrics_count(struct vs_metrics *m, const struct log_record *r, int64_t now_ms);

/* Spools every cell of the seconds before NOW_MS's (the timer does this each second). */
void vs_metrics_flush_before(struct vs_metrics *m, int64_t now_ms);

/* Spools every cell, the second in progress included, and frees M once its timer closed
 * (run the loop). The spool and the seq are not touched after this returns. */
void vs_metrics_close(struct vs_metrics *m);

#endif
