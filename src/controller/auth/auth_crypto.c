#include "controller/auth/auth_crypto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"

static unsigned long long auth__ops;
static size_t auth__mem;
static char auth__dummy[crypto_pwhash_STRBYTES];

int auth_crypto_init(bool fast)
{
    if (sodium_init() < 0)
        return VIGIL_EIO;
    auth__ops = fast ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_INTERACTIVE;
    auth__mem = fast ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    /* The dummy hash (auth_crypto.h): the encoding crypto_pwhash_str gives, with this
     * build's parameters, a random salt and a random hash. Verifying against it costs what
     * verifying against a user's hash costs, but making it costs nothing: hashing a random
     * password here held every start back by one Argon2id run (~130 ms, 64 MiB). */
    {
        unsigned char salt[crypto_pwhash_SALTBYTES], hash[32];
        char salt64[sodium_base64_ENCODED_LEN(sizeof salt, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
        char hash64[sodium_base64_ENCODED_LEN(sizeof hash, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)];
        randombytes_buf(salt, sizeof salt);
        randombytes_buf(hash, sizeof hash);
        sodium_bin2base64(salt64, sizeof salt64, salt, sizeof salt,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
        sodium_bin2base64(hash64, sizeof hash64, hash, sizeof hash,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
        snprintf(auth__dummy, sizeof auth__dummy, "$argon2id$v=19$m=%zu,t=%llu,p=1$%s$%s",
                 auth__mem / 1024, auth__ops, salt64, hash64);
    }
    return 0;
}

int auth_password_hash(const char *password, char out[AUTH_PWHASH_LEN])
{
    char buf[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(buf, password, strlen(password), auth__ops, auth__mem) != 0)
        return VIGIL_ENOMEM;
    snprintf(out, AUTH_PWHASH_LEN, "%s", buf);
    return 0;
}

bool auth_password_verify(const char *hash, const char *password)
{
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

const char *auth_password_dummy_hash(void)
{
    return auth__dummy;
}

void auth_mac(const char *key_hex, const void *data, size_t len, char out[AUTH_MAC_HEX_LEN])
{
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    size_t key_len = 0;

    memset(key, 0, sizeof key);
    sodium_hex2bin(key, sizeof key, key_hex, strlen(key_hex), NULL, &key_len, NULL);
    crypto_auth_hmacsha256(mac, data, len, key);
    sodium_bin2hex(out, AUTH_MAC_HEX_LEN, mac, sizeof mac);
    sodium_memzero(key, sizeof key);
}

void auth_random_token(char *out, size_t outlen, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    randombytes_buf(buf, nbytes);
    sodium_bin2base64(out, outlen, buf, nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void auth_new_key(char out[AUTH_KEY_HEX_LEN])
{
    unsigned char key[32];
    randombytes_buf(key, sizeof key);
    sodium_bin2hex(out, AUTH_KEY_HEX_LEN, key, sizeof key);
}

bool auth_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return sodium_memcmp(a, b, la) == 0;
}
