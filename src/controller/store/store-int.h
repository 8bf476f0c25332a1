/* store-int.h: what the store's own files share (store.c, store_objects.c, store_events.c,
 * store_se.c, store_auth.c): the store's layout, what a command handler is, and how it
 * refuses. Not for other modules: they use store.h. */
#ifndef VIGIL_STORE_INT_H
#define VIGIL_STORE_INT_H

#include <jansson.h>

#include "controller/store/store.h"
#include "controller/store/store_db.h"

struct store {
    struct store_db db;
    /* Snapshot buffers (store_snapshot): the one handed out last and the one kept for the
     * next snapshot, each with its allocated size. */
    void *lent, *spare;
    size_t lent_size, spare_size;
    uint64_t auth_generation; /* see store_auth_generation */
    /* store_set_config_watch's callback, and whether a command that may change config
     * objects ran since it was last called. */
    void (*config_watch)(void *data);
    void *config_watch_data;
    int config_touched;
    /* store_set_event_watch's callback, and the newest event seq it was last told of. */
    void (*event_watch)(void *data);
    void *event_watch_data;
    uint64_t event_seq_told;
};

/* Runs one command CMD (borrowed) on DB, inside the transaction or savepoint store.c
 * holds open. On success it sets RES's outcome (and body, owned by RES, if any); a
 * refusal is store__refuse and changes nothing. Returns 0 for both; VIGIL_EINVAL when CMD
 * is malformed (the command is skipped as unknown); VIGIL_EIO / VIGIL_ENOMEM when SQLite
 * or memory failed (store.c rolls everything back). */
typedef int store_command_fn(struct store_db *db, json_t *cmd, struct store_result *res);

/* Sets RES's outcome to REFUSAL (one of the refused outcomes) and its error message (the
 * answer's text, printf FMT). Implemented in store_result.c. */
void store__refuse(struct store_result *res, enum store_outcome refusal, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
