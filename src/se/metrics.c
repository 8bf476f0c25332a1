/* metrics.c: per-VS counters and Prometheus text. */
#include "se/metrics.h"

#include <stdlib.h>
#include <string.h>

static const double metrics__bounds[METRICS_BUCKETS] = {0.5, 1, 2, 5, 10, 25, 50, 100, 250,
                                                        500, 1000, 2500, 5000, 10000};
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
    size_t b = 0;

    m->requests++;
    m->responses[cls >= 1 && cls <= 5 ? cls : 0]++;
    m->bytes_in += bytes_in;
    m->bytes_out += bytes_out;
    while (b < METRICS_BUCKETS && total_ms > metrics__bounds[b])
        b++;
    m->latency[b]++;
    m->latency_sum_ms += total_ms;
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void metrics__label(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out), fputc(*s, out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

void metrics_render(FILE *out)
{
    struct metrics_vs *m;
    static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

#define METRICS__EACH(help_name, type, help)                                              \
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", help_name, help, help_name, type)

    METRICS__EACH("vigil_se_vs_requests_total", "counter",
                  "HTTP requests (TCP: connections) finished per virtual service");
    for (m = metrics__all; m; m = m->next) {
        fputs("vigil_se_vs_requests_total{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %llu\n", (unsigned long long)m->requests);
    }
    METRICS__EACH("vigil_se_vs_responses_total", "counter", "Responses by status class");
    for (m = metrics__all; m; m = m->next) {
        for (int c = 0; c < 6; c++) {
            fputs("vigil_se_vs_responses_total{vs=\"", out);
            metrics__label(out, m->name);
            fprintf(out, "\",class=\"%s\"} %llu\n", classes[c],
                    (unsigned long long)m->responses[c]);
        }
    }
    METRICS__EACH("vigil_se_vs_errors_total", "counter", "Errors seen by the proxy, by kind");
    for (m = metrics__all; m; m = m->next) {
        for (int e = 0; e < METRICS_ERR__COUNT; e++) {
            fputs("vigil_se_vs_errors_total{vs=\"", out);
            metrics__label(out, m->name);
            fprintf(out, "\",kind=\"%s\"} %llu\n", metrics__error_names[e],
                    (unsigned long long)m->errors[e]);
        }
    }
    METRICS__EACH("vigil_se_vs_bytes_in_total", "counter", "Bytes received from clients");
    for (m = metrics__all; m; m = m->next) {
        fputs("vigil_se_vs_bytes_in_total{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %llu\n", (unsigned long long)m->bytes_in);
    }
    METRICS__EACH("vigil_se_vs_bytes_out_total", "counter", "Bytes sent to clients");
    for (m = metrics__all; m; m = m->next) {
        fputs("vigil_se_vs_bytes_out_total{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %llu\n", (unsigned long long)m->bytes_out);
    }
    METRICS__EACH("vigil_se_vs_connections_total", "counter", "Client connections accepted");
    for (m = metrics__all; m; m = m->next) {
        fputs("vigil_se_vs_connections_total{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %llu\n", (unsigned long long)m->connections);
    }
    METRICS__EACH("vigil_se_vs_connections_active", "gauge", "Client connections open");
    for (m = metrics__all; m; m = m->next) {
        fputs("vigil_se_vs_connections_active{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %lld\n", (long long)m->active);
    }
    METRICS__EACH("vigil_se_vs_request_duration_seconds", "histogram",
                  "Request (TCP: connection) duration");
    for (m = metrics__all; m; m = m->next) {
        uint64_t cum = 0;
        for (int b = 0; b <= METRICS_BUCKETS; b++) {
            cum += m->latency[b];
            fputs("vigil_se_vs_request_duration_seconds_bucket{vs=\"", out);
            metrics__label(out, m->name);
            if (b < METRICS_BUCKETS)
                fprintf(out, "\",le=\"%g\"} %llu\n", metrics__bounds[b] / 1000.0,
                        (unsigned long long)cum);
            else
                fprintf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        fputs("vigil_se_vs_request_duration_seconds_sum{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %.6f\n", m->latency_sum_ms / 1000.0);
        fputs("vigil_se_vs_request_duration_seconds_count{vs=\"", out);
        metrics__label(out, m->name);
        fprintf(out, "\"} %llu\n", (unsigned long long)cum);
    }
#undef METRICS__EACH
}
