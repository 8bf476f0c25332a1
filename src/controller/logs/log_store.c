/* log_store.c: the log store's file, its writer and its retention (log_store.h; the
 * queries are in log_store_read.c). */
#include "controller/logs/log_store-int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/latency.h"
#include "common/timeutil.h"
#include "common/vlog.h"

#define LOG_STORE__SCHEMA_VERSION 2
/* The writer's connection is used by one thread at a time (the worker during a commit),
 * the reader's by the loop only: SQLite's own mutexes stay (full mutex), they cost little
 * next to an fsync. */
#define LOG_STORE__FLAGS (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX)
/* A size pass deletes down to this share of the bound, so it does not run at every commit. */
#define LOG_STORE__SIZE_LOW_WATER 0.9

static const char *const log_store__schema =
    "CREATE TABLE records(id INTEGER PRIMARY KEY, se_uuid TEXT NOT NULL, se_name TEXT NOT NULL,"
    " seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, vs_uuid TEXT, status INTEGER NOT NULL,"
    " client_ip TEXT NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,"
    " total_ms REAL, record TEXT NOT NULL);"
    "CREATE UNIQUE INDEX records_se_seq ON records(se_uuid, seq);"
    "CREATE INDEX records_vs_time ON records(vs_uuid, ts_ms);"
    "CREATE INDEX records_status ON records(status);"
    "CREATE INDEX records_time ON records(ts_ms);"
    "CREATE TABLE se_counts(se_uuid TEXT PRIMARY KEY, se_name TEXT NOT NULL,"
    " duplicates_rejected INTEGER NOT NULL DEFAULT 0);";

/* From version 1 to 2: the SEs' per-second metrics (METRICS frames), one row per (SE, seq)
 * of their own sequence space, read by virtual service and time; their duplicates counted
 * apart from the records'. */
static const char *const log_store__schema_2 =
    "CREATE TABLE metrics(id INTEGER PRIMARY KEY, se_uuid TEXT NOT NULL, se_name TEXT NOT NULL,"
    " seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, vs_uuid TEXT, requests INTEGER NOT NULL,"
    " status_1xx INTEGER NOT NULL, status_2xx INTEGER NOT NULL, status_3xx INTEGER NOT NULL,"
    " status_4xx INTEGER NOT NULL, status_5xx INTEGER NOT NULL, status_other INTEGER NOT NULL,"
    " bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, latency_histogram TEXT NOT NULL);"
    "CREATE UNIQUE INDEX metrics_se_seq ON metrics(se_uuid, seq);"
    "CREATE INDEX metrics_vs_time ON metrics(vs_uuid, ts_ms);"
    "CREATE INDEX metrics_time ON metrics(ts_ms);"
    "ALTER TABLE se_counts ADD COLUMN metrics_duplicates_rejected INTEGER NOT NULL DEFAULT 0;";

const char *const log_store_status_class_names[LOG_STORE__CLASSES] = {"1xx", "2xx", "3xx",
                                                                      "4xx", "5xx", "other"};

/* --- the file -------------------------------------------------------------------------- */

/* One integer from SQL on DB, or -1. */
static int64_t log_store__pragma_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* How many of the tables NAMES (SQL strings, comma-separated) DB has. */
static int64_t log_store__tables(sqlite3 *db, const char *names)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name "
                              "IN (%s)", names);
    return log_store__pragma_int(db, sql);
}

/* Brings DB from schema VERSION (0: an empty file, 1: records only) to
 * LOG_STORE__SCHEMA_VERSION in one transaction. Returns 0 or VIGIL_EIO (rolled back: the
 * file is as it was). */
static int log_store__upgrade(sqlite3 *db, int64_t version)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return VIGIL_EIO;
    if ((version < 1 && sqlite3_exec(db, log_store__schema, NULL, NULL, NULL) != SQLITE_OK) ||
        sqlite3_exec(db, log_store__schema_2, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA user_version=2", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return VIGIL_EIO;
    }
    return 0;
}

/* Opens PATH for writing: WAL, synchronous=FULL, checked (quick_check), the schema made in
 * a new file or a version 1 schema migrated. Returns 0 with *OUT, VIGIL_ECORRUPT with what
 * is wrong in WHY (the file is damaged or no log store), or VIGIL_EIO (it could not be
 * opened, made or migrated: also in WHY; the file is left as it was). */
static int log_store__open_writer(const char *path, sqlite3 **out, char *why, size_t len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const char *check = NULL;
    int rc = sqlite3_open_v2(path, &db, LOG_STORE__FLAGS, NULL);
    int64_t version, tables;

    *out = NULL;
    if (rc != SQLITE_OK) {
        snprintf(why, len, "cannot be opened: %s", db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return rc == SQLITE_CANTOPEN ? VIGIL_EIO : VIGIL_ECORRUPT;
    }
    sqlite3_busy_timeout(db, 1000);
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL) !=
        SQLITE_OK) {
        snprintf(why, len, "cannot be opened: %s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return VIGIL_ECORRUPT;
    }
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((check = (const char *)sqlite3_column_text(st, 0)) != NULL ? check : "", "ok") != 0) {
        snprintf(why, len, "fails PRAGMA quick_check: %.200s",
                 check != NULL ? check : sqlite3_errmsg(db));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return VIGIL_ECORRUPT;
    }
    sqlite3_finalize(st);
    version = log_store__pragma_int(db, "PRAGMA user_version");
    tables = log_store__pragma_int(db, "SELECT count(*) FROM sqlite_master");
    if ((version == 0 && tables == 0) ||
        (version == 1 && log_store__tables(db, "'records','se_counts'") == 2)) {
        rc = log_store__upgrade(db, version);
        if (rc != 0) {
            snprintf(why, len, "cannot be %s: %s", version == 0 ? "made" : "migrated to schema 2",
                     sqlite3_errmsg(db));
            sqlite3_close(db);
            return VIGIL_EIO; /* a version 1 store is kept as it is, never set aside for it */
        }
        if (version == 1)
            vlog_info("log store %s: schema version 1 migrated to 2 (the metrics table added, "
                      "the records kept)", path);
    } else if (version != LOG_STORE__SCHEMA_VERSION ||
               log_store__tables(db, "'records','se_counts','metrics'") != 3) {
        snprintf(why, len, "has another schema (user_version %lld, %lld objects)",
                 (long long)version, (long long)tables);
        sqlite3_close(db);
        return VIGIL_ECORRUPT;
    }
    *out = db;
    return 0;
}

/* Moves PATH and its -wal and -shm files to DIR/damaged-logs-<time>.db[...]; the new name
 * into TO. Returns 0 or a negative errno. */
static int log_store__set_aside(const char *dir, const char *path, char *to, size_t len)
{
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(to, len, "%s/damaged-logs-%s.db", dir, stamp);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char from[1100], dest[1100];
        snprintf(from, sizeof from, "%s%s", path, suffixes[i]);
        snprintf(dest, sizeof dest, "%s%s", to, suffixes[i]);
        if (rename(from, dest) != 0 && errno != ENOENT)
            return -errno;
    }
    return 0;
}

struct log_store *log_store_open(uv_loop_t *loop, const struct log_store_config *cfg,
                                 char *damage, size_t damage_len, char *err, size_t err_len)
{
    char path[1024], why[300], aside[1100];
    struct log_store *s;
    int rc;

    damage[0] = '\0';
    snprintf(path, sizeof path, "%s/logs.db", cfg->dir);
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    rc = log_store__open_writer(path, &s->writer, why, sizeof why);
    if (rc == VIGIL_ECORRUPT) {
        int moved = log_store__set_aside(cfg->dir, path, aside, sizeof aside);
        if (moved != 0) {
            snprintf(err, err_len, "log store %s %s, and cannot be moved aside: %s", path, why,
                     strerror(-moved));
            free(s);
            return NULL;
        }
        snprintf(damage, damage_len, "log store %s %s: moved to %s, a new empty store made",
                 path, why, aside);
        rc = log_store__open_writer(path, &s->writer, why, sizeof why);
    }
    if (rc == 0 && sqlite3_open_v2(path, &s->reader, LOG_STORE__FLAGS, NULL) != SQLITE_OK) {
        snprintf(why, sizeof why, "cannot be opened for reading: %s", sqlite3_errmsg(s->reader));
        rc = VIGIL_EIO;
    }
    if (rc != 0) {
        snprintf(err, err_len, "log store %s %s", path, why);
        sqlite3_close(s->reader);
        sqlite3_close(s->writer);
        free(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->reader, 1000);
    s->loop = loop;
    s->retention_bytes = cfg->retention_bytes;
    s->retention_ms = cfg->retention_ms;
    s->retention_every_ms = cfg->retention_every_ms > 0 ? cfg->retention_every_ms : 1000;
    s->commit_delay_ms = cfg->commit_delay_ms;
    s->pending_tail = &s->pending;
    s->work.data = s;
    uv_check_init(loop, &s->check);
    s->check.data = s;
    uv_idle_init(loop, &s->wake);
    s->wake.data = s;
    return s;
}

/* --- batches ------------------------------------------------------------------------- */

/* A new empty batch of KIND for SE_UUID / SE_NAME (copied), or NULL. */
static struct log_store_batch *log_store__batch_new(enum log_store_batch_kind kind,
                                                    const char *se_uuid, const char *se_name)
{
    struct log_store_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->kind = kind;
    b->se_uuid = strdup(se_uuid);
    b->se_name = strdup(se_name);
    if (b->se_uuid == NULL || b->se_name == NULL) {
        log_store_batch_free(b);
        return NULL;
    }
    return b;
}

struct log_store_batch *log_store_batch_new(const char *se_uuid, const char *se_name)
{
    return log_store__batch_new(LOG_STORE_RECORDS, se_uuid, se_name);
}

struct log_store_batch *log_store_metrics_batch_new(const char *se_uuid, const char *se_name)
{
    return log_store__batch_new(LOG_STORE_METRICS, se_uuid, se_name);
}

size_t log_store_batch_size(const struct log_store_batch *batch)
{
    return batch->n;
}

void log_store_batch_free(struct log_store_batch *batch)
{
    if (batch == NULL)
        return;
    for (size_t i = 0; i < batch->n && batch->kind == LOG_STORE_RECORDS; i++) {
        free(batch->rows[i].vs_uuid);
        free(batch->rows[i].client_ip);
        free(batch->rows[i].text);
    }
    for (size_t i = 0; i < batch->n && batch->kind == LOG_STORE_METRICS; i++) {
        free(batch->metric_rows[i].vs_uuid);
        free(batch->metric_rows[i].latency_histogram);
    }
    free(batch->rows);
    free(batch->metric_rows);
    free(batch->se_uuid);
    free(batch->se_name);
    free(batch);
}

/* Room for one more row of SIZE bytes in *ROWS (BATCH's array of its kind). Returns 0 or
 * VIGIL_ENOMEM (unchanged). */
static int log_store__grow(struct log_store_batch *batch, void **rows, size_t size)
{
    size_t cap = batch->cap ? batch->cap * 2 : 64;
    void *grown;
    if (batch->n < batch->cap)
        return 0;
    grown = realloc(*rows, cap * size);
    if (grown == NULL)
        return VIGIL_ENOMEM;
    *rows = grown;
    batch->cap = cap;
    return 0;
}

/* A non-negative integer field NAME of R (a record, or what WHAT names) into *OUT; 0 or
 * VIGIL_EINVAL with WHY. */
static int log_store__count(const json_t *r, const char *what, const char *name, int64_t *out,
                            char *why, size_t len)
{
    const json_t *v = json_object_get(r, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(why, len, "%s field \"%s\": must be a non-negative integer", what, name);
        return VIGIL_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

/* An optional "vs_uuid" of R (absent or null: none) as WHAT's field; 0 with *VS (borrowed
 * or NULL), or VIGIL_EINVAL with WHY. */
static int log_store__vs_uuid(const json_t *r, const char *what, const char **vs, char *why,
                              size_t len)
{
    const json_t *v = json_object_get(r, "vs_uuid");
    *vs = json_string_value(v);
    if (v != NULL && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 64)) {
        snprintf(why, len, "%s field \"vs_uuid\": must be a uuid (a string) or null", what);
        return VIGIL_EINVAL;
    }
    return 0;
}

int log_store_batch_add(struct log_store_batch *batch, uint64_t seq, const json_t *record,
                        char *why, size_t why_len)
{
    const char *ts = json_string_value(json_object_get(record, "timestamp"));
    const char *ip = json_string_value(json_object_get(record, "client_ip"));
    const char *vs = NULL;
    const json_t *total = json_object_get(record, "total_ms");
    struct log_store_row row = {0};

    if (!json_is_object(record)) {
        snprintf(why, why_len, "record %llu: not a JSON object", (unsigned long long)seq);
        return VIGIL_EINVAL;
    }
    if (batch->kind != LOG_STORE_RECORDS) {
        snprintf(why, why_len, "record %llu: this is a batch of metrics", (unsigned long long)seq);
        return VIGIL_EINVAL;
    }
    if (batch->n >= LOG_STORE_BATCH_MAX)
        return VIGIL_ETOOBIG;
    row.seq = (int64_t)seq;
    if (ts == NULL || time_parse_rfc3339(ts, &row.ts_ms) != 0) {
        snprintf(why, why_len, "record field \"timestamp\": must be an RFC 3339 time");
        return VIGIL_EINVAL;
    }
    if (ip == NULL || strlen(ip) > 45) {
        snprintf(why, why_len, "record field \"client_ip\": must be an address (a string)");
        return VIGIL_EINVAL;
    }
    if (log_store__vs_uuid(record, "record", &vs, why, why_len) != 0)
        return VIGIL_EINVAL;
    if (total != NULL && !json_is_null(total) && !json_is_number(total)) {
        snprintf(why, why_len, "record field \"total_ms\": must be a number or null");
        return VIGIL_EINVAL;
    }
    if (log_store__count(record, "record", "status", &row.status, why, why_len) != 0 ||
        log_store__count(record, "record", "bytes_in", &row.bytes_in, why, why_len) != 0 ||
        log_store__count(record, "record", "bytes_out", &row.bytes_out, why, why_len) != 0)
        return VIGIL_EINVAL;
    row.total_ms = json_is_number(total) ? json_number_value(total) : -1;
    if (log_store__grow(batch, (void **)&batch->rows, sizeof *batch->rows) != 0)
        return VIGIL_ENOMEM;
    row.text = json_dumps(record, JSON_COMPACT);
    row.client_ip = strdup(ip);
    row.vs_uuid = vs != NULL ? strdup(vs) : NULL;
    if (row.text == NULL || row.client_ip == NULL || (vs != NULL && row.vs_uuid == NULL) ||
        strlen(row.text) > LOG_STORE_RECORD_MAX) {
        int too_big = row.text != NULL && strlen(row.text) > LOG_STORE_RECORD_MAX;
        free(row.text);
        free(row.client_ip);
        free(row.vs_uuid);
        if (too_big)
            snprintf(why, why_len, "record %llu: over %d bytes", (unsigned long long)seq,
                     LOG_STORE_RECORD_MAX);
        return too_big ? VIGIL_ETOOBIG : VIGIL_ENOMEM;
    }
    batch->rows[batch->n++] = row;
    return 0;
}

/* METRIC's "status_classes" into ROW: every class a non-negative integer, summing to
 * ROW->requests. Returns 0 or VIGIL_EINVAL with WHY. */
static int log_store__status_classes(const json_t *metric, struct log_store_metric_row *row,
                                     char *why, size_t len)
{
    const json_t *classes = json_object_get(metric, "status_classes");
    int64_t sum = 0;

    if (!json_is_object(classes)) {
        snprintf(why, len, "metrics field \"status_classes\": must be an object {\"1xx\", "
                 "\"2xx\", \"3xx\", \"4xx\", \"5xx\", \"other\"}");
        return VIGIL_EINVAL;
    }
    for (int c = 0; c < LOG_STORE__CLASSES; c++) {
        int64_t *count = &row->status_classes[c];
        if (log_store__count(classes, "metrics status_classes", log_store_status_class_names[c],
                             count, why, len) != 0)
            return VIGIL_EINVAL;
        if (*count > row->requests - sum) {
            snprintf(why, len, "metrics field \"status_classes\": its counts sum to more than "
                     "\"requests\" (%lld)", (long long)row->requests);
            return VIGIL_EINVAL;
        }
        sum += *count;
    }
    if (sum != row->requests) {
        snprintf(why, len, "metrics field \"status_classes\": its counts sum to %lld, "
                 "\"requests\" is %lld", (long long)sum, (long long)row->requests);
        return VIGIL_EINVAL;
    }
    return 0;
}

/* METRIC's "latency_histogram" ({"BUCKET": count}: buckets 0 to LATENCY_BUCKETS - 1,
 * non-negative counts summing to at most REQUESTS) as compact JSON into *TEXT (the
 * caller's to free). Returns 0, VIGIL_EINVAL with WHY, or VIGIL_ENOMEM. */
static int log_store__histogram(const json_t *metric, int64_t requests, char **text, char *why,
                                size_t len)
{
    const json_t *hist = json_object_get(metric, "latency_histogram");
    const char *key;
    json_t *count;
    int64_t sum = 0;

    if (!json_is_object(hist)) {
        snprintf(why, len, "metrics field \"latency_histogram\": must be an object "
                 "{\"BUCKET\": count}");
        return VIGIL_EINVAL;
    }
    json_object_foreach((json_t *)hist, key, count) {
        char *end;
        long bucket = strtol(key, &end, 10);
        if (*key < '0' || *key > '9' || *end != '\0' || bucket >= LATENCY_BUCKETS) {
            snprintf(why, len, "metrics field \"latency_histogram\": \"%.20s\" is no bucket "
                     "(0 to %d)", key, LATENCY_BUCKETS - 1);
            return VIGIL_EINVAL;
        }
        if (!json_is_integer(count) || json_integer_value(count) < 0 ||
            json_integer_value(count) > requests - sum) {
            snprintf(why, len, "metrics field \"latency_histogram\": bucket %ld must count a "
                     "non-negative integer, the counts summing to at most \"requests\"", bucket);
            return VIGIL_EINVAL;
        }
        sum += json_integer_value(count);
    }
    *text = json_dumps(hist, JSON_COMPACT);
    return *text != NULL ? 0 : VIGIL_ENOMEM;
}

/* METRIC's fields that are checked but not stored: "timestamp" (into ROW), "interval_ms",
 * "se_name", "vs_name". Returns 0 or VIGIL_EINVAL with WHY. */
static int log_store__metric_header(const json_t *metric, struct log_store_metric_row *row,
                                    char *why, size_t len)
{
    const char *ts = json_string_value(json_object_get(metric, "timestamp"));
    const json_t *interval = json_object_get(metric, "interval_ms");
    const json_t *vs_name = json_object_get(metric, "vs_name");

    if (ts == NULL || time_parse_rfc3339(ts, &row->ts_ms) != 0 || row->ts_ms % 1000 != 0) {
        snprintf(why, len, "metrics field \"timestamp\": must be an RFC 3339 time at the start "
                 "of a second");
        return VIGIL_EINVAL;
    }
    if (!json_is_integer(interval) || json_integer_value(interval) != LOG_STORE_METRICS_INTERVAL_MS) {
        snprintf(why, len, "metrics field \"interval_ms\": must be %d",
                 LOG_STORE_METRICS_INTERVAL_MS);
        return VIGIL_EINVAL;
    }
    if (!json_is_string(json_object_get(metric, "se_name"))) {
        snprintf(why, len, "metrics field \"se_name\": must be a string");
        return VIGIL_EINVAL;
    }
    if (vs_name != NULL && !json_is_null(vs_name) && !json_is_string(vs_name)) {
        snprintf(why, len, "metrics field \"vs_name\": must be a string or null");
        return VIGIL_EINVAL;
    }
    return 0;
}

int log_store_metrics_batch_add(struct log_store_batch *batch, uint64_t seq,
                                const json_t *metric, char *why, size_t why_len)
{
    struct log_store_metric_row row = {0};
    const char *vs = NULL;
    int err;

    if (!json_is_object(metric)) {
        snprintf(why, why_len, "metrics record %llu: not a JSON object", (unsigned long long)seq);
        return VIGIL_EINVAL;
    }
    if (batch->kind != LOG_STORE_METRICS) {
        snprintf(why, why_len, "metrics record %llu: this is a batch of records",
                 (unsigned long long)seq);
        return VIGIL_EINVAL;
    }
    if (batch->n >= LOG_STORE_BATCH_MAX)
        return VIGIL_ETOOBIG;
    row.seq = (int64_t)seq;
    if (log_store__metric_header(metric, &row, why, why_len) != 0 ||
        log_store__vs_uuid(metric, "metrics", &vs, why, why_len) != 0 ||
        log_store__count(metric, "metrics", "requests", &row.requests, why, why_len) != 0 ||
        log_store__count(metric, "metrics", "bytes_in", &row.bytes_in, why, why_len) != 0 ||
        log_store__count(metric, "metrics", "bytes_out", &row.bytes_out, why, why_len) != 0 ||
        log_store__status_classes(metric, &row, why, why_len) != 0)
        return VIGIL_EINVAL;
    err = log_store__histogram(metric, row.requests, &row.latency_histogram, why, why_len);
    if (err == 0 && log_store__grow(batch, (void **)&batch->metric_rows,
                                    sizeof *batch->metric_rows) != 0)
        err = VIGIL_ENOMEM;
    if (err == 0 && vs != NULL && (row.vs_uuid = strdup(vs)) == NULL)
        err = VIGIL_ENOMEM;
    if (err != 0) {
        free(row.latency_histogram);
        return err;
    }
    batch->metric_rows[batch->n++] = row;
    return 0;
}

/* --- the writer (libuv's thread pool) ---------------------------------------------- */

/* The statements of a commit, prepared on the writer. */
struct log_store__statements {
    sqlite3_stmt *record, *metric;         /* INSERT OR IGNORE one row */
    sqlite3_stmt *se;                      /* the SE's se_counts row, made or renamed */
    sqlite3_stmt *record_duplicates, *metric_duplicates; /* add to its counts */
};

/* Runs INS (an INSERT OR IGNORE of one of B's rows, bound) and resets it: the row counted
 * as stored when it was new, else as a duplicate. Returns 0 or VIGIL_EIO. */
static int log_store__step_counted(sqlite3_stmt *ins, struct log_store_batch *b)
{
    if (sqlite3_step(ins) != SQLITE_DONE)
        return VIGIL_EIO;
    sqlite3_reset(ins);
    if (sqlite3_changes(sqlite3_db_handle(ins)) > 0)
        b->outcome.stored++;
    else
        b->outcome.duplicates++;
    return 0;
}

/* Binds the columns both kinds of row begin with: ?1 se_uuid and ?2 se_name (B's), ?3 SEQ,
 * ?4 TS_MS, ?5 VS_UUID (NULL: null). */
static void log_store__bind_key(sqlite3_stmt *ins, const struct log_store_batch *b, int64_t seq,
                                int64_t ts_ms, const char *vs_uuid)
{
    sqlite3_bind_text(ins, 1, b->se_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(ins, 2, b->se_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, seq);
    sqlite3_bind_int64(ins, 4, ts_ms);
    if (vs_uuid != NULL)
        sqlite3_bind_text(ins, 5, vs_uuid, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 5);
}

/* B's records into the open transaction (INS): new ones counted as stored, the others as
 * duplicates. Returns 0 or VIGIL_EIO. */
static int log_store__insert_records(sqlite3_stmt *ins, struct log_store_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct log_store_row *r = &b->rows[i];
        log_store__bind_key(ins, b, r->seq, r->ts_ms, r->vs_uuid);
        sqlite3_bind_int64(ins, 6, r->status);
        sqlite3_bind_text(ins, 7, r->client_ip, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 8, r->bytes_in);
        sqlite3_bind_int64(ins, 9, r->bytes_out);
        if (r->total_ms >= 0)
            sqlite3_bind_double(ins, 10, r->total_ms);
        else
            sqlite3_bind_null(ins, 10);
        sqlite3_bind_text(ins, 11, r->text, -1, SQLITE_STATIC);
        if (log_store__step_counted(ins, b) != 0)
            return VIGIL_EIO;
    }
    return 0;
}

/* B's metrics records into the open transaction (INS), counted as log_store__insert_records
 * does. Returns 0 or VIGIL_EIO. */
static int log_store__insert_metrics(sqlite3_stmt *ins, struct log_store_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct log_store_metric_row *m = &b->metric_rows[i];
        log_store__bind_key(ins, b, m->seq, m->ts_ms, m->vs_uuid);
        sqlite3_bind_int64(ins, 6, m->requests);
        for (int c = 0; c < LOG_STORE__CLASSES; c++)
            sqlite3_bind_int64(ins, 7 + c, m->status_classes[c]);
        sqlite3_bind_int64(ins, 13, m->bytes_in);
        sqlite3_bind_int64(ins, 14, m->bytes_out);
        sqlite3_bind_text(ins, 15, m->latency_histogram, -1, SQLITE_STATIC);
        if (log_store__step_counted(ins, b) != 0)
            return VIGIL_EIO;
    }
    return 0;
}

/* B into the open transaction: its SE's se_counts row, its rows, and its duplicates added
 * to the SE's count of its kind. Returns 0 or VIGIL_EIO. */
static int log_store__insert(const struct log_store__statements *st, struct log_store_batch *b)
{
    int metrics = b->kind == LOG_STORE_METRICS;
    sqlite3_stmt *dup = metrics ? st->metric_duplicates : st->record_duplicates;

    sqlite3_bind_text(st->se, 1, b->se_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(st->se, 2, b->se_name, -1, SQLITE_STATIC);
    if (sqlite3_step(st->se) != SQLITE_DONE)
        return VIGIL_EIO;
    sqlite3_reset(st->se);
    if ((metrics ? log_store__insert_metrics(st->metric, b) : log_store__insert_records(st->record, b)) != 0)
        return VIGIL_EIO;
    if (b->outcome.duplicates > 0) {
        sqlite3_bind_int64(dup, 1, (sqlite3_int64)b->outcome.duplicates);
        sqlite3_bind_text(dup, 2, b->se_uuid, -1, SQLITE_STATIC);
        if (sqlite3_step(dup) != SQLITE_DONE)
            return VIGIL_EIO;
        sqlite3_reset(dup);
    }
    return 0;
}

/* Every batch of JOB in one transaction on DB. Returns 0 or VIGIL_EIO (rolled back). */
static int log_store__commit(sqlite3 *db, struct log_store_batch *job)
{
    struct log_store__statements st = {0};
    int err = VIGIL_EIO;

    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO records(se_uuid, se_name, seq, ts_ms, "
                               "vs_uuid, status, client_ip, bytes_in, bytes_out, total_ms, "
                               "record) VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &st.record,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO metrics(se_uuid, se_name, seq, ts_ms, "
                               "vs_uuid, requests, status_1xx, status_2xx, status_3xx, "
                               "status_4xx, status_5xx, status_other, bytes_in, bytes_out, "
                               "latency_histogram) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
                           &st.metric, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE se_counts SET duplicates_rejected = duplicates_rejected"
                               " + ? WHERE se_uuid=?", -1, &st.record_duplicates, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE se_counts SET metrics_duplicates_rejected = "
                               "metrics_duplicates_rejected + ? WHERE se_uuid=?", -1,
                           &st.metric_duplicates, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO se_counts(se_uuid, se_name) VALUES(?1, ?2) ON "
                               "CONFLICT(se_uuid) DO UPDATE SET se_name=?2", -1, &st.se, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    err = 0;
    for (struct log_store_batch *b = job; b != NULL && err == 0; b = b->next)
        err = log_store__insert(&st, b);
    if (err == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        err = VIGIL_EIO;
    if (err != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    if (err != 0)
        vlog_error("log store: a commit failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st.record);
    sqlite3_finalize(st.metric);
    sqlite3_finalize(st.record_duplicates);
    sqlite3_finalize(st.metric_duplicates);
    sqlite3_finalize(st.se);
    return err;
}

/* The pages in use, in bytes. */
static int64_t log_store__used_bytes(sqlite3 *db)
{
    int64_t pages = log_store__pragma_int(db, "PRAGMA page_count");
    int64_t free_pages = log_store__pragma_int(db, "PRAGMA freelist_count");
    return (pages - free_pages) * log_store__pragma_int(db, "PRAGMA page_size");
}

/* Deletes the records and the metrics records older than the age bound, then the oldest
 * records while the pages in use exceed the size bound (down to its low-water mark; the
 * metrics are bounded by age only). Each DELETE is its own transaction. */
static void log_store__retain(struct log_store *s)
{
    char sql[160];
    int64_t cutoff = time_now_ms() - s->retention_ms;
    int64_t removed = 0, removed_metrics = 0;

    snprintf(sql, sizeof sql, "DELETE FROM metrics WHERE ts_ms < %lld", (long long)cutoff);
    if (sqlite3_exec(s->writer, sql, NULL, NULL, NULL) == SQLITE_OK)
        removed_metrics = sqlite3_changes(s->writer);
    snprintf(sql, sizeof sql, "DELETE FROM records WHERE ts_ms < %lld", (long long)cutoff);
    if (sqlite3_exec(s->writer, sql, NULL, NULL, NULL) == SQLITE_OK)
        removed += sqlite3_changes(s->writer);
    for (int round = 0; round < 16; round++) {
        int64_t used = log_store__used_bytes(s->writer);
        int64_t rows = log_store__pragma_int(s->writer, "SELECT count(*) FROM records");
        double excess;
        int64_t n;
        if (used <= (int64_t)s->retention_bytes || rows <= 0)
            break;
        excess = (double)used - LOG_STORE__SIZE_LOW_WATER * (double)s->retention_bytes;
        n = (int64_t)ceil((double)rows * excess / (double)used);
        snprintf(sql, sizeof sql, "DELETE FROM records WHERE id IN (SELECT id FROM records "
                                  "ORDER BY ts_ms, id LIMIT %lld)", (long long)(n > 0 ? n : 1));
        if (sqlite3_exec(s->writer, sql, NULL, NULL, NULL) != SQLITE_OK)
            break;
        removed += sqlite3_changes(s->writer);
    }
    if (removed > 0 || removed_metrics > 0)
        vlog_info("log store: retention deleted the %lld oldest records and %lld metrics "
                  "records (bounds: %llu MiB, %lld h)", (long long)removed,
                  (long long)removed_metrics,
                  (unsigned long long)(s->retention_bytes >> 20),
                  (long long)(s->retention_ms / 3600000));
}

static void log_store__work(uv_work_t *w)
{
    struct log_store *s = w->data;
    int64_t start;
    int err;

    if (s->commit_delay_ms > 0)
        usleep(s->commit_delay_ms * 1000u);
    start = time_mono_ms();
    err = log_store__commit(s->writer, s->job);

    for (struct log_store_batch *b = s->job; b != NULL; b = b->next)
        b->outcome.err = err;
    vlog_debug("log store: commit of a job in %lld ms", (long long)(time_mono_ms() - start));
    if (time_mono_ms() - s->retention_last_ms >= s->retention_every_ms) {
        s->retention_last_ms = time_mono_ms();
        log_store__retain(s);
    }
}

static void log_store__start(struct log_store *s);
static void log_store__free(struct log_store *s);

/* On the loop, after a commit: every batch's callback in order, then the next commit. */
static void log_store__after_work(uv_work_t *w, int status)
{
    struct log_store *s = w->data;
    struct log_store_batch *b = s->job;

    s->job = NULL;
    while (b != NULL) {
        struct log_store_batch *next = b->next;
        if (status != 0)
            b->outcome.err = VIGIL_EIO;
        if (b->cb != NULL)
            b->cb(b->data, &b->outcome);
        log_store_batch_free(b);
        b = next;
    }
    if (s->closing)
        log_store__free(s);
    else
        log_store__start(s);
}

/* Hands every pending batch to the writer, unless a commit runs. */
static void log_store__start(struct log_store *s)
{
    if (s->job != NULL || s->pending == NULL)
        return;
    s->job = s->pending;
    s->pending = NULL;
    s->pending_tail = &s->pending;
    if (uv_queue_work(s->loop, &s->work, log_store__work, log_store__after_work) != 0) {
        log_store__work(&s->work); /* cannot happen with a valid loop: commit here */
        log_store__after_work(&s->work, 0);
        return;
    }
    uv_check_stop(&s->check);
    uv_idle_stop(&s->wake);
}

static void log_store__on_check(uv_check_t *c)
{
    log_store__start(c->data);
}

static void log_store__on_wake(uv_idle_t *i)
{
    (void)i; /* its being active is what counts */
}

void log_store_submit(struct log_store *store, struct log_store_batch *batch,
                      log_store_done_cb cb, void *data)
{
    batch->cb = cb;
    batch->data = data;
    batch->next = NULL;
    *store->pending_tail = batch;
    store->pending_tail = &batch->next;
    if (store->job == NULL) {
        uv_check_start(&store->check, log_store__on_check);
        uv_idle_start(&store->wake, log_store__on_wake);
    }
}

void log_store_batch_cancel(struct log_store_batch *batch)
{
    batch->cb = NULL;
    batch->data = NULL;
}

/* --- close ----------------------------------------------------------------------------- */

static void log_store__on_wake_closed(uv_handle_t *h)
{
    struct log_store *s = h->data;
    sqlite3_close(s->reader);
    sqlite3_close(s->writer);
    free(s);
}

static void log_store__on_check_closed(uv_handle_t *h)
{
    struct log_store *s = h->data;
    uv_close((uv_handle_t *)&s->wake, log_store__on_wake_closed);
}

static void log_store__free(struct log_store *s)
{
    uv_close((uv_handle_t *)&s->check, log_store__on_check_closed);
}

void log_store_close(struct log_store *store)
{
    struct log_store_batch *b = store->pending;
    static const struct log_store_outcome shutdown = {VIGIL_ESHUTDOWN, 0, 0};

    store->pending = NULL;
    store->pending_tail = &store->pending;
    while (b != NULL) {
        struct log_store_batch *next = b->next;
        if (b->cb != NULL)
            b->cb(b->data, &shutdown);
        log_store_batch_free(b);
        b = next;
    }
    store->closing = 1;
    if (store->job == NULL)
        log_store__free(store);
}
