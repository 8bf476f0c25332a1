/* prom_text.c: the Prometheus text exposition format (see prom_text.h). */
#include "common/prom_text.h"

#include <math.h>
#include <string.h>

void prom_text_family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s ", name);
    for (const char *s = help; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
    fprintf(out, "\n# TYPE %s %s\n", name, type);
}

void prom_text_label_value(FILE *out, const char *s)
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

static void prom_text__name(FILE *out, const char *name, const char *labels)
{
    fputs(name, out);
    if (labels != NULL && labels[0] != '\0')
        fprintf(out, "{%s}", labels);
}

void prom_text_sample(FILE *out, const char *name, const char *labels, double value)
{
    prom_text__name(out, name, labels);
    if (isnan(value))
        fputs(" NaN\n", out);
    else if (isinf(value))
        fputs(value > 0 ? " +Inf\n" : " -Inf\n", out);
    else
        fprintf(out, " %.15g\n", value);
}

void prom_text_sample_u64(FILE *out, const char *name, const char *labels, uint64_t value)
{
    prom_text__name(out, name, labels);
    fprintf(out, " %llu\n", (unsigned long long)value);
}

char *prom_text_labels(char *out, size_t outlen, const char *const keys[],
                       const char *const values[], size_t n)
{
    size_t used = 0;

    if (outlen == 0)
        return out;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char pair[512];
        size_t len = (size_t)snprintf(pair, sizeof pair, "%s%s=\"", used > 0 ? "," : "", keys[i]);
        for (const char *s = values[i]; *s && len + 3 < sizeof pair; s++) {
            if (*s == '\\' || *s == '"')
                pair[len++] = '\\', pair[len++] = *s;
            else if (*s == '\n')
                pair[len++] = '\\', pair[len++] = 'n';
            else
                pair[len++] = *s;
        }
        if (len + 2 > sizeof pair || used + len + 2 > outlen)
            break;
        pair[len++] = '"';
        memcpy(out + used, pair, len);
        used += len;
        out[used] = '\0';
    }
    return out;
}

void prom_histogram_init(struct prom_histogram *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n = n < PROM_HISTOGRAM_MAX_BOUNDS ? n : PROM_HISTOGRAM_MAX_BOUNDS;
}

void prom_histogram_observe(struct prom_histogram *h, double value)
{
    size_t b = 0;
    while (b < h->n && value > h->bounds[b])
        b++;
    h->counts[b]++;
    h->sum += value;
}

void prom_text_histogram(FILE *out, const char *name, const char *labels,
                         const struct prom_histogram *h)
{
    const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
    uint64_t cumulative = 0;

    if (labels == NULL)
        labels = "";
    for (size_t b = 0; b <= h->n; b++) {
        cumulative += h->counts[b];
        if (b < h->n)
            fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, h->bounds[b],
                    (unsigned long long)cumulative);
        else
            fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                    (unsigned long long)cumulative);
    }
    fprintf(out, "%s_sum", name);
    if (labels[0] != '\0')
        fprintf(out, "{%s}", labels);
    fprintf(out, " %.15g\n", h->sum);
    fprintf(out, "%s_count", name);
    if (labels[0] != '\0')
        fprintf(out, "{%s}", labels);
    fprintf(out, " %llu\n", (unsigned long long)cumulative);
}
