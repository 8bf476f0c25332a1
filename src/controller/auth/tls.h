/* tls.h: the cluster's self-signed certificate (GnuTLS), made once at bootstrap by the first
 * leader and replicated, naming every node's address and the cluster IP. */
#ifndef VIGIL_TLS_H
#define VIGIL_TLS_H

#include <stddef.h>

/* Makes an ECDSA P-256 key and a self-signed CA certificate (10 years) whose
 * subjectAltNames are the N addresses in IPS (IPv4 text; duplicates and 0.0.0.0 skipped)
 * plus 127.0.0.1 and "localhost". *CERT_PEM and *KEY_PEM are malloc'd and owned by the
 * caller. Returns 0 or VIGIL_EIO. */
int tls_make_self_signed(const char *const *ips, size_t n, char **cert_pem, char **key_pem);

/* Makes a server certificate ("vigil cluster node", 10 years) for the key of CA_CERT_PEM,
 * signed by that CA (CA_KEY_PEM), naming IPS as tls_make_self_signed does: what a cluster
 * serves once its self-signed certificate lacks a node's host (a client that trusts the CA,
 * the file users saved, verifies it). *LEAF_PEM is malloc'd, owned by the caller. Returns
 * 0 or VIGIL_EIO. */
int tls_make_leaf(const char *ca_cert_pem, const char *ca_key_pem, const char *const *ips,
                  size_t n, char **leaf_pem);

/* 1 when CERT_PEM's subjectAltNames name the IPv4 address IP (text), else 0. */
int tls_cert_names_ip(const char *cert_pem, const char *ip);

/* The IPv4 subjectAltNames of CERT_PEM as text into IPS (at most MAX), *N of them. Returns 0,
 * VIGIL_EINVAL (not a certificate) or VIGIL_ETOOBIG (more than MAX). */
int tls_cert_ips(const char *cert_pem, char (*ips)[16], size_t max, size_t *n);

/* The SHA-256 fingerprint of CERT_PEM as "AB:CD:..." into OUT (96 bytes). 0 or VIGIL_EINVAL. */
int tls_fingerprint(const char *cert_pem, char out[96]);

/* Reads a PEM file into a malloc'd string (*OUT), checking that it holds a certificate
 * (WANT_KEY 0) or a private key (WANT_KEY 1). 0, or VIGIL_EINVAL with a reason in ERR. */
int tls_read_pem(const char *path, int want_key, char **out, char *err, size_t errlen);

#endif
