/* auth_parse.h: the text of credentials, read and written without any state: the session
 * cookie's value in a Cookie header, the signed payload of a session, HTTP Basic
 * credentials, the on-behalf-of header of a forwarded request and the login body's
 * fields. auth.c checks what they read (MACs, the store, lockout); these only parse, so
 * that bad text is told apart from bad credentials and can be fuzzed alone
 * (tests/fuzz/auth). Pure: no allocation, any thread. */
#ifndef VIGIL_AUTH_PARSE_H
#define VIGIL_AUTH_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define AUTH_USER_MAX 127     /* bytes of a user name in credentials */
#define AUTH_PASSWORD_MAX 255 /* bytes of a password in credentials */

/* Finds the value of the "sessionid" cookie in a Cookie header HEADER (borrowed) into OUT
 * (LEN bytes). Returns 1, or 0 when there is none or it does not fit. */
int auth_parse_cookie(const char *header, char *out, size_t len);

/* What a session's signed payload "v1.B64USER.SID.ISSUED.SEEN.TAG" carries. */
struct auth_session_fields {
    char user[160];  /* decoded (base64url without padding) */
    char sid[48];
    int64_t issued_ms, seen_ms;
    char tag[24];    /* the password tag, or "none" */
};

/* Writes F's payload into OUT (LEN bytes, cut to fit). */
void auth_session_format(const struct auth_session_fields *f, char *out, size_t len);

/* Reads the payload PAYLOAD (LEN bytes, borrowed: the cookie value before its last dot)
 * into *F. Returns 0, or -1 when it has not six dot-separated parts, a version other than
 * v1 or a user that is not base64url of a non-empty name without NUL bytes. */
int auth_parse_session(const char *payload, size_t len, struct auth_session_fields *f);

/* Decodes Basic credentials B64 (borrowed: what follows "Basic ") into USER and PASSWORD
 * (NUL-terminated; their sizes AUTH_USER_MAX + 1 and AUTH_PASSWORD_MAX + 1). Returns 0, or
 * -1 when B64 is not base64 (the standard alphabet and padding, nothing else) or does not decode to "user:password" with a user of 1 to
 * AUTH_USER_MAX bytes and a password of at most AUTH_PASSWORD_MAX (both cut at a NUL
 * byte, as C strings are). */
int auth_parse_basic(const char *b64, char user[AUTH_USER_MAX + 1],
                     char password[AUTH_PASSWORD_MAX + 1]);

/* Reads the on-behalf-of header VALUE (borrowed) "USER:ROLE" (the last colon splits) into
 * USER (ULEN bytes) and ROLE (RLEN bytes, cut to fit). Returns 0, or -1 when there is no
 * colon or the user does not fit. */
int auth_parse_on_behalf(const char *value, char *user, size_t ulen, char *role, size_t rlen);

/* The login body's fields: BODY (borrowed, a JSON object) must have the strings "username"
 * (at most AUTH_USER_MAX bytes) and "password" (at most AUTH_PASSWORD_MAX). Returns NULL
 * with *USER and *PASSWORD borrowed from BODY, or the refusal naming the first bad field
 * (a static string). */
const char *auth_login_fields(const json_t *body, const char **user, const char **password);

#endif
