/* Unit tests of vs_metrics.c: records counted per virtual service and second; a second's
 * cells are spooled (log_spool_append_line into a spool-metrics spool) only once it has
 * ended, in the METRICS record shape, with consecutive seqs; status 0 counts as "other",
 * a record without total_ms stays out of the histogram; close spools the second in
 * progress; the spool refuses a line without its newline or with a seq not above the last. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "common/errors.h"
#include "common/latency.h"
#include "se/log_seq.h"
#include "se/log_spool.h"
#include "se/vs_metrics.h"
#include "log_test_fixture.h"

#define T0 1764000000000LL /* a second's start */

struct seen {
    json_t *records; /* the spooled metrics, in order */
};

static int on_record(void *arg, const struct log_spool_record *rec)
{
    struct seen *seen = arg;
    json_t *r = json_loadb(rec->data, rec->len, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "seq")), rec->seq);
    json_array_append_new(seen->records, r);
    return 0;
}

/* The records in SPOOL (a new array). */
static json_t *spooled(struct log_spool *spool)
{
    struct seen seen = {json_array()};
    assert_true(log_spool_peek(spool, 1, 1000, 1 << 20, on_record, &seen) >= 0);
    return seen.records;
}

static void request(struct log_record *r, const char *vs_uuid, const char *vs_name, int status,
                    double total_ms)
{
    log_test_record(r, 0);
    r->vs_uuid = vs_uuid;
    r->vs_name = vs_name;
    r->status = status;
    r->bytes_in = 100;
    r->bytes_out = 1000;
    r->total_ms = total_ms;
}

struct setup {
    struct log_seq *seq;
    struct log_spool *spool;
    struct vs_metrics *m;
};

static void open_all(struct fixture *f, struct setup *s)
{
    struct log_spool_options so = {.subdir = VS_METRICS_SPOOL_DIR};
    assert_int_equal(log_seq_open(f->dir, "metrics.seq", &s->seq), 0);
    assert_int_equal(log_spool_open(&f->loop, f->dir, "se-1", &so, &s->spool), 0);
    assert_int_equal(vs_metrics_create(&f->loop, "se-1", s->seq, s->spool, &s->m), 0);
}

static void close_all(struct fixture *f, struct setup *s)
{
    vs_metrics_close(s->m);
    log_seq_close(s->seq);
    log_sink_close(log_spool_sink(s->spool));
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static json_t *get(json_t *list, size_t i, const char *key)
{
    return json_object_get(json_array_get(list, i), key);
}

static void test_cells_per_service_and_second(void **state)
{
    struct fixture *f = *state;
    struct setup s;
    struct log_record r;
    json_t *l;

    open_all(f, &s);
    request(&r, "uuid-a", "a", 200, 1.0);
    vs_metrics_count(s.m, &r, T0 + 10);
    vs_metrics_count(s.m, &r, T0 + 999);
    request(&r, "uuid-a", "a", 503, 100.0);
    vs_metrics_count(s.m, &r, T0 + 500);
    request(&r, NULL, "b", 0, -1);          /* a TCP connection without total_ms */
    vs_metrics_count(s.m, &r, T0 + 20);
    request(&r, "uuid-a", "a", 404, 1.0);
    vs_metrics_count(s.m, &r, T0 + 1000);   /* the next second */

    vs_metrics_flush_before(s.m, T0 + 999); /* the first second has not ended: nothing */
    l = spooled(s.spool);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);

    vs_metrics_flush_before(s.m, T0 + 1500);
    l = spooled(s.spool);
    assert_int_equal(json_array_size(l), 2);
    assert_int_equal(json_integer_value(get(l, 0, "seq")), 1);
    assert_int_equal(json_integer_value(get(l, 1, "seq")), 2);
    assert_string_equal(json_string_value(get(l, 0, "vs_uuid")), "uuid-a");
    assert_string_equal(json_string_value(get(l, 0, "vs_name")), "a");
    assert_string_equal(json_string_value(get(l, 0, "se_name")), "se-1");
    assert_string_equal(json_string_value(get(l, 0, "timestamp")), "2025-11-24T16:00:00.000Z");
    assert_int_equal(json_integer_value(get(l, 0, "interval_ms")), 1000);
    assert_int_equal(json_integer_value(get(l, 0, "requests")), 3);
    assert_int_equal(json_integer_value(json_object_get(get(l, 0, "status_classes"), "2xx")), 2);
    assert_int_equal(json_integer_value(json_object_get(get(l, 0, "status_classes"), "5xx")), 1);
    assert_int_equal(json_integer_value(get(l, 0, "bytes_in")), 300);
    assert_int_equal(json_integer_value(get(l, 0, "bytes_out")), 3000);
    {
        char b1[8], b100[8];
        json_t *h = get(l, 0, "latency_histogram");
        snprintf(b1, sizeof b1, "%d", latency_bucket_of(1.0));
        snprintf(b100, sizeof b100, "%d", latency_bucket_of(100.0));
        assert_int_equal(json_object_size(h), 2);
        assert_int_equal(json_integer_value(json_object_get(h, b1)), 2);
        assert_int_equal(json_integer_value(json_object_get(h, b100)), 1);
    }
    assert_true(json_is_null(get(l, 1, "vs_uuid")));
    assert_int_equal(json_integer_value(json_object_get(get(l, 1, "status_classes"), "other")), 1);
    assert_int_equal(json_object_size(get(l, 1, "latency_histogram")), 0);
    json_decref(l);

    close_all(f, &s);                       /* spools the second in progress */
    open_all(f, &s);
    l = spooled(s.spool);
    assert_int_equal(json_array_size(l), 3);
    assert_int_equal(json_integer_value(get(l, 2, "seq")), 3);
    assert_int_equal(json_integer_value(get(l, 2, "requests")), 1);
    assert_int_equal(json_integer_value(json_object_get(get(l, 2, "status_classes"), "4xx")), 1);
    json_decref(l);
    close_all(f, &s);
}

static void test_append_line_refusals(void **state)
{
    struct fixture *f = *state;
    struct setup s;
    struct log_sink_stats st;
    static const char line[] = "{\"seq\": 5}\n";

    open_all(f, &s);
    assert_int_equal(log_spool_append_line(s.spool, 5, line, sizeof line - 1), 0);
    assert_int_equal(log_spool_append_line(s.spool, 5, line, sizeof line - 1), VIGIL_EINVAL);
    assert_int_equal(log_spool_append_line(s.spool, 6, line, sizeof line - 2), VIGIL_ETOOBIG);
    log_sink_stats(log_spool_sink(s.spool), &st);
    assert_int_equal(st.generated, 3);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(log_spool_last_seq(s.spool), 5);
    close_all(f, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cells_per_service_and_second, log_test_setup,
                                        log_test_teardown),
        cmocka_unit_test_setup_teardown(test_append_line_refusals, log_test_setup,
                                        log_test_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
