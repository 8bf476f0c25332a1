/* log_store_read.c: the log store's queries, on the loop thread's own connection
 * (log_store.h). */
#include "controller/logs/log_store-int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/latency.h"
#include "common/timeutil.h"
#include "common/vlog.h"

/* The WHERE clause of a filter: ?1 vs_uuid, ?2 since, ?3 until, ?4 lowest status (0: any),
 * ?5 client_ip (NULL: any). */
#define LOG_STORE__WHERE                                                                   \
    " WHERE vs_uuid=?1 AND ts_ms BETWEEN ?2 AND ?3 AND (?4 = 0 OR status BETWEEN ?4 AND " \
    "?4 + 99) AND (?5 IS NULL OR client_ip=?5)"

/* SQL prepared on the reader with F bound, or NULL (logged). */
static sqlite3_stmt *log_store__select(struct log_store *s, const char *sql,
                                       const struct log_store_filter *f)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->reader, sql, -1, &st, NULL) != SQLITE_OK) {
        vlog_error("log store: a query failed: %s", sqlite3_errmsg(s->reader));
        return NULL;
    }
    sqlite3_bind_text(st, 1, f->vs_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, f->since_ms);
    sqlite3_bind_int64(st, 3, f->until_ms);
    sqlite3_bind_int(st, 4, f->status_class > 0 ? f->status_class * 100 : 0);
    if (f->client_ip != NULL)
        sqlite3_bind_text(st, 5, f->client_ip, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 5);
    return st;
}

/* The contract's record shape from the stored TEXT of SE_NAME's record. */
static json_t *log_store__result(const char *se_name, const char *text)
{
    static const char *const fields[] = {"seq", "timestamp", "client_ip", "client_port",
                                         "server_ip", "server_port", "method", "uri", "status",
                                         "bytes_in", "bytes_out", "total_ms", "server_ms"};
    json_t *record = json_loads(text != NULL ? text : "", 0, NULL);
    json_t *out = json_pack("{s:s}", "se_name", se_name != NULL ? se_name : "");

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *v = json_object_get(record, fields[i]);
        json_object_set(out, fields[i], v != NULL ? v : json_null());
    }
    json_decref(record);
    return out;
}

json_t *log_store_query(struct log_store *store, const struct log_store_filter *f,
                        int64_t limit, int64_t *total)
{
    sqlite3_stmt *st = log_store__select(store, "SELECT count(*) FROM records" LOG_STORE__WHERE, f);
    json_t *list;
    int rc;

    if (st == NULL)
        return NULL;
    *total = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    st = log_store__select(store, "SELECT se_name, record FROM records" LOG_STORE__WHERE
                                  " ORDER BY ts_ms DESC, se_name, seq DESC LIMIT ?6", f);
    if (st == NULL)
        return NULL;
    sqlite3_bind_int64(st, 6, limit);
    list = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(list, log_store__result((const char *)sqlite3_column_text(st, 0),
                                                      (const char *)sqlite3_column_text(st, 1)));
    if (rc != SQLITE_DONE) {
        vlog_error("log store: a query failed: %s", sqlite3_errmsg(store->reader));
        json_decref(list);
        list = NULL;
    }
    sqlite3_finalize(st);
    return list;
}

json_t *log_store_summary(struct log_store *store)
{
    sqlite3_stmt *st = NULL;
    json_t *list;
    int rc;

    if (sqlite3_prepare_v2(store->reader,
                           "SELECT c.se_name, count(r.seq), min(r.seq), max(r.seq), "
                           "c.duplicates_rejected FROM se_counts c LEFT JOIN records r ON "
                           "r.se_uuid = c.se_uuid GROUP BY c.se_uuid ORDER BY c.se_name",
                           -1, &st, NULL) != SQLITE_OK) {
        vlog_error("log store: the summary failed: %s", sqlite3_errmsg(store->reader));
        return NULL;
    }
    list = json_array();
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 1);
        int64_t first = sqlite3_column_int64(st, 2), last = sqlite3_column_int64(st, 3);
        json_array_append_new(
            list, json_pack("{s:s, s:I, s:o, s:o, s:I, s:I}", "se_name",
                            (const char *)sqlite3_column_text(st, 0), "records", (json_int_t)n,
                            "first_seq", n > 0 ? json_integer(first) : json_null(), "last_seq",
                            n > 0 ? json_integer(last) : json_null(), "missing",
                            (json_int_t)(n > 0 ? last - first + 1 - n : 0),
                            "duplicates_rejected", (json_int_t)sqlite3_column_int64(st, 4)));
    }
    if (rc != SQLITE_DONE) {
        json_decref(list);
        list = NULL;
    }
    sqlite3_finalize(st);
    return list;
}

/* Adds V to the integer member NAME of OBJ. */
static void log_store__add(json_t *obj, const char *name, json_int_t v)
{
    json_object_set_new(obj, name, json_integer(json_integer_value(json_object_get(obj, name)) + v));
}

/* Adds the stored histogram TEXT ({"BUCKET": count}, checked when it was added) to HIST. */
static void log_store__add_histogram(int64_t *hist, const char *text)
{
    json_t *h = json_loads(text != NULL ? text : "", 0, NULL);
    const char *key;
    json_t *count;

    json_object_foreach(h, key, count) {
        long bucket = strtol(key, NULL, 10);
        if (bucket >= 0 && bucket < LATENCY_BUCKETS && json_is_integer(count))
            hist[bucket] += json_integer_value(count);
    }
    json_decref(h);
}

/* Adds the stored histogram TEXT to the point's histogram object INTO ({"BUCKET": count}). */
static void log_store__add_point_histogram(json_t *into, const char *text)
{
    json_t *h = json_loads(text != NULL ? text : "", 0, NULL);
    const char *key;
    json_t *count;

    json_object_foreach(h, key, count) {
        long bucket = strtol(key, NULL, 10);
        if (bucket >= 0 && bucket < LATENCY_BUCKETS && json_is_integer(count))
            log_store__add(into, key, json_integer_value(count));
    }
    json_decref(h);
}

/* A new series point at SLOT_MS, its counts 0 and its latency histogram empty. */
static json_t *log_store__point(int64_t slot_ms)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:{}}", "time_ms", (json_int_t)slot_ms,
                     "requests", (json_int_t)0, "errors_4xx", (json_int_t)0, "errors_5xx",
                     (json_int_t)0, "bytes_in", (json_int_t)0, "bytes_out", (json_int_t)0,
                     "latency_histogram");
}

/* The totals, histogram and series of the metrics rows of ST (stepped through here) into
 * OUT (log_store_metrics' shape). Returns sqlite3_step's last code. */
static int log_store__sum_metrics(sqlite3_stmt *st, const struct log_store_filter *f,
                                  int64_t step_ms, json_t *out)
{
    json_t *status = json_object_get(out, "status_classes"), *point = NULL;
    int64_t *hist = calloc(LATENCY_BUCKETS, sizeof *hist);
    int64_t point_ms = INT64_MIN;
    int rc;

    if (hist == NULL)
        return SQLITE_NOMEM;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0), requests = sqlite3_column_int64(st, 1);
        int64_t in = sqlite3_column_int64(st, 8), bytes_out = sqlite3_column_int64(st, 9);
        int64_t slot = f->since_ms + (ts - f->since_ms) / step_ms * step_ms;

        log_store__add(out, "requests", requests);
        log_store__add(out, "bytes_in", in);
        log_store__add(out, "bytes_out", bytes_out);
        for (int c = 0; c < LOG_STORE__CLASSES; c++)
            log_store__add(status, log_store_status_class_names[c], sqlite3_column_int64(st, 2 + c));
        log_store__add_histogram(hist, (const char *)sqlite3_column_text(st, 10));
        if (slot != point_ms) {
            point_ms = slot;
            point = log_store__point(slot);
            json_array_append_new(json_object_get(out, "series"), point);
        }
        log_store__add(point, "requests", requests);
        log_store__add(point, "bytes_in", in);
        log_store__add(point, "bytes_out", bytes_out);
        log_store__add(point, "errors_4xx", sqlite3_column_int64(st, 2 + LOG_STORE_4XX));
        log_store__add(point, "errors_5xx", sqlite3_column_int64(st, 2 + LOG_STORE_5XX));
        log_store__add_point_histogram(json_object_get(point, "latency_histogram"),
                                       (const char *)sqlite3_column_text(st, 10));
    }
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        char bucket[16];
        snprintf(bucket, sizeof bucket, "%d", b);
        if (hist[b] > 0)
            json_object_set_new(json_object_get(out, "latency_histogram"), bucket,
                                json_integer((json_int_t)hist[b]));
    }
    free(hist);
    return rc;
}

json_t *log_store_metrics(struct log_store *store, const struct log_store_filter *f,
                          int64_t step_ms)
{
    /* log_store__select binds ?4 and ?5 too: absent here, those binds fail unseen. */
    sqlite3_stmt *st = log_store__select(store, "SELECT ts_ms, requests, status_1xx, "
                                                "status_2xx, status_3xx, status_4xx, status_5xx,"
                                                " status_other, bytes_in, bytes_out, "
                                                "latency_histogram FROM metrics WHERE "
                                                "vs_uuid=?1 AND ts_ms BETWEEN ?2 AND ?3 ORDER "
                                                "BY ts_ms", f);
    json_t *out;
    int rc;

    if (st == NULL)
        return NULL;
    out = json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:{}, s:[]}", "requests",
                    (json_int_t)0, "status_classes", "1xx", 0, "2xx", 0, "3xx", 0, "4xx", 0,
                    "5xx", 0, "other", 0, "bytes_in", (json_int_t)0, "bytes_out", (json_int_t)0,
                    "latency_histogram", "series");
    rc = log_store__sum_metrics(st, f, step_ms, out);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        vlog_error("log store: the metrics query failed: %s", sqlite3_errmsg(store->reader));
        json_decref(out);
        return NULL;
    }
    return out;
}
