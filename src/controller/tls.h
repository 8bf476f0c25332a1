/* tls.h: the cluster's self-signed certificate (GnuTLS), made once at bootstrap by the first
 * leader and replicated, naming every node's address and the cluster IP. */
#ifndef VIGIL_TLS_H
#define VIGIL_TLS_H

#include <stddef.h>

/* Makes an ECDSA P-256 key and a self-signed certificate (10 years) whose subjectAltNames
 * are the N addresses in IPS (IPv4 text) plus 127.0.0.1 and "localhost". *CERT_PEM and
 * *KEY_PEM are malloc'd and owned by the caller. Returns 0 or VIGIL_EIO. */
int tls_make_self_signed(const char *const *ips, size_t n, char **cert_pem, char **key_pem);

/* The SHA-256 fingerprint of CERT_PEM as "AB:CD:..." into OUT (96 bytes). 0 or VIGIL_EINVAL. */
int tls_fingerprint(const char *cert_pem, char out[96]);

/* Reads a PEM file into a malloc'd string (*OUT), checking that it holds a certificate
 * (WANT_KEY 0) or a private key (WANT_KEY 1). 0, or VIGIL_EINVAL with a reason in ERR. */
int tls_read_pem(const char *path, int want_key, char **out, char *err, size_t errlen);

#endif
