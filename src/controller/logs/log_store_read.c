/* log_store_read.c: the log store's queries, on the loop thread's own connection
 * (log_store.h). */
#include "controller/logs/log_store-int.h"

#include <stdio.h>
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

json_t *log_store_metrics(struct log_store *store, const struct log_store_filter *f,
                          int64_t step_ms)
{
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    sqlite3_stmt *st = log_store__select(store, "SELECT ts_ms, status, bytes_in, bytes_out, "
                                                "total_ms FROM records" LOG_STORE__WHERE
                                                " ORDER BY ts_ms", f);
    json_t *out, *status, *hist, *series, *point = NULL;
    int64_t point_ms = INT64_MIN;
    int rc;

    if (st == NULL)
        return NULL;
    out = json_pack("{s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:{}, s:[]}", "requests",
                    (json_int_t)0, "status_classes", "1xx", 0, "2xx", 0, "3xx", 0, "4xx", 0,
                    "5xx", 0, "other", 0, "bytes_in", (json_int_t)0, "bytes_out", (json_int_t)0,
                    "latency_histogram", "series");
    status = json_object_get(out, "status_classes");
    hist = json_object_get(out, "latency_histogram");
    series = json_object_get(out, "series");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0), code = sqlite3_column_int64(st, 1);
        int64_t in = sqlite3_column_int64(st, 2), bytes_out = sqlite3_column_int64(st, 3);
        int64_t slot = f->since_ms + (ts - f->since_ms) / step_ms * step_ms;
        int cls = code >= 100 && code < 600 ? (int)(code / 100) : 0;
        char bucket[16];

        log_store__add(out, "requests", 1);
        log_store__add(out, "bytes_in", in);
        log_store__add(out, "bytes_out", bytes_out);
        log_store__add(status, classes[cls], 1);
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            snprintf(bucket, sizeof bucket, "%d",
                     latency_bucket_of(sqlite3_column_double(st, 4)));
            log_store__add(hist, bucket, 1);
        }
        if (slot != point_ms) {
            point_ms = slot;
            point = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "time_ms", (json_int_t)slot,
                              "requests", (json_int_t)0, "errors_4xx", (json_int_t)0,
                              "errors_5xx", (json_int_t)0, "bytes_in", (json_int_t)0,
                              "bytes_out", (json_int_t)0);
            json_array_append_new(series, point);
        }
        log_store__add(point, "requests", 1);
        log_store__add(point, "bytes_in", in);
        log_store__add(point, "bytes_out", bytes_out);
        if (cls == 4 || cls == 5)
            log_store__add(point, cls == 4 ? "errors_4xx" : "errors_5xx", 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        vlog_error("log store: the metrics query failed: %s", sqlite3_errmsg(store->reader));
        json_decref(out);
        return NULL;
    }
    return out;
}
