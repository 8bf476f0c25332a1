/* store_db.h: the database under the store: one SQLite connection to an in-memory
 * database held in one buffer (SQLite's memdb), a cache of prepared statements, and the
 * helpers the store's files run their SQL with. It knows SQL, not commands or outcomes.
 * Only the store's own files use it (store.c, store_objects.c, store_events.c,
 * store_auth.c); other modules use store.h.
 *
 * SQL handed to these functions must be a string constant: the statement cache is keyed
 * by its address. Every function runs on the loop thread (the connection is opened
 * without SQLite's mutexes). Failures are logged here; callers only decide what a failure
 * means. */
#ifndef VIGIL_STORE_DB_H
#define VIGIL_STORE_DB_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

/* One cached prepared statement: SQL is the string constant it was prepared from. */
struct store_db_slot {
    const char *sql;
    sqlite3_stmt *statement;
    int busy; /* handed out and not yet released */
};

#define STORE_DB_SLOTS 128

/* Embedded by its owner (struct store); opened by store_db_open or store_db_open_image,
 * released by store_db_close. */
struct store_db {
    sqlite3 *handle;
    struct store_db_slot slots[STORE_DB_SLOTS]; /* see store_db_statement */
    int64_t events_keep; /* the events kept (STORE_EVENTS_KEEP; store_set_events_keep) */
};

/* A value bound to a statement parameter; a list of them ends with STORE_DB_END. */
enum store_db_value_kind {
    STORE_DB_VALUE_END = 0,
    STORE_DB_VALUE_TEXT,  /* TEXT (borrowed until the statement is released; NULL binds NULL) */
    STORE_DB_VALUE_INT,   /* NUMBER */
};

struct store_db_value {
    enum store_db_value_kind kind;
    const char *text;
    int64_t number;
};

#define STORE_DB_TEXT(s) {.kind = STORE_DB_VALUE_TEXT, .text = (s)}
#define STORE_DB_INT(n) {.kind = STORE_DB_VALUE_INT, .number = (int64_t)(n)}
#define STORE_DB_END {.kind = STORE_DB_VALUE_END}
/* The parameters ?1, ?2, ... of one call, in order: STORE_DB_BIND(STORE_DB_TEXT(name),
 * STORE_DB_INT(id)). A statement without parameters takes NULL instead. */
#define STORE_DB_BIND(...) ((const struct store_db_value[]){__VA_ARGS__, STORE_DB_END})

/* Opens DB (owned by the caller, released with store_db_close) on an empty database.
 * Returns 0 or VIGIL_EIO (DB is then closed). */
int store_db_open(struct store_db *db);

/* Opens DB on a copy of the serialised database DATA (LEN bytes, borrowed) and checks it
 * (SQLite's quick_check). Returns 0; VIGIL_ECORRUPT when DATA is no sound SQLite
 * database, VIGIL_ENOMEM, VIGIL_EIO (DB is then closed). */
int store_db_open_image(struct store_db *db, const void *data, size_t len);

/* Finalizes the cached statements and closes the connection; DB is zeroed. A zeroed DB
 * is closed again harmlessly. */
void store_db_close(struct store_db *db);

/* The database as one serialised image of *LEN bytes: SQLite's own buffer (borrowed,
 * valid until the next write) or, when the database is not one buffer, a copy *COPY
 * receives (owned: sqlite3_free it; else *COPY is NULL). NULL when SQLite failed. */
const unsigned char *store_db_image(struct store_db *db, size_t *len, unsigned char **copy);

/* Runs SQL text (several statements, no parameters, no cache). Returns 0 or VIGIL_EIO. */
int store_db_exec(struct store_db *db, const char *sql);

/* The prepared statement for SQL from the cache (prepared on first use), with VALUES
 * (NULL: none) bound, ready to step. Hand it back with store_db_release, never
 * sqlite3_finalize. A statement already handed out and not released (nested use of the
 * same SQL) gives a fresh one that store_db_release finalizes. NULL when SQLite failed.
 * The cache is emptied by store_db_close. */
sqlite3_stmt *store_db_statement(struct store_db *db, const char *sql,
                                 const struct store_db_value *values);

/* Resets STATEMENT (from store_db_statement; NULL is ignored) and clears its bindings for
 * the next use. */
void store_db_release(struct store_db *db, sqlite3_stmt *statement);

/* Runs SQL with VALUES to its first step. Returns the step's SQLite code (SQLITE_DONE,
 * SQLITE_ROW, SQLITE_CONSTRAINT, ...; SQLITE_ERROR when it did not prepare). */
int store_db_run(struct store_db *db, const char *sql, const struct store_db_value *values);

/* Runs SQL with VALUES, a statement that returns no rows. Returns 0, or VIGIL_EIO when it
 * failed (logged). */
int store_db_write(struct store_db *db, const char *sql, const struct store_db_value *values);

/* How many rows the last finished INSERT, UPDATE or DELETE changed. */
int store_db_changes(struct store_db *db);

/* 1 if SQL with VALUES returns a row, else 0 (also when it failed). */
int store_db_has_row(struct store_db *db, const char *sql, const struct store_db_value *values);

/* The first column of the first row of SQL with VALUES, or NONE when there is no row (or
 * it failed). */
int64_t store_db_int64(struct store_db *db, const char *sql, const struct store_db_value *values,
                       int64_t none);

/* The first column of the first row of SQL with VALUES, as a malloc'd string (owned by
 * the caller), or NULL when there is no row, the column is NULL or it failed. */
char *store_db_text(struct store_db *db, const char *sql, const struct store_db_value *values);

/* The transaction of one raft entry, and the savepoint of one command inside it: BEGIN,
 * COMMIT, ROLLBACK; SAVEPOINT, RELEASE, ROLLBACK TO and RELEASE. Each returns 0 or
 * VIGIL_EIO (logged). */
int store_db_begin(struct store_db *db);
int store_db_commit(struct store_db *db);
int store_db_rollback(struct store_db *db);
int store_db_savepoint(struct store_db *db);
int store_db_savepoint_keep(struct store_db *db);
int store_db_savepoint_undo(struct store_db *db);

#endif
