/* credentials.h: the cluster's shared secrets as this node holds them: the cluster key
 * (signs sessions and node credentials), the cluster TLS certificate and key, and the first
 * admin's password on a new cluster. They live in the replicated store and, once learned,
 * in DIR/cluster-credentials.json (mode 0600), so that a restarted node can authenticate
 * and serve TLS before it has quorum again. Owned by the daemon (main.c). */
#ifndef VIGIL_CREDENTIALS_H
#define VIGIL_CREDENTIALS_H

#include <stdbool.h>
#include <jansson.h>

#include "controller/auth/auth_crypto.h"
#include "controller/options.h"
#include "controller/store/store.h"

struct credentials {
    char secret[AUTH_KEY_HEX_LEN];  /* "" until known */
    char node_header[200];          /* "X-Vigil-Node-Auth: ID.MAC", "" until known */
    char *tls_cert;                 /* the cluster's self-signed CA certificate (what clients
                                     * and the other nodes trust), or --tls-cert's; NULL: not
                                     * yet / no TLS */
    char *tls_key;
    char *tls_leaf;                 /* the server certificate the CA signed once a node's host
                                     * was missing from it (credentials_renew), or NULL */
    char *tls_serve;                /* what the API serves: tls_leaf followed by tls_cert, or
                                     * tls_cert alone; NULL with it */
    bool operator_tls;              /* --tls-cert given */
    char admin_hash[AUTH_PWHASH_LEN];  /* new cluster: the first admin's hash we propose */
    char admin_file[700];           /* DIR/initial-admin-password when we made one */
    /* Proposed values, made once so that retried cluster_init proposals agree. */
    char proposed_secret[AUTH_KEY_HEX_LEN];
    char *proposed_cert;
    char *proposed_key;
    char dir[600];
    uint64_t node_id;
    /* The store's certificate this node last proposed a renewal of, and in which term. */
    char *renewed_from;
    uint64_t renewed_term;
};

/* Loads what DIR holds, the operator's certificate (--tls-cert/--tls-key) and, on a NEW_NODE,
 * prepares the first admin's password (from --admin-password-file, or a random one written
 * to DIR/initial-admin-password and announced on stderr). Returns 0, or VIGIL_EINVAL with a
 * one-line reason in ERR. Slow (one Argon2id hash) on a new node: call before the loop. */
int credentials_open(struct credentials *c, const struct vigild_options *o, bool new_node,
                     char *err, size_t errlen);

/* Adds "secret", "admin", "tls_cert" and "tls_key" to a cluster_init command CMD. */
void credentials_fill_init(struct credentials *c, const struct vigild_options *o, json_t *cmd);

/* Takes from STORE what this node does not know yet and persists it. Returns 1 when the
 * secret or the certificate was newly learned, CREDENTIALS_RENEWED when the certificate in
 * use was replaced by a renewed one (the caller hands it to the HTTPS server), else 0. */
#define CREDENTIALS_RENEWED 2
int credentials_learn(struct credentials *c, struct store *store);

/* The leader's check that the certificate the cluster serves (the store's self-signed CA,
 * or the server certificate it signed) names every registered node's API and raft host:
 * when one is missing, a "tls_cert_renew" command (new reference, the caller proposes it)
 * with a new server certificate signed by the CA naming them all as well as every address
 * the current one names; NULL when nothing is missing, when STORE has no certificate, or
 * when this node already proposed a renewal of that certificate in TERM. */
json_t *credentials_renew(struct credentials *c, struct store *store, uint64_t term);

void credentials_close(struct credentials *c);

#endif
