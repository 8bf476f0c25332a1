/* credentials.h: the cluster's shared secrets as this node holds them: the cluster key
 * (signs sessions and node credentials), the cluster TLS certificate and key, and the first
 * admin's password on a new cluster. They live in the replicated store and, once learned,
 * in DIR/cluster-credentials.json (mode 0600), so that a restarted node can authenticate
 * and serve TLS before it has quorum again. Owned by the daemon (main.c). */
#ifndef VIGIL_CREDENTIALS_H
#define VIGIL_CREDENTIALS_H

#include <stdbool.h>
#include <jansson.h>

#include "controller/auth_crypto.h"
#include "controller/options.h"
#include "controller/store.h"

struct credentials {
    char secret[AUTH_KEY_HEX_LEN];  /* "" until known */
    char node_header[200];          /* "X-Vigil-Node-Auth: ID.MAC", "" until known */
    char *tls_cert;                 /* PEM in use for the API, or NULL (not yet / no TLS) */
    char *tls_key;
    bool operator_tls;              /* --tls-cert given */
    char admin_hash[AUTH_PWHASH_LEN];  /* new cluster: the first admin's hash we propose */
    char admin_file[700];           /* DIR/initial-admin-password when we made one */
    /* Proposed values, made once so that retried cluster_init proposals agree. */
    char proposed_secret[AUTH_KEY_HEX_LEN];
    char *proposed_cert;
    char *proposed_key;
    char dir[600];
    uint64_t node_id;
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
 * secret or the certificate was newly learned, else 0. */
int credentials_learn(struct credentials *c, struct store *store);

void credentials_close(struct credentials *c);

#endif
