/* store-int.h: what the store's own files share (store.c, store_events.c). Not for other
 * modules: they use store.h. */
#ifndef VIGIL_STORE_INT_H
#define VIGIL_STORE_INT_H

#include <sqlite3.h>

#include "controller/store.h"

/* One cached prepared statement: SQL is the string constant it was prepared from. */
struct store__stmt_slot {
    const char *sql;
    sqlite3_stmt *st;
    int busy; /* handed out and not yet released */
};

#define STORE__STMT_SLOTS 128

struct store {
    sqlite3 *db;
    struct store__stmt_slot stmts[STORE__STMT_SLOTS]; /* see store__stmt */
    /* Snapshot buffers (store_snapshot): the one handed out last and the one kept for the
     * next snapshot, each with its allocated size. */
    void *lent, *spare;
    size_t lent_size, spare_size;
    uint64_t auth_generation;    /* see store_auth_generation */
};

/* Sets RES's status and error message. */
void store__refuse(struct store_result *res, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepares SQL (logged on failure, NULL); the caller finalizes it. */
sqlite3_stmt *store__prepare(struct store *store, const char *sql);
/* A prepared statement for SQL, which must be a string constant (the cache is keyed by its
 * address), from the store's cache (prepared on first use). Hand it back with
 * store__release, never sqlite3_finalize. A statement already handed out and not released
 * (nested use of the same SQL) gives a fresh one that store__release finalizes. Logged on
 * failure, NULL. The cache is emptied when the store is closed or restored. */
sqlite3_stmt *store__stmt(struct store *store, const char *sql);
/* Resets ST (from store__stmt) and clears its bindings for the next use. */
void store__release(struct store *store, sqlite3_stmt *st);
/* Runs SQL text; 0 or VIGIL_EIO. */
int store__exec(struct store *store, const char *sql);
/* One statement with text binds (NULL-terminated); the step's SQLite code. SQL must be a
 * string constant (it goes through store__stmt). */
int store__run(struct store *store, const char *sql, const char *const *binds);
int store__meta_set(struct store *store, const char *key, const char *value);

/* Applies the event, presence, leader and SE-runtime commands (store_events.c).
 * VIGIL_EINVAL for an OP it does not know. */
int store__events_apply(struct store *store, const char *op, json_t *cmd,
                        struct store_result *res);

/* Applies the user, token and session commands (store_auth.c). VIGIL_EINVAL for an OP it
 * does not know. */
int store__auth_apply(struct store *store, const char *op, json_t *cmd, struct store_result *res);

#endif
