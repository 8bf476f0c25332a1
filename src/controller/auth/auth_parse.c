/* auth_parse.c: the text of credentials (see auth_parse.h). */
#include "controller/auth/auth_parse.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libsodium 1.0.18's base64 decoder takes some bytes of 0x80 and above for digits (it
 * reads them as signed chars): TEXT (LEN bytes) must be of ALPHABET alone first. */
static int auth_parse__only(const char *text, size_t len, const char *alphabet)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\0' || strchr(alphabet, text[i]) == NULL)
            return -1;
    return 0;
}

#define AUTH_PARSE__B64 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

int auth_parse_cookie(const char *header, char *out, size_t len)
{
    const char *p = header;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == ';')
            p++;
        if (strncmp(p, "sessionid=", 10) == 0) {
            const char *v = p + 10;
            size_t n = strcspn(v, ";");
            if (n >= len)
                return 0;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

void auth_session_format(const struct auth_session_fields *f, char *out, size_t len)
{
    char user64[sizeof f->user * 4 / 3 + 4];
    sodium_bin2base64(user64, sizeof user64, (const unsigned char *)f->user, strlen(f->user),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(out, len, "v1.%s.%s.%lld.%lld.%s", user64, f->sid, (long long)f->issued_ms,
             (long long)f->seen_ms, f->tag);
}

int auth_parse_session(const char *payload, size_t len, struct auth_session_fields *f)
{
    char buf[600];
    char *parts[7], *save = NULL, *p;
    int n = 0;
    size_t ulen = 0;

    if (len >= sizeof buf)
        return -1;
    memcpy(buf, payload, len);
    buf[len] = '\0';
    for (p = strtok_r(buf, ".", &save); p != NULL && n < 7; p = strtok_r(NULL, ".", &save))
        parts[n++] = p;
    memset(f, 0, sizeof *f);
    if (n != 6 || strcmp(parts[0], "v1") != 0 ||
        auth_parse__only(parts[1], strlen(parts[1]), AUTH_PARSE__B64 "-_") != 0 ||
        sodium_base642bin((unsigned char *)f->user, sizeof f->user - 1, parts[1], strlen(parts[1]),
                          NULL, &ulen, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    if (ulen == 0 || memchr(f->user, '\0', ulen) != NULL)
        return -1; /* no user name is empty or holds a NUL */
    f->user[ulen] = '\0';
    snprintf(f->sid, sizeof f->sid, "%s", parts[2]);
    f->issued_ms = strtoll(parts[3], NULL, 10);
    f->seen_ms = strtoll(parts[4], NULL, 10);
    snprintf(f->tag, sizeof f->tag, "%s", parts[5]);
    return 0;
}

int auth_parse_basic(const char *b64, char user[AUTH_USER_MAX + 1],
                     char password[AUTH_PASSWORD_MAX + 1])
{
    unsigned char raw[512];
    size_t len = 0, ulen, plen;
    char *colon;

    if (auth_parse__only(b64, strlen(b64), AUTH_PARSE__B64 "+/=") != 0 ||
        sodium_base642bin(raw, sizeof raw - 1, b64, strlen(b64), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    raw[len] = '\0';
    colon = strchr((char *)raw, ':');
    ulen = colon != NULL ? (size_t)(colon - (char *)raw) : 0;
    plen = colon != NULL ? strlen(colon + 1) : 0;
    if (colon == NULL || ulen == 0 || ulen > AUTH_USER_MAX || plen > AUTH_PASSWORD_MAX) {
        sodium_memzero(raw, sizeof raw);
        return -1;
    }
    memcpy(user, raw, ulen);
    user[ulen] = '\0';
    memcpy(password, colon + 1, plen + 1);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

int auth_parse_on_behalf(const char *value, char *user, size_t ulen, char *role, size_t rlen)
{
    const char *colon = strrchr(value, ':');
    if (colon == NULL || (size_t)(colon - value) >= ulen)
        return -1;
    snprintf(user, ulen, "%.*s", (int)(colon - value), value);
    snprintf(role, rlen, "%s", colon + 1);
    return 0;
}

const char *auth_login_fields(const json_t *body, const char **user, const char **password)
{
    *user = json_string_value(json_object_get(body, "username"));
    *password = json_string_value(json_object_get(body, "password"));
    if (*user == NULL)
        return "username: required (a string)";
    if (strlen(*user) > AUTH_USER_MAX)
        return "username: too long (at most 127 bytes)";
    if (*password == NULL)
        return "password: required (a string)";
    if (strlen(*password) > AUTH_PASSWORD_MAX)
        return "password: too long (at most 255 bytes)";
    return NULL;
}
