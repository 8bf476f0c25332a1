/* test_log_store.c: the access-log store (controller/logs/log_store.c): batches committed
 * together, acked after the commit, duplicates dropped and counted, the summary's gaps,
 * retention, a damaged file set aside, the queries' filters; the per-second metrics records
 * (checked, deduplicated, summed by the metrics query) and the schema 1 -> 2 migration. */
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
    m = log_store_metrics(s, &f, 1000); /* from the metrics records only: none here */
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 0);
    assert_int_equal(json_array_size(json_object_get(m, "series")), 0);
    json_decref(m);
    log_store_close(s);
}

/* A metrics record as the SE sends it: the second TS_MS of VS, REQUESTS of which FIVES
 * got a 5xx, the rest a 2xx; the latencies in bucket 40 but one in bucket 100. */
static json_t *metric(uint64_t seq, int64_t ts_ms, const char *vs, int requests, int fives)
{
    char ts[TIME_RFC3339_LEN];
    time_format_rfc3339(ts_ms, ts);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i}, "
                     "s:i, s:i, s:{s:i, s:i}}",
                     "seq", (json_int_t)seq, "se_name", "se-1", "vs_uuid", vs, "vs_name", "web",
                     "timestamp", ts, "interval_ms", 1000, "requests", requests,
                     "status_classes", "1xx", 0, "2xx", requests - fives, "3xx", 0, "4xx", 0,
                     "5xx", fives, "other", 0, "bytes_in", 10 * requests, "bytes_out",
                     100 * requests, "latency_histogram", "40", requests - 1, "100", 1);
}

static const char *const VS2 = "22222222-2222-4222-8222-222222222222";

/* Every bad field of a metrics record is refused with its name, the batch unchanged; a
 * metrics record does not go into a batch of records, nor a record into one of metrics. */
static void test_bad_metrics_are_refused(void **state)
{
    struct log_store_batch *b = log_store_metrics_batch_new("u", "n");
    struct log_store_batch *records = log_store_batch_new("u", "n");
    int64_t second = time_now_ms() / 1000 * 1000;
    /* "field=bad value (JSON)": the reason must name the field; "!other" after it, another
     * name it must say */
    static const char *const cases[] = {
        "timestamp=\"yesterday\"", "interval_ms=500", "se_name=7", "vs_name=[]", "vs_uuid=12",
        "requests=-1", "bytes_in=\"10\"", "bytes_out=1.5", "status_classes=[]",
        "status_classes={\"1xx\":0,\"2xx\":4,\"3xx\":0,\"4xx\":0,\"5xx\":1}!other",
        "status_classes={\"1xx\":0,\"2xx\":9,\"3xx\":0,\"4xx\":0,\"5xx\":1,\"other\":0}",
        "latency_histogram={\"600\":1}", "latency_histogram={\"x\":1}",
        "latency_histogram={\"3\":6}", "latency_histogram={\"3\":-1}",
    };
    char why[300];
    json_t *good = metric(1, second, VS, 5, 1), *r;
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char field[40], value[100], named[50];
        const char *eq = strchr(cases[i], '='), *other = strchr(cases[i], '!');
        snprintf(field, sizeof field, "%.*s", (int)(eq - cases[i]), cases[i]);
        snprintf(value, sizeof value, "%.*s", (int)(other != NULL ? other - eq - 1 : 99), eq + 1);
        snprintf(named, sizeof named, "\"%s\"", other != NULL ? other + 1 : field);
        r = json_deep_copy(good);
        json_object_set_new(r, field, json_loads(value, JSON_DECODE_ANY, NULL));
        why[0] = '\0';
        assert_int_equal(log_store_metrics_batch_add(b, 1, r, why, sizeof why), VIGIL_EINVAL);
        if (strstr(why, named) == NULL)
            fail_msg("case %s: \"%s\" does not name %s", cases[i], why, named);
        assert_null(strchr(why, '\n'));
        json_decref(r);
    }
    r = json_deep_copy(good); /* not at the start of a second */
    json_object_set_new(r, "timestamp", json_string("2026-12-04T06:00:00.500Z"));
    assert_int_equal(log_store_metrics_batch_add(b, 1, r, why, sizeof why), VIGIL_EINVAL);
    assert_non_null(strstr(why, "timestamp"));
    json_decref(r);
    assert_int_equal(log_store_batch_size(b), 0);
    assert_int_equal(log_store_batch_add(b, 1, good, why, sizeof why), VIGIL_EINVAL);
    assert_int_equal(log_store_metrics_batch_add(records, 1, good, why, sizeof why), VIGIL_EINVAL);
    r = json_deep_copy(good); /* vs_uuid null: traffic no virtual service took */
    json_object_set_new(r, "vs_uuid", json_null());
    assert_int_equal(log_store_metrics_batch_add(b, 1, r, why, sizeof why), 0);
    json_decref(r);
    assert_int_equal(log_store_metrics_batch_add(b, 2, good, why, sizeof why), 0);
    assert_int_equal(log_store_batch_size(b), 2);
    json_decref(good);
    log_store_batch_free(b);
    log_store_batch_free(records);
}

/* N metrics records of SE-1 from SEQ, the seconds from SECOND, 10 requests each (2 5xx). */
static struct log_store_batch *metrics_of(uint64_t first, unsigned n, int64_t second,
                                          const char *vs)
{
    struct log_store_batch *b = log_store_metrics_batch_new("se-uuid-1", "se-1");
    char why[300];
    for (unsigned i = 0; i < n; i++) {
        json_t *m = metric(first + i, second + (int64_t)i * 1000, vs, 10, 2);
        if (log_store_metrics_batch_add(b, first + i, m, why, sizeof why) != 0)
            fail_msg("metrics_batch_add: %s", why);
        json_decref(m);
    }
    return b;
}

/* One integer from SQL on the store's file, read beside the store. */
static int64_t file_int(const char *sql)
{
    char path[400];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    snprintf(path, sizeof path, "%s/logs.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Metrics records commit with the records (callbacks in submit order); a resend is dropped
 * and counted apart from the records' duplicates; the query sums the seconds into steps
 * from since, by virtual service and the seconds' timestamps. */
static void test_metrics_stored_once_and_summed(void **state)
{
    int64_t second = (time_now_ms() / 1000 - 100) * 1000;
    struct log_store_filter f = {VS, second, second + 5000, 0, NULL};
    struct done a = {0}, b = {0}, c = {0};
    json_t *m, *series, *hist;
    char damage[400];
    struct log_store *s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    (void)state;

    log_store_submit(s, metrics_of(1, 6, second, VS), on_done, &a);
    log_store_submit(s, batch_of(1, 5, second), on_done, &b);
    log_store_submit(s, metrics_of(7, 3, second, VS2), on_done, &c);
    wait_done(&c, 1);
    assert_int_equal(a.calls + b.calls, 2);
    assert_true(a.order[0] < b.order[0] && b.order[0] < c.order[0]);
    assert_int_equal(a.last.stored, 6);
    assert_int_equal(c.last.stored, 3);
    log_store_submit(s, metrics_of(4, 4, second + 3000, VS), on_done, &a); /* 4-6 held, 7 held */
    wait_done(&a, 2);
    assert_int_equal(a.last.err, 0);
    assert_int_equal(a.last.stored, 0);
    assert_int_equal(a.last.duplicates, 4);
    assert_int_equal(summary_int(s, "duplicates_rejected"), 0); /* the records' count */
    assert_int_equal(summary_int(s, "records"), 5);
    assert_int_equal(file_int("SELECT metrics_duplicates_rejected FROM se_counts"), 4);
    assert_int_equal(file_int("SELECT count(*) FROM metrics"), 9);

    m = log_store_metrics(s, &f, 2000); /* seconds 0-5 of VS: steps 0-1, 2-3, 4-5 */
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 60);
    assert_int_equal(json_integer_value(json_object_get(m, "bytes_in")), 600);
    assert_int_equal(json_integer_value(json_object_get(m, "bytes_out")), 6000);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "status_classes"),
                                                        "5xx")), 12);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "status_classes"),
                                                        "2xx")), 48);
    hist = json_object_get(m, "latency_histogram");
    assert_int_equal(json_object_size(hist), 2);
    assert_int_equal(json_integer_value(json_object_get(hist, "40")), 54);
    assert_int_equal(json_integer_value(json_object_get(hist, "100")), 6);
    series = json_object_get(m, "series");
    assert_int_equal(json_array_size(series), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *p = json_array_get(series, i);
        assert_int_equal(json_integer_value(json_object_get(p, "time_ms")), second + 2000 * (int64_t)i);
        assert_int_equal(json_integer_value(json_object_get(p, "requests")), 20);
        assert_int_equal(json_integer_value(json_object_get(p, "errors_5xx")), 4);
        assert_int_equal(json_integer_value(json_object_get(p, "errors_4xx")), 0);
        assert_int_equal(json_integer_value(json_object_get(p, "bytes_out")), 2000);
    }
    json_decref(m);
    f.since_ms = second + 1000; /* by the second's timestamp: seconds 1-2 */
    f.until_ms = second + 2000;
    m = log_store_metrics(s, &f, 60000);
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 20);
    assert_int_equal(json_array_size(json_object_get(m, "series")), 1);
    json_decref(m);
    f.vs_uuid = VS2;
    f.since_ms = second;
    f.until_ms = second + 100000;
    m = log_store_metrics(s, &f, 1000);
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 30);
    assert_int_equal(json_array_size(json_object_get(m, "series")), 3);
    json_decref(m);
    log_store_close(s);
}

/* The age bound deletes old metrics records too. */
static void test_retention_deletes_old_metrics(void **state)
{
    char damage[400];
    struct log_store *s = open_store(1 << 30, 3600 * 1000, damage, sizeof damage);
    struct done a = {0};
    int64_t second = time_now_ms() / 1000 * 1000;
    (void)state;

    log_store_submit(s, metrics_of(1, 5, second - 2 * 3600 * 1000, VS), on_done, &a);
    wait_done(&a, 1);
    usleep(5000);
    log_store_submit(s, metrics_of(6, 5, second - 60 * 1000, VS), on_done, &a);
    wait_done(&a, 2);
    log_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(file_int("SELECT count(*) FROM metrics"), 5);
    assert_int_equal(file_int("SELECT min(seq) FROM metrics"), 6);
}

/* The schema version 1, as log_store.c made it before the metrics (frozen here: the
 * store's own text may change, the files of version 1 do not). */
static const char *const schema_1 =
    "CREATE TABLE records(id INTEGER PRIMARY KEY, se_uuid TEXT NOT NULL,"
    " se_name TEXT NOT NULL, seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, vs_uuid TEXT,"
    " status INTEGER NOT NULL, client_ip TEXT NOT NULL, bytes_in INTEGER NOT NULL,"
    " bytes_out INTEGER NOT NULL, total_ms REAL, record TEXT NOT NULL);"
    " CREATE UNIQUE INDEX records_se_seq ON records(se_uuid, seq);"
    " CREATE INDEX records_vs_time ON records(vs_uuid, ts_ms);"
    " CREATE INDEX records_status ON records(status); CREATE INDEX records_time ON records(ts_ms);"
    " CREATE TABLE se_counts(se_uuid TEXT PRIMARY KEY, se_name TEXT NOT NULL,"
    " duplicates_rejected INTEGER NOT NULL DEFAULT 0); PRAGMA user_version=1;";

/* Writes a version 1 store holding three records of se-1 (3 duplicates counted) and sets
 * its user_version to VERSION. */
static void make_v1_store(int version)
{
    char path[400], sql[400];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/logs.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, schema_1, NULL, NULL, NULL), SQLITE_OK);
    for (int seq = 1; seq <= 3; seq++) {
        snprintf(sql, sizeof sql, "INSERT INTO records(se_uuid, se_name, seq, ts_ms, vs_uuid, "
                 "status, client_ip, bytes_in, bytes_out, total_ms, record) VALUES('se-uuid-1',"
                 " 'se-1', %d, %lld, '%s', 200, '127.0.0.9', 1, 2, 1.0, '{}')", seq,
                 (long long)time_now_ms(), VS);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    snprintf(sql, sizeof sql, "INSERT INTO se_counts VALUES('se-uuid-1', 'se-1', 3);"
             "PRAGMA user_version=%d;", version);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A version 1 store is migrated in place: its records and counts kept, the metrics table
 * there, user_version 2, nothing set aside; metrics then go in beside the old records. */
static void test_schema_1_is_migrated_in_place(void **state)
{
    char damage[400], cmd[500];
    struct log_store *s;
    struct done a = {0};
    int64_t second = time_now_ms() / 1000 * 1000;
    struct log_store_filter f = {VS, second - 1000, second + 10000, 0, NULL};
    json_t *m;
    (void)state;

    make_v1_store(1);
    s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    assert_string_equal(damage, "");
    assert_int_equal(summary_int(s, "records"), 3);
    assert_int_equal(summary_int(s, "last_seq"), 3);
    assert_int_equal(summary_int(s, "duplicates_rejected"), 3);
    log_store_submit(s, metrics_of(1, 2, second, VS), on_done, &a);
    log_store_submit(s, batch_of(4, 2, second), on_done, &a);
    wait_done(&a, 2);
    assert_int_equal(a.last.err, 0);
    m = log_store_metrics(s, &f, 1000);
    assert_int_equal(json_integer_value(json_object_get(m, "requests")), 20);
    json_decref(m);
    log_store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(file_int("PRAGMA user_version"), 2);
    assert_int_equal(file_int("SELECT count(*) FROM records"), 5);
    assert_int_equal(file_int("SELECT count(*) FROM metrics"), 2);
    snprintf(cmd, sizeof cmd, "ls %s | grep -q damaged", dir);
    assert_int_not_equal(system(cmd), 0);
    s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage); /* a v2 store reopens */
    assert_string_equal(damage, "");
    assert_int_equal(summary_int(s, "records"), 5);
    log_store_close(s);
}

/* A store of an unknown version is still set aside. */
static void test_unknown_version_is_set_aside(void **state)
{
    char damage[400];
    struct log_store *s;
    (void)state;

    make_v1_store(3);
    s = open_store(1 << 30, INT64_MAX / 4, damage, sizeof damage);
    assert_non_null(strstr(damage, "another schema (user_version 3"));
    {
        json_t *list = log_store_summary(s);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
    }
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
        cmocka_unit_test_setup_teardown(test_bad_metrics_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_stored_once_and_summed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_deletes_old_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_1_is_migrated_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_version_is_set_aside, setup, teardown),
        cmocka_unit_test(test_latency_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
