/* libFuzzer target for the controller's credential parsers (src/controller/auth/
 * auth_parse.c): the first byte picks one, the rest is its text, as a header value (up to
 * a NUL) or a login body. Each is checked against an independent reading written here:
 *   0 the Cookie header's sessionid value (RFC 6265 pairs; the first "sessionid" wins);
 *   1 a session's signed payload: a well-formed one must be read with every field as
 *     written; whatever is read must be written back to text that reads the same; and a
 *     payload made from the input by auth_session_format must read back to its fields;
 *   2 HTTP Basic credentials (strict RFC 4648 base64, "user:password" limits), and
 *     credentials made from the input must decode to themselves;
 *   3 the X-Vigil-On-Behalf-Of value ("user:role", the last colon);
 *   4 the login body (JSON as the API reads it): the refusal names the first bad field,
 *     by the strings' real lengths.
 *
 * Build and run: see docs/hacking.md, "Fuzzing". */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/auth/auth_parse.h"

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_auth: %s (input \"%.300s\")\n", what, text);
    abort();
}

static void check_cookie(const char *header)
{
    char got[600];
    int found = auth_parse_cookie(header, got, sizeof got);
    const char *p = header, *want = NULL;
    size_t want_len = 0;

    while (want == NULL && *p != '\0') {
        size_t n = strcspn(p, ";");
        const char *q = p;
        while (q < p + n && *q == ' ')
            q++;
        if ((size_t)(p + n - q) >= 10 && strncmp(q, "sessionid=", 10) == 0) {
            want = q + 10;
            want_len = (size_t)(p + n - want);
        }
        p += n + (p[n] == ';');
    }
    if (want != NULL && want_len >= sizeof got)
        want = NULL; /* does not fit: none */
    if (found != (want != NULL) ||
        (found && (strlen(got) != want_len || memcmp(got, want, want_len) != 0)))
        fail("the sessionid cookie read differently", header);
}

/* Strict RFC 4648 base64 of S (LEN bytes; URL: the URL-safe alphabet without padding,
 * else the standard one with it; no stray bits) into OUT (at most MAX bytes): its length,
 * or -1. */
static long base64_strict(const char *s, size_t len, bool url, unsigned char *out, size_t max)
{
    const char *alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pad = 0, n = 0;
    unsigned acc = 0, bits = 0;

    if (!url && len % 4 != 0)
        return -1;
    while (!url && pad < 2 && pad < len && s[len - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++) {
        const char *c = s[i] != '\0' ? strchr(alphabet, s[i]) : NULL;
        if (c == NULL)
            return -1;
        acc = acc << 6 | (unsigned)(c - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == max)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0 || (len - pad) % 4 == 1 || (pad > 0 && (len - pad) % 4 + pad != 4))
        return -1;
    return (long)n;
}

static bool same_fields(const struct auth_session_fields *a, const struct auth_session_fields *b)
{
    return strcmp(a->user, b->user) == 0 && strcmp(a->sid, b->sid) == 0 &&
           a->issued_ms == b->issued_ms && a->seen_ms == b->seen_ms && strcmp(a->tag, b->tag) == 0;
}

/* A decimal int64 of 1-18 digits (maybe negative) at S, LEN bytes, into *V. */
static bool decimal(const char *s, size_t len, int64_t *v)
{
    size_t i = s[0] == '-';
    int64_t x = 0;
    if (len <= i || len - i > 18)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = s[0] == '-' ? -x : x;
    return true;
}

static void check_session(const char *text)
{
    struct auth_session_fields got, want, back;
    const char *part[7], *p = text;
    size_t plen[7], n = 0;
    long ulen = -1;
    char again[700];
    bool well_formed;
    int rv = auth_parse_session(text, strlen(text), &got);

    /* the reference: exactly six non-empty parts */
    while (n < 7) {
        part[n] = p;
        plen[n] = strcspn(p, ".");
        p += plen[n];
        n++;
        if (*p != '.')
            break;
        p++;
    }
    memset(&want, 0, sizeof want);
    well_formed = n == 6 && strlen(text) < 600 && plen[0] == 2 && memcmp(part[0], "v1", 2) == 0 &&
                  plen[1] > 0 && plen[2] > 0 && plen[2] < sizeof want.sid && plen[5] > 0 &&
                  plen[5] < sizeof want.tag && decimal(part[3], plen[3], &want.issued_ms) &&
                  decimal(part[4], plen[4], &want.seen_ms) &&
                  (ulen = base64_strict(part[1], plen[1], true, (unsigned char *)want.user,
                                        sizeof want.user - 1)) > 0 &&
                  memchr(want.user, '\0', (size_t)ulen) == NULL;
    if (well_formed) {
        want.user[ulen] = '\0';
        memcpy(want.sid, part[2], plen[2]);
        memcpy(want.tag, part[5], plen[5]);
        if (rv != 0 || !same_fields(&got, &want))
            fail("a well-formed session payload read differently", text);
    }
    if (rv == 0) {
        auth_session_format(&got, again, sizeof again);
        if (auth_parse_session(again, strlen(again), &back) != 0 || !same_fields(&got, &back))
            fail("a session read, written again, reads differently", text);
    }
    /* fields made from the input: what the server writes, it must read */
    memset(&want, 0, sizeof want);
    for (size_t i = 0; text[i] != '\0' && i < 64; i++)
        want.user[i] = text[i];
    if (want.user[0] == '\0')
        want.user[0] = 'u'; /* user names are never empty */
    for (size_t i = 0; i < 43; i++)
        want.sid[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            [(unsigned char)text[i % (strlen(text) + 1)] % 64];
    want.issued_ms = (int64_t)strlen(text) * 1000003 - 500000;
    want.seen_ms = want.issued_ms + (unsigned char)text[0];
    snprintf(want.tag, sizeof want.tag, "%s", text[0] & 1 ? "none" : "0123456789abcdef");
    auth_session_format(&want, again, sizeof again);
    if (auth_parse_session(again, strlen(again), &back) != 0 || !same_fields(&want, &back))
        fail("a session payload as written does not read back", text);
}

static void check_basic(const char *text)
{
    char user[AUTH_USER_MAX + 1], password[AUTH_PASSWORD_MAX + 1], b64[1024], raw[400];
    unsigned char want[512];
    long n = base64_strict(text, strlen(text), false, want, sizeof want - 1);
    int rv = auth_parse_basic(text, user, password);
    size_t ulen = 0, plen = 0;
    bool ok = false;

    if (n >= 0) {
        char *colon;
        want[n] = '\0';
        colon = strchr((char *)want, ':');
        if (colon != NULL) {
            ulen = (size_t)(colon - (char *)want);
            plen = strlen(colon + 1);
            ok = ulen > 0 && ulen <= AUTH_USER_MAX && plen <= AUTH_PASSWORD_MAX;
        }
    }
    if ((rv == 0) != ok || (ok && (strlen(user) != ulen || memcmp(user, want, ulen) != 0 ||
                                   strcmp(password, (char *)want + ulen + 1) != 0)))
        fail("Basic credentials read differently", text);
    /* credentials made from the input decode to themselves */
    ulen = 0;
    for (size_t i = 0; text[i] != '\0' && ulen < AUTH_USER_MAX; i++)
        if (text[i] != ':')
            raw[ulen++] = text[i];
    if (ulen == 0)
        raw[ulen++] = 'u';
    raw[ulen++] = ':';
    snprintf(raw + ulen, sizeof raw - ulen, "%.255s", text);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_ORIGINAL);
    if (auth_parse_basic(b64, user, password) != 0 || strncmp(raw, user, ulen - 1) != 0 ||
        strlen(user) != ulen - 1 || strcmp(password, raw + ulen) != 0)
        fail("Basic credentials as a client writes them do not decode to themselves", text);
}

static void check_on_behalf(const char *text)
{
    char user[128], role[16];
    const char *colon = strrchr(text, ':');
    int rv = auth_parse_on_behalf(text, user, sizeof user, role, sizeof role);
    bool ok = colon != NULL && (size_t)(colon - text) < sizeof user;

    if ((rv == 0) != ok || (ok && (strncmp(user, text, (size_t)(colon - text)) != 0 ||
                                   strlen(user) != (size_t)(colon - text) ||
                                   strncmp(role, colon + 1, sizeof role - 1) != 0)))
        fail("the on-behalf-of value read differently", text);
}

static void check_login(const char *text, size_t len)
{
    json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *u, *p;
    const char *user, *password, *why, *want;

    if (!json_is_object(body)) {
        json_decref(body);
        return;
    }
    u = json_object_get(body, "username");
    p = json_object_get(body, "password");
    want = !json_is_string(u)                        ? "username: required"
           : json_string_length(u) > AUTH_USER_MAX   ? "username: too long"
           : !json_is_string(p)                      ? "password: required"
           : json_string_length(p) > AUTH_PASSWORD_MAX ? "password: too long"
                                                       : NULL;
    why = auth_login_fields(body, &user, &password);
    if ((why == NULL) != (want == NULL) ||
        (why != NULL && strncmp(why, want, strlen(want)) != 0) ||
        (why == NULL && (strcmp(user, json_string_value(u)) != 0 ||
                         strcmp(password, json_string_value(p)) != 0)))
        fail(why != NULL ? why : "login fields taken", text);
    json_decref(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[8192];
    size_t len;

    if (size == 0 || size > sizeof text)
        return 0;
    len = size - 1;
    memcpy(text, data + 1, len);
    text[len] = '\0';
    switch (data[0] % 5) {
    case 0:
        check_cookie(text);
        break;
    case 1:
        check_session(text);
        break;
    case 2:
        check_basic(text);
        break;
    case 3:
        check_on_behalf(text);
        break;
    default:
        check_login(text, len);
        break;
    }
    return 0;
}
