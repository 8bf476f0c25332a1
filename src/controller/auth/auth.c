#include "controller/auth/auth.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/auth/auth_crypto.h"
#include "controller/auth/auth_parse.h"
#include "controller/auth/lockout.h"

#define AUTH__MAX_HASHING 2      /* Argon2 checks running at once */
#define AUTH__MAX_QUEUED 64      /* waiting for a slot; more get 429 (a suspect one first) */
#define AUTH__MAX_QUEUED_PER_ADDRESS 4 /* waiting checks from one source address */
#define AUTH__CACHE_SIZE 256     /* Basic credentials remembered */
#define AUTH__CACHE_MS 60000
#define AUTH__REFRESH_MS 60000   /* a session cookie is renewed when older than this */
#define AUTH__TOKENS 128         /* bearer tokens remembered (direct-mapped by their hash) */

struct auth__cache_entry {
    char key[AUTH_MAC_HEX_LEN];
    char user[128];
    char hash[AUTH_PWHASH_LEN]; /* the user's hash when checked: a change invalidates */
    int64_t expires_ms;
};

/* A token as the store had it at GENERATION (store_auth_generation); empty when mac[0] is
 * 0. Revocation, a user's deletion or role change all move the generation. */
struct auth__token_entry {
    uint64_t generation;
    char mac[AUTH_MAC_HEX_LEN];
    char user[128];
    char role[16];
    int64_t expires_ms;
    int revoked;
};

struct auth__work;

/* Password checks waiting for a hashing slot, oldest first. */
struct auth__queue {
    struct auth__work *head, *tail;
    unsigned n;
};

struct auth {
    uv_loop_t *loop;
    struct store *store;
    const char *secret;
    auth_event_cb event_cb;
    void *event_data;
    struct auth__cache_entry cache[AUTH__CACHE_SIZE];
    struct auth__token_entry tokens[AUTH__TOKENS];
    uint64_t users_generation;   /* store generation + 1 at which users were seen, or 0 */
    struct lockout *lockout;
    unsigned hashing;
    /* Checks from addresses without a recent failure go first ("clean"); those from
     * addresses that failed ("suspect") wait behind them and are the ones refused when
     * the queues are full (docs/api.md, "Lockout"). */
    struct auth__queue clean, suspect;
    /* Every check submitted and not answered yet (queued, hashing, or waiting out its
     * delay): answered at once by auth_close, so that no request stays suspended (the HTTP
     * server cannot stop with one). */
    struct auth__work *live;
    int closing;
};

/* One Argon2 job: verify (hash + password) or hash (password). */
struct auth__work {
    uv_work_t req;
    struct auth *a;
    char hash[AUTH_PWHASH_LEN];
    char password[256];
    int verify;
    int ok;
    void (*done)(struct auth__work *w);
    /* What to do afterwards. */
    auth_cb cb;
    auth_hash_cb hash_cb;
    void *data;
    struct auth_identity id;
    char ip[64];                /* "" for hashing that no client asked for */
    int suspect;                /* queued behind the clean ones */
    int running;                /* on the thread pool now */
    int delayed;                /* its answer waits on DELAY */
    struct auth__work *live_prev, *live_next; /* in auth's live list while unanswered */
    char cache_key[AUTH_MAC_HEX_LEN];
    int known_user;
    uv_timer_t delay;
    unsigned answer_status;
    char answer_message[128];
    struct auth__work *next;
};

/* --- Argon2 off the loop ------------------------------------------------------------ */

static void auth__work_run(uv_work_t *req)
{
    struct auth__work *w = req->data;
    if (w->verify)
        w->ok = auth_password_verify(w->hash, w->password);
    else
        w->ok = auth_password_hash(w->password, w->hash) == 0;
}

static void auth__start_next(struct auth *a);

static void auth__live_add(struct auth *a, struct auth__work *w)
{
    w->live_prev = NULL;
    w->live_next = a->live;
    if (a->live != NULL)
        a->live->live_prev = w;
    a->live = w;
}

/* W is being answered: it leaves the live list. */
static void auth__live_remove(struct auth__work *w)
{
    struct auth *a = w->a;
    if (w->live_prev != NULL)
        w->live_prev->live_next = w->live_next;
    else if (a->live == w)
        a->live = w->live_next;
    if (w->live_next != NULL)
        w->live_next->live_prev = w->live_prev;
    w->live_prev = w->live_next = NULL;
}

static void auth__free(struct auth *a)
{
    lockout_free(a->lockout);
    free(a);
}

static void auth__work_after(uv_work_t *req, int status)
{
    struct auth__work *w = req->data;
    struct auth *a = w->a;
    a->hashing--;
    w->running = 0;
    sodium_memzero(w->password, sizeof w->password);
    if (a->closing) { /* answered by auth_close already */
        free(w);
        if (a->hashing == 0)
            auth__free(a);
        return;
    }
    w->done(w);
    auth__start_next(a);
}

/* Takes the oldest of Q, or NULL. */
static struct auth__work *auth__queue_take(struct auth__queue *q)
{
    struct auth__work *w = q->head;
    if (w == NULL)
        return NULL;
    q->head = w->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->n--;
    return w;
}

static void auth__queue_put(struct auth__queue *q, struct auth__work *w)
{
    w->next = NULL;
    if (q->tail != NULL)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->n++;
}

/* Takes the newest of Q (non-empty). */
static struct auth__work *auth__queue_take_newest(struct auth__queue *q)
{
    struct auth__work *w = q->head, *prev = NULL;
    while (w->next != NULL) {
        prev = w;
        w = w->next;
    }
    if (prev != NULL)
        prev->next = NULL;
    else
        q->head = NULL;
    q->tail = prev;
    q->n--;
    return w;
}

static unsigned auth__queued_from(const struct auth__queue *q, const char *ip)
{
    unsigned n = 0;
    for (const struct auth__work *w = q->head; w != NULL; w = w->next)
        n += strcmp(w->ip, ip) == 0;
    return n;
}

static void auth__start_next(struct auth *a)
{
    struct auth__work *w;
    while (a->hashing < AUTH__MAX_HASHING &&
           ((w = auth__queue_take(&a->clean)) != NULL || (w = auth__queue_take(&a->suspect)) != NULL)) {
        a->hashing++;
        w->running = 1;
        w->req.data = w;
        uv_queue_work(a->loop, &w->req, auth__work_run, auth__work_after);
    }
}

static void auth__answer_later(struct auth__work *w, unsigned status, const char *message,
                               uint64_t delay_ms);

/* Queues W: clean, or suspect when its address failed within the lockout window. Returns
 * VIGIL_ETOOBIG when its address has AUTH__MAX_QUEUED_PER_ADDRESS checks waiting already,
 * or the queues are full and W is suspect (or no suspect check waits); a clean W arriving
 * at full queues takes the place of the newest suspect one, which is answered 429. */
static int auth__submit(struct auth *a, struct auth__work *w)
{
    char addr[80];

    w->a = a;
    if (w->ip[0] != '\0') {
        if (auth__queued_from(&a->clean, w->ip) + auth__queued_from(&a->suspect, w->ip) >=
            AUTH__MAX_QUEUED_PER_ADDRESS)
            return VIGIL_ETOOBIG;
        snprintf(addr, sizeof addr, "ip:%s", w->ip);
        w->suspect = lockout_recent(a->lockout, addr, time_now_ms()) > 0;
    }
    if (a->clean.n + a->suspect.n >= AUTH__MAX_QUEUED) {
        struct auth__work *out;
        if (w->suspect || a->suspect.n == 0)
            return VIGIL_ETOOBIG;
        out = auth__queue_take_newest(&a->suspect);
        sodium_memzero(out->password, sizeof out->password);
        auth__answer_later(out, 429, "too many password checks in progress", 0);
    }
    auth__queue_put(w->suspect ? &a->suspect : &a->clean, w);
    auth__live_add(a, w);
    auth__start_next(a);
    return 0;
}

/* --- lockout ------------------------------------------------------------------------ */

struct lockout *auth_lockout(struct auth *a)
{
    return a->lockout;
}

/* The lockout keys of USER checked from IP (lockout.h). */
struct auth__keys {
    char pair[200], addr[80], account[160];
};

static void auth__keys_of(const char *user, const char *ip, struct auth__keys *k)
{
    snprintf(k->pair, sizeof k->pair, "p:%s %.127s", ip, user);
    snprintf(k->addr, sizeof k->addr, "ip:%s", ip);
    snprintf(k->account, sizeof k->account, "u:%.127s", user);
}

/* Refused before any password check: that account from that address, or that address. */
static int auth__locked_out(struct auth *a, const struct auth__keys *k, int64_t now)
{
    return lockout_remaining(a->lockout, k->pair, now) > 0 ||
           lockout_remaining(a->lockout, k->addr, now) > 0;
}

/* A correct password: the pair's failures are forgotten. The address's stay (one good
 * account does not launder guesses at others) and so do the account's (its owner logging
 * in does not speed up those guessing at it elsewhere): both age out of the window. */
static void auth__succeeded(struct auth *a, const char *user, const char *ip, int64_t now)
{
    struct auth__keys k;
    auth__keys_of(user, ip, &k);
    lockout_success(a->lockout, k.pair, now);
}

static void auth__event(struct auth *a, const char *event_id, const char *user, const char *ip)
{
    if (a->event_cb != NULL)
        a->event_cb(a->event_data, event_id, user, ip);
}

/* --- identities from the store -------------------------------------------------------- */

/* Fills ID's role from the store; 0, or 401 when USER no longer exists. */
static int auth__load_user(struct auth *a, const char *user, struct auth_identity *id)
{
    char name[sizeof id->user];
    json_t *u;
    snprintf(name, sizeof name, "%s", user); /* USER may be ID->user itself */
    u = store_user_get(a->store, name);
    if (u == NULL)
        return 401;
    snprintf(id->user, sizeof id->user, "%s", name);
    snprintf(id->role, sizeof id->role, "%s", json_string_value(json_object_get(u, "role")));
    json_decref(u);
    return 0;
}

/* --- sessions -------------------------------------------------------------------------- */

/* A tag of USER's current password hash: a password change, or a user deleted and made
 * again under the same name, ends the sessions made before. "" when there is no such user. */
static void auth__user_tag(struct auth *a, const char *user, char out[17])
{
    json_t *u = store_user_get(a->store, user);
    const char *hash = json_string_value(json_object_get(u, "hash"));
    out[0] = '\0';
    if (hash != NULL) {
        char data[AUTH_PWHASH_LEN + 8], mac[AUTH_MAC_HEX_LEN];
        snprintf(data, sizeof data, "pw:%s", hash);
        auth_mac(a->secret, data, strlen(data), mac);
        snprintf(out, 17, "%.16s", mac);
    }
    json_decref(u);
}

/* The signed part of a cookie: "v1.B64USER.SID.ISSUED.SEEN.TAG". */
static void auth__session_payload(struct auth *a, const struct auth_identity *id, char *out,
                                  size_t len)
{
    struct auth_session_fields f;
    char tag[17];

    memset(&f, 0, sizeof f);
    snprintf(f.user, sizeof f.user, "%s", id->user);
    snprintf(f.sid, sizeof f.sid, "%s", id->sid);
    f.issued_ms = id->issued_ms;
    f.seen_ms = id->seen_ms;
    auth__user_tag(a, id->user, tag);
    snprintf(f.tag, sizeof f.tag, "%s", tag[0] ? tag : "none");
    auth_session_format(&f, out, len);
}

void auth_session_cookie(struct auth *a, const struct auth_identity *id, int secure, char *out,
                         size_t len)
{
    auth_session_cookie_at(a, id, time_now_ms(), secure, out, len);
}

void auth_session_cookie_at(struct auth *a, const struct auth_identity *id, int64_t now_ms,
                            int secure, char *out, size_t len)
{
    char payload[400], mac[AUTH_MAC_HEX_LEN];
    struct auth_identity fresh = *id;
    fresh.seen_ms = now_ms;
    auth__session_payload(a, &fresh, payload, sizeof payload);
    auth_mac(a->secret, payload, strlen(payload), mac);
    snprintf(out, len, "sessionid=%s.%s; Path=/; HttpOnly; SameSite=Strict%s", payload, mac,
             secure ? "; Secure" : "");
}

void auth_csrf_token(struct auth *a, const struct auth_identity *id, char out[65])
{
    char data[80];
    snprintf(data, sizeof data, "csrf:%s", id->sid);
    auth_mac(a->secret, data, strlen(data), out);
}

unsigned auth_session_verify(struct auth *a, const char *cookie, int64_t now,
                             struct auth_identity *id, const char **why)
{
    char mac[AUTH_MAC_HEX_LEN], tag[17];
    struct auth_session_fields f;
    const char *dot;

    if (strlen(cookie) >= 600 || (dot = strrchr(cookie, '.')) == NULL) {
        *why = "malformed session";
        return 401;
    }
    /* MAC over everything before the last dot. */
    auth_mac(a->secret, cookie, (size_t)(dot - cookie), mac);
    if (!auth_equal(mac, dot + 1)) {
        *why = "invalid session";
        return 401;
    }
    if (auth_parse_session(cookie, (size_t)(dot - cookie), &f) != 0) {
        *why = "malformed session";
        return 401;
    }
    memset(id, 0, sizeof *id);
    id->via = AUTH_VIA_SESSION;
    snprintf(id->sid, sizeof id->sid, "%s", f.sid);
    id->issued_ms = f.issued_ms;
    id->seen_ms = f.seen_ms;
    if (now - id->issued_ms > AUTH_SESSION_MAX_MS) {
        *why = "session expired (12 h)";
        return 401;
    }
    if (now - id->seen_ms > AUTH_SESSION_IDLE_MS) {
        *why = "session expired (idle 30 min)";
        return 401;
    }
    if (store_session_revoked(a->store, id->sid)) {
        *why = "session ended (logged out)";
        return 401;
    }
    if (auth__load_user(a, f.user, id) != 0) {
        *why = "the session's user no longer exists";
        return 401;
    }
    auth__user_tag(a, f.user, tag);
    if (!auth_equal(tag, f.tag)) {
        *why = "session ended (the password changed)";
        return 401;
    }
    id->via = AUTH_VIA_SESSION;
    return 0;
}

/* --- tokens and node credentials ------------------------------------------------------- */

void auth_token_mac(struct auth *a, const char *token, char out[65])
{
    char data[200];
    snprintf(data, sizeof data, "token:%s", token);
    auth_mac(a->secret, data, strlen(data), out);
}

void auth_node_credential(const char *secret, uint64_t node_id, char *out, size_t len)
{
    char data[64], mac[AUTH_MAC_HEX_LEN];
    snprintf(data, sizeof data, "node:%llu", (unsigned long long)node_id);
    auth_mac(secret, data, strlen(data), mac);
    snprintf(out, len, "%llu.%s", (unsigned long long)node_id, mac);
}

static unsigned auth__node_verify(struct auth *a, struct http_request *req, const char *value,
                                  struct auth_identity *id)
{
    char expect[128];
    unsigned long long node = strtoull(value, NULL, 10);
    const char *behalf;
    auth_node_credential(a->secret, node, expect, sizeof expect);
    if (node == 0 || !auth_equal(expect, value))
        return 401;
    memset(id, 0, sizeof *id);
    id->via = AUTH_VIA_NODE;
    id->node_id = node;
    snprintf(id->user, sizeof id->user, "node-%llu", node);
    snprintf(id->role, sizeof id->role, "node");
    /* A request forwarded by a node on a client's behalf carries the client's identity,
     * which that node authenticated. */
    behalf = http_request_header(req, AUTH_ON_BEHALF_HEADER);
    if (behalf != NULL) {
        if (auth_parse_on_behalf(behalf, id->user, sizeof id->user, id->role, sizeof id->role) != 0)
            return 401;
    }
    return 0;
}

static void auth__failed(struct auth__work *w, int64_t now, const char *message);

/* --- Basic ---------------------------------------------------------------------------- */

static void auth__basic_done(struct auth__work *w)
{
    struct auth *a = w->a;
    int64_t now = time_now_ms();

    if (w->ok && w->known_user && auth__load_user(a, w->id.user, &w->id) == 0) {
        unsigned slot = (unsigned)(now % AUTH__CACHE_SIZE);
        for (unsigned i = 0; i < AUTH__CACHE_SIZE; i++)
            if (a->cache[i].expires_ms < now) {
                slot = i;
                break;
            }
        snprintf(a->cache[slot].key, sizeof a->cache[slot].key, "%s", w->cache_key);
        snprintf(a->cache[slot].user, sizeof a->cache[slot].user, "%s", w->id.user);
        snprintf(a->cache[slot].hash, sizeof a->cache[slot].hash, "%s", w->hash);
        a->cache[slot].expires_ms = now + AUTH__CACHE_MS;
        auth__succeeded(a, w->id.user, w->ip, now);
        w->id.via = AUTH_VIA_BASIC;
        auth__live_remove(w);
        w->cb(w->data, 0, &w->id, NULL);
        free(w);
        return;
    }
    auth__failed(w, now, "bad credentials");
}

static void auth__basic(struct auth *a, struct http_request *req, const char *b64, auth_cb cb,
                        void *data)
{
    char user[AUTH_USER_MAX + 1], password[AUTH_PASSWORD_MAX + 1], cache_key[AUTH_MAC_HEX_LEN];
    struct auth__keys keys;
    struct auth__work *w;
    json_t *u;
    int64_t now = time_now_ms();

    if (auth_parse_basic(b64, user, password) != 0) {
        cb(data, 401, NULL, "malformed Basic credentials");
        return;
    }
    {
        char keyed[600];
        snprintf(keyed, sizeof keyed, "basic:%s:%s", user, password);
        auth_mac(a->secret, keyed, strlen(keyed), cache_key);
        sodium_memzero(keyed, sizeof keyed);
    }
    for (unsigned i = 0; i < AUTH__CACHE_SIZE; i++) {
        if (a->cache[i].expires_ms > now && auth_equal(a->cache[i].key, cache_key)) {
            struct auth_identity id;
            json_t *cur = store_user_get(a->store, a->cache[i].user);
            int same = cur != NULL &&
                       strcmp(json_string_value(json_object_get(cur, "hash")), a->cache[i].hash) == 0;
            json_decref(cur);
            if (!same) {
                /* The password changed (on any node) or the user is gone. */
                a->cache[i].expires_ms = 0;
                break;
            }
            memset(&id, 0, sizeof id);
            sodium_memzero(password, sizeof password);
            if (auth__load_user(a, a->cache[i].user, &id) != 0)
                break;
            id.via = AUTH_VIA_BASIC;
            cb(data, 0, &id, NULL);
            return;
        }
    }
    auth__keys_of(user, http_request_peer(req), &keys);
    if (auth__locked_out(a, &keys, now)) {
        sodium_memzero(password, sizeof password);
        cb(data, 429, NULL, "too many failed logins: locked for a while");
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        sodium_memzero(password, sizeof password);
        cb(data, 503, NULL, "out of memory");
        return;
    }
    w->verify = 1;
    u = store_user_get(a->store, user);
    w->known_user = u != NULL;
    /* Unknown users cost the same time as known ones. */
    snprintf(w->hash, sizeof w->hash, "%s",
             u != NULL ? json_string_value(json_object_get(u, "hash")) : auth_password_dummy_hash());
    json_decref(u);
    snprintf(w->password, sizeof w->password, "%s", password);
    snprintf(w->id.user, sizeof w->id.user, "%.127s", user);
    snprintf(w->ip, sizeof w->ip, "%s", http_request_peer(req));
    snprintf(w->cache_key, sizeof w->cache_key, "%s", cache_key);
    sodium_memzero(password, sizeof password);
    w->cb = cb;
    w->data = data;
    w->done = auth__basic_done;
    if (auth__submit(a, w) != 0) {
        sodium_memzero(w->password, sizeof w->password);
        free(w);
        cb(data, 429, NULL, "too many password checks in progress");
    }
}

/* --- authenticate --------------------------------------------------------------------- */

/* A node that restarted has its users only once it replayed its log up to the commit
 * index, which it learns from the leader: until then it cannot tell a bad password. */
static int auth__users_loaded(struct auth *a)
{
    uint64_t gen = store_auth_generation(a->store);
    if (a->users_generation == gen + 1)
        return 1;
    if (store_users_count(a->store) == 0)
        return 0;
    a->users_generation = gen + 1;
    return 1;
}

/* The cache slot of MAC (hex, from auth_token_mac): its first 16 bits. */
static unsigned auth__token_slot(const char *mac)
{
    unsigned h = 0;
    for (int i = 0; i < 4 && mac[i] != '\0'; i++)
        h = h * 16 + (unsigned)(mac[i] <= '9' ? mac[i] - '0' : (mac[i] | 0x20) - 'a' + 10);
    return h % AUTH__TOKENS;
}

/* The token whose keyed hash is MAC, from the cache while the store's auth generation has
 * not moved, else from the store (and remembered). Returns the entry (borrowed) or NULL
 * when the store has no such token. */
static const struct auth__token_entry *auth__token(struct auth *a, const char *mac)
{
    uint64_t gen = store_auth_generation(a->store);
    struct auth__token_entry *e = &a->tokens[auth__token_slot(mac)];
    json_t *t;

    if (e->mac[0] != '\0' && e->generation == gen && strcmp(e->mac, mac) == 0)
        return e;
    t = store_token_find(a->store, mac);
    if (t == NULL)
        return NULL;
    e->generation = gen;
    snprintf(e->mac, sizeof e->mac, "%s", mac);
    snprintf(e->user, sizeof e->user, "%s", json_string_value(json_object_get(t, "user")));
    snprintf(e->role, sizeof e->role, "%s", json_string_value(json_object_get(t, "role")));
    e->expires_ms = json_integer_value(json_object_get(t, "expires_ms"));
    e->revoked = json_is_true(json_object_get(t, "revoked"));
    json_decref(t);
    return e;
}

void auth_authenticate(struct auth *a, struct http_request *req, auth_cb cb, void *data)
{
    const char *node = http_request_header(req, AUTH_NODE_HEADER);
    const char *authz = http_request_header(req, "Authorization");
    const char *cookie_header = http_request_header(req, "Cookie");
    struct auth_identity id;
    char cookie[600];
    const char *why = NULL;
    unsigned status;

    if (a->secret[0] == '\0') {
        cb(data, 503, NULL, "this node does not know the cluster's credentials yet");
        return;
    }
    memset(&id, 0, sizeof id);
    if (node == NULL && !auth__users_loaded(a)) {
        cb(data, 503, NULL, "this node has not loaded the cluster's users yet");
        return;
    }
    if (node != NULL) {
        status = auth__node_verify(a, req, node, &id);
        cb(data, status, status == 0 ? &id : NULL, "bad node credential");
        return;
    }
    if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0) {
        char mac[AUTH_MAC_HEX_LEN];
        const struct auth__token_entry *t;
        auth_token_mac(a, authz + 7, mac);
        t = auth__token(a, mac);
        if (t == NULL || t->revoked || t->expires_ms < time_now_ms()) {
            cb(data, 401, NULL, "invalid, expired or revoked token");
            return;
        }
        id.via = AUTH_VIA_TOKEN;
        snprintf(id.user, sizeof id.user, "%s", t->user);
        snprintf(id.role, sizeof id.role, "%s", t->role);
        cb(data, 0, &id, NULL);
        return;
    }
    if (authz != NULL && strncasecmp(authz, "Basic ", 6) == 0) {
        auth__basic(a, req, authz + 6, cb, data);
        return;
    }
    if (cookie_header != NULL && auth_parse_cookie(cookie_header, cookie, sizeof cookie)) {
        status = auth_session_verify(a, cookie, time_now_ms(), &id, &why);
        cb(data, status, status == 0 ? &id : NULL, why);
        return;
    }
    cb(data, 401, NULL, "authentication required");
}

/* --- authorise ------------------------------------------------------------------------- */

unsigned auth_authorize(const struct auth_identity *id, const char *method, const char *path,
                        char *why, size_t whylen)
{
    int read = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    int is_admin = strcmp(id->role, "admin") == 0;
    int is_node = id->via == AUTH_VIA_NODE && strcmp(id->role, "node") == 0;

    if (strncmp(path, "/api/internal/", 14) == 0) {
        /* An admin may record what a node would report of an SE (its runtime): the
         * command handler allows admins that one op only. */
        if (is_node || (is_admin && strcmp(path, "/api/internal/command") == 0))
            return 0;
        snprintf(why, whylen, "only the cluster's nodes may call %s", path);
        return 403;
    }
    if (is_node)
        return 0;
    if (strncmp(path, "/api/user", 9) == 0 && (path[9] == '\0' || path[9] == '/')) {
        if (is_admin)
            return 0;
        snprintf(why, whylen, "only an admin may manage users");
        return 403;
    }
    if (read || is_admin)
        return 0;
    /* Every role may end its session and manage its own tokens. */
    if (strcmp(path, "/api/logout") == 0 ||
        (strncmp(path, "/api/token", 10) == 0 && (path[10] == '\0' || path[10] == '/')))
        return 0;
    if (strcmp(id->role, "operator") == 0) {
        static const char *const config[] = {"/api/pool", "/api/healthmonitor",
                                             "/api/virtualservice", "/api/serviceengine", NULL};
        for (int i = 0; config[i] != NULL; i++) {
            size_t n = strlen(config[i]);
            if (strncmp(path, config[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
                return 0;
        }
    }
    snprintf(why, whylen, "role '%s' may not %s %s", id->role, method, path);
    return 403;
}

/* "scheme://host[:port]" of a URL-ish header value, into OUT. */
static void auth__origin_of(const char *url, char *out, size_t len)
{
    const char *p = strstr(url, "://");
    size_t n;
    if (p == NULL) {
        snprintf(out, len, "%s", url);
        return;
    }
    n = (size_t)(p + 3 - url) + strcspn(p + 3, "/");
    snprintf(out, len, "%.*s", (int)n, url);
}

unsigned auth_origin_check(int tls, const char *host, const char *origin, const char *referer,
                           const char *sec_fetch_site, char *why, size_t whylen)
{
    char mine[300], theirs[300];

    snprintf(mine, sizeof mine, "%s://%s", tls ? "https" : "http", host != NULL ? host : "");
    if (origin != NULL && strcmp(origin, "null") != 0) {
        auth__origin_of(origin, theirs, sizeof theirs);
        if (strcasecmp(theirs, mine) != 0) {
            snprintf(why, whylen, "cross-origin write refused (Origin %s)", theirs);
            return 403;
        }
    } else if (origin != NULL || (referer != NULL && (auth__origin_of(referer, theirs, sizeof theirs),
                                                      strcasecmp(theirs, mine) != 0))) {
        snprintf(why, whylen, "cross-origin write refused");
        return 403;
    }
    if (sec_fetch_site != NULL && strcmp(sec_fetch_site, "same-origin") != 0 &&
        strcmp(sec_fetch_site, "none") != 0) {
        snprintf(why, whylen, "cross-site write refused (Sec-Fetch-Site %s)", sec_fetch_site);
        return 403;
    }
    return 0;
}

unsigned auth_csrf_check(struct auth *a, struct http_request *req, const struct auth_identity *id,
                         char *why, size_t whylen)
{
    const char *method = http_request_method(req);
    const char *token = http_request_header(req, "X-CSRFToken");
    char expect[65];

    if (id->via != AUTH_VIA_SESSION || strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return 0;
    auth_csrf_token(a, id, expect);
    if (token == NULL || !auth_equal(token, expect)) {
        snprintf(why, whylen, "CSRF check failed: X-CSRFToken missing or wrong");
        return 403;
    }
    return auth_origin_check(http_request_is_tls(req), http_request_header(req, "Host"),
                             http_request_header(req, "Origin"), http_request_header(req, "Referer"),
                             http_request_header(req, "Sec-Fetch-Site"), why, whylen);
}

/* --- login ----------------------------------------------------------------------------- */

static void auth__on_delay_closed(uv_handle_t *h)
{
    free(h->data); /* the work the timer is embedded in */
}

static void auth__on_delay(uv_timer_t *t)
{
    struct auth__work *w = t->data;
    auth__live_remove(w);
    w->cb(w->data, w->answer_status, NULL, w->answer_message);
    uv_close((uv_handle_t *)t, auth__on_delay_closed);
}

/* Answers W's caller STATUS with MESSAGE after DELAY_MS (0: on the next loop turn, never
 * from inside the call that decided it); W is freed once answered. */
static void auth__answer_later(struct auth__work *w, unsigned status, const char *message,
                               uint64_t delay_ms)
{
    w->answer_status = status;
    snprintf(w->answer_message, sizeof w->answer_message, "%s", message);
    w->delayed = 1;
    uv_timer_init(w->a->loop, &w->delay);
    w->delay.data = w;
    uv_timer_start(&w->delay, auth__on_delay, delay_ms, 0);
}

/* A failed password check (login or Basic), counted for the pair (address, account), the
 * address and the account (lockout.h): the pair is locked at AUTH_LOCK_FAILURES, the
 * address at AUTH_LOCK_ADDRESS_FAILURES, the account never (it is only slowed down: a
 * correct password from an address that has not failed is never refused). Reported, and
 * answered 401 after a delay that grows with the most failures of the three (250 ms,
 * 500 ms, 1 s, 2 s). W is freed once answered. */
static void auth__failed(struct auth__work *w, int64_t now, const char *message)
{
    struct auth *a = w->a;
    struct auth__keys k;
    int locked = 0, account_locked = 0;
    unsigned n, m, acc;
    uint64_t delay;

    auth__keys_of(w->id.user, w->ip, &k);
    n = lockout_failure(a->lockout, k.pair, AUTH_LOCK_FAILURES, now, &locked);
    m = lockout_failure(a->lockout, k.addr, AUTH_LOCK_ADDRESS_FAILURES, now, &locked);
    acc = lockout_failure(a->lockout, k.account, 0, now, &account_locked);
    n = m > n ? m : n;
    n = acc > n ? acc : n;
    auth__event(a, "USER_LOGIN_FAILED", w->id.user, w->ip);
    if (locked)
        auth__event(a, "USER_LOCKED", w->id.user, w->ip);
    delay = n > 0 ? 250ULL << (n - 1 > 3 ? 3 : n - 1) : 0;
    auth__answer_later(w, 401, message, delay);
}

static void auth__login_done(struct auth__work *w)
{
    struct auth *a = w->a;
    int64_t now = time_now_ms();

    if (w->ok && w->known_user && auth__load_user(a, w->id.user, &w->id) == 0) {
        auth__succeeded(a, w->id.user, w->ip, now);
        w->id.via = AUTH_VIA_SESSION;
        auth_random_token(w->id.sid, sizeof w->id.sid, 32);
        w->id.issued_ms = now;
        w->id.seen_ms = now;
        auth__event(a, "USER_LOGIN", w->id.user, w->ip);
        auth__live_remove(w);
        w->cb(w->data, 0, &w->id, NULL);
        free(w);
        return;
    }
    auth__failed(w, now, "bad username or password");
}

void auth_login(struct auth *a, const char *user, const char *password, const char *ip,
                auth_cb cb, void *data)
{
    struct auth__keys keys;
    int64_t now = time_now_ms();
    struct auth__work *w;
    json_t *u;

    if (a->secret[0] == '\0' || !auth__users_loaded(a)) {
        cb(data, 503, NULL, "this node does not know the cluster's credentials yet");
        return;
    }
    auth__keys_of(user, ip, &keys);
    if (auth__locked_out(a, &keys, now)) {
        cb(data, 429, NULL, "too many failed logins: locked for a while");
        return;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        cb(data, 503, NULL, "out of memory");
        return;
    }
    w->verify = 1;
    u = store_user_get(a->store, user);
    w->known_user = u != NULL;
    snprintf(w->hash, sizeof w->hash, "%s",
             u != NULL ? json_string_value(json_object_get(u, "hash")) : auth_password_dummy_hash());
    json_decref(u);
    snprintf(w->password, sizeof w->password, "%s", password);
    snprintf(w->id.user, sizeof w->id.user, "%s", user);
    snprintf(w->ip, sizeof w->ip, "%s", ip);
    w->cb = cb;
    w->data = data;
    w->done = auth__login_done;
    if (auth__submit(a, w) != 0) {
        sodium_memzero(w->password, sizeof w->password);
        free(w);
        cb(data, 429, NULL, "too many password checks in progress");
    }
}

/* --- hashing for user management ------------------------------------------------------ */

static void auth__hash_done(struct auth__work *w)
{
    auth__live_remove(w);
    w->hash_cb(w->data, w->ok ? 0 : VIGIL_ENOMEM, w->ok ? w->hash : NULL);
    free(w);
}

void auth_hash_password(struct auth *a, const char *password, auth_hash_cb cb, void *data)
{
    struct auth__work *w = calloc(1, sizeof *w);
    if (w == NULL) {
        cb(data, VIGIL_ENOMEM, NULL);
        return;
    }
    snprintf(w->password, sizeof w->password, "%s", password);
    w->hash_cb = cb;
    w->data = data;
    w->done = auth__hash_done;
    if (auth__submit(a, w) != 0) {
        free(w);
        cb(data, VIGIL_ETOOBIG, NULL);
    }
}

void auth_flush_cache(struct auth *a)
{
    memset(a->cache, 0, sizeof a->cache);
}

struct auth *auth_new(uv_loop_t *loop, struct store *store, const char *secret,
                      auth_event_cb event_cb, void *event_data)
{
    struct auth *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->loop = loop;
    a->store = store;
    a->secret = secret;
    a->event_cb = event_cb;
    a->event_data = event_data;
    a->lockout = lockout_new();
    if (a->lockout == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

void auth_close(struct auth *a)
{
    a->closing = 1;
    /* Every check not answered yet is answered now: one waiting out its delay gets what it
     * was to get, the others 503; the thread pool's running ones are freed when they end. */
    while (a->live != NULL) {
        struct auth__work *w = a->live;
        auth__live_remove(w);
        sodium_memzero(w->password, sizeof w->password);
        if (w->hash_cb != NULL)
            w->hash_cb(w->data, VIGIL_ESHUTDOWN, NULL);
        else if (w->delayed)
            w->cb(w->data, w->answer_status, NULL, w->answer_message);
        else
            w->cb(w->data, 503, NULL, "this node is stopping");
        if (w->delayed) {
            uv_timer_stop(&w->delay);
            uv_close((uv_handle_t *)&w->delay, auth__on_delay_closed);
        } else if (!w->running) {
            free(w); /* a queued one */
        }
    }
    a->clean = (struct auth__queue){0};
    a->suspect = (struct auth__queue){0};
    if (a->hashing == 0)
        auth__free(a);
}
