/* vs_metrics.c: per-virtual-service, per-second metrics into the metrics spool
 * (vs_metrics.h). */
#include "se/vs_metrics.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/latency.h"
#include "common/timeutil.h"
#include "common/vlog.h"

/* The timer fires this long after a second ended (a record logged at its very end is in). */
#define VS_METRICS__GRACE_MS 20

/* One virtual service's counts for one second. */
struct vs_metrics__cell {
    int64_t second_ms;         /* the second's start (wall clock) */
    char *vs_uuid;             /* or NULL */
    char *vs_name;
    uint64_t requests;
    uint64_t classes[6];       /* other, 1xx .. 5xx */
    uint64_t bytes_in, bytes_out;
    uint32_t *histogram;       /* LATENCY_BUCKETS counts, or NULL while none */
};

struct vs_metrics {
    uv_loop_t *loop;
    const char *se_name;
    struct log_seq *seq;
    struct log_spool *spool;
    struct vs_metrics__cell *cells;
    size_t n_cells, cap_cells;
    size_t last;               /* the cell counted into last (a guess, checked) */
    uv_timer_t timer;
    int closing;
};

static int vs_metrics__same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int vs_metrics__matches(const struct vs_metrics__cell *c, int64_t second,
                               const struct log_record *r)
{
    return c->second_ms == second && vs_metrics__same(c->vs_uuid, r->vs_uuid) &&
           vs_metrics__same(c->vs_name, r->vs_name != NULL ? r->vs_name : "");
}

/* The cell of R's virtual service for SECOND, made when absent; NULL: out of memory. */
static struct vs_metrics__cell *vs_metrics__cell(struct vs_metrics *m, int64_t second,
                                                 const struct log_record *r)
{
    struct vs_metrics__cell *c;

    if (m->last < m->n_cells && vs_metrics__matches(&m->cells[m->last], second, r))
        return &m->cells[m->last];
    for (size_t i = 0; i < m->n_cells; i++)
        if (vs_metrics__matches(&m->cells[i], second, r)) {
            m->last = i;
            return &m->cells[i];
        }
    if (m->n_cells == m->cap_cells) {
        size_t cap = m->cap_cells ? m->cap_cells * 2 : 8;
        c = realloc(m->cells, cap * sizeof *c);
        if (c == NULL)
            return NULL;
        m->cells = c;
        m->cap_cells = cap;
    }
    c = &m->cells[m->n_cells];
    memset(c, 0, sizeof *c);
    c->second_ms = second;
    c->vs_uuid = r->vs_uuid != NULL ? strdup(r->vs_uuid) : NULL;
    c->vs_name = strdup(r->vs_name != NULL ? r->vs_name : "");
    if (c->vs_name == NULL || (r->vs_uuid != NULL && c->vs_uuid == NULL)) {
        free(c->vs_uuid);
        free(c->vs_name);
        return NULL;
    }
    m->last = m->n_cells++;
    return c;
}

/* Cell C as one metrics record (docs/architecture.md, METRICS) into the spool. */
static void vs_metrics__spool(struct vs_metrics *m, const struct vs_metrics__cell *c)
{
    static const char *const names[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    char when[TIME_RFC3339_LEN], *line;
    json_t *rec, *classes = json_object(), *hist = json_object();
    uint64_t seq = log_seq_next(m->seq);
    size_t len;

    for (int i = 0; i < 6; i++)
        json_object_set_new(classes, names[i], json_integer((json_int_t)c->classes[i]));
    for (int b = 0; c->histogram != NULL && b < LATENCY_BUCKETS; b++)
        if (c->histogram[b] > 0) {
            char key[8];
            snprintf(key, sizeof key, "%d", b);
            json_object_set_new(hist, key, json_integer((json_int_t)c->histogram[b]));
        }
    time_format_rfc3339(c->second_ms, when);
    rec = json_pack("{s:I, s:s, s:s?, s:s, s:s, s:i, s:I, s:o, s:I, s:I, s:o}", "seq",
                    (json_int_t)seq, "se_name", m->se_name, "vs_uuid", c->vs_uuid, "vs_name",
                    c->vs_name, "timestamp", when, "interval_ms", 1000, "requests",
                    (json_int_t)c->requests, "status_classes", classes, "bytes_in",
                    (json_int_t)c->bytes_in, "bytes_out", (json_int_t)c->bytes_out,
                    "latency_histogram", hist);
    len = rec != NULL ? json_dumpb(rec, NULL, 0, JSON_COMPACT) : 0;
    line = len > 0 ? malloc(len + 1) : NULL;
    if (line == NULL || json_dumpb(rec, line, len, JSON_COMPACT) != len) {
        vlog_error("vs_metrics: out of memory: the metrics of %s for one second are lost",
                   c->vs_name);
    } else {
        line[len] = '\n';
        log_spool_append_line(m->spool, seq, line, len + 1); /* a refusal is counted there */
    }
    free(line);
    json_decref(rec);
}

static void vs_metrics__free_cell(struct vs_metrics__cell *c)
{
    free(c->vs_uuid);
    free(c->vs_name);
    free(c->histogram);
}

/* Spools and removes the cells whose second started before BEFORE_MS (all: INT64_MAX). */
static void vs_metrics__flush(struct vs_metrics *m, int64_t before_ms)
{
    size_t kept = 0;

    for (size_t i = 0; i < m->n_cells; i++) {
        if (m->cells[i].second_ms < before_ms) {
            vs_metrics__spool(m, &m->cells[i]);
            vs_metrics__free_cell(&m->cells[i]);
        } else {
            m->cells[kept++] = m->cells[i];
        }
    }
    m->n_cells = kept;
    m->last = 0;
}

static void vs_metrics__on_timer(uv_timer_t *t);

/* Arms the one-shot timer for the end of the second of NOW_MS, unless it runs already. */
static void vs_metrics__arm(struct vs_metrics *m, int64_t now_ms)
{
    int64_t wait = 1000 - (now_ms % 1000 + 1000) % 1000 + VS_METRICS__GRACE_MS;
    if (!m->closing && !uv_is_active((uv_handle_t *)&m->timer))
        uv_timer_start(&m->timer, vs_metrics__on_timer, (uint64_t)wait, 0);
}

void vs_metrics_flush_before(struct vs_metrics *m, int64_t now_ms)
{
    vs_metrics__flush(m, now_ms - (now_ms % 1000 + 1000) % 1000);
}

static void vs_metrics__on_timer(uv_timer_t *t)
{
    struct vs_metrics *m = t->data;
    int64_t now = time_now_ms();

    vs_metrics_flush_before(m, now);
    if (m->n_cells > 0)
        vs_metrics__arm(m, now);
}

void vs_metrics_count(struct vs_metrics *m, const struct log_record *r, int64_t now_ms)
{
    int64_t second = now_ms - (now_ms % 1000 + 1000) % 1000;
    struct vs_metrics__cell *c = vs_metrics__cell(m, second, r);
    int cls = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;

    if (c == NULL) {
        vlog_error("vs_metrics: out of memory: a request is not counted");
        return;
    }
    c->requests++;
    c->classes[cls]++;
    c->bytes_in += r->bytes_in;
    c->bytes_out += r->bytes_out;
    if (r->total_ms >= 0) {
        if (c->histogram == NULL)
            c->histogram = calloc(LATENCY_BUCKETS, sizeof *c->histogram);
        if (c->histogram != NULL)
            c->histogram[latency_bucket_of(r->total_ms)]++;
    }
    vs_metrics__arm(m, now_ms);
}

int vs_metrics_create(uv_loop_t *loop, const char *se_name, struct log_seq *seq,
                      struct log_spool *spool, struct vs_metrics **out)
{
    struct vs_metrics *m = calloc(1, sizeof *m);

    if (m == NULL)
        return VIGIL_ENOMEM;
    m->loop = loop;
    m->se_name = se_name;
    m->seq = seq;
    m->spool = spool;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    *out = m;
    return 0;
}

static void vs_metrics__on_closed(uv_handle_t *h)
{
    free(h->data);
}

void vs_metrics_close(struct vs_metrics *m)
{
    m->closing = 1;
    vs_metrics__flush(m, INT64_MAX);
    free(m->cells);
    m->cells = NULL;
    uv_timer_stop(&m->timer);
    uv_close((uv_handle_t *)&m->timer, vs_metrics__on_closed);
}
