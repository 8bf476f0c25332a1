/* log_sink.h: where access-log records go. An interface (a table of functions) so the
 * standalone file writer (log_file) and the controller channel's on-disk spool can both
 * take the records the proxies make. All calls run on the SE loop thread. */
#ifndef VIGIL_SE_LOG_SINK_H
#define VIGIL_SE_LOG_SINK_H

#include <stdint.h>

#include "se/log_record.h"

/* The counters of GET /status "logs". */
struct log_sink_stats {
    uint64_t generated; /* records handed to the sink */
    uint64_t acked;     /* records safely delivered (written to the file; acknowledged by a controller) */
    uint64_t spooled;   /* records waiting on disk for delivery */
    uint64_t dropped;   /* records lost (a spool cap, a failed write) */
};

struct log_sink;

struct log_sink_ops {
    /* Takes record R (borrowed; copied or encoded before returning). Returns 0 or a
     * negative code; a failure is also counted in dropped. */
    int (*append)(struct log_sink *sink, const struct log_record *r);
    /* Pushes buffered records towards their destination now. */
    void (*flush)(struct log_sink *sink);
    void (*stats)(struct log_sink *sink, struct log_sink_stats *out);
    /* Flushes and frees the sink (and its uv handles, asynchronously). */
    void (*close)(struct log_sink *sink);
};

/* Each implementation embeds this first in its own struct. */
struct log_sink {
    const struct log_sink_ops *ops;
};

static inline int log_sink_append(struct log_sink *s, const struct log_record *r)
{
    return s->ops->append(s, r);
}

static inline void log_sink_flush(struct log_sink *s)
{
    s->ops->flush(s);
}

static inline void log_sink_stats(struct log_sink *s, struct log_sink_stats *out)
{
    s->ops->stats(s, out);
}

static inline void log_sink_close(struct log_sink *s)
{
    s->ops->close(s);
}

#endif
