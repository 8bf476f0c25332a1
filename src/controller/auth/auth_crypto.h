/* auth_crypto.h: the cryptographic primitives of authentication, all from libsodium:
 * Argon2id password hashes (for passwords only), HMAC-SHA256 keyed hashes (session and
 * token signatures, token storage, the Basic-credentials cache), random tokens, and
 * constant-time comparison. No state but the hashing limits. */
#ifndef VIGIL_AUTH_CRYPTO_H
#define VIGIL_AUTH_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

/* A hex HMAC-SHA256 (64 characters) plus NUL. */
#define AUTH_MAC_HEX_LEN 65
/* Random tokens: 32 bytes, base64url without padding (43 characters) plus NUL. */
#define AUTH_TOKEN_LEN 44
/* crypto_pwhash_STRBYTES. */
#define AUTH_PWHASH_LEN 128
/* The cluster key: 32 random bytes as hex plus NUL. */
#define AUTH_KEY_HEX_LEN 65

/* Initialises libsodium; FAST selects Argon2id's minimum limits (tests), else the
 * interactive ones. Returns 0 or VIGIL_EIO. */
int auth_crypto_init(bool fast);

/* Hashes PASSWORD into OUT (an Argon2id string). Slow on purpose: call it off the loop
 * thread (uv_queue_work). Returns 0 or VIGIL_ENOMEM. */
int auth_password_hash(const char *password, char out[AUTH_PWHASH_LEN]);

/* True if PASSWORD matches HASH. Slow: off the loop thread. */
bool auth_password_verify(const char *hash, const char *password);

/* A hash that no password matches but costs the same to check (for unknown users). */
const char *auth_password_dummy_hash(void);

/* HMAC-SHA256 of DATA under KEY_HEX (the cluster key), as hex into OUT. */
void auth_mac(const char *key_hex, const void *data, size_t len, char out[AUTH_MAC_HEX_LEN]);

/* LEN random bytes as base64url into OUT (at least 4*LEN/3+2 bytes). */
void auth_random_token(char *out, size_t outlen, size_t nbytes);

/* A new cluster key (32 random bytes, hex). */
void auth_new_key(char out[AUTH_KEY_HEX_LEN]);

/* Constant-time equality of two strings (false when the lengths differ). */
bool auth_equal(const char *a, const char *b);

#endif
