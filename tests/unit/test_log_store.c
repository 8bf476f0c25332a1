/* test_log_store.c: the access-log store (controller/logs/log_store.c): batches committed
 * together, acked after the commit, duplicates dropped and counted, the summary's gaps,
 * retention, a damaged file set aside, the queries' filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/errors.h"
#include "common/latency.h"
#include "common/timeutil.h"
#include "controller/logs/log_store.h"

static char dir[256];
static uv_loop_t loop;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/vigil-test-log-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    return 0;
}

static int teardown(void **state)
{
    char cmd[400];
    (void)state;
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static struct log_store *open_store(uint64_t bytes, int64_t ms, char *damage, size_t len)
{
    struct log_store_config cfg = {dir, bytes, ms, 1, 0};
    char err[400];
    struct log_store *s = log_store_open(&loop, &cfg, damage, len, err, sizeof err);
    if (s == NULL)
        fail_msg("open: %s", err);
    return s;
}

/* A record as the SE writes it, SEQ at TS_MS with STATUS. */
static json_t *record(uint64_t seq, int64_t ts_ms, int status, const char *vs, double ms)
{
    char ts[TIME_RFC3339_LEN];
    time_format_rfc3339(ts_ms, ts);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:s, s:i, s:i, "
                     "s:i, s:f, s:f}",
                     "seq", (json_int_t)seq, "timestamp", ts, "type", "http", "se_name", "se-1",
                     "vs_name", "web", "vs_uuid", vs, "client_ip", "127.0.0.9", "client_port",
                     40000, "server_ip", "127.0.0.2", "server_port", 9001, "method", "GET", "uri",
                     "/x", "status", status, "bytes_in", 100, "bytes_out", 200, "total_ms", ms,
                     "server_ms", ms / 2);
}

static const char *const VS = "11111111-1111-4111-8111-111111111111";

static struct log_store_batch *batch_of(uint64_t first, unsigned n, int64_t ts_ms)
{
    struct log_store_batch *b = log_store_batch_new("se-uuid-1", "se-1");
    char why[200];
    for (unsigned i = 0; i < n; i++) {
        json_t *r = record(first + i, ts_ms + i, 200 + (int)(i % 4) * 100, VS, 1.0 + i);
        assert_int_equal(log_store_batch_add(b, first + i, r, why, sizeof why), 0);
        json_decref(r);
    }
    return b;
}

struct done {
    int calls;
    int order[8];
    struct log_store_outcome last;
};
static int done_seq;

static void on_done(void *data, const struct log_store_outcome *o)
{
    struct done *d = data;
    d->order[d->calls++ % 8] = ++done_seq;
    d->last = *o;
}

/* Runs the loop until D got CALLS callbacks. */
static void wait_done(struct done *d, int calls)
{
    for (int i = 0; i < 10000 && d->calls < calls; i++)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(d->calls, calls);
}

static int64_t summary_int(struct log_store *s, const char *field)
{
    json_t *list = log_store_summary(s);
    int64_t v;
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 1);
    v = json_integer_value(json_object_get(json_array_get(list, 0), field));
    json_decref(list);
    return v;
}

/* Batches submitted in one iteration commit together; each is told only after the commit,
 * in order; a resend is counted as duplicates and stored once. */
static void test_batches_commit_together_and_duplicates_count(void **state)
{
    char damage[400];
    struct log_store *s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    struct done a = {0}, b = {0}, c = {0};
    int64_t now = time_now_ms();
    (void)state;

    assert_string_equal(damage, "");
    log_store_submit(s, batch_of(1, 10, now), on_done, &a);
    log_store_submit(s, batch_of(11, 10, now + 100), on_done, &b);
    assert_int_equal(a.calls + b.calls, 0); /* never from inside submit */
    wait_done(&b, 1);
    assert_int_equal(a.calls, 1);
    assert_true(a.order[0] < b.order[0]);
    assert_int_equal(a.last.err, 0);
    assert_int_equal(a.last.stored, 10);
    assert_int_equal(b.last.stored, 10);
    log_store_submit(s, batch_of(5, 10, now), on_done, &c); /* 5-14: all held already */
    wait_done(&c, 1);
    assert_int_equal(c.last.stored, 0);
    assert_int_equal(c.last.duplicates, 10);
    assert_int_equal(summary_int(s, "records"), 20);
    assert_int_equal(summary_int(s, "first_seq"), 1);
    assert_int_equal(summary_int(s, "last_seq"), 20);
    assert_int_equal(summary_int(s, "missing"), 0);
    assert_int_equal(summary_int(s, "duplicates_rejected"), 10);
    log_store_close(s);
}

/* Gaps inside [first, last] are missing; the data survives a reopen. */
static void test_summary_counts_gaps_and_survives_reopen(void **state)
{
    char damage[400];
    struct log_store *s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    struct done a = {0};
    int64_t now = time_now_ms();
    (void)state;

    log_store_submit(s, batch_of(1, 5, now), on_done, &a);
    log_store_submit(s, batch_of(11, 5, now), on_done, &a);
    wait_done(&a, 2);
    log_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    assert_string_equal(damage, "");
    assert_int_equal(summary_int(s, "records"), 10);
    assert_int_equal(summary_int(s, "missing"), 5);
    assert_int_equal(summary_int(s, "last_seq"), 15);
    log_store_close(s);
}

/* Records older than the age bound go; over the size bound the oldest go first. */
static void test_retention_deletes_oldest(void **state)
{
    char damage[400];
    struct log_store *s = open_store(1 << 30, 3600 * 1000, damage, sizeof damage);
    struct done a = {0};
    int64_t now = time_now_ms();
    (void)state;

    log_store_submit(s, batch_of(1, 10, now - 2 * 3600 * 1000), on_done, &a);
    wait_done(&a, 1);
    usleep(5000);
    log_store_submit(s, batch_of(11, 10, now), on_done, &a);
    wait_done(&a, 2);
    assert_int_equal(summary_int(s, "first_seq"), 11);
    assert_int_equal(summary_int(s, "records"), 10);
    log_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);

    s = open_store(256 * 1024, INT64_MAX / 4, damage, sizeof damage); /* 256 KiB */
    for (int i = 0; i < 8; i++) {
        usleep(2000);
        log_store_submit(s, batch_of(100 + (uint64_t)i * 1000, 1000, now + i * 10000), on_done,
                         &a);
        wait_done(&a, 3 + i);
    }
    assert_true(summary_int(s, "first_seq") > 100);
    assert_int_equal(summary_int(s, "last_seq"), 100 + 7 * 1000 + 999);
    assert_true(summary_int(s, "records") < 8000);
    log_store_close(s);
}

/* A file that is no database, or a database of another schema, is set aside and a new
 * store made; the note names both files. */
static void test_damaged_file_is_set_aside(void **state)
{
    char path[400], damage[400];
    FILE *f;
    struct log_store *s;
    (void)state;

    snprintf(path, sizeof path, "%s/logs.db", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 2000; i++)
        fputs("this is no sqlite database ", f);
    fclose(f);
    s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    assert_non_null(strstr(damage, "damaged-logs-"));
    assert_non_null(strstr(damage, "logs.db"));
    assert_null(strchr(damage, '\n'));
    {
        json_t *list = log_store_summary(s);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
    }
    log_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "DROP TABLE se_counts", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    assert_non_null(strstr(damage, "another schema"));
    log_store_close(s);
}

/* Bad records are refused with the field's name and leave the batch as it was. */
static void test_bad_records_are_refused(void **state)
{
    struct log_store_batch *b = log_store_batch_new("u", "n");
    json_t *r = record(1, time_now_ms(), 200, VS, 1);
    char why[200];
    (void)state;

    json_object_set_new(r, "status", json_string("200"));
    assert_int_equal(log_store_batch_add(b, 1, r, why, sizeof why), VIGIL_EINVAL);
    assert_non_null(strstr(why, "status"));
    json_object_set_new(r, "status", json_integer(200));
    json_object_set_new(r, "timestamp", json_string("yesterday"));
    assert_int_equal(log_store_batch_add(b, 1, r, why, sizeof why), VIGIL_EINVAL);
    assert_non_null(strstr(why, "timestamp"));
    assert_int_equal(log_store_batch_size(b), 0);
    json_decref(r);
    log_store_batch_free(b);
}

/* Queries: newest first, status class and client filters, metrics totals. */
static void test_queries_filter_and_order(void **state)
{
    char damage[400];
    struct log_store *s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    struct done a = {0};
    int64_t now = time_now_ms(), total = 0;
    struct log_store_filter f = {VS, now - 1000, now + 100000, 0, NULL};
    json_t *list, *m;
    (void)state;

    log_store_submit(s, batch_of(1, 40, now), on_done, &a);
    wait_done(&a, 1);
    list = log_store_query(s, &f, 5, &total);
    assert_int_equal(total, 40);
    assert_int_equal(json_array_size(list), 5);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "seq")), 40);
    json_decref(list);
    f.status_class = 5;
    list = log_store_query(s, &f, 100, &total);
    assert_int_equal(total, 10);
    json_decref(list);
    f.status_class = 0;
    f.client_ip = "127.0.0.10";
    list = log_store_query(s, &f, 100, &total);
    assert_int_equal(total, 0);
    json_decref(list);
    f.client_ip = NULL;
    m = log_store_metrics(s, &f, 1000);
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 40);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "status_classes"),
                                                        "4xx")), 10);
    assert_int_equal(json_integer_value(json_object_get(m, "bytes_out")), 8000);
    json_decref(m);
    log_store_close(s);
}

static void test_latency_buckets(void **state)
{
    (void)state;
    assert_int_equal(latency_bucket_of(0), 0);
    assert_int_equal(latency_bucket_of(0.01), 0);
    for (double ms = 0.02; ms < 100000; ms *= 1.7) {
        int b = latency_bucket_of(ms);
        assert_true(latency_bucket_upper(b) >= ms * 0.9999);
        assert_true(latency_bucket_upper(b - 1) < ms * 1.0001);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_commit_together_and_duplicates_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_summary_counts_gaps_and_survives_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_retention_deletes_oldest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_file_is_set_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_filter_and_order, setup, teardown),
        cmocka_unit_test(test_latency_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
