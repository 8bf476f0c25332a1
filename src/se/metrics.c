/* metrics.c: per-VS counters and Prometheus text. */
#include "se/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The request duration histogram's upper bounds, in seconds (0.5 ms to 10 s). */
static const double metrics__bounds[METRICS_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                                        0.025, 0.05, 0.1, 0.25, 0.5,
                                                        1, 2.5, 5, 10};
static const char *const metrics__error_names[METRICS_ERR__COUNT] = {
    "client", "connect", "timeout", "server", "no_server"};

static struct metrics_vs *metrics__all;

struct metrics_vs *metrics_vs_get(const char *name)
{
    struct metrics_vs *m;

    for (m = metrics__all; m != NULL; m = m->next) {
        if (strcmp(m->name, name) == 0) {
            m->refs++;
            return m;
        }
    }
    m = calloc(1, sizeof *m);
    if (m == NULL || (m->name = strdup(name)) == NULL) {
        free(m);
        return NULL;
    }
    m->refs = 1;
    prom_histogram_init(&m->latency, metrics__bounds, METRICS_BUCKETS);
    m->next = metrics__all;
    metrics__all = m;
    return m;
}

void metrics_vs_put(struct metrics_vs *m)
{
    struct metrics_vs **pp;

    if (m == NULL || --m->refs > 0)
        return;
    for (pp = &metrics__all; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    free(m->name);
    free(m);
}

void metrics_vs_record(struct metrics_vs *m, int status, double total_ms, uint64_t bytes_in,
                       uint64_t bytes_out)
{
    int cls = status / 100;

    m->requests++;
    m->responses[cls >= 1 && cls <= 5 ? cls : 0]++;
    m->bytes_in += bytes_in;
    m->bytes_out += bytes_out;
    prom_histogram_observe(&m->latency, total_ms / 1000.0);
}

/* One sample per virtual service: NAME{vs="..."} and the field FIELD reads. */
static void metrics__each_vs(FILE *out, const char *name, const char *type, const char *help,
                             uint64_t (*field)(const struct metrics_vs *m))
{
    prom_text_family(out, name, type, help);
    for (const struct metrics_vs *m = metrics__all; m; m = m->next) {
        char labels[600];
        const char *const keys[] = {"vs"}, *values[] = {m->name};
        prom_text_sample_u64(out, name, prom_text_labels(labels, sizeof labels, keys, values, 1),
                             field(m));
    }
}

static uint64_t metrics__requests(const struct metrics_vs *m) { return m->requests; }
static uint64_t metrics__bytes_in(const struct metrics_vs *m) { return m->bytes_in; }
static uint64_t metrics__bytes_out(const struct metrics_vs *m) { return m->bytes_out; }
static uint64_t metrics__connections(const struct metrics_vs *m) { return m->connections; }
static uint64_t metrics__active(const struct metrics_vs *m)
{
    return m->active > 0 ? (uint64_t)m->active : 0;
}

/* One sample per virtual service and per name in NAMES (N): NAME{vs="...",KEY="..."}. */
static void metrics__each_vs_by(FILE *out, const char *name, const char *help, const char *key,
                                const char *const names[], int n, size_t offset)
{
    prom_text_family(out, name, "counter", help);
    for (const struct metrics_vs *m = metrics__all; m; m = m->next) {
        const uint64_t *counts = (const uint64_t *)((const char *)m + offset);
        for (int i = 0; i < n; i++) {
            char labels[600];
            const char *const keys[] = {"vs", key}, *values[] = {m->name, names[i]};
            prom_text_sample_u64(out, name,
                                 prom_text_labels(labels, sizeof labels, keys, values, 2),
                                 counts[i]);
        }
    }
}

void metrics_render(FILE *out)
{
    static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

    metrics__each_vs(out, "vigil_se_vs_requests_total", "counter",
                     "HTTP requests (TCP: connections) finished per virtual service",
                     metrics__requests);
    metrics__each_vs_by(out, "vigil_se_vs_responses_total", "Responses by status class", "class",
                        classes, 6, offsetof(struct metrics_vs, responses));
    metrics__each_vs_by(out, "vigil_se_vs_errors_total", "Errors seen by the proxy, by kind",
                        "kind", metrics__error_names, METRICS_ERR__COUNT,
                        offsetof(struct metrics_vs, errors));
    metrics__each_vs(out, "vigil_se_vs_bytes_in_total", "counter", "Bytes received from clients",
                     metrics__bytes_in);
    metrics__each_vs(out, "vigil_se_vs_bytes_out_total", "counter", "Bytes sent to clients",
                     metrics__bytes_out);
    metrics__each_vs(out, "vigil_se_vs_connections_total", "counter",
                     "Client connections accepted", metrics__connections);
    metrics__each_vs(out, "vigil_se_vs_connections_active", "gauge", "Client connections open",
                     metrics__active);
    prom_text_family(out, "vigil_se_vs_request_duration_seconds", "histogram",
                     "Request (TCP: connection) duration");
    for (const struct metrics_vs *m = metrics__all; m; m = m->next) {
        char labels[600];
        const char *const keys[] = {"vs"}, *values[] = {m->name};
        prom_text_histogram(out, "vigil_se_vs_request_duration_seconds",
                            prom_text_labels(labels, sizeof labels, keys, values, 1),
                            &m->latency);
    }
}
