/* store_auth.c: users, API tokens and revoked sessions in the store. Passwords arrive
 * hashed (Argon2id) and tokens as keyed hashes: nothing secret is stored in the clear
 * except the cluster key and the cluster TLS key (meta), which every node needs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "controller/auth.h"
#include "controller/store-int.h"

/* A revocation is kept this long past the longest session's life (clocks differ). */
#define STORE__REVOKED_MARGIN_MS (3600LL * 1000)

static int store__valid_role(const char *role)
{
    return strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
           strcmp(role, "read-only") == 0;
}

static int store__count_admins(struct store *store, const char *except)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT count(*) FROM users WHERE role='admin' AND name != ?");
    int n = 0;
    if (st == NULL)
        return 0;
    sqlite3_bind_text(st, 1, except != NULL ? except : "", -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    store__release(store, st);
    return n;
}

static int store__cmd_user_put(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *name, *role, *hash;
    int create;
    json_t *have;
    sqlite3_stmt *st;
    int rc;

    if (json_unpack(cmd, "{s:s, s:s, s:s, s:b}", "name", &name, "role", &role, "hash", &hash,
                    "create", &create) != 0 ||
        !store__valid_role(role))
        return VIGIL_EINVAL;
    have = store_user_get(store, name);
    if (create && have != NULL) {
        json_decref(have);
        store__refuse(res, 409, "username: a user named '%s' exists", name);
        return 0;
    }
    if (!create && have == NULL) {
        store__refuse(res, 404, "no user named '%s'", name);
        return 0;
    }
    if (have != NULL && strcmp(json_string_value(json_object_get(have, "role")), "admin") == 0 &&
        strcmp(role, "admin") != 0 && store__count_admins(store, name) == 0) {
        json_decref(have);
        store__refuse(res, 409, "role: '%s' is the last admin", name);
        return 0;
    }
    json_decref(have);
    st = store__stmt(store, "INSERT OR REPLACE INTO users(name, role, hash) VALUES(?,?,?)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    store__release(store, st);
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    res->status = create ? 201 : 200;
    res->body = json_pack("{s:s, s:s}", "username", name, "role", role);
    return 0;
}

static int store__cmd_user_delete(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *name;
    json_t *have;
    const char *binds[2];

    if (json_unpack(cmd, "{s:s}", "name", &name) != 0)
        return VIGIL_EINVAL;
    have = store_user_get(store, name);
    if (have == NULL) {
        store__refuse(res, 404, "no user named '%s'", name);
        return 0;
    }
    if (strcmp(json_string_value(json_object_get(have, "role")), "admin") == 0 &&
        store__count_admins(store, name) == 0) {
        json_decref(have);
        store__refuse(res, 409, "'%s' is the last admin", name);
        return 0;
    }
    json_decref(have);
    binds[0] = name;
    binds[1] = NULL;
    if (store__run(store, "DELETE FROM users WHERE name=?", binds) != SQLITE_DONE ||
        store__run(store, "UPDATE tokens SET revoked=1 WHERE user=?", binds) != SQLITE_DONE)
        return VIGIL_EIO;
    res->status = 204;
    return 0;
}

static int store__cmd_token_create(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *id, *user, *mac, *description = "";
    json_int_t expires, time_ms;
    json_t *u;
    sqlite3_stmt *st;
    int rc;

    if (json_unpack(cmd, "{s:s, s:s, s:s, s:I, s:I, s?s}", "id", &id, "user", &user, "mac", &mac,
                    "expires", &expires, "time", &time_ms, "description", &description) != 0)
        return VIGIL_EINVAL;
    u = store_user_get(store, user);
    if (u == NULL) {
        store__refuse(res, 404, "no user named '%s'", user);
        return 0;
    }
    json_decref(u);
    st = store__stmt(store, "INSERT INTO tokens(id, user, mac, expires_ms, created_ms, "
                               "description, revoked) VALUES(?,?,?,?,?,?,0)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, mac, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, expires);
    sqlite3_bind_int64(st, 5, time_ms);
    sqlite3_bind_text(st, 6, description, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    store__release(store, st);
    if (rc == SQLITE_CONSTRAINT) {
        store__refuse(res, 409, "token exists");
        return 0;
    }
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    res->status = 201;
    return 0;
}

static int store__cmd_token_revoke(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *id, *user = NULL;
    sqlite3_stmt *st;
    int rc, changed;

    if (json_unpack(cmd, "{s:s, s?s}", "id", &id, "user", &user) != 0)
        return VIGIL_EINVAL;
    /* USER, when given, restricts the revocation to that user's own tokens. */
    st = store__stmt(store, "UPDATE tokens SET revoked=1 WHERE id=?1 AND (?2 IS NULL OR user=?2)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (user != NULL)
        sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 2);
    rc = sqlite3_step(st);
    changed = sqlite3_changes(store->db);
    store__release(store, st);
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    if (changed == 0) {
        store__refuse(res, 404, "no token %s", id);
        return 0;
    }
    res->status = 204;
    return 0;
}

static int store__cmd_session_revoke(struct store *store, json_t *cmd, struct store_result *res)
{
    const char *sid;
    json_int_t expires;
    sqlite3_stmt *st;
    int rc;

    if (json_unpack(cmd, "{s:s, s:I}", "sid", &sid, "expires", &expires) != 0)
        return VIGIL_EINVAL;
    st = store__stmt(store, "INSERT OR REPLACE INTO revoked_sessions(sid, expires_ms) VALUES(?,?)");
    if (st == NULL)
        return VIGIL_EIO;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, expires);
    rc = sqlite3_step(st);
    store__release(store, st);
    if (rc != SQLITE_DONE)
        return VIGIL_EIO;
    /* Revocations of sessions that have expired anyway are no longer needed. */
    st = store__stmt(store, "DELETE FROM revoked_sessions WHERE expires_ms < ?");
    if (st != NULL) {
        sqlite3_bind_int64(st, 1, expires - (AUTH_SESSION_MAX_MS + STORE__REVOKED_MARGIN_MS));
        sqlite3_step(st);
        store__release(store, st);
    }
    res->status = 204;
    return 0;
}

int store__auth_apply(struct store *store, const char *op, json_t *cmd, struct store_result *res)
{
    /* Any auth command may change users or tokens (even one rolled back later: a needless
     * bump only costs the caches a lookup). */
    store->auth_generation++;
    if (strcmp(op, "user_put") == 0)
        return store__cmd_user_put(store, cmd, res);
    if (strcmp(op, "user_delete") == 0)
        return store__cmd_user_delete(store, cmd, res);
    if (strcmp(op, "token_create") == 0)
        return store__cmd_token_create(store, cmd, res);
    if (strcmp(op, "token_revoke") == 0)
        return store__cmd_token_revoke(store, cmd, res);
    if (strcmp(op, "session_revoke") == 0)
        return store__cmd_session_revoke(store, cmd, res);
    return VIGIL_EINVAL;
}

/* --- queries ---------------------------------------------------------------------- */

uint64_t store_auth_generation(const struct store *store)
{
    return store->auth_generation;
}

json_t *store_user_get(struct store *store, const char *name)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT name, role, hash FROM users WHERE name=?");
    json_t *out = NULL;
    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        out = json_pack("{s:s, s:s, s:s}", "username", sqlite3_column_text(st, 0), "role",
                        sqlite3_column_text(st, 1), "hash", sqlite3_column_text(st, 2));
    store__release(store, st);
    return out;
}

int64_t store_users_count(struct store *store)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT count(*) FROM users");
    int64_t n = 0;
    if (st == NULL)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    store__release(store, st);
    return n;
}

json_t *store_users_list(struct store *store, int64_t offset, int64_t limit, int64_t *total)
{
    json_t *list = json_array();
    sqlite3_stmt *st;
    *total = store_users_count(store);
    st = store__stmt(store, "SELECT name, role FROM users ORDER BY name LIMIT ? OFFSET ?");
    if (st == NULL)
        return list;
    sqlite3_bind_int64(st, 1, limit);
    sqlite3_bind_int64(st, 2, offset);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(list, json_pack("{s:s, s:s}", "username", sqlite3_column_text(st, 0),
                                              "role", sqlite3_column_text(st, 1)));
    store__release(store, st);
    return list;
}

json_t *store_token_find(struct store *store, const char *mac)
{
    sqlite3_stmt *st = store__stmt(
        store, "SELECT t.id, t.user, t.expires_ms, t.revoked, u.role FROM tokens t JOIN users u "
               "ON u.name = t.user WHERE t.mac=?");
    json_t *out = NULL;
    if (st == NULL)
        return NULL;
    sqlite3_bind_text(st, 1, mac, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        out = json_pack("{s:s, s:s, s:I, s:b, s:s}", "id", sqlite3_column_text(st, 0), "user",
                        sqlite3_column_text(st, 1), "expires_ms",
                        (json_int_t)sqlite3_column_int64(st, 2), "revoked",
                        sqlite3_column_int(st, 3), "role", sqlite3_column_text(st, 4));
    store__release(store, st);
    return out;
}

json_t *store_tokens_list(struct store *store, const char *user)
{
    json_t *list = json_array();
    sqlite3_stmt *st = store__stmt(
        store, "SELECT id, user, expires_ms, created_ms, description, revoked FROM tokens "
               "WHERE ?1 IS NULL OR user=?1 ORDER BY created_ms");
    if (st == NULL)
        return list;
    if (user != NULL)
        sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:I, s:s, s:b}", "id", sqlite3_column_text(st, 0),
                            "username", sqlite3_column_text(st, 1), "expires_ms",
                            (json_int_t)sqlite3_column_int64(st, 2), "created_ms",
                            (json_int_t)sqlite3_column_int64(st, 3), "description",
                            sqlite3_column_text(st, 4), "revoked", sqlite3_column_int(st, 5)));
    store__release(store, st);
    return list;
}

int store_session_revoked(struct store *store, const char *sid)
{
    sqlite3_stmt *st = store__stmt(store, "SELECT 1 FROM revoked_sessions WHERE sid=?");
    int revoked = 0;
    if (st == NULL)
        return 0;
    sqlite3_bind_text(st, 1, sid, -1, SQLITE_STATIC);
    revoked = sqlite3_step(st) == SQLITE_ROW;
    store__release(store, st);
    return revoked;
}
