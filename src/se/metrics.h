/* metrics.h: per-virtual-service counters and latency histograms, rendered as Prometheus
 * text for GET /metrics. Counters live as long as a virtual service of that name exists
 * (they survive reloads). Loop thread only. */
#ifndef VIGIL_SE_METRICS_H
#define VIGIL_SE_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "common/prom_text.h"

/* Bounds of the latency histogram (0.5 ms to 10 s); one more bucket is +Inf. */
#define METRICS_BUCKETS 14

/* Errors the proxy itself answered or saw, by class. */
enum metrics_error {
    METRICS_ERR_CLIENT = 0, /* malformed request, header too large, client timeout */
    METRICS_ERR_CONNECT,    /* server connect failure */
    METRICS_ERR_TIMEOUT,    /* server connect or response timeout */
    METRICS_ERR_SERVER,     /* bad or cut server response */
    METRICS_ERR_NO_SERVER,  /* no server up */
    METRICS_ERR__COUNT
};

struct metrics_vs {
    char *name;
    int refs;
    uint64_t requests;       /* HTTP requests, or TCP connections */
    uint64_t responses[6];   /* by status class: [0] none, [1] 1xx .. [5] 5xx */
    uint64_t errors[METRICS_ERR__COUNT];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t connections;    /* client connections accepted */
    int64_t active;          /* client connections open */
    struct prom_histogram latency; /* total duration, seconds */
    struct metrics_vs *next;
};

/* The counters of the virtual service NAME (borrowed), created at zero when new; the
 * caller holds a reference and drops it with metrics_vs_put. NULL on allocation failure. */
struct metrics_vs *metrics_vs_get(const char *name);

void metrics_vs_put(struct metrics_vs *m);

/* Records one finished request (or TCP connection) with STATUS (0: none) and its total
 * latency in ms. */
void metrics_vs_record(struct metrics_vs *m, int status, double total_ms, uint64_t bytes_in,
                       uint64_t bytes_out);

/* Writes every virtual service's metrics as Prometheus text into OUT. */
void metrics_render(FILE *out);

#endif
