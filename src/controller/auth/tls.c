#include "controller/auth/tls.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/errors.h"

static char *tls__export(int (*fn)(void *, gnutls_x509_crt_fmt_t, gnutls_datum_t *), void *obj)
{
    gnutls_datum_t out = {NULL, 0};
    char *pem;
    if (fn(obj, GNUTLS_X509_FMT_PEM, &out) != 0)
        return NULL;
    pem = malloc(out.size + 1);
    if (pem != NULL) {
        memcpy(pem, out.data, out.size);
        pem[out.size] = '\0';
    }
    gnutls_free(out.data);
    return pem;
}

static int tls__export_crt(void *crt, gnutls_x509_crt_fmt_t f, gnutls_datum_t *out)
{
    return gnutls_x509_crt_export2(crt, f, out);
}

static int tls__export_key(void *key, gnutls_x509_crt_fmt_t f, gnutls_datum_t *out)
{
    return gnutls_x509_privkey_export2(key, f, out);
}

static void tls__names(gnutls_x509_crt_t crt, const char *const *ips, size_t n);

/* Everything but the signature: a random serial, 10 years from an hour ago, CN, KEY, a CA
 * (IS_CA) or a server certificate, the names. */
static void tls__fill(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn, int is_ca,
                      const char *const *ips, size_t n)
{
    unsigned char serial[16];
    time_t now = time(NULL);

    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial);
    serial[0] &= 0x7f;
    gnutls_x509_crt_set_version(crt, 3);
    gnutls_x509_crt_set_serial(crt, serial, sizeof serial);
    gnutls_x509_crt_set_activation_time(crt, now - 3600);
    gnutls_x509_crt_set_expiration_time(crt, now + 10L * 365 * 24 * 3600);
    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, strlen(cn));
    gnutls_x509_crt_set_key(crt, key);
    gnutls_x509_crt_set_basic_constraints(crt, is_ca, -1);
    gnutls_x509_crt_set_key_usage(crt, is_ca ? GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN
                                             : GNUTLS_KEY_DIGITAL_SIGNATURE);
    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0);
    tls__names(crt, ips, n);
}

int tls_make_self_signed(const char *const *ips, size_t n, char **cert_pem, char **key_pem)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rv = VIGIL_EIO;

    *cert_pem = *key_pem = NULL;
    if (gnutls_x509_privkey_init(&key) != 0 || gnutls_x509_crt_init(&crt) != 0)
        goto out;
    if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) != 0)
        goto out;
    /* Its own CA, so clients can trust exactly this certificate. */
    tls__fill(crt, key, "vigil cluster", 1, ips, n);
    if (gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) != 0)
        goto out;
    *cert_pem = tls__export(tls__export_crt, crt);
    *key_pem = tls__export(tls__export_key, key);
    if (*cert_pem != NULL && *key_pem != NULL)
        rv = 0;
out:
    if (rv != 0) {
        free(*cert_pem);
        free(*key_pem);
        *cert_pem = *key_pem = NULL;
    }
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    if (key != NULL)
        gnutls_x509_privkey_deinit(key);
    return rv;
}

static int tls__import(const char *cert_pem, gnutls_x509_crt_t *crt);

static void tls__names(gnutls_x509_crt_t crt, const char *const *ips, size_t n)
{
    unsigned char lo[4] = {127, 0, 0, 1};
    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", strlen("localhost"),
                                         GNUTLS_FSAN_APPEND);
    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, lo, 4, GNUTLS_FSAN_APPEND);
    for (size_t i = 0; i < n; i++) {
        struct in_addr ia;
        int dup = 0;
        if (inet_pton(AF_INET, ips[i], &ia) != 1 || ia.s_addr == htonl(0x7f000001) ||
            ia.s_addr == htonl(INADDR_ANY))
            continue;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(ips[j], ips[i]) == 0;
        if (!dup)
            gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, &ia, 4,
                                                 GNUTLS_FSAN_APPEND);
    }
}

int tls_make_leaf(const char *ca_cert_pem, const char *ca_key_pem, const char *const *ips,
                  size_t n, char **leaf_pem)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t ca = NULL, crt = NULL;
    gnutls_datum_t in = {(unsigned char *)ca_key_pem, (unsigned)strlen(ca_key_pem)};
    int rv = VIGIL_EIO;

    *leaf_pem = NULL;
    if (tls__import(ca_cert_pem, &ca) != 0) {
        ca = NULL;
        goto out;
    }
    if (gnutls_x509_privkey_init(&key) != 0) {
        key = NULL;
        goto out;
    }
    if (gnutls_x509_privkey_import(key, &in, GNUTLS_X509_FMT_PEM) != 0 ||
        gnutls_x509_crt_init(&crt) != 0) {
        crt = NULL;
        goto out;
    }
    tls__fill(crt, key, "vigil cluster node", 0, ips, n);
    if (gnutls_x509_crt_sign2(crt, ca, key, GNUTLS_DIG_SHA256, 0) != 0)
        goto out;
    *leaf_pem = tls__export(tls__export_crt, crt);
    if (*leaf_pem != NULL)
        rv = 0;
out:
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    if (ca != NULL)
        gnutls_x509_crt_deinit(ca);
    if (key != NULL)
        gnutls_x509_privkey_deinit(key);
    return rv;
}

static int tls__import(const char *cert_pem, gnutls_x509_crt_t *crt)
{
    gnutls_datum_t in = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    if (gnutls_x509_crt_init(crt) != 0)
        return VIGIL_ENOMEM;
    if (gnutls_x509_crt_import(*crt, &in, GNUTLS_X509_FMT_PEM) != 0) {
        gnutls_x509_crt_deinit(*crt);
        return VIGIL_EINVAL;
    }
    return 0;
}

int tls_cert_names_ip(const char *cert_pem, const char *ip)
{
    gnutls_x509_crt_t crt;
    struct in_addr ia;
    int named;
    if (inet_pton(AF_INET, ip, &ia) != 1 || tls__import(cert_pem, &crt) != 0)
        return 0;
    named = gnutls_x509_crt_check_ip(crt, (const unsigned char *)&ia, 4, 0) != 0;
    gnutls_x509_crt_deinit(crt);
    return named;
}

int tls_cert_ips(const char *cert_pem, char (*ips)[16], size_t max, size_t *n)
{
    gnutls_x509_crt_t crt;
    *n = 0;
    if (tls__import(cert_pem, &crt) != 0)
        return VIGIL_EINVAL;
    for (unsigned seq = 0;; seq++) {
        unsigned char buf[64];
        size_t size = sizeof buf;
        int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size, NULL);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (type != GNUTLS_SAN_IPADDRESS || size != 4)
            continue;
        if (*n == max) {
            gnutls_x509_crt_deinit(crt);
            return VIGIL_ETOOBIG;
        }
        inet_ntop(AF_INET, buf, ips[(*n)++], 16);
    }
    gnutls_x509_crt_deinit(crt);
    return 0;
}

int tls_fingerprint(const char *cert_pem, char out[96])
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t in = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    unsigned char digest[32];
    size_t len = sizeof digest;
    int rv = VIGIL_EINVAL;

    out[0] = '\0';
    if (gnutls_x509_crt_init(&crt) != 0)
        return VIGIL_EINVAL;
    if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) == 0 &&
        gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, digest, &len) == 0) {
        for (size_t i = 0; i < len; i++)
            snprintf(out + i * 3, 4, "%02X%s", digest[i], i + 1 < len ? ":" : "");
        rv = 0;
    }
    gnutls_x509_crt_deinit(crt);
    return rv;
}

int tls_read_pem(const char *path, int want_key, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long size;
    gnutls_datum_t in;
    int ok = 0;

    *out = NULL;
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s", path);
        return VIGIL_EINVAL;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size <= 0 || size > 1024 * 1024) {
        fclose(f);
        snprintf(err, errlen, "%s: not a PEM file of sensible size", path);
        return VIGIL_EINVAL;
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(buf);
        snprintf(err, errlen, "cannot read %s", path);
        return VIGIL_EINVAL;
    }
    fclose(f);
    buf[size] = '\0';
    in.data = (unsigned char *)buf;
    in.size = (unsigned)size;
    if (want_key) {
        gnutls_x509_privkey_t key;
        if (gnutls_x509_privkey_init(&key) == 0) {
            ok = gnutls_x509_privkey_import(key, &in, GNUTLS_X509_FMT_PEM) == 0;
            gnutls_x509_privkey_deinit(key);
        }
    } else {
        gnutls_x509_crt_t crt;
        if (gnutls_x509_crt_init(&crt) == 0) {
            ok = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) == 0;
            gnutls_x509_crt_deinit(crt);
        }
    }
    if (!ok) {
        free(buf);
        snprintf(err, errlen, "%s: not a PEM %s", path, want_key ? "private key" : "certificate");
        return VIGIL_EINVAL;
    }
    *out = buf;
    return 0;
}
