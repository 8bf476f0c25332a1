/* api_auth.c: login, logout, session, users and API tokens (contract "Authentication and
 * TLS"). Password hashing runs off the loop (auth.c); writes go through the write path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "controller/api/api.h"
#include "controller/auth/auth_crypto.h"
#include "controller/auth/auth_parse.h"
#include "controller/api/write_path.h"

#define API__PASSWORD_MIN 8
#define API__PASSWORD_MAX 200
#define API__TOKEN_DEFAULT_S (30LL * 24 * 3600)
#define API__TOKEN_MAX_S (365LL * 24 * 3600)

/* A request parked while a password is hashed or checked. */
struct api__pending {
    struct api_auth *area;
    struct http_request *req;
    char user[128];
    char role[16];
    int create;
};

static int api__valid_username(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '@'))
            return 0;
    }
    return 1;
}

/* --- login / logout / session ----------------------------------------------------------- */

static void api__on_login(void *data, unsigned status, const struct auth_identity *id,
                          const char *message)
{
    struct api__pending *p = data;
    struct http_request *req = p->req;
    char cookie[700], csrf[65], csrf_cookie[200];
    int secure = http_request_is_tls(req);

    if (status != 0) {
        http_request_respond_error(req, status, "%s", message);
        free(p);
        return;
    }
    auth_session_cookie(p->area->auth, id, secure, cookie, sizeof cookie);
    auth_csrf_token(p->area->auth, id, csrf);
    snprintf(csrf_cookie, sizeof csrf_cookie, "csrftoken=%s; Path=/; SameSite=Strict%s", csrf,
             secure ? "; Secure" : "");
    http_request_add_header(req, "Set-Cookie", cookie);
    http_request_add_header(req, "Set-Cookie", csrf_cookie);
    http_request_respond(req, 200, json_pack("{s:s, s:s, s:s}", "username", id->user, "role",
                                             id->role, "csrftoken", csrf));
    free(p);
}

static void api__login(struct api_auth *area, struct http_request *req)
{
    json_t *body = api_body_object(req);
    const char *user, *password, *why;
    struct api__pending *p;

    if (body == NULL)
        return;
    if ((why = auth_login_fields(body, &user, &password)) != NULL) {
        http_request_respond_error(req, 400, "%s", why);
        json_decref(body);
        return;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        json_decref(body);
        http_request_respond_error(req, 500, "out of memory");
        return;
    }
    p->area = area;
    p->req = req;
    auth_login(area->auth, user, password, http_request_peer(req), api__on_login, p);
    json_decref(body);
}

static void api__session(struct api_auth *area, struct http_request *req)
{
    const struct auth_identity *id = rest_identity(req);
    json_t *out = json_pack("{s:s, s:s, s:s}", "username", id->user, "role", id->role, "via",
                            id->via == AUTH_VIA_SESSION ? "session"
                            : id->via == AUTH_VIA_TOKEN ? "token"
                            : id->via == AUTH_VIA_BASIC ? "basic"
                                                        : "node");
    if (id->via == AUTH_VIA_SESSION) {
        char csrf[65], ts[TIME_RFC3339_LEN];
        auth_csrf_token(area->auth, id, csrf);
        json_object_set_new(out, "csrftoken", json_string(csrf));
        time_format_rfc3339(id->issued_ms + AUTH_SESSION_MAX_MS, ts);
        json_object_set_new(out, "expires", json_string(ts));
    }
    http_request_respond(req, 200, out);
}

static void api__logout(struct api_auth *area, struct http_request *req)
{
    const struct auth_identity *id = rest_identity(req);
    int secure = http_request_is_tls(req);
    if (id->via != AUTH_VIA_SESSION) {
        http_request_respond_error(req, 400, "logout ends a session; revoke tokens with DELETE /api/token/<id>");
        return;
    }
    http_request_add_header(req, "Set-Cookie",
                            secure ? "sessionid=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
                                   : "sessionid=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    /* Revoked everywhere through the store, until the session would have expired anyway. */
    write_path_submit_command(area->write_path, req,
                              json_pack("{s:s, s:s, s:I}", "op", "session_revoke", "sid", id->sid,
                                        "expires", (json_int_t)(id->issued_ms + AUTH_SESSION_MAX_MS)));
}

/* --- users ------------------------------------------------------------------------------ */

static void api__on_hashed(void *data, int status, const char *hash)
{
    struct api__pending *p = data;
    if (status != 0) {
        http_request_respond_error(p->req, status == VIGIL_ETOOBIG ? 429 : 500,
                                   "cannot hash the password now");
    } else {
        auth_flush_cache(p->area->auth);
        write_path_submit(p->area->write_path, p->req,
                          json_pack("{s:s, s:s, s:s, s:s, s:b}", "op", "user_put", "name", p->user,
                                    "role", p->role, "hash", hash, "create", p->create));
    }
    free(p);
}

static int api__valid_role(const char *role)
{
    return role != NULL && (strcmp(role, "admin") == 0 || strcmp(role, "operator") == 0 ||
                            strcmp(role, "read-only") == 0);
}

static void api__user_write(struct api_auth *area, struct http_request *req, const char *name)
{
    json_t *body = api_body_object(req), *have = NULL;
    const char *user, *role, *password;
    struct api__pending *p;
    int create = name == NULL;

    if (body == NULL)
        return;
    user = create ? json_string_value(json_object_get(body, "username")) : name;
    role = json_string_value(json_object_get(body, "role"));
    password = json_string_value(json_object_get(body, "password"));
    if (user == NULL || !api__valid_username(user)) {
        http_request_respond_error(req, 400, "username: 1-64 letters, digits, '-', '_', '.', '@'");
        goto out;
    }
    if (!create && (have = store_user_get(area->store, user)) == NULL) {
        http_request_respond_error(req, 404, "no user named '%s'", user);
        goto out;
    }
    if (role == NULL && have != NULL)
        role = json_string_value(json_object_get(have, "role"));
    if (!api__valid_role(role)) {
        http_request_respond_error(req, 400, "role: one of admin, operator, read-only");
        goto out;
    }
    if (password == NULL && have != NULL) {
        /* Role change only: keep the hash. */
        auth_flush_cache(area->auth);
        write_path_submit(area->write_path, req,
                          json_pack("{s:s, s:s, s:s, s:s, s:b}", "op", "user_put", "name", user,
                                    "role", role, "hash",
                                    json_string_value(json_object_get(have, "hash")), "create", 0));
        goto out;
    }
    if (password == NULL || strlen(password) < API__PASSWORD_MIN ||
        strlen(password) > API__PASSWORD_MAX) {
        http_request_respond_error(req, 400, "password: %d to %d characters", API__PASSWORD_MIN,
                                   API__PASSWORD_MAX);
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        http_request_respond_error(req, 500, "out of memory");
        goto out;
    }
    p->area = area;
    p->req = req;
    p->create = create;
    snprintf(p->user, sizeof p->user, "%s", user);
    snprintf(p->role, sizeof p->role, "%s", role);
    auth_hash_password(area->auth, password, api__on_hashed, p);
out:
    json_decref(have);
    json_decref(body);
}

static void api__users(struct api_auth *area, struct http_request *req, const char *name)
{
    const char *method = http_request_method(req);
    if (strcmp(method, "GET") == 0) {
        if (name == NULL) {
            int64_t offset, limit, total;
            json_t *list;
            if (api_paging(req, &offset, &limit) != 0)
                return;
            list = store_users_list(area->store, offset, limit, &total);
            http_request_respond(req, 200, api_collection(list, total));
        } else {
            json_t *u = store_user_get(area->store, name);
            if (u == NULL) {
                http_request_respond_error(req, 404, "no user named '%s'", name);
                return;
            }
            json_object_del(u, "hash");
            http_request_respond(req, 200, u);
        }
        return;
    }
    if (name == NULL && strcmp(method, "POST") == 0) {
        api__user_write(area, req, NULL);
        return;
    }
    if (name != NULL && strcmp(method, "PUT") == 0) {
        api__user_write(area, req, name);
        return;
    }
    if (name != NULL && strcmp(method, "DELETE") == 0) {
        auth_flush_cache(area->auth);
        write_path_submit(area->write_path, req, json_pack("{s:s, s:s}", "op", "user_delete", "name", name));
        return;
    }
    http_request_respond_error(req, 405, "%s is not allowed here", method);
}

/* --- tokens ----------------------------------------------------------------------------- */

static void api__token_create(struct api_auth *area, struct http_request *req)
{
    const struct auth_identity *id = rest_identity(req);
    size_t len;
    const char *text = http_request_body(req, &len);
    json_t *body = len > 0 ? json_loadb(text, len, 0, NULL) : json_object();
    json_t *exp;
    const char *description = "";
    long long ttl = API__TOKEN_DEFAULT_S;
    char token[AUTH_TOKEN_LEN], tid[AUTH_TOKEN_LEN], mac[65], ts[TIME_RFC3339_LEN];
    int64_t now = time_now_ms();

    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        http_request_respond_error(req, 400, "(body): a JSON object is required");
        return;
    }
    if (json_object_get(body, "description") != NULL) {
        description = json_string_value(json_object_get(body, "description"));
        if (description == NULL || strlen(description) > 200) {
            json_decref(body);
            http_request_respond_error(req, 400, "description: a string of at most 200 characters");
            return;
        }
    }
    exp = json_object_get(body, "expires_in");
    if (exp != NULL) {
        if (!json_is_integer(exp) || json_integer_value(exp) < 60 ||
            json_integer_value(exp) > API__TOKEN_MAX_S) {
            json_decref(body);
            http_request_respond_error(req, 400, "expires_in: seconds, 60 to %lld", API__TOKEN_MAX_S);
            return;
        }
        ttl = json_integer_value(exp);
    }
    if (strcmp(id->role, "node") == 0) {
        json_decref(body);
        http_request_respond_error(req, 400, "tokens are for users");
        return;
    }
    auth_random_token(token, sizeof token, 32);
    auth_random_token(tid, sizeof tid, 12);
    auth_token_mac(area->auth, token, mac);
    time_format_rfc3339(now + ttl * 1000, ts);
    /* The token is shown once, in this answer; only its keyed hash is stored. */
    http_request_add_header(req, "Cache-Control", "no-store");
    write_path_submit_with_answer(area->write_path, req,
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "op", "token_create", "id", tid, "user",
                  id->user, "mac", mac, "expires", (json_int_t)(now + ttl * 1000), "time",
                  (json_int_t)now, "description", description),
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", tid, "token", token, "username", id->user,
                  "expires", ts, "description", description));
    json_decref(body);
}

static void api__tokens(struct api_auth *area, struct http_request *req, const char *tid)
{
    const struct auth_identity *id = rest_identity(req);
    const char *method = http_request_method(req);
    int admin = strcmp(id->role, "admin") == 0;

    if (tid == NULL && strcmp(method, "POST") == 0) {
        api__token_create(area, req);
        return;
    }
    if (tid == NULL && strcmp(method, "GET") == 0) {
        json_t *list = store_tokens_list(area->store, admin ? NULL : id->user);
        http_request_respond(req, 200, api_collection(list, (int64_t)json_array_size(list)));
        return;
    }
    if (tid != NULL && strcmp(method, "DELETE") == 0) {
        json_t *cmd = json_pack("{s:s, s:s}", "op", "token_revoke", "id", tid);
        if (!admin)
            json_object_set_new(cmd, "user", json_string(id->user));
        write_path_submit(area->write_path, req, cmd);
        return;
    }
    http_request_respond_error(req, 405, "%s is not allowed here", method);
}

/* The single path segment after PREFIX in SUB ("user/alice" -> "alice"), or NULL. */
static const char *api__segment(const char *sub, const char *prefix)
{
    size_t n = strlen(prefix), len = strlen(sub);
    if (len <= n || strncmp(sub, prefix, n) != 0 || memchr(sub + n, '/', len - n) != NULL)
        return NULL;
    return sub + n;
}

static int api__auth_route(void *data, struct http_request *req, const char *sub)
{
    struct api_auth *area = data;
    const char *segment;
    const char *method = http_request_method(req);

    if (strcmp(sub, "login") == 0) {
        if (strcmp(method, "POST") != 0)
            http_request_respond_error(req, 405, "use POST /api/login");
        else
            api__login(area, req);
        return 1;
    }
    if (strcmp(sub, "logout") == 0) {
        if (strcmp(method, "POST") != 0)
            http_request_respond_error(req, 405, "use POST /api/logout");
        else
            api__logout(area, req);
        return 1;
    }
    if (strcmp(sub, "session") == 0) {
        api__session(area, req);
        return 1;
    }
    if (strcmp(sub, "user") == 0 || strcmp(sub, "user/") == 0) {
        api__users(area, req, NULL);
        return 1;
    }
    if ((segment = api__segment(sub, "user/")) != NULL) {
        api__users(area, req, segment);
        return 1;
    }
    if (strcmp(sub, "token") == 0 || strcmp(sub, "token/") == 0) {
        api__tokens(area, req, NULL);
        return 1;
    }
    if ((segment = api__segment(sub, "token/")) != NULL) {
        api__tokens(area, req, segment);
        return 1;
    }
    return 0;
}

int api_auth_register(struct rest *rest, struct api_auth *area)
{
    return rest_add_route(rest, "", REST_MATCH_ANY, api__auth_route, area);
}
