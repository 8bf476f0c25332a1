#include "controller/store.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"
#include "controller/store-int.h"

/* Bumped whenever the schema changes; a snapshot of another version is refused. */
#define STORE__SCHEMA_VERSION "3"
/* Only the loop thread touches the database (snapshots are hashed from a copy), so SQLite's
 * per-call mutexes are skipped (2% of a follower's apply). */
#define STORE__OPEN_FLAGS (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX)

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
    " controller_node INTEGER, since_ms INTEGER, last_heartbeat_ms INTEGER, se_state TEXT);"
    "CREATE TABLE users(name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE tokens(id TEXT PRIMARY KEY, user TEXT NOT NULL, mac TEXT NOT NULL UNIQUE,"
    " expires_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, description TEXT NOT NULL,"
    " revoked INTEGER NOT NULL);"
    "CREATE TABLE revoked_sessions(sid TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);"
    "INSERT INTO meta(key, value) VALUES('schema_version', " STORE__SCHEMA_VERSION ");";

void store_result_clear(struct store_result *res)
{
    json_decref(res->body);
    memset(res, 0, sizeof *res);
}

void store__refuse(struct store_result *res, unsigned status, const char *fmt, ...)
{
    va_list ap;
    res->status = status;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

/* Prepares SQL; logs and returns NULL on failure. */
sqlite3_stmt *store__prepare(struct store *store, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK) {
        vlog_error("store: prepare '%s': %s", sql, sqlite3_errmsg(store->db));
        return NULL;
    }
    return st;
}

/* The statement cache: one prepared statement per SQL string constant, found by the
 * constant's address (open addressing on the pointer), reset and handed out again instead
 * of being parsed for every call. Parsing was a third of vigild's CPU per write. */
static size_t store__slot_of(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    h ^= h >> 17;
    h *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) % STORE__STMT_SLOTS;
}

sqlite3_stmt *store__stmt(struct store *store, const char *sql)
{
    size_t i = store__slot_of(sql);
    sqlite3_stmt *st = NULL;

    for (size_t probe = 0; probe < STORE__STMT_SLOTS; probe++) {
        struct store__stmt_slot *slot = &store->stmts[(i + probe) % STORE__STMT_SLOTS];
        if (slot->sql == sql) {
            if (slot->busy)
                break; /* in use further up the stack: a statement of its own */
            slot->busy = 1;
            return slot->st;
        }
        if (slot->sql == NULL) {
            if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
                SQLITE_OK) {
                vlog_error("store: prepare '%s': %s", sql, sqlite3_errmsg(store->db));
                sqlite3_finalize(st);
                return NULL;
            }
            slot->sql = sql;
            slot->st = st;
            slot->busy = 1;
            return st;
        }
    }
    return store__prepare(store, sql); /* table full or busy: not cached */
}

void store__release(struct store *store, sqlite3_stmt *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < STORE__STMT_SLOTS; i++) {
        struct store__stmt_slot *slot = &store->stmts[i];
        if (slot->st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            slot->busy = 0;
            return;
        }
    }
    sqlite3_finalize(st);
}

/* Finalizes every cached statement (before the connection closes or is replaced). */
static void store__stmts_clear(struct store *store)
{
    for (size_t i = 0; i < STORE__STMT_SLOTS; i++) {
        sqlite3_finalize(store->stmts[i].st);
        memset(&store->stmts[i], 0, sizeof store->stmts[i]);
    }
}

int store__exec(struct store *store, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(store->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        vlog_error("store: '%s': %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return VIGIL_EIO;
    }
    return 0;
}

int store_open(struct store **out)
{
    struct store *store = calloc(1, sizeof *store);
    if (store == NULL)
        return VIGIL_ENOMEM;
    /* An in-memory database held in one buffer (SQLite's memdb, what store_restore makes
     * too), so that store_snapshot can copy it with one memcpy. */
    if (sqlite3_open_v2(":memory:", &store->db, STORE__OPEN_FLAGS, NULL) != SQLITE_OK ||
        sqlite3_deserialize(store->db, "main", NULL, 0, 0,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
            SQLITE_OK) {
        sqlite3_close(store->db);
        free(store);
        return VIGIL_EIO;
    }
    if (store__exec(store, store__schema) != 0) {
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
    store__stmts_clear(store);
    sqlite3_close(store->db);
    free(store->spare);
    free(store);
}

/* --- queries ---------------------------------------------------------------------- */

/* Builds the API form of a stored object: its body plus "uuid". */
static json_t *store__object_from_row(sqlite3_stmt *st, int uuid_col, int body_col)
{
    json_error_t jerr;
    json_t *obj = json_loads((const char *)sqlite3_column_text(st, body_col), 0, &jerr);
    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "uuid", json_string((const char *)sqlite3_column_text(st, uuid_col)));
    return obj;
}

static json_t *store__object_query(struct store *store, const char *sql, enum obj_type type,
                                   const char *key)
{
    sqlite3_stmt *st = store__stmt(store, sql);
    json_t *obj = NULL;
    if (st == NULL)
        return NULL;
    sqlite3_bind_int(st, 1, (int)type);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        obj = store__object_from_row(st, 0, 1);
    store__release(store, st);
    return obj;
}

json_t *store_object_get(struct store *store, enum obj_type type, const char *uuid)
{
    return store__object_query(store, "SELECT uuid, body FROM objects WHERE type=? AND uuid=?",
                               type, uuid);
}

json_t *store_object_get_by_name(struct store *store, enum obj_type type, const char *name)
{
    return store__object_query(store, "SELECT uuid, body FROM objects WHERE type=? AND name=?",
                               type, name);
}

json_t *store_object_list(struct store *store, enum obj_type type, int64_t offset,
                          int64_t limit, int64_t *total)
{
    sqlite3_stmt *st;
    json_t *list = json_array();

    *total = 0;
    st = store__stmt(store, "SELECT count(*) FROM objects WHERE type=?");
    if (st == NULL)
        return list;
    sqlite3_bind_int(st, 1, (int)type);
    if (sqlite3_step(st) == SQLITE_ROW)
        *total = sqlite3_column_int64(st, 0);
    store__release(store, st);

    st = store__stmt(store,
                        "SELECT uuid, body FROM objects WHERE type=? ORDER BY id LIMIT ? OFFSET ?");
    if (st == NULL)
        return list;
    sqlite3_bind_int(st, 1, (int)type);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *obj = store__object_from_row(st, 0, 1);
        if (obj != NULL)
            json_array_append_new(list, obj);
    }
    store__release(store, st);
    return list;
}

json_t *store_nodes(struct store *store)
{
    sqlite3_stmt *st = store__stmt(
        store, "SELECT id, name, raft_address, api_address, se_address, se_host_key FROM nodes "
               "ORDER BY id");
    json_t *list = json_array();
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_array_append_new(
            list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", sqlite3_column_int64(st, 0),
                            "name", sqlite3_column_text(st, 1), "raft_address",
                            sqlite3_column_text(st, 2), "api_address",
                            sqlite3_column_text(st, 3), "se_address",
                            sqlite3_column_text(st, 4), "se_host_key",
                            sqlite3_column_text(st, 5)));
    }
    store__release(store, st);
    return list;
}

int store_node_api_address(struct store *store, uint64_t id, char *out, size_t len)
{
    sqlite3_stmt *st = store__prepare(store, "SELECT api_address FROM nodes WHERE id=?");
    int found = 0;
    if (st == NULL)
        return 0;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, len, "%s", sqlite3_column_text(st, 0));
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

char *store_meta_get(struct store *store, const char *key)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT value FROM meta WHERE key=?");
    char *value = NULL;
    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        value = strdup((const char *)sqlite3_column_text(st, 0));
    store__release(store, st);
    return value;
}

/* --- commands --------------------------------------------------------------------- */

/* Runs a one-shot statement with text binds (NULL-terminated list). Returns the SQLite
 * result code of the step (SQLITE_DONE, SQLITE_CONSTRAINT, ...). */
int store__run(struct store *store, const char *sql, const char *const *binds)
{
    sqlite3_stmt *st = store__stmt(store, sql);
    int rc;
    if (st == NULL)
        return SQLITE_ERROR;
    for (int i = 0; binds != NULL && binds[i] != NULL; i++)
        sqlite3_bind_text(st, i + 1, binds[i], -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    store__release(store, st);
    return rc;
}

int store__meta_set(struct store *store, const char *key, const char *value)
{
    const char *binds[] = {key, value, NULL};
    return store__run(store, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", binds) ==
                   SQLITE_DONE
               ? 0
               : VIGIL_EIO;
}

static int store__cmd_cluster_init(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *uuid = NULL, *name = NULL, *secret = NULL, *cert = NULL, *key = NULL;
    const char *admin = NULL, *admin_hash = NULL;
    char *have;

    if (json_unpack(cmd, "{s:s, s:s, s?s, s?s, s?s, s?{s:s, s:s}}", "uuid", &uuid, "name", &name,
                    "secret", &secret, "tls_cert", &cert, "tls_key", &key, "admin", "username",
                    &admin, "hash", &admin_hash) != 0)
        return VIGIL_EINVAL;
    have = store_meta_get(store, "cluster_uuid");
    if (have != NULL) {
        /* Several nodes may race to initialise: the first entry wins. */
        free(have);
        res->status = 200;
        return 0;
    }
    if (store__meta_set(store, "cluster_uuid", uuid) != 0 ||
        store__meta_set(store, "cluster_name", name) != 0 ||
        (secret != NULL && store__meta_set(store, "cluster_secret", secret) != 0) ||
        (cert != NULL && store__meta_set(store, "tls_cert", cert) != 0) ||
        (key != NULL && store__meta_set(store, "tls_key", key) != 0))
        return VIGIL_EIO;
    if (admin != NULL) {
        const char *binds[] = {admin, admin_hash, NULL};
        if (store__run(store, "INSERT OR REPLACE INTO users(name, role, hash) VALUES(?, 'admin', ?)",
                       binds) != SQLITE_DONE)
            return VIGIL_EIO;
    }
    res->status = 200;
    return 0;
}

/* A new server certificate for the cluster, signed by its CA, naming more addresses
 * (credentials_renew): applied only over the certificate served when it was made (the
 * previous server certificate, or the CA's own before the first), so that of two renewals
 * racing the first wins and the second, stale, changes nothing (409; the leader makes
 * another). */
static int store__cmd_tls_cert_renew(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *previous = NULL, *cert = NULL;
    char *have;
    int same;

    if (json_unpack(cmd, "{s:s, s:s}", "previous", &previous, "tls_leaf", &cert) != 0)
        return VIGIL_EINVAL;
    have = store_meta_get(store, "tls_leaf");
    if (have == NULL)
        have = store_meta_get(store, "tls_cert");
    same = have != NULL && strcmp(have, previous) == 0;
    free(have);
    if (!same) {
        res->status = 409;
        snprintf(res->error, sizeof res->error, "the cluster certificate changed meanwhile");
        return 0;
    }
    if (store__meta_set(store, "tls_leaf", cert) != 0)
        return VIGIL_EIO;
    res->status = 200;
    return 0;
}

static int store__cmd_node_register(struct store *store, json_t *cmd, struct store_result *res)
{
    json_int_t id;
    const char *name, *raft, *api, *se, *key;
    sqlite3_stmt *st;
    int rc;

    if (json_unpack(cmd, "{s:{s:I, s:s, s:s, s:s, s:s, s:s}}", "node", "id", &id, "name", &name,
                    "raft_address", &raft, "api_address", &api, "se_address", &se,
                    "se_host_key", &key) != 0)
        return VIGIL_EINVAL;
    st = store__stmt(store, "INSERT OR REPLACE INTO nodes(id, name, raft_address, "
                               "api_address, se_address, se_host_key) VALUES(?,?,?,?,?,?)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, raft, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, api, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, se, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    store__release(store, st);
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    res->status = 200;
    return 0;
}

/* Checks that every reference of OBJ points at an existing object, then (re)writes the
 * refs rows of (TYPE, UUID). Refuses with 400 naming the field otherwise. */
static int store__refs_replace(struct store *store, enum obj_type type, const char *uuid,
                               json_t *obj, struct store_result *res)
{
    struct obj_ref refs[256];
    size_t n = obj_refs(type, obj, refs, 256);
    char tbuf[16];
    const char *del[] = {tbuf, uuid, NULL};

    if (n > 256) {
        store__refuse(res, 400, "too many references (at most 256)");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *target = store_object_get(store, refs[i].type, refs[i].target);
        if (target == NULL) {
            store__refuse(res, 400, "%s: no %s with uuid %s", refs[i].field,
                          obj_type_name(refs[i].type), refs[i].target);
            return 0;
        }
        json_decref(target);
    }
    snprintf(tbuf, sizeof tbuf, "%d", (int)type);
    if (store__run(store, "DELETE FROM refs WHERE src_type=? AND src_uuid=?", del) != SQLITE_DONE)
        return VIGIL_EIO;
    for (size_t i = 0; i < n; i++) {
        char dbuf[16];
        const char *ins[] = {tbuf, uuid, dbuf, refs[i].target, refs[i].field, NULL};
        snprintf(dbuf, sizeof dbuf, "%d", (int)refs[i].type);
        if (store__run(store,
                       "INSERT INTO refs(src_type, src_uuid, dst_type, dst_uuid, field) "
                       "VALUES(?,?,?,?,?)",
                       ins) != SQLITE_DONE)
            return VIGIL_EIO;
    }
    return 0;
}

/* Parses the "type", "uuid" and validated "object" of an object command. */
static int store__object_args(json_t *cmd, int need_object, enum obj_type *type,
                              const char **uuid, json_t **obj, struct store_result *res)
{
    const char *tname = NULL;
    json_t *body = NULL;
    char err[256];
    int t;

    if (json_unpack(cmd, "{s:s, s:s, s?o}", "type", &tname, "uuid", uuid, "object", &body) != 0)
        return VIGIL_EINVAL;
    t = obj_type_from_name(tname);
    if (t < 0 || !obj_uuid_valid(*uuid))
        return VIGIL_EINVAL;
    *type = (enum obj_type)t;
    *obj = NULL;
    if (!need_object)
        return 0;
    if (body == NULL)
        return VIGIL_EINVAL;
    /* Proposers validate too; validating again here keeps a bad entry out of the DB. */
    *obj = obj_validate(*type, body, 0, err, sizeof err);
    if (*obj == NULL)
        store__refuse(res, 400, "%s", err);
    return 0;
}

static int store__write_object(struct store *store, int create, enum obj_type type,
                               const char *uuid, json_t *obj, struct store_result *res)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    char tbuf[16];
    int rc, err;

    if (text == NULL || name == NULL) {
        free(text);
        return VIGIL_ENOMEM;
    }
    snprintf(tbuf, sizeof tbuf, "%d", (int)type);
    {
        /* The name must be free, or held by this very object. */
        json_t *other = store_object_get_by_name(store, type, name);
        if (other != NULL) {
            int mine = strcmp(json_string_value(json_object_get(other, "uuid")), uuid) == 0;
            json_decref(other);
            if (!mine) {
                store__refuse(res, 409, "name: a %s named '%s' exists", obj_type_name(type),
                              name);
                free(text);
                return 0;
            }
        }
    }
    err = store__refs_replace(store, type, uuid, obj, res);
    if (err != 0 || res->status != 0) {
        free(text);
        return err;
    }
    if (create) {
        const char *binds[] = {tbuf, uuid, name, text, NULL};
        rc = store__run(store, "INSERT INTO objects(type, uuid, name, body) VALUES(?,?,?,?)",
                        binds);
    } else {
        const char *binds[] = {name, text, tbuf, uuid, NULL};
        rc = store__run(store, "UPDATE objects SET name=?, body=? WHERE type=? AND uuid=?",
                        binds);
    }
    free(text);
    if (rc == SQLITE_CONSTRAINT) {
        store__refuse(res, 409, "uuid: %s exists", uuid);
        return 0;
    }
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    res->status = create ? 201 : 200;
    /* OBJ is the validated copy made for this command (no longer needed once stored):
     * the result shares it instead of copying it. */
    res->body = json_incref(obj);
    json_object_set_new(res->body, "uuid", json_string(uuid));
    return 0;
}

static int store__cmd_object_put(struct store *store, json_t *cmd, int create,
                                 struct store_result *res)
{
    enum obj_type type;
    const char *uuid;
    json_t *obj;
    int err = store__object_args(cmd, 1, &type, &uuid, &obj, res);

    if (err != 0 || obj == NULL)
        return err;
    if (!create) {
        json_t *old = store_object_get(store, type, uuid);
        if (old == NULL) {
            store__refuse(res, 404, "no %s with uuid %s", obj_type_name(type), uuid);
            json_decref(obj);
            return 0;
        }
        json_decref(old);
    }
    err = store__write_object(store, create, type, uuid, obj, res);
    json_decref(obj);
    return err;
}

static int store__cmd_object_delete(struct store *store, json_t *cmd, struct store_result *res)
{
    enum obj_type type;
    const char *uuid;
    json_t *obj, *old;
    sqlite3_stmt *st;
    char tbuf[16];
    int err = store__object_args(cmd, 0, &type, &uuid, &obj, res);

    if (err != 0)
        return err;
    old = store_object_get(store, type, uuid);
    if (old == NULL) {
        store__refuse(res, 404, "no %s with uuid %s", obj_type_name(type), uuid);
        return 0;
    }
    json_decref(old);
    st = store__stmt(store, "SELECT r.src_type, o.name FROM refs r JOIN objects o ON "
                               "o.type=r.src_type AND o.uuid=r.src_uuid "
                               "WHERE r.dst_type=? AND r.dst_uuid=? LIMIT 1");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_int(st, 1, (int)type);
    sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        store__refuse(res, 409, "%s %s is still referenced by %s '%s'", obj_type_name(type),
                      uuid, obj_type_name((enum obj_type)sqlite3_column_int(st, 0)),
                      sqlite3_column_text(st, 1));
        store__release(store, st);
        return 0;
    }
    store__release(store, st);
    snprintf(tbuf, sizeof tbuf, "%d", (int)type);
    {
        const char *binds[] = {tbuf, uuid, NULL};
        if (store__run(store, "DELETE FROM objects WHERE type=? AND uuid=?", binds) !=
                SQLITE_DONE ||
            store__run(store, "DELETE FROM refs WHERE src_type=? AND src_uuid=?", binds) !=
                SQLITE_DONE)
            return VIGIL_EIO;
    }
    res->status = 204;
    return 0;
}

/* Runs a statement without binds or rows (BEGIN, COMMIT, ROLLBACK) from the cache. */
static int store__step_once(struct store *store, const char *sql)
{
    sqlite3_stmt *st = store__stmt(store, sql);
    int rc;
    if (st == NULL)
        return VIGIL_EIO;
    rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        vlog_error("store: '%s': %s", sql, sqlite3_errmsg(store->db));
    store__release(store, st);
    return rc == SQLITE_DONE ? 0 : VIGIL_EIO;
}

/* Runs one parsed command ROOT; the caller holds a transaction or savepoint open and
 * keeps the changes only when this returns 0 with a status below 400. */
static int store__run_command(struct store *store, json_t *root, struct store_result *res)
{
    const char *op = json_string_value(json_object_get(root, "op"));
    int err;

    if (op == NULL)
        return VIGIL_EINVAL;
    if (strcmp(op, "object_create") == 0)
        err = store__cmd_object_put(store, root, 1, res);
    else if (strcmp(op, "object_update") == 0)
        err = store__cmd_object_put(store, root, 0, res);
    else if (strcmp(op, "object_delete") == 0)
        err = store__cmd_object_delete(store, root, res);
    else if (strcmp(op, "node_register") == 0)
        err = store__cmd_node_register(store, root, res);
    else if (strcmp(op, "cluster_init") == 0)
        err = store__cmd_cluster_init(store, root, res);
    else if (strcmp(op, "tls_cert_renew") == 0)
        err = store__cmd_tls_cert_renew(store, root, res);
    else if ((err = store__events_apply(store, op, root, res)) == VIGIL_EINVAL)
        err = store__auth_apply(store, op, root, res);
    if (err == VIGIL_EINVAL)
        vlog_error("store: skipping a malformed or unknown '%s' command", op);
    return err;
}

/* Runs ROOT inside the open transaction as savepoint "cmd": kept when it succeeded,
 * rolled back (the transaction goes on) when refused or unknown. */
static int store__run_savepoint(struct store *store, json_t *root, struct store_result *res)
{
    int err;

    if (store__step_once(store, "SAVEPOINT cmd") != 0)
        return VIGIL_EIO;
    err = store__run_command(store, root, res);
    if (err == 0 && res->status < 400)
        return store__step_once(store, "RELEASE cmd");
    if (store__step_once(store, "ROLLBACK TO cmd") != 0 || store__step_once(store, "RELEASE cmd") != 0)
        return VIGIL_EIO;
    if (err == VIGIL_EINVAL) {
        json_decref(res->body);
        res->body = NULL;
        res->status = 400;
        snprintf(res->error, sizeof res->error, "unknown command");
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
    if (store__step_once(store, "BEGIN") != 0) {
        json_decref(root);
        return VIGIL_EIO;
    }
    err = store__run_command(store, root, res);
    if (err == 0 && res->status < 400) {
        err = store__step_once(store, "COMMIT");
    } else {
        store__step_once(store, "ROLLBACK");
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
    return store__apply_one(store, store__parse_command(cmd, len), res);
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
        return store__apply_one(store, root, res);
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
    if (store__step_once(store, "BEGIN") != 0) {
        json_decref(root);
        return VIGIL_EIO;
    }
    for (unsigned i = 0; i < *n && err == 0; i++)
        err = store__run_savepoint(store, json_array_get(cmds, i), &res[i]);
    if (err == 0)
        err = store__step_once(store, "COMMIT");
    else
        store__step_once(store, "ROLLBACK");
    json_decref(root);
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
    sqlite3_int64 size = 0;
    unsigned char *live = sqlite3_serialize(store->db, "main", &size, SQLITE_SERIALIZE_NOCOPY);
    unsigned char *copy = NULL, *buf;
    size_t need;

    if (live == NULL) {
        /* Not one buffer (not expected): SQLite's own copy. */
        copy = sqlite3_serialize(store->db, "main", &size, 0);
        if (copy == NULL)
            return VIGIL_EIO;
        live = copy;
    }
    need = size > 0 ? (size_t)size : 1;
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
    memcpy(buf, live, (size_t)size);
    sqlite3_free(copy);
    store->lent = buf;
    *data = buf;
    *len = (size_t)size;
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
    sqlite3 *db = NULL;
    unsigned char *copy;
    char *version;
    struct store probe;
    sqlite3_stmt *st;

    memset(&probe, 0, sizeof probe);
    int ok = 0;

    if (len < 100 || memcmp(data, "SQLite format 3", 16) != 0)
        return VIGIL_ECORRUPT;
    copy = sqlite3_malloc64(len);
    if (copy == NULL)
        return VIGIL_ENOMEM;
    memcpy(copy, data, len);
    if (sqlite3_open_v2(":memory:", &db, STORE__OPEN_FLAGS, NULL) !=
        SQLITE_OK) {
        sqlite3_free(copy);
        sqlite3_close(db);
        return VIGIL_EIO;
    }
    if (sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
                            SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE) !=
        SQLITE_OK) {
        sqlite3_close(db);
        return VIGIL_ECORRUPT;
    }
    /* Check it before it replaces anything: integrity, then our schema version. */
    if (sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW &&
            strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0)
            ok = 1;
        sqlite3_finalize(st);
    }
    probe.db = db;
    version = ok ? store_meta_get(&probe, "schema_version") : NULL;
    store__stmts_clear(&probe);
    if (version == NULL || strcmp(version, STORE__SCHEMA_VERSION) != 0) {
        free(version);
        sqlite3_close(db);
        return VIGIL_ECORRUPT;
    }
    free(version);
    /* The cached statements belong to the connection being replaced. */
    store__stmts_clear(store);
    sqlite3_close(store->db);
    store->db = db;
    store->auth_generation++;
    return 0;
}
