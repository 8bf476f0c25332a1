/* auth.h: who is calling, and may they? The gate (rest.c) asks auth_authenticate() for
 * every request except the contract's few open ones, then auth_authorize() and, for
 * cookie-authenticated writes, auth_csrf_check().
 *
 * Credentials: a session cookie (signed with the cluster key, so any node verifies it
 * without asking the store or the leader; idle and absolute timeouts; revoked on logout
 * through the store), a bearer token (stored as a keyed hash), HTTP Basic (Argon2id,
 * cached briefly under a keyed hash of the credentials), or a node credential (the
 * cluster's own nodes forwarding or reporting). Failed logins are counted per account and
 * per source address on this node, slowed, then locked.
 * All on the loop thread; Argon2 runs on libuv's thread pool. */
#ifndef VIGIL_AUTH_H
#define VIGIL_AUTH_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "controller/auth/lockout.h"
#include "controller/net/http_server.h"
#include "controller/store/store.h"

#define AUTH_SESSION_IDLE_MS (30LL * 60 * 1000)
#define AUTH_SESSION_MAX_MS STORE_SESSION_MAX_MS

/* Headers of the nodes' own calls. */
#define AUTH_NODE_HEADER "X-Vigil-Node-Auth"
#define AUTH_ON_BEHALF_HEADER "X-Vigil-On-Behalf-Of"

enum auth_via { AUTH_VIA_NONE = 0, AUTH_VIA_SESSION, AUTH_VIA_TOKEN, AUTH_VIA_BASIC, AUTH_VIA_NODE };

struct auth_identity {
    enum auth_via via;
    char user[128];
    char role[16];      /* "admin", "operator", "read-only", or "node" */
    char sid[48];       /* sessions: the session id (32 random bytes, base64url) */
    int64_t issued_ms;  /* sessions: when it was made */
    int64_t seen_ms;    /* sessions: last activity carried by the cookie */
    uint64_t node_id;   /* node credentials: which node */
};

struct auth;

/* Reports an AUTH event (USER_LOGIN, USER_LOGIN_FAILED, USER_LOCKED) for USER from IP. */
typedef void (*auth_event_cb)(void *data, const char *event_id, const char *user, const char *ip);

/* Creates the authenticator. SECRET points at the cluster key as hex (borrowed; may be ""
 * until the node learns it, then requests get 503). Returns an object owned by the caller
 * (auth_close), or NULL. */
struct auth *auth_new(uv_loop_t *loop, struct store *store, const char *secret,
                      auth_event_cb event_cb, void *event_data);

/* The outcome of authentication: STATUS 0 with ID (borrowed for the call), or 401 / 429 /
 * 503 with a message. */
typedef void (*auth_cb)(void *data, unsigned status, const struct auth_identity *id,
                        const char *message);

/* Authenticates REQ from its headers; CB runs exactly once, maybe at once. */
void auth_authenticate(struct auth *a, struct http_request *req, auth_cb cb, void *data);

/* May ID call METHOD on PATH? 0, or 403 with WHY filled in. */
unsigned auth_authorize(const struct auth_identity *id, const char *method, const char *path,
                        char *why, size_t whylen);

/* For session-authenticated writes: the X-CSRFToken header must match the session's token
 * (constant-time) and the request must come from the same origin (auth_origin_check on
 * its headers). 0 or 403. */
unsigned auth_csrf_check(struct auth *a, struct http_request *req, const struct auth_identity *id,
                         char *why, size_t whylen);

/* The same-origin part of the CSRF check, from a request's headers (each borrowed, NULL
 * when absent): TLS says whether it came over HTTPS, HOST is its Host header. A present
 * Origin must be "http[s]://HOST" (case-insensitive); an Origin of "null" is refused; with
 * no Origin, a present Referer must be from that origin; a present Sec-Fetch-Site must be
 * "same-origin" or "none". No headers at all passes (scripts). 0, or 403 with WHY filled
 * in. Pure: no state, any thread. */
unsigned auth_origin_check(int tls, const char *host, const char *origin, const char *referer,
                           const char *sec_fetch_site, char *why, size_t whylen);

/* Checks USER's PASSWORD for a login from IP, with lockout and slowing. CB gets 0 and the
 * new session identity, or 401 / 429. */
void auth_login(struct auth *a, const char *user, const char *password, const char *ip,
                auth_cb cb, void *data);

/* The session's CSRF token (hex) into OUT (65 bytes). */
void auth_csrf_token(struct auth *a, const struct auth_identity *id, char out[65]);

/* "sessionid=...; Path=/; HttpOnly; SameSite=Strict[; Secure]" for ID into OUT; a
 * refreshed one carries the current time as its last activity. */
void auth_session_cookie(struct auth *a, const struct auth_identity *id, int secure, char *out,
                         size_t len);

/* auth_session_cookie with NOW_MS (ms since the epoch) as the last activity. */
void auth_session_cookie_at(struct auth *a, const struct auth_identity *id, int64_t now_ms,
                            int secure, char *out, size_t len);

/* Verifies a session cookie's value COOKIE_VALUE (borrowed; what follows "sessionid=") as
 * of NOW_MS: its MAC under the cluster key, the absolute (AUTH_SESSION_MAX_MS since issue)
 * and idle (AUTH_SESSION_IDLE_MS since the activity it carries) timeouts, revocation in
 * the store, and that its user still exists. Returns 0 and fills ID (via
 * AUTH_VIA_SESSION, the user's current role from the store), or 401 with *WHY set to a
 * static message. auth_authenticate uses it with the current time. Loop thread. */
unsigned auth_session_verify(struct auth *a, const char *cookie_value, int64_t now_ms,
                             struct auth_identity *id, const char **why);

/* Hashes PASSWORD (Argon2id) off the loop; CB(data, 0, hash) or CB(data, error, NULL). */
typedef void (*auth_hash_cb)(void *data, int status, const char *hash);
void auth_hash_password(struct auth *a, const char *password, auth_hash_cb cb, void *data);

/* The keyed hash under which a bearer TOKEN is stored, into OUT (65 bytes). */
void auth_token_mac(struct auth *a, const char *token, char out[65]);

/* The node credential header value for NODE_ID into OUT ("ID.MAC"). */
void auth_node_credential(const char *secret, uint64_t node_id, char *out, size_t len);

/* This node's failed-check counters (lockout.h; borrowed, A's): for tests. The policy
 * itself is in auth.c and docs/api.md ("Lockout"). */
struct lockout *auth_lockout(struct auth *a);

/* Forgets cached Basic credentials (after a password or role change). */
void auth_flush_cache(struct auth *a);

/* Frees A once no hash work is in flight (callbacks still due are not called). */
void auth_close(struct auth *a);

#endif
