/* test_auth.c: authentication (controller/auth.c, controller/auth_crypto.c): password
 * hashes, keyed hashes, random tokens, constant-time comparison, session cookies (expiry,
 * tampering, revocation, the user's current role), CSRF tokens and the same-origin check,
 * the lockout counters, and the role table of auth_authorize for every path and method.
 * Sessions are verified against a real store (store_open) fed with store_apply commands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <uv.h>

#include "common/errors.h"
#include "controller/auth/auth.h"
#include "controller/auth/auth_crypto.h"
#include "controller/auth/auth_parse.h"
#include "controller/store/store.h"

#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define OTHER_SECRET "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

#define T0 1795845600123LL /* 2026-11-28T06:00:00.123Z */
#define MINUTE (60LL * 1000)
#define HOUR (60 * MINUTE)

/* ---------------------------------------------------------------------------------- */
/* Helpers                                                                             */

/* Applies the command (printf format) and asserts its outcome is EXPECT. */
static void apply(struct store *s, enum store_outcome expect, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void apply(struct store *s, enum store_outcome expect, const char *fmt, ...)
{
    struct store_result res;
    char text[2048];
    va_list ap;
    int rv;

    va_start(ap, fmt);
    assert_true((size_t)vsnprintf(text, sizeof text, fmt, ap) < sizeof text);
    va_end(ap);
    rv = store_apply(s, text, strlen(text), &res);
    if (rv != 0)
        fail_msg("store_apply returned %d (%s) for %s", rv, vigil_strerror(rv), text);
    if (res.outcome != expect)
        fail_msg("outcome %s (error '%s'), expected %s, for %s", store_outcome_name(res.outcome),
                 res.error, store_outcome_name(expect), text);
    store_result_clear(&res);
}

static void user_put(struct store *s, const char *name, const char *role, int create)
{
    apply(s, create ? STORE_CREATED : STORE_OK,
          "{\"op\": \"user_put\", \"name\": \"%s\", \"role\": \"%s\", \"hash\": \"%s\", "
          "\"create\": %s}",
          name, role, "$argon2id$not-a-real-hash", create ? "true" : "false");
}

static void assert_has(const char *text, const char *part)
{
    if (text == NULL || strstr(text, part) == NULL)
        fail_msg("'%s' does not mention '%s'", text != NULL ? text : "(null)", part);
}

static int is_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int is_base64url(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* A store with users "admin" (admin) and "alice" (operator), and an authenticator over
 * it with the cluster key SECRET. */
struct fixture {
    uv_loop_t loop;
    struct store *store;
    struct auth *auth;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(store_open(&f->store), 0);
    user_put(f->store, "admin", "admin", 1);
    user_put(f->store, "alice", "operator", 1);
    f->auth = auth_new(&f->loop, f->store, SECRET, NULL, NULL);
    assert_non_null(f->auth);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    auth_close(f->auth);
    store_close(f->store);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* A session identity for USER issued at ISSUED, as auth_login makes it. */
static struct auth_identity session_of(const char *user, int64_t issued)
{
    struct auth_identity id;
    memset(&id, 0, sizeof id);
    id.via = AUTH_VIA_SESSION;
    snprintf(id.user, sizeof id.user, "%s", user);
    auth_random_token(id.sid, sizeof id.sid, 32);
    id.issued_ms = issued;
    id.seen_ms = issued;
    return id;
}

/* The cookie value (what follows "sessionid=") of ID refreshed at NOW under A's key. */
static void cookie_value(struct auth *a, const struct auth_identity *id, int64_t now, char *out,
                         size_t len)
{
    char header[700];
    size_t n;
    auth_session_cookie_at(a, id, now, 0, header, sizeof header);
    assert_true(strncmp(header, "sessionid=", 10) == 0);
    n = strcspn(header + 10, ";");
    assert_true(n < len);
    memcpy(out, header + 10, n);
    out[n] = '\0';
}

/* Asserts that VALUE is refused at NOW with a reason mentioning WHY_PART. */
static void assert_refused(struct auth *a, const char *value, int64_t now, const char *why_part)
{
    struct auth_identity id;
    const char *why = NULL;
    unsigned status = auth_session_verify(a, value, now, &id, &why);
    if (status != 401)
        fail_msg("cookie '%s' gave %u, expected 401", value, status);
    assert_has(why, why_part);
}

static void assert_accepted(struct auth *a, const char *value, int64_t now,
                            struct auth_identity *out)
{
    struct auth_identity id;
    const char *why = NULL;
    unsigned status = auth_session_verify(a, value, now, &id, &why);
    if (status != 0)
        fail_msg("cookie '%s' refused (%u): %s", value, status, why != NULL ? why : "");
    if (out != NULL)
        *out = id;
}

/* ---------------------------------------------------------------------------------- */
/* auth_crypto                                                                         */

static void test_password_hash_verify(void **state)
{
    char hash[AUTH_PWHASH_LEN], again[AUTH_PWHASH_LEN];
    (void)state;

    assert_int_equal(auth_password_hash("correct horse battery staple", hash), 0);
    /* Argon2id with the minimum limits (auth_crypto_init(true)): 8 KiB, one pass. */
    assert_has(hash, "$argon2id$v=19$m=8,t=1,");
    assert_true(auth_password_verify(hash, "correct horse battery staple"));
    assert_false(auth_password_verify(hash, "correct horse battery stapl"));
    assert_false(auth_password_verify(hash, "correct horse battery staple "));
    assert_false(auth_password_verify(hash, "Correct horse battery staple"));
    assert_false(auth_password_verify(hash, ""));

    /* A new salt each time: two hashes of one password differ, both verify. */
    assert_int_equal(auth_password_hash("correct horse battery staple", again), 0);
    assert_string_not_equal(hash, again);
    assert_true(auth_password_verify(again, "correct horse battery staple"));
}

static void test_password_empty_and_long(void **state)
{
    char hash[AUTH_PWHASH_LEN], password[1001];
    (void)state;

    assert_int_equal(auth_password_hash("", hash), 0);
    assert_true(auth_password_verify(hash, ""));
    assert_false(auth_password_verify(hash, " "));
    assert_false(auth_password_verify(hash, "a"));

    /* 200 characters (the API's maximum) and 1000: every character counts, the last too. */
    for (size_t len = 200; len <= 1000; len += 800) {
        memset(password, 'p', len);
        password[len] = '\0';
        assert_int_equal(auth_password_hash(password, hash), 0);
        assert_true(auth_password_verify(hash, password));
        password[len - 1] = 'q';
        assert_false(auth_password_verify(hash, password));
        password[len - 1] = '\0';
        assert_false(auth_password_verify(hash, password));
    }
}

static void test_password_verify_bad_hash(void **state)
{
    (void)state;
    assert_false(auth_password_verify("", ""));
    assert_false(auth_password_verify("", "password"));
    assert_false(auth_password_verify("$argon2id$garbage", "password"));
    assert_false(auth_password_verify("plaintext", "plaintext"));
}

static void test_dummy_hash(void **state)
{
    const char *dummy = auth_password_dummy_hash();
    char token[AUTH_TOKEN_LEN];
    (void)state;

    /* A real Argon2id hash with the same limits, so checking it costs the same. */
    assert_has(dummy, "$argon2id$v=19$m=8,t=1,");
    assert_false(auth_password_verify(dummy, ""));
    assert_false(auth_password_verify(dummy, "password"));
    assert_false(auth_password_verify(dummy, "admin"));
    auth_random_token(token, sizeof token, 32);
    assert_false(auth_password_verify(dummy, token));
    assert_string_equal(dummy, auth_password_dummy_hash());
    /* a hash libsodium parses, with the parameters every real hash of this build has
     * (so verifying against it costs the same) */
    assert_int_equal(crypto_pwhash_str_needs_rehash(dummy, crypto_pwhash_OPSLIMIT_MIN,
                                                    crypto_pwhash_MEMLIMIT_MIN), 0);
    {
        char real[AUTH_PWHASH_LEN];
        assert_int_equal(auth_password_hash("x", real), 0);
        assert_int_equal(strlen(real), strlen(dummy));
        assert_true(auth_password_verify(real, "x"));
    }
}

static void test_mac(void **state)
{
    char a[AUTH_MAC_HEX_LEN], b[AUTH_MAC_HEX_LEN];
    (void)state;

    /* RFC 4231 test cases 1 and 2 (HMAC zero-pads a short key, as auth_mac does). */
    auth_mac("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "Hi There", 8, a);
    assert_string_equal(a, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    auth_mac("4a656665", "what do ya want for nothing?", 28, a);
    assert_string_equal(a, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    /* Deterministic, 64 lowercase hex characters. */
    auth_mac(SECRET, "token:abc", 9, a);
    auth_mac(SECRET, "token:abc", 9, b);
    assert_true(is_hex(a, 64));
    assert_string_equal(a, b);
    /* Depends on the key, the data and its length. */
    auth_mac(OTHER_SECRET, "token:abc", 9, b);
    assert_string_not_equal(a, b);
    auth_mac(SECRET, "token:abd", 9, b);
    assert_string_not_equal(a, b);
    auth_mac(SECRET, "token:abc", 8, b);
    assert_string_not_equal(a, b);
}

static int compare_strings(const void *x, const void *y)
{
    return strcmp((const char *)x, (const char *)y);
}

static void test_random_token(void **state)
{
    static char tokens[1000][AUTH_TOKEN_LEN];
    char short_token[32], key[AUTH_KEY_HEX_LEN], key2[AUTH_KEY_HEX_LEN];
    (void)state;

    for (int i = 0; i < 1000; i++) {
        auth_random_token(tokens[i], AUTH_TOKEN_LEN, 32);
        if (!is_base64url(tokens[i], 43))
            fail_msg("token '%s' is not 43 base64url characters", tokens[i]);
    }
    qsort(tokens, 1000, sizeof tokens[0], compare_strings);
    for (int i = 1; i < 1000; i++)
        assert_string_not_equal(tokens[i - 1], tokens[i]);

    auth_random_token(short_token, sizeof short_token, 16);
    assert_true(is_base64url(short_token, 22));

    auth_new_key(key);
    auth_new_key(key2);
    assert_true(is_hex(key, 64));
    assert_true(is_hex(key2, 64));
    assert_string_not_equal(key, key2);
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(auth_equal("", ""));
    assert_true(auth_equal("3f9c0a", "3f9c0a"));
    assert_false(auth_equal("3f9c0a", "3f9c0b"));
    assert_false(auth_equal("3f9c0a", "4f9c0a"));
    assert_false(auth_equal("3f9c0a", "3F9C0A"));
    assert_false(auth_equal("3f9c0a", "3f9c0"));
    assert_false(auth_equal("3f9c0", "3f9c0a"));
    assert_false(auth_equal("", "a"));
    assert_false(auth_equal("a", ""));
}

/* ---------------------------------------------------------------------------------- */
/* Sessions                                                                            */

static void test_session_cookie_header(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0);
    char header[700];

    auth_session_cookie_at(f->auth, &id, T0, 0, header, sizeof header);
    assert_true(strncmp(header, "sessionid=v1.", 13) == 0);
    assert_has(header, "; Path=/; HttpOnly; SameSite=Strict");
    assert_null(strstr(header, "Secure"));
    /* Nothing readable of the user in the clear (base64url), no password or role. */
    assert_null(strstr(header, "alice"));
    assert_null(strstr(header, "operator"));

    auth_session_cookie_at(f->auth, &id, T0, 1, header, sizeof header);
    assert_has(header, "; Path=/; HttpOnly; SameSite=Strict; Secure");
}

static void test_session_fresh(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0), got;
    char value[600];

    cookie_value(f->auth, &id, T0, value, sizeof value);
    assert_accepted(f->auth, value, T0, &got);
    assert_int_equal(got.via, AUTH_VIA_SESSION);
    assert_string_equal(got.user, "alice");
    assert_string_equal(got.role, "operator");
    assert_string_equal(got.sid, id.sid);
    assert_true(is_base64url(got.sid, 43));
    assert_int_equal(got.issued_ms, T0);
    assert_int_equal(got.seen_ms, T0);
    assert_int_equal(got.node_id, 0);

    /* Deterministic: the same identity at the same time gives the same cookie. */
    {
        char again[600];
        cookie_value(f->auth, &id, T0, again, sizeof again);
        assert_string_equal(value, again);
    }
}

static void test_session_idle_timeout(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0), got;
    char value[600];

    cookie_value(f->auth, &id, T0, value, sizeof value);
    assert_accepted(f->auth, value, T0 + 29 * MINUTE, NULL);
    assert_accepted(f->auth, value, T0 + AUTH_SESSION_IDLE_MS, NULL);
    assert_refused(f->auth, value, T0 + AUTH_SESSION_IDLE_MS + 1, "idle");
    assert_refused(f->auth, value, T0 + 2 * HOUR, "idle");

    /* Activity slides the idle timeout: the cookie refreshed at +29 min lives to +59 min. */
    cookie_value(f->auth, &id, T0 + 29 * MINUTE, value, sizeof value);
    assert_accepted(f->auth, value, T0 + 58 * MINUTE, &got);
    assert_int_equal(got.issued_ms, T0);
    assert_int_equal(got.seen_ms, T0 + 29 * MINUTE);
    assert_refused(f->auth, value, T0 + 29 * MINUTE + AUTH_SESSION_IDLE_MS + 1, "idle");
}

static void test_session_absolute_timeout(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0);
    char value[600];

    /* Active all along (refreshed a minute ago), but issued 12 h ago. */
    cookie_value(f->auth, &id, T0 + AUTH_SESSION_MAX_MS - MINUTE, value, sizeof value);
    assert_accepted(f->auth, value, T0 + AUTH_SESSION_MAX_MS, NULL);
    assert_refused(f->auth, value, T0 + AUTH_SESSION_MAX_MS + 1, "12 h");
    assert_refused(f->auth, value, T0 + AUTH_SESSION_MAX_MS + 20 * MINUTE, "12 h");
}

static void test_session_tampered(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0);
    char value[600], bad[600];
    size_t len;

    cookie_value(f->auth, &id, T0, value, sizeof value);
    len = strlen(value);
    /* Every single changed character is refused: payload (user, sid, times) and MAC. */
    for (size_t i = 0; i < len; i++) {
        struct auth_identity got;
        const char *why = NULL;
        memcpy(bad, value, len + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        if (auth_session_verify(f->auth, bad, T0, &got, &why) != 401)
            fail_msg("cookie changed at %zu accepted: %s", i, bad);
        assert_non_null(why);
    }
    /* Truncated, extended, emptied, no MAC, or too long. */
    memcpy(bad, value, len + 1);
    bad[len - 1] = '\0';
    assert_refused(f->auth, bad, T0, "invalid session");
    snprintf(bad, sizeof bad, "%s0", value);
    assert_refused(f->auth, bad, T0, "invalid session");
    assert_refused(f->auth, "", T0, "malformed");
    assert_refused(f->auth, "v1", T0, "malformed");
    snprintf(bad, sizeof bad, "%.*s", (int)(strrchr(value, '.') - value), value);
    assert_refused(f->auth, bad, T0, "invalid session");
    {
        char huge[2000];
        memset(huge, 'a', sizeof huge - 1);
        huge[sizeof huge - 1] = '\0';
        huge[1000] = '.';
        assert_refused(f->auth, huge, T0, "malformed");
    }
}

/* A correctly signed value with payload PAYLOAD. */
static void sign(const char *payload, char *out, size_t len)
{
    char mac[AUTH_MAC_HEX_LEN];
    auth_mac(SECRET, payload, strlen(payload), mac);
    snprintf(out, len, "%s.%s", payload, mac);
}

static void test_session_signed_but_malformed(void **state)
{
    struct fixture *f = *state;
    char value[600];
    char sid[AUTH_TOKEN_LEN];
    char payload[300];
    auth_random_token(sid, sizeof sid, 32);

    /* "alice" is YWxpY2U in base64url. Well-formed payloads have six parts, the last a tag
     * of the user's password hash: without the right tag a signed cookie is refused. */
    snprintf(payload, sizeof payload, "v1.YWxpY2U.%s.%lld.%lld.0123456789abcdef", sid, T0, T0);
    sign(payload, value, sizeof value);
    assert_refused(f->auth, value, T0, "password changed");

    snprintf(payload, sizeof payload, "v2.YWxpY2U.%s.%lld.%lld.none", sid, T0, T0);
    sign(payload, value, sizeof value);
    assert_refused(f->auth, value, T0, "malformed");
    snprintf(payload, sizeof payload, "v1.YWxpY2U.%s.%lld.%lld", sid, T0, T0); /* old form */
    sign(payload, value, sizeof value);
    assert_refused(f->auth, value, T0, "malformed");
    snprintf(payload, sizeof payload, "v1.YWxpY2U.%s.%lld.%lld.none.1", sid, T0, T0);
    sign(payload, value, sizeof value);
    assert_refused(f->auth, value, T0, "malformed");
    snprintf(payload, sizeof payload, "v1.YWxp*2U.%s.%lld.%lld.none", sid, T0, T0);
    sign(payload, value, sizeof value);
    assert_refused(f->auth, value, T0, "malformed");
    /* "bob" (Ym9i) does not exist. */
    snprintf(payload, sizeof payload, "v1.Ym9i.%s.%lld.%lld.none", sid, T0, T0);
    sign(payload, value, sizeof value);
    assert_refused(f->auth, value, T0, "no longer exists");
}

/* libsodium 1.0.18's base64 decoder takes some bytes >= 0x80 for digits: credentials and
 * session users are read from their alphabet only; a session's user is never empty or NUL.
 * Found by the auth fuzz target (tests/fuzz/auth/corpus/auth/regression-*). */
static void test_parse_strict_base64(void **state)
{
    char user[AUTH_USER_MAX + 1], password[AUTH_PASSWORD_MAX + 1];
    struct auth_session_fields f;
    const char *lax = "v1.YW\xc4RtaW4.s.1.2.none";
    (void)state;

    assert_int_equal(auth_parse_basic("YWRtaW46czNjcmV0", user, password), 0);
    assert_string_equal(user, "admin");
    assert_string_equal(password, "s3cret");
    assert_int_equal(auth_parse_basic("YWRtaW46czNjcmV0OndpdGg6Y\xc4\xc6sb25z", user, password), -1);
    assert_int_equal(auth_parse_basic("YWRtaW46czNjcmV0 ", user, password), -1);
    assert_int_equal(auth_parse_session("v1.YWRtaW4.s.1.2.none", 21, &f), 0);
    assert_string_equal(f.user, "admin");
    assert_int_equal(auth_parse_session(lax, strlen(lax), &f), -1);
    assert_int_equal(auth_parse_session("v1.AA.3.0.0.0", 13, &f), -1); /* the user "\0" */
}

static void test_session_other_key(void **state)
{
    struct fixture *f = *state;
    struct auth *other = auth_new(&f->loop, f->store, OTHER_SECRET, NULL, NULL);
    struct auth_identity id = session_of("alice", T0);
    char mine[600], theirs[600];

    assert_non_null(other);
    cookie_value(f->auth, &id, T0, mine, sizeof mine);
    cookie_value(other, &id, T0, theirs, sizeof theirs);
    assert_string_not_equal(mine, theirs);
    assert_refused(other, mine, T0, "invalid session");
    assert_refused(f->auth, theirs, T0, "invalid session");
    assert_accepted(other, theirs, T0, NULL);
    assert_accepted(f->auth, mine, T0, NULL);
    auth_close(other);
}

static void test_session_revoked(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0), other = session_of("alice", T0);
    char value[600], other_value[600];

    cookie_value(f->auth, &id, T0, value, sizeof value);
    cookie_value(f->auth, &other, T0, other_value, sizeof other_value);
    assert_accepted(f->auth, value, T0, NULL);
    apply(f->store, STORE_REMOVED, "{\"op\": \"session_revoke\", \"sid\": \"%s\", \"expires\": %lld}", id.sid,
          T0 + AUTH_SESSION_MAX_MS);
    assert_refused(f->auth, value, T0 + MINUTE, "logged out");
    /* A refreshed cookie of that session stays revoked; the user's other session lives. */
    cookie_value(f->auth, &id, T0 + MINUTE, value, sizeof value);
    assert_refused(f->auth, value, T0 + MINUTE, "logged out");
    assert_accepted(f->auth, other_value, T0 + MINUTE, NULL);
}

static void test_session_user_deleted(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0);
    char value[600];

    cookie_value(f->auth, &id, T0, value, sizeof value);
    assert_accepted(f->auth, value, T0, NULL);
    apply(f->store, STORE_REMOVED, "{\"op\": \"user_delete\", \"name\": \"alice\"}");
    assert_refused(f->auth, value, T0 + MINUTE, "no longer exists");
}

static void test_session_role_follows_store(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0), got;
    char value[600];

    /* The cookie carries no role: a stale "admin" in the identity changes nothing. */
    snprintf(id.role, sizeof id.role, "admin");
    cookie_value(f->auth, &id, T0, value, sizeof value);
    assert_accepted(f->auth, value, T0, &got);
    assert_string_equal(got.role, "operator");

    user_put(f->store, "alice", "read-only", 0);
    assert_accepted(f->auth, value, T0 + MINUTE, &got);
    assert_string_equal(got.role, "read-only");

    user_put(f->store, "alice", "admin", 0);
    assert_accepted(f->auth, value, T0 + 2 * MINUTE, &got);
    assert_string_equal(got.role, "admin");
}

/* A new password (or the user deleted and made again) ends the sessions made before. */
static void test_session_ends_with_password_change(void **state)
{
    struct fixture *f = *state;
    struct auth_identity id = session_of("alice", T0);
    char value[600];

    cookie_value(f->auth, &id, T0, value, sizeof value);
    assert_accepted(f->auth, value, T0, NULL);
    apply(f->store, STORE_OK,
          "{\"op\": \"user_put\", \"name\": \"alice\", \"role\": \"operator\", "
          "\"hash\": \"$argon2id$another-hash\", \"create\": false}");
    assert_refused(f->auth, value, T0 + MINUTE, "password changed");
    /* A session made after the change works. */
    cookie_value(f->auth, &id, T0 + MINUTE, value, sizeof value);
    assert_accepted(f->auth, value, T0 + MINUTE, NULL);
}

static void test_session_odd_user_names(void **state)
{
    struct fixture *f = *state;
    static const char *const names[] = {"dot.ted", "semi;colon=x", "\xc3\xa9milie", NULL};
    char long_name[128];

    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    user_put(f->store, long_name, "read-only", 1);
    for (int i = 0; names[i] != NULL; i++)
        user_put(f->store, names[i], "read-only", 1);
    for (int i = -1; i < 3; i++) {
        const char *name = i < 0 ? long_name : names[i];
        struct auth_identity id = session_of(name, T0), got;
        char value[600];
        cookie_value(f->auth, &id, T0, value, sizeof value);
        assert_null(strchr(value, ';'));
        assert_accepted(f->auth, value, T0, &got);
        assert_string_equal(got.user, name);
        assert_string_equal(got.role, "read-only");
    }
}

/* ---------------------------------------------------------------------------------- */
/* CSRF                                                                                */

static void test_csrf_token(void **state)
{
    struct fixture *f = *state;
    struct auth *other = auth_new(&f->loop, f->store, OTHER_SECRET, NULL, NULL);
    struct auth_identity one = session_of("alice", T0), two = session_of("alice", T0);
    struct auth_identity one_later = one;
    char a[65], b[65];

    assert_non_null(other);
    auth_csrf_token(f->auth, &one, a);
    assert_true(is_hex(a, 64));
    /* Stable for the session (refreshes and role changes do not change it). */
    one_later.seen_ms = T0 + HOUR;
    snprintf(one_later.role, sizeof one_later.role, "admin");
    auth_csrf_token(f->auth, &one_later, b);
    assert_string_equal(a, b);
    /* Per session and per key. */
    auth_csrf_token(f->auth, &two, b);
    assert_string_not_equal(a, b);
    auth_csrf_token(other, &one, b);
    assert_string_not_equal(a, b);
    /* Not the session id's token MAC either (keyed hashes are domain-separated). */
    auth_token_mac(f->auth, one.sid, b);
    assert_string_not_equal(a, b);
    auth_close(other);
}

#define HOST "127.0.0.1:8080"

static unsigned origin(int tls, const char *host, const char *origin_header, const char *referer,
                       const char *site, char *why)
{
    why[0] = '\0';
    return auth_origin_check(tls, host, origin_header, referer, site, why, 256);
}

static void test_origin_same(void **state)
{
    char why[256];
    (void)state;

    /* No browser headers at all: scripts (curl) pass. */
    assert_int_equal(origin(0, HOST, NULL, NULL, NULL, why), 0);
    assert_int_equal(origin(1, HOST, NULL, NULL, NULL, why), 0);
    assert_int_equal(origin(0, NULL, NULL, NULL, NULL, why), 0);
    /* Same origin by Origin, case-insensitively; by Referer; by both. */
    assert_int_equal(origin(0, HOST, "http://" HOST, NULL, NULL, why), 0);
    assert_int_equal(origin(1, HOST, "https://" HOST, NULL, NULL, why), 0);
    assert_int_equal(origin(0, "vigil.example", "HTTP://Vigil.Example", NULL, NULL, why), 0);
    assert_int_equal(origin(0, HOST, NULL, "http://" HOST "/ui/pools?page=2", NULL, why), 0);
    assert_int_equal(origin(1, HOST, NULL, "https://" HOST "/", NULL, why), 0);
    assert_int_equal(origin(1, HOST, NULL, "https://" HOST, NULL, why), 0);
    assert_int_equal(origin(1, HOST, "https://" HOST, "https://" HOST "/ui/", "same-origin", why), 0);
}

static void test_origin_cross(void **state)
{
    char why[256];
    (void)state;

    /* Another host, another port, another scheme. */
    assert_int_equal(origin(0, HOST, "http://evil.example", NULL, NULL, why), 403);
    assert_has(why, "Origin http://evil.example");
    assert_int_equal(origin(0, HOST, "http://127.0.0.1:8081", NULL, NULL, why), 403);
    assert_int_equal(origin(0, HOST, "http://127.0.0.1", NULL, NULL, why), 403);
    assert_int_equal(origin(0, HOST, "http://" HOST ".evil.example", NULL, NULL, why), 403);
    assert_int_equal(origin(1, HOST, "http://" HOST, NULL, NULL, why), 403);
    assert_int_equal(origin(0, HOST, "https://" HOST, NULL, NULL, why), 403);
    assert_int_equal(origin(0, HOST, HOST, NULL, NULL, why), 403);
    /* An Origin with no Host to compare with. */
    assert_int_equal(origin(0, NULL, "http://" HOST, NULL, NULL, why), 403);
    /* "null" (sandboxed frames, file: pages, some redirects) is never same-origin, even
     * with a same-origin Referer. */
    assert_int_equal(origin(0, HOST, "null", NULL, NULL, why), 403);
    assert_has(why, "cross-origin");
    assert_int_equal(origin(0, HOST, "null", "http://" HOST "/ui/", NULL, why), 403);
}

static void test_origin_referer(void **state)
{
    char why[256];
    (void)state;

    assert_int_equal(origin(0, HOST, NULL, "http://evil.example/page", NULL, why), 403);
    assert_has(why, "cross-origin");
    assert_int_equal(origin(0, HOST, NULL, "http://" HOST ".evil.example/", NULL, why), 403);
    assert_int_equal(origin(0, HOST, NULL, "http://" HOST "@evil.example/", NULL, why), 403);
    assert_int_equal(origin(0, HOST, NULL, "http://127.0.0.1:80801/", NULL, why), 403);
    assert_int_equal(origin(1, HOST, NULL, "http://" HOST "/ui/", NULL, why), 403);
    assert_int_equal(origin(0, HOST, NULL, "https://" HOST "/ui/", NULL, why), 403);
    /* The Origin, when present and not "null", decides: the Referer is not consulted. */
    assert_int_equal(origin(0, HOST, "http://" HOST, "http://evil.example/", NULL, why), 0);
    assert_int_equal(origin(0, HOST, "http://evil.example", "http://" HOST "/", NULL, why), 403);
}

static void test_origin_sec_fetch_site(void **state)
{
    char why[256];
    (void)state;

    assert_int_equal(origin(0, HOST, NULL, NULL, "same-origin", why), 0);
    assert_int_equal(origin(0, HOST, NULL, NULL, "none", why), 0);
    assert_int_equal(origin(0, HOST, NULL, NULL, "cross-site", why), 403);
    assert_has(why, "Sec-Fetch-Site cross-site");
    /* A sibling subdomain is same-site but not same-origin: refused. */
    assert_int_equal(origin(0, HOST, NULL, NULL, "same-site", why), 403);
    assert_has(why, "Sec-Fetch-Site same-site");
    assert_int_equal(origin(0, HOST, NULL, NULL, "", why), 403);
    /* Refused even when Origin and Referer look right. */
    assert_int_equal(origin(0, HOST, "http://" HOST, "http://" HOST "/", "cross-site", why), 403);
    assert_int_equal(origin(1, HOST, "https://" HOST, NULL, "same-site", why), 403);
    /* And it does not rescue a foreign Origin. */
    assert_int_equal(origin(0, HOST, "http://evil.example", NULL, "same-origin", why), 403);
}

/* ---------------------------------------------------------------------------------- */
/* Lockout                                                                             */

static void test_lockout(void **state)
{
    struct fixture *f = *state;
    int locked = 0;

    /* Four failures within the window: slowed, not locked. */
    for (unsigned i = 1; i < AUTH_LOCK_FAILURES; i++) {
        assert_int_equal(lockout_failure(auth_lockout(f->auth), "u:alice", AUTH_LOCK_FAILURES, T0 + i * MINUTE, &locked), i);
        assert_int_equal(locked, 0);
        assert_int_equal(lockout_remaining(auth_lockout(f->auth), "u:alice", T0 + i * MINUTE), 0);
    }
    /* The fifth locks the account for 15 minutes; nothing else. */
    assert_int_equal(lockout_failure(auth_lockout(f->auth), "u:alice", AUTH_LOCK_FAILURES, T0 + 5 * MINUTE, &locked), 5);
    assert_int_equal(locked, 1);
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "u:alice", T0 + 5 * MINUTE), AUTH_LOCK_MS);
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "u:alice", T0 + 20 * MINUTE - 1), 1);
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "u:bob", T0 + 5 * MINUTE), 0);
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "ip:127.0.0.1", T0 + 5 * MINUTE), 0);
    /* A success while locked does not unlock. */
    lockout_success(auth_lockout(f->auth), "u:alice", T0 + 6 * MINUTE);
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "u:alice", T0 + 6 * MINUTE), 14 * MINUTE);
    /* Released after 15 minutes, with the count starting afresh. */
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "u:alice", T0 + 20 * MINUTE), 0);
    locked = 0;
    assert_int_equal(lockout_failure(auth_lockout(f->auth), "u:alice", AUTH_LOCK_FAILURES, T0 + 21 * MINUTE, &locked), 1);
    assert_int_equal(locked, 0);
}

/* Failures under many other names cannot push a lock out of the table. */
static void test_lockout_not_flushed(void **state)
{
    struct fixture *f = *state;
    int locked = 0;
    char key[64];

    for (unsigned i = 0; i < AUTH_LOCK_FAILURES; i++)
        lockout_failure(auth_lockout(f->auth), "u:admin", AUTH_LOCK_FAILURES, T0 + i, &locked);
    assert_int_equal(locked, 1);
    for (unsigned i = 0; i < 5000; i++) {
        int l = 0;
        snprintf(key, sizeof key, "u:made-up-%u", i);
        lockout_failure(auth_lockout(f->auth), key, AUTH_LOCK_FAILURES, T0 + MINUTE + i, &l);
    }
    assert_true(lockout_remaining(auth_lockout(f->auth), "u:admin", T0 + 2 * MINUTE) > 0);
}

static void test_lockout_window(void **state)
{
    struct fixture *f = *state;
    int locked = 0;

    /* Five failures four minutes apart span 16 minutes: the first has left the window. */
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(lockout_failure(auth_lockout(f->auth), "ip:192.0.2.7", AUTH_LOCK_FAILURES, T0 + i * 4 * MINUTE, &locked),
                         i + 1);
    assert_int_equal(lockout_failure(auth_lockout(f->auth), "ip:192.0.2.7", AUTH_LOCK_FAILURES, T0 + 16 * MINUTE, &locked), 4);
    assert_int_equal(locked, 0);
    assert_int_equal(lockout_remaining(auth_lockout(f->auth), "ip:192.0.2.7", T0 + 16 * MINUTE), 0);
    /* One more a minute later makes five within 15 minutes (+4 .. +17). */
    assert_int_equal(lockout_failure(auth_lockout(f->auth), "ip:192.0.2.7", AUTH_LOCK_FAILURES, T0 + 17 * MINUTE, &locked), 5);
    assert_int_equal(locked, 1);

    /* A success forgets an unlocked key's failures. */
    locked = 0;
    for (unsigned i = 1; i < AUTH_LOCK_FAILURES; i++)
        assert_int_equal(lockout_failure(auth_lockout(f->auth), "u:admin", AUTH_LOCK_FAILURES, T0 + i * MINUTE, &locked), i);
    lockout_success(auth_lockout(f->auth), "u:admin", T0 + 5 * MINUTE);
    assert_int_equal(lockout_failure(auth_lockout(f->auth), "u:admin", AUTH_LOCK_FAILURES, T0 + 6 * MINUTE, &locked), 1);
    assert_int_equal(locked, 0);
}

/* A limit of 0 counts and never locks; a limit above 5 needs that many (the ring holds
 * AUTH_LOCK_ADDRESS_FAILURES); lockout_recent reads without counting. */
static void test_lockout_limits(void **state)
{
    struct fixture *f = *state;
    struct lockout *l = auth_lockout(f->auth);
    int locked = 0;

    for (unsigned i = 1; i <= 30; i++)
        assert_int_equal(lockout_failure(l, "u:admin", 0, T0 + i, &locked),
                         i < AUTH_LOCK_ADDRESS_FAILURES ? i : AUTH_LOCK_ADDRESS_FAILURES);
    assert_int_equal(locked, 0);
    assert_int_equal(lockout_remaining(l, "u:admin", T0 + 31), 0);
    assert_int_equal(lockout_recent(l, "u:admin", T0 + 31), AUTH_LOCK_ADDRESS_FAILURES);
    assert_int_equal(lockout_recent(l, "u:nobody", T0 + 31), 0);
    for (unsigned i = 1; i < AUTH_LOCK_ADDRESS_FAILURES; i++)
        lockout_failure(l, "ip:192.0.2.9", AUTH_LOCK_ADDRESS_FAILURES, T0 + i, &locked);
    assert_int_equal(locked, 0);
    lockout_failure(l, "ip:192.0.2.9", AUTH_LOCK_ADDRESS_FAILURES, T0 + 40, &locked);
    assert_int_equal(locked, 1);
    assert_int_equal(lockout_remaining(l, "ip:192.0.2.9", T0 + 40), AUTH_LOCK_MS);
    assert_int_equal(lockout_recent(l, "ip:192.0.2.9", T0 + 41), 0);
}

/* ---------------------------------------------------------------------------------- */
/* Authorisation: the role table                                                       */

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
#define METHOD_LETTERS "GHPUDA" /* the letter of each method above, in order */

/* What each role may do on each path, as the letters of the allowed methods
 * (G GET, H HEAD, P POST, U PUT, D DELETE, A PATCH; "" none). */
static const struct {
    const char *path;
    const char *admin, *operator, *read_only, *node;
} table[] = {
    /* path                                   admin     operator  read-only node */
    {"/api/pool",                             "GHPUDA", "GHPUDA", "GH",     "GHPUDA"},
    {"/api/pool/20000000-0000-4000-8000-000000000001",
                                              "GHPUDA", "GHPUDA", "GH",     "GHPUDA"},
    {"/api/healthmonitor",                    "GHPUDA", "GHPUDA", "GH",     "GHPUDA"},
    {"/api/healthmonitor/10000000-0000-4000-8000-000000000001",
                                              "GHPUDA", "GHPUDA", "GH",     "GHPUDA"},
    {"/api/virtualservice",                   "GHPUDA", "GHPUDA", "GH",     "GHPUDA"},
    {"/api/serviceengine",                    "GHPUDA", "GHPUDA", "GH",     "GHPUDA"},
    {"/api/user",                             "GHPUDA", "",       "",       "GHPUDA"},
    {"/api/user/x",                           "GHPUDA", "",       "",       "GHPUDA"},
    {"/api/user/",                            "GHPUDA", "",       "",       "GHPUDA"},
    {"/api/token",                            "GHPUDA", "GHPUDA", "GHPUDA", "GHPUDA"},
    {"/api/token/x",                          "GHPUDA", "GHPUDA", "GHPUDA", "GHPUDA"},
    {"/api/logout",                           "GHPUDA", "GHPUDA", "GHPUDA", "GHPUDA"},
    {"/api/session",                          "GHPUDA", "GH",     "GH",     "GHPUDA"},
    {"/api/cluster",                          "GHPUDA", "GH",     "GH",     "GHPUDA"},
    {"/api/cluster/runtime",                  "GHPUDA", "GH",     "GH",     "GHPUDA"},
    {"/api/event",                            "GHPUDA", "GH",     "GH",     "GHPUDA"},
    {"/api/internal/peer",                    "",       "",       "",       "GHPUDA"},
    {"/api/internal/command",                 "GHPUDA", "",       "",       "GHPUDA"},
    /* Names that only start like a config type are not config. */
    {"/api/poolx",                            "GHPUDA", "GH",     "GH",     "GHPUDA"},
    {"/api/users",                            "GHPUDA", "GH",     "GH",     "GHPUDA"},
};

/* Checks every path and method of the table for ID against column COLUMN; returns how
 * many cells disagree (each printed). */
static int check_role(const struct auth_identity *id, const char *label, int column)
{
    int wrong = 0;
    for (size_t p = 0; p < sizeof table / sizeof table[0]; p++) {
        const char *allowed = column == 0   ? table[p].admin
                              : column == 1 ? table[p].operator
                              : column == 2 ? table[p].read_only
                                            : table[p].node;
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            char why[256] = "";
            unsigned expect = strchr(allowed, METHOD_LETTERS[m]) != NULL ? 0 : 403;
            unsigned got = auth_authorize(id, methods[m], table[p].path, why, sizeof why);
            if (got != expect) {
                print_error("%s %s %s: got %u, expected %u (%s)\n", label, methods[m],
                            table[p].path, got, expect, why);
                wrong++;
            } else if (got == 403 && why[0] == '\0') {
                print_error("%s %s %s: 403 without a reason\n", label, methods[m], table[p].path);
                wrong++;
            }
        }
    }
    return wrong;
}

static struct auth_identity identity(enum auth_via via, const char *user, const char *role)
{
    struct auth_identity id;
    memset(&id, 0, sizeof id);
    id.via = via;
    snprintf(id.user, sizeof id.user, "%s", user);
    snprintf(id.role, sizeof id.role, "%s", role);
    if (via == AUTH_VIA_NODE)
        id.node_id = 2;
    return id;
}

static void test_authorize_roles(void **state)
{
    static const char *const roles[] = {"admin", "operator", "read-only"};
    static const enum auth_via vias[] = {AUTH_VIA_SESSION, AUTH_VIA_TOKEN, AUTH_VIA_BASIC};
    int wrong = 0;
    (void)state;

    /* The role decides, whatever the credential. */
    for (int r = 0; r < 3; r++)
        for (int v = 0; v < 3; v++) {
            struct auth_identity id = identity(vias[v], "someone", roles[r]);
            char label[64];
            snprintf(label, sizeof label, "%s (via %d)", roles[r], (int)vias[v]);
            wrong += check_role(&id, label, r);
        }
    {
        struct auth_identity node = identity(AUTH_VIA_NODE, "node-2", "node");
        wrong += check_role(&node, "node", 3);
    }
    if (wrong != 0)
        fail_msg("%d cells of the role table disagree", wrong);
}

static void test_authorize_on_behalf(void **state)
{
    static const char *const roles[] = {"admin", "operator", "read-only"};
    int wrong = 0;
    (void)state;

    /* A node forwarding a client's request carries the client's role: no more than it. */
    for (int r = 0; r < 3; r++) {
        struct auth_identity id = identity(AUTH_VIA_NODE, "alice", roles[r]);
        char label[64];
        snprintf(label, sizeof label, "on behalf of %s", roles[r]);
        wrong += check_role(&id, label, r);
    }
    if (wrong != 0)
        fail_msg("%d cells of the role table disagree", wrong);
}

static void test_authorize_not_a_node(void **state)
{
    char why[256];
    (void)state;

    /* The role "node" alone (not a node credential) gives nothing beyond reads. */
    struct auth_identity fake = identity(AUTH_VIA_TOKEN, "mallory", "node");
    assert_int_equal(auth_authorize(&fake, "GET", "/api/pool", why, sizeof why), 0);
    assert_int_equal(auth_authorize(&fake, "POST", "/api/pool", why, sizeof why), 403);
    assert_has(why, "role 'node' may not POST /api/pool");
    assert_int_equal(auth_authorize(&fake, "GET", "/api/user", why, sizeof why), 403);
    assert_int_equal(auth_authorize(&fake, "POST", "/api/internal/peer", why, sizeof why), 403);
    assert_has(why, "only the cluster's nodes");
    /* An unknown or empty role reads at most. */
    fake = identity(AUTH_VIA_SESSION, "x", "");
    assert_int_equal(auth_authorize(&fake, "DELETE", "/api/pool/x", why, sizeof why), 403);
    assert_int_equal(auth_authorize(&fake, "GET", "/api/user", why, sizeof why), 403);
    /* Methods are case-sensitive: "get" is not a read. */
    fake = identity(AUTH_VIA_SESSION, "ro", "read-only");
    assert_int_equal(auth_authorize(&fake, "get", "/api/pool", why, sizeof why), 403);
    /* The reason is cut to fit. */
    assert_int_equal(auth_authorize(&fake, "POST", "/api/pool", why, 8), 403);
    assert_int_equal(strlen(why), 7);
}

/* ---------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return auth_crypto_init(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_password_empty_and_long),
        cmocka_unit_test(test_password_verify_bad_hash),
        cmocka_unit_test(test_dummy_hash),
        cmocka_unit_test(test_mac),
        cmocka_unit_test(test_random_token),
        cmocka_unit_test(test_equal),
        cmocka_unit_test_setup_teardown(test_session_cookie_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_idle_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_absolute_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_signed_but_malformed, setup, teardown),
        cmocka_unit_test(test_parse_strict_base64),
        cmocka_unit_test_setup_teardown(test_session_other_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_revoked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_user_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_role_follows_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_ends_with_password_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_odd_user_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csrf_token, setup, teardown),
        cmocka_unit_test(test_origin_same),
        cmocka_unit_test(test_origin_cross),
        cmocka_unit_test(test_origin_referer),
        cmocka_unit_test(test_origin_sec_fetch_site),
        cmocka_unit_test_setup_teardown(test_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_not_flushed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_window, setup, teardown),
        cmocka_unit_test(test_authorize_roles),
        cmocka_unit_test(test_authorize_on_behalf),
        cmocka_unit_test(test_authorize_not_a_node),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
