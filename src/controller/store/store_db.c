#include "controller/store/store_db.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"

/* Only the loop thread touches the database (snapshots are hashed from a copy), so SQLite's
 * per-call mutexes are skipped (2% of a follower's apply). */
#define STORE_DB__OPEN_FLAGS (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX)

/* Opens a connection on DATA (LEN bytes, sqlite3_malloc'd, stolen; NULL for an empty
 * database): an in-memory database held in one buffer (memdb), so that store_db_image
 * reads it without a copy. */
static int store_db__open_memdb(struct store_db *db, unsigned char *data, size_t len)
{
    memset(db, 0, sizeof *db);
    if (sqlite3_open_v2(":memory:", &db->handle, STORE_DB__OPEN_FLAGS, NULL) != SQLITE_OK) {
        sqlite3_free(data);
        store_db_close(db);
        return VIGIL_EIO;
    }
    if (sqlite3_deserialize(db->handle, "main", data, (sqlite3_int64)len, (sqlite3_int64)len,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK) {
        store_db_close(db);
        return data != NULL ? VIGIL_ECORRUPT : VIGIL_EIO;
    }
    return 0;
}

int store_db_open(struct store_db *db)
{
    return store_db__open_memdb(db, NULL, 0);
}

int store_db_open_image(struct store_db *db, const void *data, size_t len)
{
    unsigned char *copy = sqlite3_malloc64(len);
    char *check;
    int err;

    if (copy == NULL)
        return VIGIL_ENOMEM;
    memcpy(copy, data, len);
    err = store_db__open_memdb(db, copy, len);
    if (err != 0)
        return err;
    check = store_db_text(db, "PRAGMA quick_check", NULL);
    err = check != NULL && strcmp(check, "ok") == 0 ? 0 : VIGIL_ECORRUPT;
    free(check);
    if (err != 0)
        store_db_close(db);
    return err;
}

void store_db_close(struct store_db *db)
{
    for (size_t i = 0; i < STORE_DB_SLOTS; i++)
        sqlite3_finalize(db->slots[i].statement);
    sqlite3_close(db->handle);
    memset(db, 0, sizeof *db);
}

const unsigned char *store_db_image(struct store_db *db, size_t *len, unsigned char **copy)
{
    sqlite3_int64 size = 0;
    const unsigned char *live = sqlite3_serialize(db->handle, "main", &size,
                                                  SQLITE_SERIALIZE_NOCOPY);
    *copy = NULL;
    if (live == NULL) {
        /* Not one buffer (not expected): SQLite's own copy. */
        *copy = sqlite3_serialize(db->handle, "main", &size, 0);
        live = *copy;
    }
    *len = live != NULL ? (size_t)size : 0;
    return live;
}

int store_db_exec(struct store_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->handle, sql, NULL, NULL, &msg) != SQLITE_OK) {
        vlog_error("store: '%s': %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return VIGIL_EIO;
    }
    return 0;
}

/* --- the statement cache ---------------------------------------------------------- */

/* One prepared statement per SQL string constant, found by the constant's address (open
 * addressing on the pointer), reset and handed out again instead of being parsed for
 * every call. Parsing was a third of vigild's CPU per write. */
static size_t store_db__slot_of(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) % STORE_DB_SLOTS;
}

/* Prepares SQL (PERSISTENT when it goes into the cache); NULL, logged, on failure. */
static sqlite3_stmt *store_db__prepare(struct store_db *db, const char *sql, unsigned flags)
{
    sqlite3_stmt *statement = NULL;
    if (sqlite3_prepare_v3(db->handle, sql, -1, flags, &statement, NULL) != SQLITE_OK) {
        vlog_error("store: prepare '%s': %s", sql, sqlite3_errmsg(db->handle));
        sqlite3_finalize(statement);
        return NULL;
    }
    return statement;
}

/* The cached statement for SQL, or a fresh one when the cache cannot serve it. */
static sqlite3_stmt *store_db__cached(struct store_db *db, const char *sql)
{
    size_t first = store_db__slot_of(sql);

    for (size_t probe = 0; probe < STORE_DB_SLOTS; probe++) {
        struct store_db_slot *slot = &db->slots[(first + probe) % STORE_DB_SLOTS];
        if (slot->sql == sql) {
            if (slot->busy)
                break; /* in use further up the stack: a statement of its own */
            slot->busy = 1;
            return slot->statement;
        }
        if (slot->sql == NULL) {
            sqlite3_stmt *statement = store_db__prepare(db, sql, SQLITE_PREPARE_PERSISTENT);
            if (statement == NULL)
                return NULL;
            slot->sql = sql;
            slot->statement = statement;
            slot->busy = 1;
            return statement;
        }
    }
    return store_db__prepare(db, sql, 0); /* table full or busy: not cached */
}

sqlite3_stmt *store_db_statement(struct store_db *db, const char *sql,
                                 const struct store_db_value *values)
{
    sqlite3_stmt *statement = store_db__cached(db, sql);

    if (statement == NULL)
        return NULL;
    for (int i = 0; values != NULL && values[i].kind != STORE_DB_VALUE_END; i++) {
        if (values[i].kind == STORE_DB_VALUE_TEXT)
            sqlite3_bind_text(statement, i + 1, values[i].text, -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(statement, i + 1, values[i].number);
    }
    return statement;
}

void store_db_release(struct store_db *db, sqlite3_stmt *statement)
{
    if (statement == NULL)
        return;
    for (size_t i = 0; i < STORE_DB_SLOTS; i++) {
        struct store_db_slot *slot = &db->slots[i];
        if (slot->statement == statement) {
            sqlite3_reset(statement);
            sqlite3_clear_bindings(statement);
            slot->busy = 0;
            return;
        }
    }
    sqlite3_finalize(statement);
}

/* --- run helpers ------------------------------------------------------------------ */

int store_db_run(struct store_db *db, const char *sql, const struct store_db_value *values)
{
    sqlite3_stmt *statement = store_db_statement(db, sql, values);
    int rc;

    if (statement == NULL)
        return SQLITE_ERROR;
    rc = sqlite3_step(statement);
    store_db_release(db, statement);
    return rc;
}

int store_db_write(struct store_db *db, const char *sql, const struct store_db_value *values)
{
    int rc = store_db_run(db, sql, values);
    if (rc != SQLITE_DONE) {
        vlog_error("store: '%s': %s", sql, sqlite3_errmsg(db->handle));
        return VIGIL_EIO;
    }
    return 0;
}

int store_db_changes(struct store_db *db)
{
    return sqlite3_changes(db->handle);
}

int store_db_has_row(struct store_db *db, const char *sql, const struct store_db_value *values)
{
    return store_db_run(db, sql, values) == SQLITE_ROW;
}

int64_t store_db_int64(struct store_db *db, const char *sql, const struct store_db_value *values,
                       int64_t none)
{
    sqlite3_stmt *statement = store_db_statement(db, sql, values);
    int64_t value = none;

    if (statement == NULL)
        return none;
    if (sqlite3_step(statement) == SQLITE_ROW)
        value = sqlite3_column_int64(statement, 0);
    store_db_release(db, statement);
    return value;
}

char *store_db_text(struct store_db *db, const char *sql, const struct store_db_value *values)
{
    sqlite3_stmt *statement = store_db_statement(db, sql, values);
    char *value = NULL;

    if (statement == NULL)
        return NULL;
    if (sqlite3_step(statement) == SQLITE_ROW && sqlite3_column_text(statement, 0) != NULL)
        value = strdup((const char *)sqlite3_column_text(statement, 0));
    store_db_release(db, statement);
    return value;
}

/* --- transactions ----------------------------------------------------------------- */

int store_db_begin(struct store_db *db)
{
    return store_db_write(db, "BEGIN", NULL);
}

int store_db_commit(struct store_db *db)
{
    return store_db_write(db, "COMMIT", NULL);
}

int store_db_rollback(struct store_db *db)
{
    return store_db_write(db, "ROLLBACK", NULL);
}

int store_db_savepoint(struct store_db *db)
{
    return store_db_write(db, "SAVEPOINT cmd", NULL);
}

int store_db_savepoint_keep(struct store_db *db)
{
    return store_db_write(db, "RELEASE cmd", NULL);
}

int store_db_savepoint_undo(struct store_db *db)
{
    if (store_db_write(db, "ROLLBACK TO cmd", NULL) != 0)
        return VIGIL_EIO;
    return store_db_write(db, "RELEASE cmd", NULL);
}
