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
#include "common/timeutil.h"
#include "common/vlog.h"

#define LOG_STORE__SCHEMA_VERSION 1
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
    " duplicates_rejected INTEGER NOT NULL DEFAULT 0);"
    "PRAGMA user_version=1;";

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

/* Opens PATH for writing: WAL, synchronous=FULL, checked (quick_check), the schema made in
 * a new file. Returns 0 with *OUT, VIGIL_ECORRUPT with what is wrong in WHY (the file is
 * damaged or no log store), or VIGIL_EIO (it could not be opened at all: also in WHY). */
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
    if (version == 0 && tables == 0) {
        if (sqlite3_exec(db, log_store__schema, NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(why, len, "cannot be made: %s", sqlite3_errmsg(db));
            sqlite3_close(db);
            return VIGIL_EIO;
        }
    } else if (version != LOG_STORE__SCHEMA_VERSION ||
               log_store__pragma_int(db, "SELECT count(*) FROM sqlite_master WHERE type='table'"
                                         " AND name IN ('records','se_counts')") != 2) {
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

struct log_store_batch *log_store_batch_new(const char *se_uuid, const char *se_name)
{
    struct log_store_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->se_uuid = strdup(se_uuid);
    b->se_name = strdup(se_name);
    if (b->se_uuid == NULL || b->se_name == NULL) {
        log_store_batch_free(b);
        return NULL;
    }
    return b;
}

size_t log_store_batch_size(const struct log_store_batch *batch)
{
    return batch->n;
}

void log_store_batch_free(struct log_store_batch *batch)
{
    if (batch == NULL)
        return;
    for (size_t i = 0; i < batch->n; i++) {
        free(batch->rows[i].vs_uuid);
        free(batch->rows[i].client_ip);
        free(batch->rows[i].text);
    }
    free(batch->rows);
    free(batch->se_uuid);
    free(batch->se_name);
    free(batch);
}

/* A non-negative integer field NAME of R into *OUT; 0 or VIGIL_EINVAL with WHY. */
static int log_store__count(const json_t *r, const char *name, int64_t *out, char *why, size_t len)
{
    const json_t *v = json_object_get(r, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(why, len, "record field \"%s\": must be a non-negative integer", name);
        return VIGIL_EINVAL;
    }
    *out = json_integer_value(v);
    return 0;
}

int log_store_batch_add(struct log_store_batch *batch, uint64_t seq, const json_t *record,
                        char *why, size_t why_len)
{
    const char *ts = json_string_value(json_object_get(record, "timestamp"));
    const char *ip = json_string_value(json_object_get(record, "client_ip"));
    const json_t *vs = json_object_get(record, "vs_uuid");
    const json_t *total = json_object_get(record, "total_ms");
    struct log_store_row row = {0};

    if (!json_is_object(record)) {
        snprintf(why, why_len, "record %llu: not a JSON object", (unsigned long long)seq);
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
    if (vs != NULL && !json_is_null(vs) && (!json_is_string(vs) || json_string_length(vs) > 64)) {
        snprintf(why, why_len, "record field \"vs_uuid\": must be a uuid (a string)");
        return VIGIL_EINVAL;
    }
    if (total != NULL && !json_is_null(total) && !json_is_number(total)) {
        snprintf(why, why_len, "record field \"total_ms\": must be a number or null");
        return VIGIL_EINVAL;
    }
    if (log_store__count(record, "status", &row.status, why, why_len) != 0 ||
        log_store__count(record, "bytes_in", &row.bytes_in, why, why_len) != 0 ||
        log_store__count(record, "bytes_out", &row.bytes_out, why, why_len) != 0)
        return VIGIL_EINVAL;
    row.total_ms = json_is_number(total) ? json_number_value(total) : -1;
    if (batch->n == batch->cap) {
        size_t cap = batch->cap ? batch->cap * 2 : 64;
        struct log_store_row *rows = realloc(batch->rows, cap * sizeof *rows);
        if (rows == NULL)
            return VIGIL_ENOMEM;
        batch->rows = rows;
        batch->cap = cap;
    }
    row.text = json_dumps(record, JSON_COMPACT);
    row.client_ip = strdup(ip);
    row.vs_uuid = json_is_string(vs) ? strdup(json_string_value(vs)) : NULL;
    if (row.text == NULL || row.client_ip == NULL || (json_is_string(vs) && row.vs_uuid == NULL) ||
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

/* --- the writer (libuv's thread pool) ---------------------------------------------- */

/* B's rows into the open transaction on DB: new ones counted as stored, the others as
 * duplicates (and added to the SE's count). Returns 0 or VIGIL_EIO. */
static int log_store__insert(sqlite3 *db, sqlite3_stmt *ins, sqlite3_stmt *dup,
                             sqlite3_stmt *se, struct log_store_batch *b)
{
    sqlite3_bind_text(se, 1, b->se_uuid, -1, SQLITE_STATIC);
    sqlite3_bind_text(se, 2, b->se_name, -1, SQLITE_STATIC);
    if (sqlite3_step(se) != SQLITE_DONE)
        return VIGIL_EIO;
    sqlite3_reset(se);
    for (size_t i = 0; i < b->n; i++) {
        const struct log_store_row *r = &b->rows[i];
        sqlite3_bind_text(ins, 1, b->se_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, b->se_name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, r->seq);
        sqlite3_bind_int64(ins, 4, r->ts_ms);
        if (r->vs_uuid != NULL)
            sqlite3_bind_text(ins, 5, r->vs_uuid, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(ins, 5);
        sqlite3_bind_int64(ins, 6, r->status);
        sqlite3_bind_text(ins, 7, r->client_ip, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 8, r->bytes_in);
        sqlite3_bind_int64(ins, 9, r->bytes_out);
        if (r->total_ms >= 0)
            sqlite3_bind_double(ins, 10, r->total_ms);
        else
            sqlite3_bind_null(ins, 10);
        sqlite3_bind_text(ins, 11, r->text, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            return VIGIL_EIO;
        sqlite3_reset(ins);
        if (sqlite3_changes(db) > 0)
            b->outcome.stored++;
        else
            b->outcome.duplicates++;
    }
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
    sqlite3_stmt *ins = NULL, *dup = NULL, *se = NULL;
    int err = VIGIL_EIO;

    if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO records(se_uuid, se_name, seq, ts_ms, "
                               "vs_uuid, status, client_ip, bytes_in, bytes_out, total_ms, "
                               "record) VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "UPDATE se_counts SET duplicates_rejected = duplicates_rejected"
                               " + ? WHERE se_uuid=?", -1, &dup, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO se_counts(se_uuid, se_name) VALUES(?1, ?2) ON "
                               "CONFLICT(se_uuid) DO UPDATE SET se_name=?2", -1, &se, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto out;
    err = 0;
    for (struct log_store_batch *b = job; b != NULL && err == 0; b = b->next)
        err = log_store__insert(db, ins, dup, se, b);
    if (err == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        err = VIGIL_EIO;
    if (err != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    if (err != 0)
        vlog_error("log store: a commit failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    sqlite3_finalize(dup);
    sqlite3_finalize(se);
    return err;
}

/* The pages in use, in bytes. */
static int64_t log_store__used_bytes(sqlite3 *db)
{
    int64_t pages = log_store__pragma_int(db, "PRAGMA page_count");
    int64_t free_pages = log_store__pragma_int(db, "PRAGMA freelist_count");
    return (pages - free_pages) * log_store__pragma_int(db, "PRAGMA page_size");
}

/* Deletes the records older than the age bound, then the oldest ones while the pages in use
 * exceed the size bound (down to its low-water mark). Each DELETE is its own transaction. */
static void log_store__retain(struct log_store *s)
{
    char sql[160];
    int64_t cutoff = time_now_ms() - s->retention_ms;
    int64_t removed = 0;

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
    if (removed > 0)
        vlog_info("log store: retention deleted the %lld oldest records (bounds: %llu MiB, "
                  "%lld h)", (long long)removed,
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
