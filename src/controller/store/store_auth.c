/* store_auth.c: users, API tokens and revoked sessions in the store. Passwords arrive
 * hashed (Argon2id) and tokens as keyed hashes: nothing secret is stored in the clear
 * except the cluster key and the cluster TLS key (meta), which every node needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "controller/store/store_auth.h"

/* A revocation is kept this long past the longest session's life (clocks differ). */
#define STORE__REVOKED_MARGIN_MS (3600LL * 1000)

static int store_auth__valid_role(const char *role)
{
    return strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "read-only") == 0;
}

/* How many admins there are besides EXCEPT. */
static int64_t store_auth__count_admins(struct store_db *db, const char *except)
{
    return store_db_int64(db, "SELECT count(*) FROM users WHERE role='admin' AND name != ?",
                          STORE_DB_BIND(STORE_DB_TEXT(except)), 0);
}

/* User NAME: {"username", "role", "hash"} (a new reference) or NULL. */
static json_t *store_auth__user_get(struct store_db *db, const char *name)
{
    sqlite3_stmt *st = store_db_statement(db, "SELECT name, role, hash FROM users WHERE name=?",
                                          STORE_DB_BIND(STORE_DB_TEXT(name)));
    json_t *out = NULL;
    if (st == NULL)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        out = json_pack("{s:s, s:s, s:s}", "username", sqlite3_column_text(st, 0), "role",
                        sqlite3_column_text(st, 1), "hash", sqlite3_column_text(st, 2));
    store_db_release(db, st);
    return out;
}

/* 1 if user NAME (a record from store_auth__user_get) is the only admin. */
static int store_auth__last_admin(struct store_db *db, json_t *user, const char *name)
{
    return strcmp(json_string_value(json_object_get(user, "role")), "admin") == 0 &&
           store_auth__count_admins(db, name) == 0;
}

int store_auth_user_put(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *name, *role, *hash;
    int create;
    json_t *have;

    if (json_unpack(cmd, "{s:s, s:s, s:s, s:b}", "name", &name, "role", &role, "hash", &hash,
                    "create", &create) != 0 ||
        !store_auth__valid_role(role))
        return VIGIL_EINVAL;
    have = store_auth__user_get(db, name);
    if (create && have != NULL) {
        json_decref(have);
        store__refuse(res, STORE_CONFLICT, "username: a user named '%s' exists", name);
        return 0;
    }
    if (!create && have == NULL) {
        store__refuse(res, STORE_NOT_FOUND, "no user named '%s'", name);
        return 0;
    }
    if (have != NULL && strcmp(role, "admin") != 0 && store_auth__last_admin(db, have, name)) {
        json_decref(have);
        store__refuse(res, STORE_CONFLICT, "role: '%s' is the last admin", name);
        return 0;
    }
    json_decref(have);
    if (store_db_write(db, "INSERT OR REPLACE INTO users(name, role, hash) VALUES(?,?,?)",
                       STORE_DB_BIND(STORE_DB_TEXT(name), STORE_DB_TEXT(role),
                                     STORE_DB_TEXT(hash))) != 0)
        return VIGIL_EIO;
    res->outcome = create ? STORE_CREATED : STORE_OK;
    res->body = json_pack("{s:s, s:s}", "username", name, "role", role);
    return 0;
}

int store_auth_user_delete(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *name;
    json_t *have;

    if (json_unpack(cmd, "{s:s}", "name", &name) != 0)
        return VIGIL_EINVAL;
    have = store_auth__user_get(db, name);
    if (have == NULL) {
        store__refuse(res, STORE_NOT_FOUND, "no user named '%s'", name);
        return 0;
    }
    if (store_auth__last_admin(db, have, name)) {
        json_decref(have);
        store__refuse(res, STORE_CONFLICT, "'%s' is the last admin", name);
        return 0;
    }
    json_decref(have);
    if (store_db_write(db, "DELETE FROM users WHERE name=?",
                       STORE_DB_BIND(STORE_DB_TEXT(name))) != 0 ||
        store_db_write(db, "UPDATE tokens SET revoked=1 WHERE user=?",
                       STORE_DB_BIND(STORE_DB_TEXT(name))) != 0)
        return VIGIL_EIO;
    res->outcome = STORE_REMOVED;
    return 0;
}

int store_auth_token_create(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *id, *user, *mac, *description = "";
    json_int_t expires, time_ms;
    json_t *u;
    int rc;

    if (json_unpack(cmd, "{s:s, s:s, s:s, s:I, s:I, s?s}", "id", &id, "user", &user, "mac", &mac,
                    "expires", &expires, "time", &time_ms, "description", &description) != 0)
        return VIGIL_EINVAL;
    u = store_auth__user_get(db, user);
    if (u == NULL) {
        store__refuse(res, STORE_NOT_FOUND, "no user named '%s'", user);
        return 0;
    }
    json_decref(u);
    rc = store_db_run(db, "INSERT INTO tokens(id, user, mac, expires_ms, created_ms, "
                          "description, revoked) VALUES(?,?,?,?,?,?,0)",
                      STORE_DB_BIND(STORE_DB_TEXT(id), STORE_DB_TEXT(user), STORE_DB_TEXT(mac),
                                    STORE_DB_INT(expires), STORE_DB_INT(time_ms),
                                    STORE_DB_TEXT(description)));
    if (rc == SQLITE_CONSTRAINT) {
        store__refuse(res, STORE_CONFLICT, "token exists");
        return 0;
    }
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    res->outcome = STORE_CREATED;
    return 0;
}

int store_auth_token_revoke(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *id, *user = NULL;

    if (json_unpack(cmd, "{s:s, s?s}", "id", &id, "user", &user) != 0)
        return VIGIL_EINVAL;
    /* USER, when given, restricts the revocation to that user's own tokens. */
    if (store_db_write(db, "UPDATE tokens SET revoked=1 WHERE id=?1 AND (?2 IS NULL OR user=?2)",
                       STORE_DB_BIND(STORE_DB_TEXT(id), STORE_DB_TEXT(user))) != 0)
        return VIGIL_EIO;
    if (store_db_changes(db) == 0) {
        store__refuse(res, STORE_NOT_FOUND, "no token %s", id);
        return 0;
    }
    res->outcome = STORE_REMOVED;
    return 0;
}

int store_auth_session_revoke(struct store_db *db, json_t *cmd, struct store_result *res)
{
    const char *sid;
    json_int_t expires;

    if (json_unpack(cmd, "{s:s, s:I}", "sid", &sid, "expires", &expires) != 0)
        return VIGIL_EINVAL;
    if (store_db_write(db, "INSERT OR REPLACE INTO revoked_sessions(sid, expires_ms) VALUES(?,?)",
                       STORE_DB_BIND(STORE_DB_TEXT(sid), STORE_DB_INT(expires))) != 0)
        return VIGIL_EIO;
    /* Revocations of sessions that have expired anyway are no longer needed (a failure
     * here only keeps them longer). */
    store_db_run(db, "DELETE FROM revoked_sessions WHERE expires_ms < ?",
                 STORE_DB_BIND(STORE_DB_INT(expires -
                                            (STORE_SESSION_MAX_MS + STORE__REVOKED_MARGIN_MS))));
    res->outcome = STORE_REMOVED;
    return 0;
}

/* --- queries ---------------------------------------------------------------------- */

json_t *store_user_get(struct store *store, const char *name)
{
    return store_auth__user_get(&store->db, name);
}

int64_t store_users_count(struct store *store)
{
    return store_db_int64(&store->db, "SELECT count(*) FROM users", NULL, 0);
}

json_t *store_users_list(struct store *store, int64_t offset, int64_t limit, int64_t *total)
{
    json_t *list = json_array();
    sqlite3_stmt *st;
    *total = store_users_count(store);
    st = store_db_statement(&store->db, "SELECT name, role FROM users ORDER BY name LIMIT ? OFFSET ?",
                            STORE_DB_BIND(STORE_DB_INT(limit), STORE_DB_INT(offset)));
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:s, s:s}", "username", sqlite3_column_text(st, 0),
                                              "role", sqlite3_column_text(st, 1)));
    store_db_release(&store->db, st);
    return list;
}

json_t *store_token_find(struct store *store, const char *mac)
{
    sqlite3_stmt *st = store_db_statement(
        &store->db, "SELECT t.id, t.user, t.expires_ms, t.revoked, u.role FROM tokens t JOIN "
                    "users u ON u.name = t.user WHERE t.mac=?",
        STORE_DB_BIND(STORE_DB_TEXT(mac)));
    json_t *out = NULL;
    if (st == NULL)
        return NULL;
    if (sqlite3_step(st) == SQLITE_ROW)
        out = json_pack("{s:s, s:s, s:I, s:b, s:s}", "id", sqlite3_column_text(st, 0), "user",
                        sqlite3_column_text(st, 1), "expires_ms",
                        (json_int_t)sqlite3_column_int64(st, 2), "revoked",
                        sqlite3_column_int(st, 3), "role", sqlite3_column_text(st, 4));
    store_db_release(&store->db, st);
    return out;
}

json_t *store_tokens_list(struct store *store, const char *user)
{
    json_t *list = json_array();
    sqlite3_stmt *st = store_db_statement(
        &store->db, "SELECT id, user, expires_ms, created_ms, description, revoked FROM tokens "
                    "WHERE ?1 IS NULL OR user=?1 ORDER BY created_ms",
        STORE_DB_BIND(STORE_DB_TEXT(user)));
    if (st == NULL)
        return list;
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:I, s:s, s:b}", "id", sqlite3_column_text(st, 0),
                            "username", sqlite3_column_text(st, 1), "expires_ms",
                            (json_int_t)sqlite3_column_int64(st, 2), "created_ms",
                            (json_int_t)sqlite3_column_int64(st, 3), "description",
                            sqlite3_column_text(st, 4), "revoked", sqlite3_column_int(st, 5)));
    store_db_release(&store->db, st);
    return list;
}

int store_session_revoked(struct store *store, const char *sid)
{
    return store_db_has_row(&store->db, "SELECT 1 FROM revoked_sessions WHERE sid=?",
                            STORE_DB_BIND(STORE_DB_TEXT(sid)));
}
