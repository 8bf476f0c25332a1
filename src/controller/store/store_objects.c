/* store_objects.c: config objects (with the references between them), node records and
 * cluster settings in the store: their commands and their queries. */
#include "controller/store/store_objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/vlog.h"
#include "controller/store/store_se.h"

#define STORE_OBJECTS__REFS_MAX 256

/* --- queries ---------------------------------------------------------------------- */

/* Builds the API form of a stored object: its body plus "uuid". */
static json_t *store_objects__from_row(sqlite3_stmt *st, int uuid_col, int body_col)
{
    json_error_t jerr;
    json_t *obj = json_loads((const char *)sqlite3_column_text(st, body_col), 0, &jerr);
    if (obj == NULL)
        return NULL;
    json_object_set_new(obj, "uuid", json_string((const char *)sqlite3_column_text(st, uuid_col)));
    return obj;
}

/* The object of TYPE that SQL (uuid, body of one row) finds by KEY, or NULL. */
static json_t *store_objects__query(struct store_db *db, const char *sql, enum obj_type type,
                                    const char *key)
{
    sqlite3_stmt *st = store_db_statement(db, sql,
                                          STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(key)));
    json_t *obj = NULL;
    if (st == NULL)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        obj = store_objects__from_row(st, 0, 1);
    store_db_release(db, st);
    return obj;
}

static json_t *store_objects__get(struct store_db *db, enum obj_type type, const char *uuid)
{
    return store_objects__query(db, "SELECT uuid, body FROM objects WHERE type=? AND uuid=?",
                                type, uuid);
}

static json_t *store_objects__get_by_name(struct store_db *db, enum obj_type type,
                                          const char *name)
{
    return store_objects__query(db, "SELECT uuid, body FROM objects WHERE type=? AND name=?",
                                type, name);
}

json_t *store_object_get(struct store *store, enum obj_type type, const char *uuid)
{
    return store_objects__get(&store->db, type, uuid);
}

json_t *store_object_get_by_name(struct store *store, enum obj_type type, const char *name)
{
    return store_objects__get_by_name(&store->db, type, name);
}

json_t *store_object_list(struct store *store, enum obj_type type, int64_t offset,
                          int64_t limit, int64_t *total)
{
    sqlite3_stmt *st;
    json_t *list = json_array();

    *total = store_db_int64(&store->db, "SELECT count(*) FROM objects WHERE type=?",
                            STORE_DB_BIND(STORE_DB_INT(type)), 0);
    st = store_db_statement(
        &store->db, "SELECT uuid, body FROM objects WHERE type=? ORDER BY id LIMIT ? OFFSET ?",
        STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_INT(limit), STORE_DB_INT(offset)));
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW) {
        json_t *obj = store_objects__from_row(st, 0, 1);
        if (obj != NULL)
            json_array_append_new(list, obj);
    }
    store_db_release(&store->db, st);
    return list;
}

json_t *store_nodes(struct store *store)
{
    sqlite3_stmt *st = store_db_statement(
        &store->db, "SELECT id, name, raft_address, api_address, se_address, se_host_key "
                    "FROM nodes ORDER BY id", NULL);
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
    store_db_release(&store->db, st);
    return list;
}

int store_node_api_address(struct store *store, uint64_t id, char *out, size_t len)
{
    char *address = store_db_text(&store->db, "SELECT api_address FROM nodes WHERE id=?",
                                  STORE_DB_BIND(STORE_DB_INT(id)));
    if (address == NULL)
        return 0;
    snprintf(out, len, "%s", address);
    free(address);
    return 1;
}

static char *store_objects__meta_get(struct store_db *db, const char *key)
{
    return store_db_text(db, "SELECT value FROM meta WHERE key=?",
                         STORE_DB_BIND(STORE_DB_TEXT(key)));
}

char *store_meta_get(struct store *store, const char *key)
{
    return store_objects__meta_get(&store->db, key);
}

static int store_objects__meta_set(struct store_db *db, const char *key, const char *value)
{
    return store_db_write(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)",
                          STORE_DB_BIND(STORE_DB_TEXT(key), STORE_DB_TEXT(value)));
}

/* --- cluster and node commands ---------------------------------------------------- */

int store_objects_cluster_init(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *uuid = NULL, *name = NULL, *secret = NULL, *cert = NULL, *key = NULL;
    const char *admin = NULL, *admin_hash = NULL;
    char *have;

    if (json_unpack(cmd, "{s:s, s:s, s?s, s?s, s?s, s?{s:s, s:s}}", "uuid", &uuid, "name", &name,
                    "secret", &secret, "tls_cert", &cert, "tls_key", &key, "admin", "username",
                    &admin, "hash", &admin_hash) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    have = store_objects__meta_get(db, "cluster_uuid");
    if (have != NULL) {
        /* Several nodes may race to initialise: the first entry wins. */
        free(have);
        return 0;
    }
    if (store_objects__meta_set(db, "cluster_uuid", uuid) != 0 ||
        store_objects__meta_set(db, "cluster_name", name) != 0 ||
        (secret != NULL && store_objects__meta_set(db, "cluster_secret", secret) != 0) ||
        (cert != NULL && store_objects__meta_set(db, "tls_cert", cert) != 0) ||
        (key != NULL && store_objects__meta_set(db, "tls_key", key) != 0))
        return VIGIL_EIO;
    if (admin != NULL &&
        store_db_write(db, "INSERT OR REPLACE INTO users(name, role, hash) VALUES(?, 'admin', ?)",
                       STORE_DB_BIND(STORE_DB_TEXT(admin), STORE_DB_TEXT(admin_hash))) != 0)
        return VIGIL_EIO;
    return 0;
}

/* A new server certificate for the cluster, signed by its CA, naming more addresses
 * (credentials_renew): applied only over the certificate served when it was made (the
 * previous server certificate, or the CA's own before the first), so that of two renewals
 * racing the first wins and the second, stale, changes nothing (a conflict; the leader
 * makes another). */
int store_objects_tls_cert_renew(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *previous = NULL, *cert = NULL;
    char *have;
    int same;

    if (json_unpack(cmd, "{s:s, s:s}", "previous", &previous, "tls_leaf", &cert) != 0)
        return VIGIL_EINVAL;
    have = store_objects__meta_get(db, "tls_leaf");
    if (have == NULL)
        have = store_objects__meta_get(db, "tls_cert");
    same = have != NULL && strcmp(have, previous) == 0;
    free(have);
    if (!same) {
        store__refuse(res, STORE_CONFLICT, "the cluster certificate changed meanwhile");
        return 0;
    }
    if (store_objects__meta_set(db, "tls_leaf", cert) != 0)
        return VIGIL_EIO;
    res->outcome = STORE_OK;
    return 0;
}

int store_objects_node_register(struct store_db *db, json_t *cmd, struct store_result *res)
{
    json_int_t id;
    const char *name, *raft, *api, *se, *key;

    if (json_unpack(cmd, "{s:{s:I, s:s, s:s, s:s, s:s, s:s}}", "node", "id", &id, "name", &name,
                    "raft_address", &raft, "api_address", &api, "se_address", &se,
                    "se_host_key", &key) != 0)
        return VIGIL_EINVAL;
    if (store_db_write(db, "INSERT OR REPLACE INTO nodes(id, name, raft_address, "
                           "api_address, se_address, se_host_key) VALUES(?,?,?,?,?,?)",
                       STORE_DB_BIND(STORE_DB_INT(id), STORE_DB_TEXT(name), STORE_DB_TEXT(raft),
                                     STORE_DB_TEXT(api), STORE_DB_TEXT(se),
                                     STORE_DB_TEXT(key))) != 0)
        return VIGIL_EIO;
    res->outcome = STORE_OK;
    return 0;
}

/* --- object commands -------------------------------------------------------------- */

/* Checks that every reference of OBJ points at an existing object, then (re)writes the
 * refs rows of (TYPE, UUID). Refuses (STORE_INVALID, naming the field) otherwise. */
static int store_objects__refs_replace(struct store_db *db, enum obj_type type,
                                       const char *uuid, json_t *obj, struct store_result *res)
{
    struct obj_ref refs[STORE_OBJECTS__REFS_MAX];
    size_t n = obj_refs(type, obj, refs, STORE_OBJECTS__REFS_MAX);

    if (n > STORE_OBJECTS__REFS_MAX) {
        store__refuse(res, STORE_INVALID, "too many references (at most 256)");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *target = store_objects__get(db, refs[i].type, refs[i].target);
        if (target == NULL) {
            store__refuse(res, STORE_INVALID, "%s: no %s with uuid %s", refs[i].field,
                          obj_type_name(refs[i].type), refs[i].target);
            return 0;
        }
        json_decref(target);
    }
    if (store_db_write(db, "DELETE FROM refs WHERE src_type=? AND src_uuid=?",
                       STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(uuid))) != 0)
        return VIGIL_EIO;
    for (size_t i = 0; i < n; i++) {
        if (store_db_write(db,
                           "INSERT INTO refs(src_type, src_uuid, dst_type, dst_uuid, field) "
                           "VALUES(?,?,?,?,?)",
                           STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(uuid),
                                         STORE_DB_INT(refs[i].type),
                                         STORE_DB_TEXT(refs[i].target),
                                         STORE_DB_TEXT(refs[i].field))) != 0)
            return VIGIL_EIO;
    }
    return 0;
}

/* Parses the "type", "uuid" and validated "object" of an object command. */
static int store_objects__args(json_t *cmd, int need_object, enum obj_type *type,
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
        store__refuse(res, STORE_INVALID, "%s", err);
    return 0;
}

/* 1 if NAME is taken by an object of TYPE other than UUID. */
static int store_objects__name_taken(struct store_db *db, enum obj_type type, const char *name,
                                     const char *uuid)
{
    json_t *other = store_objects__get_by_name(db, type, name);
    int taken;

    if (other == NULL)
        return 0;
    taken = strcmp(json_string_value(json_object_get(other, "uuid")), uuid) != 0;
    json_decref(other);
    return taken;
}

/* Counts one more change of the config objects: meta "config_version" (store.h), in the
 * command's transaction, so every replica counts the same. */
static int store_objects__config_changed(struct store_db *db)
{
    return store_db_write(db, "INSERT INTO meta(key, value) VALUES('config_version', '1') "
                              "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                          NULL);
}

uint64_t store_config_version(struct store *store)
{
    int64_t v = store_db_int64(&store->db,
                               "SELECT CAST(value AS INTEGER) FROM meta WHERE key='config_version'",
                               NULL, 0);
    return v > 0 ? (uint64_t)v : 0;
}

/* Stores OBJ (borrowed) as (TYPE, UUID), a new row when CREATE. */
static int store_objects__write(struct store_db *db, int create, enum obj_type type,
                                const char *uuid, json_t *obj, struct store_result *res)
{
    const char *name = json_string_value(json_object_get(obj, "name"));
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    int rc, err;

    if (text == NULL || name == NULL) {
        free(text);
        return VIGIL_ENOMEM;
    }
    /* The name must be free, or held by this very object. */
    if (store_objects__name_taken(db, type, name, uuid)) {
        store__refuse(res, STORE_CONFLICT, "name: a %s named '%s' exists", obj_type_name(type),
                      name);
        free(text);
        return 0;
    }
    err = store_objects__refs_replace(db, type, uuid, obj, res);
    if (err != 0 || store_outcome_refused(res->outcome)) {
        free(text);
        return err;
    }
    if (create)
        rc = store_db_run(db, "INSERT INTO objects(type, uuid, name, body) VALUES(?,?,?,?)",
                          STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(uuid),
                                        STORE_DB_TEXT(name), STORE_DB_TEXT(text)));
    else
        rc = store_db_run(db, "UPDATE objects SET name=?, body=? WHERE type=? AND uuid=?",
                          STORE_DB_BIND(STORE_DB_TEXT(name), STORE_DB_TEXT(text),
                                        STORE_DB_INT(type), STORE_DB_TEXT(uuid)));
    free(text);
    if (rc == SQLITE_CONSTRAINT) {
        store__refuse(res, STORE_CONFLICT, "uuid: %s exists", uuid);
        return 0;
    }
    if (rc != SQLITE_DONE || store_objects__config_changed(db) != 0)
        return VIGIL_EIO;
    res->outcome = create ? STORE_CREATED : STORE_OK;
    /* OBJ is the validated copy made for this command (no longer needed once stored):
     * the result shares it instead of copying it. */
    res->body = json_incref(obj);
    json_object_set_new(res->body, "uuid", json_string(uuid));
    return 0;
}

/* object_create (CREATE) or object_update. */
static int store_objects__put(struct store_db *db, json_t *cmd, int create,
                              struct store_result *res)
{
    enum obj_type type;
    const char *uuid;
    json_t *obj;
    int err = store_objects__args(cmd, 1, &type, &uuid, &obj, res);

    if (err != 0 || obj == NULL)
        return err;
    if (!create) {
        json_t *old = store_objects__get(db, type, uuid);
        if (old == NULL) {
            store__refuse(res, STORE_NOT_FOUND, "no %s with uuid %s", obj_type_name(type), uuid);
            json_decref(obj);
            return 0;
        }
        json_decref(old);
    }
    err = store_objects__write(db, create, type, uuid, obj, res);
    json_decref(obj);
    return err;
}

int store_objects_create(struct store_db *db, json_t *cmd, struct store_result *res)
{
    return store_objects__put(db, cmd, 1, res);
}

int store_objects_update(struct store_db *db, json_t *cmd, struct store_result *res)
{
    return store_objects__put(db, cmd, 0, res);
}

int store_objects_delete(struct store_db *db, json_t *cmd, struct store_result *res)
{
    enum obj_type type;
    const char *uuid;
    json_t *obj, *old;
    sqlite3_stmt *st;
    int err = store_objects__args(cmd, 0, &type, &uuid, &obj, res);

    if (err != 0)
        return err;
    old = store_objects__get(db, type, uuid);
    if (old == NULL) {
        store__refuse(res, STORE_NOT_FOUND, "no %s with uuid %s", obj_type_name(type), uuid);
        return 0;
    }
    json_decref(old);
    st = store_db_statement(db, "SELECT r.src_type, o.name FROM refs r JOIN objects o ON "
                                "o.type=r.src_type AND o.uuid=r.src_uuid "
                                "WHERE r.dst_type=? AND r.dst_uuid=? LIMIT 1",
                            STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(uuid)));
    if (st == NULL)
        return VIGIL_EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        store__refuse(res, STORE_CONFLICT, "%s %s is still referenced by %s '%s'",
                      obj_type_name(type), uuid,
                      obj_type_name((enum obj_type)sqlite3_column_int(st, 0)),
                      sqlite3_column_text(st, 1));
        store_db_release(db, st);
        return 0;
    }
    store_db_release(db, st);
    if (store_db_write(db, "DELETE FROM objects WHERE type=? AND uuid=?",
                       STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(uuid))) != 0 ||
        store_db_write(db, "DELETE FROM refs WHERE src_type=? AND src_uuid=?",
                       STORE_DB_BIND(STORE_DB_INT(type), STORE_DB_TEXT(uuid))) != 0 ||
        (type == OBJ_SERVICEENGINE && store_se_forget(db, uuid) != 0) ||
        store_objects__config_changed(db) != 0)
        return VIGIL_EIO;
    res->outcome = STORE_REMOVED;
    return 0;
}
