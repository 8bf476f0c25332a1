/* prom_text.h: the Prometheus text exposition format (version 0.0.4), written to a FILE:
 * a family's HELP and TYPE lines, samples with escaped label values, and histograms with
 * cumulative buckets. Shared by vigild's GET /metrics (controller/metrics/) and vigil-se's
 * (se/metrics.c). No state: the callers own their numbers. Any thread. */
#ifndef VIGIL_PROM_TEXT_H
#define VIGIL_PROM_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The Content-Type of a scrape's answer. */
#define PROM_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Writes "# HELP NAME HELP" (HELP's backslashes and newlines escaped) and "# TYPE NAME TYPE".
 * NAME (a valid metric name) and TYPE ("counter", "gauge", "histogram") are borrowed. */
void prom_text_family(FILE *out, const char *name, const char *type, const char *help);

/* Writes S as a label value's text (without the quotes): backslash, double quote and
 * newline escaped as the format says. */
void prom_text_label_value(FILE *out, const char *s);

/* Writes one sample "NAME{LABELS} VALUE". LABELS is NULL or "" for none, else the label
 * pairs already formatted ('a="x",b="y"', values escaped: prom_text_labels builds them). */
void prom_text_sample(FILE *out, const char *name, const char *labels, double value);

/* Same, for a whole number (printed exactly, however large). */
void prom_text_sample_u64(FILE *out, const char *name, const char *labels, uint64_t value);

/* Formats the pairs KEYS[i]="VALUES[i]" (N of them, values escaped) into OUT (OUTLEN bytes,
 * always terminated; a pair that does not fit is left out whole). Returns OUT. */
char *prom_text_labels(char *out, size_t outlen, const char *const keys[],
                       const char *const values[], size_t n);

/* A histogram's buckets: BOUNDS (N upper bounds, ascending, in the family's base unit,
 * borrowed and static) and N + 1 counts, the last one for +Inf. Not cumulative: observe
 * adds to one bucket, rendering sums them up. */
#define PROM_HISTOGRAM_MAX_BOUNDS 24
struct prom_histogram {
    const double *bounds;
    size_t n;
    uint64_t counts[PROM_HISTOGRAM_MAX_BOUNDS + 1];
    double sum;
};

/* Sets H empty with BOUNDS (N <= PROM_HISTOGRAM_MAX_BOUNDS, ascending; borrowed). */
void prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n);

/* Counts one observation of VALUE (in the family's base unit). */
void prom_histogram_observe(struct prom_histogram *h, double value);

/* Writes NAME_bucket{LABELS,le="..."} for each bound and +Inf (cumulative), NAME_sum and
 * NAME_count (equal to the +Inf bucket). LABELS as for prom_text_sample. The family's HELP
 * and TYPE lines are the caller's (prom_text_family, "histogram"). */
void prom_text_histogram(FILE *out, const char *name, const char *labels,
                         const struct prom_histogram *h);

#endif
