/* store-int.h: what the store's own files share (store.c, store_events.c). Not for other
 * modules: they use store.h. */
#ifndef VIGIL_STORE_INT_H
#define VIGIL_STORE_INT_H

#include <sqlite3.h>

#include "controller/store.h"

struct store {
    sqlite3 *db;
};

/* Sets RES's status and error message. */
void store__refuse(struct store_result *res, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepares SQL (logged on failure, NULL). */
sqlite3_stmt *store__prepare(struct store *store, const char *sql);
/* Runs SQL text; 0 or VIGIL_EIO. */
int store__exec(struct store *store, const char *sql);
/* One statement with text binds (NULL-terminated); the step's SQLite code. */
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
