/* store.c: the store's open and close, its one command table and the dispatch of
 * commands (a transaction per raft entry, a savepoint per command of a batch), and its
 * snapshots. The commands themselves are in store_objects.c, store_events.c and
 * store_auth.c; the SQL runs through store_db.c. */
#include "controller/store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"
#include "controller/store/store-int.h"
#include "controller/store/store_auth.h"
#include "controller/store/store_events.h"
#include "controller/store/store_objects.h"
#include "controller/store/store_se.h"

/* Bumped whenever the schema changes; a snapshot of another version is refused. */
#define STORE__SCHEMA_VERSION "5"

static const char store__schema[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE objects(id INTEGER PRIMARY KEY, type INTEGER NOT NULL,"
    " uuid TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,"
    " UNIQUE(type, uuid), UNIQUE(type, name));"
    "CREATE TABLE refs(src_type INTEGER NOT NULL, src_uuid TEXT NOT NULL,"
    " dst_type INTEGER NOT NULL, dst_uuid TEXT NOT NULL, field TEXT NOT NULL);"
    "CREATE INDEX refs_dst ON refs(dst_type, dst_uuid);"
    "CREATE INDEX refs_src ON refs(src_type, src_uuid);"
    "CREATE TABLE nodes(id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " raft_address TEXT NOT NULL, api_address TEXT NOT NULL, se_address TEXT NOT NULL,"
    " se_host_key TEXT NOT NULL);"
    "CREATE TABLE events(seq INTEGER PRIMARY KEY, uuid TEXT NOT NULL, key TEXT NOT NULL UNIQUE,"
    " event_id TEXT NOT NULL, time_ms INTEGER NOT NULL, module TEXT NOT NULL,"
    " obj_type TEXT NOT NULL, obj_name TEXT NOT NULL, description TEXT NOT NULL,"
    " details TEXT NOT NULL);"
    "CREATE INDEX events_id ON events(event_id, seq);"
    "CREATE INDEX events_time ON events(time_ms);"
    "CREATE TABLE presence(id INTEGER PRIMARY KEY, present INTEGER NOT NULL,"
    " boot TEXT NOT NULL, time_ms INTEGER NOT NULL, changes INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE se_runtime(uuid TEXT PRIMARY KEY, connected INTEGER NOT NULL,"
    " controller_node INTEGER, since_ms INTEGER, last_heartbeat_ms INTEGER, se_state TEXT,"
    " headless_since_ms INTEGER NOT NULL DEFAULT 0, silence_reported INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE se_session(uuid TEXT NOT NULL, node INTEGER NOT NULL, since_ms INTEGER NOT NULL,"
    " se_state TEXT, PRIMARY KEY(uuid, node));"
    "CREATE TABLE users(name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE tokens(id TEXT PRIMARY KEY, user TEXT NOT NULL, mac TEXT NOT NULL UNIQUE,"
    " expires_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, description TEXT NOT NULL,"
    " revoked INTEGER NOT NULL);"
    "CREATE TABLE revoked_sessions(sid TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);"
    "INSERT INTO meta(key, value) VALUES('schema_version', " STORE__SCHEMA_VERSION ");";

void store_set_events_keep(struct store *store, int64_t keep)
{
    store->db.events_keep = keep;
}

int store_open(struct store **out)
{
    struct store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return VIGIL_ENOMEM;
    if (store_db_open(&store->db) != 0) {
        free(store);
        return VIGIL_EIO;
    }
    if (store_db_exec(&store->db, store__schema) != 0) {
        store_close(store);
        return VIGIL_EIO;
    }
    *out = store;
    return 0;
}

void store_close(struct store *store)
{
    if (store == NULL)
        return;
    store_db_close(&store->db);
    free(store->spare);
    free(store);
}

uint64_t store_auth_generation(const struct store *store)
{
    return store->auth_generation;
}

void store_set_config_watch(struct store *store, void (*cb)(void *data), void *data)
{
    store->config_watch = cb;
    store->config_watch_data = data;
}

void store_set_event_watch(struct store *store, void (*cb)(void *data), void *data)
{
    store->event_watch = cb;
    store->event_watch_data = data;
    if (cb != NULL)
        store->event_seq_told = store_events_newest_seq(store);
}

/* After each entry (its transaction ended) and each restore: tells the config watch, once,
 * that config objects may have changed, and the event watch that events were recorded
 * (the newest seq moved). */
static void store__notify_watches(struct store *store)
{
    if (store->event_watch != NULL) {
        uint64_t newest = store_events_newest_seq(store);
        if (newest != store->event_seq_told) {
            store->event_seq_told = newest;
            store->event_watch(store->event_watch_data);
        }
    }
    if (!store->config_touched)
        return;
    store->config_touched = 0;
    if (store->config_watch != NULL)
        store->config_watch(store->config_watch_data);
}

/* --- commands --------------------------------------------------------------------- */

/* One command the store knows: its "op", the handler that runs it, and what it may
 * change: users or tokens (then store_auth_generation moves), config objects (then the
 * config watch is called after the entry). */
struct store__command {
    const char *op;
    store_command_fn *run;
    int changes_auth;
    int changes_config;
};

/* Every command of this version (docs/architecture.md "Commands"). */
static const struct store__command store__commands[] = {
    {"object_create", store_objects_create, 0, 1},
    {"object_update", store_objects_update, 0, 1},
    {"object_delete", store_objects_delete, 0, 1},
    {"node_register", store_objects_node_register, 0, 0},
    {"cluster_init", store_objects_cluster_init, 0, 0},
    {"tls_cert_renew", store_objects_tls_cert_renew, 0, 0},
    {"event_record", store_events_record, 0, 0},
    {"node_joined", store_events_node_joined, 0, 0},
    {"node_left", store_se_node_left, 0, 0},
    {"leader_elected", store_events_leader_elected, 0, 0},
    {"se_runtime", store_events_se_runtime, 0, 0},
    {"se_session", store_se_session, 0, 0},
    {"se_sessions_reset", store_se_sessions_reset, 0, 0},
    {"user_put", store_auth_user_put, 1, 0},
    {"user_delete", store_auth_user_delete, 1, 0},
    {"token_create", store_auth_token_create, 1, 0},
    {"token_revoke", store_auth_token_revoke, 1, 0},
    {"session_revoke", store_auth_session_revoke, 1, 0},
    /* A group of other commands (store__run_observations), run by store__run_command. */
    {"observations", NULL, 0, 0},
};

#define STORE__COMMAND_COUNT (sizeof store__commands / sizeof store__commands[0])

size_t store_command_count(void)
{
    return STORE__COMMAND_COUNT;
}

const char *store_command_op(size_t i)
{
    return i < STORE__COMMAND_COUNT ? store__commands[i].op : NULL;
}

/* The table's entry for OP, or NULL. */
static const struct store__command *store__command_find(const char *op)
{
    for (size_t i = 0; i < STORE__COMMAND_COUNT; i++)
        if (strcmp(store__commands[i].op, op) == 0)
            return &store__commands[i];
    return NULL;
}

static int store__run_savepoint(struct store *store, json_t *root, struct store_result *res);

/* Runs the commands of the "observations" command ROOT (a node's queued observations sent
 * to the leader as one, events.h), in order, each as a savepoint: a refused one changes
 * nothing and is logged, the others stand, as if each had been sent alone. A group inside
 * a group is refused. RES is STORE_OK with {"applied": N, "refused": M}. Returns
 * VIGIL_EINVAL when "cmds" is not 1..STORE_OBSERVATIONS_MAX commands, VIGIL_EIO when
 * SQLite failed. */
static int store__run_observations(struct store *store, json_t *root, struct store_result *res)
{
    json_t *cmds = json_object_get(root, "cmds"), *cmd;
    size_t i, refused = 0;

    if (!json_is_array(cmds) || json_array_size(cmds) == 0 ||
        json_array_size(cmds) > STORE_OBSERVATIONS_MAX)
        return VIGIL_EINVAL;
    json_array_foreach(cmds, i, cmd) {
        const char *op = json_string_value(json_object_get(cmd, "op"));
        struct store_result one;
        int err;

        memset(&one, 0, sizeof one);
        if (op != NULL && (strcmp(op, "observations") == 0 || strcmp(op, "batch") == 0)) {
            vlog_error("store: skipping a '%s' command inside observations", op);
            refused++;
            continue;
        }
        err = store__run_savepoint(store, cmd, &one);
        if (err == 0 && store_outcome_refused(one.outcome)) {
            vlog_warn("store: observation '%s' refused: %s", op != NULL ? op : "?", one.error);
            refused++;
        }
        store_result_clear(&one);
        if (err != 0)
            return err;
    }
    res->outcome = STORE_OK;
    res->body = json_pack("{s:I, s:I}", "applied", (json_int_t)(json_array_size(cmds) - refused),
                          "refused", (json_int_t)refused);
    return 0;
}

/* Runs one parsed command ROOT; the caller holds a transaction or savepoint open and
 * keeps the changes only when this returns 0 with an outcome that is no refusal. */
static int store__run_command(struct store *store, json_t *root, struct store_result *res)
{
    const char *op = json_string_value(json_object_get(root, "op"));
    const struct store__command *command = op != NULL ? store__command_find(op) : NULL;
    int err;

    if (op == NULL)
        return VIGIL_EINVAL;
    if (command == NULL) {
        err = VIGIL_EINVAL;
    } else {
        /* Even a command refused or rolled back later moves the generation: a needless
         * move only costs the caches a lookup. */
        if (command->changes_auth)
            store->auth_generation++;
        if (command->changes_config)
            store->config_touched = 1;
        err = command->run != NULL ? command->run(&store->db, root, res)
                                   : store__run_observations(store, root, res);
    }
    if (err == VIGIL_EINVAL)
        vlog_error("store: skipping a malformed or unknown '%s' command", op);
    return err;
}

/* Runs ROOT inside the open transaction as a savepoint: kept when it succeeded, rolled
 * back (the transaction goes on) when refused or unknown. */
static int store__run_savepoint(struct store *store, json_t *root, struct store_result *res)
{
    int err;

    if (store_db_savepoint(&store->db) != 0)
        return VIGIL_EIO;
    err = store__run_command(store, root, res);
    if (err == 0 && !store_outcome_refused(res->outcome))
        return store_db_savepoint_keep(&store->db);
    if (store_db_savepoint_undo(&store->db) != 0)
        return VIGIL_EIO;
    if (err == VIGIL_EINVAL) {
        json_decref(res->body);
        res->body = NULL;
        store__refuse(res, STORE_INVALID, "unknown command");
        return 0;
    }
    return err;
}

/* Runs the parsed command ROOT (owned: released here; NULL when it did not parse, which is
 * VIGIL_EINVAL) as one transaction into RES (zeroed here). */
static int store__apply_one(struct store *store, json_t *root, struct store_result *res)
{
    int err;

    memset(res, 0, sizeof *res);
    if (root == NULL)
        return VIGIL_EINVAL;
    if (store_db_begin(&store->db) != 0) {
        json_decref(root);
        return VIGIL_EIO;
    }
    err = store__run_command(store, root, res);
    if (err == 0 && !store_outcome_refused(res->outcome)) {
        err = store_db_commit(&store->db);
    } else {
        store_db_rollback(&store->db);
        if (err != 0) {
            json_decref(res->body);
            res->body = NULL;
        }
    }
    json_decref(root);
    return err;
}

/* Parses CMD (LEN bytes); NULL, logged, when it is not a JSON object with an "op". */
static json_t *store__parse_command(const char *cmd, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(cmd, len, 0, &jerr);

    if (root == NULL || json_string_value(json_object_get(root, "op")) == NULL) {
        vlog_error("store: skipping an entry that is not a command: %s",
                   root == NULL ? jerr.text : "no \"op\"");
        json_decref(root);
        return NULL;
    }
    return root;
}

int store_apply(struct store *store, const char *cmd, size_t len, struct store_result *res)
{
    int err = store__apply_one(store, store__parse_command(cmd, len), res);
    store__notify_watches(store);
    return err;
}

int store_apply_entry(struct store *store, const char *cmd, size_t len,
                      struct store_result *res, unsigned cap, unsigned *n)
{
    json_t *root, *cmds;
    int err = 0;

    *n = 0;
    if (cap == 0)
        return VIGIL_EINVAL;
    root = store__parse_command(cmd, len);
    if (root == NULL || strcmp(json_string_value(json_object_get(root, "op")), "batch") != 0) {
        /* One command (or none: refused as store_apply refuses it), parsed once. */
        *n = 1;
        err = store__apply_one(store, root, res);
        store__notify_watches(store);
        return err;
    }
    cmds = json_object_get(root, "cmds");
    if (!json_is_array(cmds) || json_array_size(cmds) == 0 || json_array_size(cmds) > cap) {
        vlog_error("store: skipping a batch that is not 1..%u commands", cap);
        json_decref(root);
        return VIGIL_EINVAL;
    }
    *n = (unsigned)json_array_size(cmds);
    for (unsigned i = 0; i < *n; i++)
        memset(&res[i], 0, sizeof res[i]);
    /* One transaction for the batch, a savepoint per command: a refused command changes
     * nothing and the others stand, as if each ran alone. */
    if (store_db_begin(&store->db) != 0) {
        json_decref(root);
        return VIGIL_EIO;
    }
    for (unsigned i = 0; i < *n && err == 0; i++)
        err = store__run_savepoint(store, json_array_get(cmds, i), &res[i]);
    if (err == 0)
        err = store_db_commit(&store->db);
    else
        store_db_rollback(&store->db);
    json_decref(root);
    store__notify_watches(store);
    return err;
}

/* --- snapshots -------------------------------------------------------------------- */

/* Runs on the loop, between applies, so it must be quick: the database is one buffer
 * (memdb), copied with one memcpy into the buffer of the previous snapshot when that one
 * was handed back (store_snapshot_done) and is large enough. A fresh buffer costs more
 * than the copy (page faults: about 12 ms for 15 MB here, against 2.5 ms for the copy),
 * so a new one is allocated with room to grow. */
int store_snapshot(struct store *store, void **data, size_t *len)
{
    unsigned char *copy, *buf;
    size_t size, need;
    const unsigned char *live = store_db_image(&store->db, &size, &copy);

    if (live == NULL)
        return VIGIL_EIO;
    need = size > 0 ? size : 1;
    if (store->spare != NULL && store->spare_size >= need) {
        buf = store->spare;
        store->lent_size = store->spare_size;
        store->spare = NULL;
        store->spare_size = 0;
    } else {
        size_t cap = need + need / 4 + 65536;
        buf = malloc(cap);
        if (buf == NULL) {
            sqlite3_free(copy);
            return VIGIL_ENOMEM;
        }
        store->lent_size = cap;
    }
    memcpy(buf, live, size);
    sqlite3_free(copy);
    store->lent = buf;
    *data = buf;
    *len = size;
    return 0;
}

void store_snapshot_done(struct store *store, void *data)
{
    if (data == NULL)
        return;
    if (data != store->lent) {
        free(data);
        return;
    }
    free(store->spare);
    store->spare = data;
    store->spare_size = store->lent_size;
    store->lent = NULL;
    store->lent_size = 0;
}

void store_snapshot_free(void *data)
{
    free(data);
}

int store_restore(struct store *store, const void *data, size_t len)
{
    struct store_db probe;
    char *version;
    int err;

    if (len < 100 || memcmp(data, "SQLite format 3", 16) != 0)
        return VIGIL_ECORRUPT;
    /* Checked before it replaces anything: integrity, then our schema version. */
    err = store_db_open_image(&probe, data, len);
    if (err != 0)
        return err;
    version = store_db_text(&probe, "SELECT value FROM meta WHERE key='schema_version'", NULL);
    if (version == NULL || strcmp(version, STORE__SCHEMA_VERSION) != 0) {
        free(version);
        store_db_close(&probe);
        return VIGIL_ECORRUPT;
    }
    free(version);
    store_db_close(&store->db);
    store->db = probe;
    store->auth_generation++;
    store->config_touched = 1;
    store__notify_watches(store);
    return 0;
}
