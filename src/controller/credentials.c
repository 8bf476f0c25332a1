#include "controller/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/vlog.h"
#include "controller/auth/auth.h"
#include "controller/auth/tls.h"

#define CREDENTIALS__FILE "cluster-credentials.json"

static void credentials__set_secret(struct credentials *c, const char *secret)
{
    char cred[128];
    snprintf(c->secret, sizeof c->secret, "%s", secret);
    auth_node_credential(c->secret, c->node_id, cred, sizeof cred);
    snprintf(c->node_header, sizeof c->node_header, AUTH_NODE_HEADER ": %s", cred);
}

/* tls_serve from tls_cert and tls_leaf. */
static void credentials__serve(struct credentials *c)
{
    free(c->tls_serve);
    c->tls_serve = NULL;
    if (c->tls_cert == NULL)
        return;
    if (c->tls_leaf == NULL || c->operator_tls) {
        c->tls_serve = strdup(c->tls_cert);
    } else if (asprintf(&c->tls_serve, "%s%s%s", c->tls_leaf,
                        c->tls_leaf[strlen(c->tls_leaf) - 1] == '\n' ? "" : "\n",
                        c->tls_cert) < 0) {
        c->tls_serve = NULL;
    }
}

static void credentials__persist(struct credentials *c)
{
    json_t *j = json_pack("{s:s}", "secret", c->secret);
    char *text;
    if (!c->operator_tls && c->tls_cert != NULL) {
        json_object_set_new(j, "tls_cert", json_string(c->tls_cert));
        json_object_set_new(j, "tls_key", json_string(c->tls_key));
        if (c->tls_leaf != NULL)
            json_object_set_new(j, "tls_leaf", json_string(c->tls_leaf));
    }
    text = json_dumps(j, JSON_INDENT(1));
    json_decref(j);
    if (text == NULL || file_write_atomic(c->dir, CREDENTIALS__FILE, text) != 0)
        vlog_error("cannot write %s/%s: a restart without quorum will not know the cluster's "
                   "credentials", c->dir, CREDENTIALS__FILE);
    free(text);
}

static int credentials__admin_password(struct credentials *c, const struct vigild_options *o,
                                       char *err, size_t errlen)
{
    char password[256];

    if (o->admin_password_file[0] != '\0') {
        FILE *f = fopen(o->admin_password_file, "r");
        size_t n;
        if (f == NULL) {
            snprintf(err, errlen, "--admin-password-file: cannot read %s: %s",
                     o->admin_password_file, strerror(errno));
            return VIGIL_EINVAL;
        }
        n = fread(password, 1, sizeof password - 1, f);
        fclose(f);
        password[n] = '\0';
        password[strcspn(password, "\r\n")] = '\0';
        if (strlen(password) < 8) {
            snprintf(err, errlen, "--admin-password-file: the password must have at least 8 characters");
            return VIGIL_EINVAL;
        }
    } else {
        auth_random_token(password, sizeof password, 18);
        snprintf(c->admin_file, sizeof c->admin_file, "%s/initial-admin-password", c->dir);
        {
            char line[300];
            snprintf(line, sizeof line, "%s\n", password);
            if (file_write_atomic(c->dir, "initial-admin-password", line) != 0) {
                snprintf(err, errlen, "cannot write %s", c->admin_file);
                return VIGIL_EINVAL;
            }
        }
        fprintf(stderr, "vigild: the first admin's password (user \"admin\") is in %s\n",
                c->admin_file);
    }
    if (auth_password_hash(password, c->admin_hash) != 0) {
        snprintf(err, errlen, "cannot hash the admin password");
        return VIGIL_EINVAL;
    }
    memset(password, 0, sizeof password);
    return 0;
}

int credentials_open(struct credentials *c, const struct vigild_options *o, bool new_node,
                     char *err, size_t errlen)
{
    char path[700];
    json_t *j;

    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", o->data_dir);
    c->node_id = o->id;
    if (o->tls_cert[0] != '\0') {
        if (tls_read_pem(o->tls_cert, 0, &c->tls_cert, err, errlen) != 0 ||
            tls_read_pem(o->tls_key, 1, &c->tls_key, err, errlen) != 0)
            return VIGIL_EINVAL;
        c->operator_tls = true;
    }
    snprintf(path, sizeof path, "%s/%s", c->dir, CREDENTIALS__FILE);
    j = json_load_file(path, 0, NULL);
    if (j == NULL && access(path, F_OK) == 0) {
        snprintf(err, errlen, "damaged %s (remove it: the node learns it again from the leader)", path);
        return VIGIL_EINVAL;
    }
    if (j != NULL) {
        const char *secret = json_string_value(json_object_get(j, "secret"));
        const char *cert = json_string_value(json_object_get(j, "tls_cert"));
        const char *key = json_string_value(json_object_get(j, "tls_key"));
        const char *leaf = json_string_value(json_object_get(j, "tls_leaf"));
        if (secret != NULL && strlen(secret) == AUTH_KEY_HEX_LEN - 1)
            credentials__set_secret(c, secret);
        if (!c->operator_tls && cert != NULL && key != NULL) {
            c->tls_cert = strdup(cert);
            c->tls_key = strdup(key);
            c->tls_leaf = leaf != NULL && leaf[0] != '\0' ? strdup(leaf) : NULL;
        }
        json_decref(j);
    }
    credentials__serve(c);
    if (new_node && credentials__admin_password(c, o, err, errlen) != 0)
        return VIGIL_EINVAL;
    return 0;
}

void credentials_fill_init(struct credentials *c, const struct vigild_options *o, json_t *cmd)
{
    if (c->proposed_secret[0] == '\0')
        auth_new_key(c->proposed_secret);
    json_object_set_new(cmd, "secret", json_string(c->proposed_secret));
    if (c->admin_hash[0] != '\0')
        json_object_set_new(cmd, "admin", json_pack("{s:s, s:s}", "username", "admin", "hash",
                                                    c->admin_hash));
    if (c->proposed_cert == NULL) {
        const char *ips[CLUSTER_MAX_NODES + 2];
        char vip[64];
        size_t n = 0;
        for (unsigned i = 0; i < o->n_cluster; i++) {
            static char hosts[CLUSTER_MAX_NODES][80];
            snprintf(hosts[i], sizeof hosts[i], "%s", o->cluster[i].address);
            hosts[i][strcspn(hosts[i], ":")] = '\0';
            ips[n++] = hosts[i];
        }
        if (o->n_cluster == 0)
            ips[n++] = o->raft.host;
        /* The others' --api hosts are added by credentials_renew once they registered. */
        ips[n++] = netaddr_is_wildcard(&o->api) ? o->raft.host : o->api.host;
        if (o->vip[0] != '\0') {
            snprintf(vip, sizeof vip, "%s", o->vip);
            vip[strcspn(vip, "/")] = '\0';
            ips[n++] = vip;
        }
        if (tls_make_self_signed(ips, n, &c->proposed_cert, &c->proposed_key) != 0)
            vlog_error("cannot make the cluster's TLS certificate");
    }
    if (c->proposed_cert != NULL) {
        json_object_set_new(cmd, "tls_cert", json_string(c->proposed_cert));
        json_object_set_new(cmd, "tls_key", json_string(c->proposed_key));
    }
}

/* The host part of "HOST:PORT" into OUT (16 bytes); 0, or -1 when it is no IPv4 text. */
static int credentials__host(const char *address, char out[16])
{
    size_t n = address != NULL ? strcspn(address, ":") : 0;
    if (n == 0 || n >= 16)
        return -1;
    memcpy(out, address, n);
    out[n] = '\0';
    return 0;
}

json_t *credentials_renew(struct credentials *c, struct store *store, uint64_t term)
{
    enum { MAX_IPS = 64 };
    char old[MAX_IPS][16], want[2 * CLUSTER_MAX_NODES][16];
    const char *ips[MAX_IPS + 2 * CLUSTER_MAX_NODES];
    char *ca = store_meta_get(store, "tls_cert"), *key = store_meta_get(store, "tls_key");
    char *cert = store_meta_get(store, "tls_leaf"); /* what the cluster serves */
    char *renewed = NULL;
    json_t *nodes = NULL, *node, *cmd = NULL;
    size_t n_old = 0, n_want = 0, n = 0, i;
    int missing = 0;

    if (cert == NULL && ca != NULL)
        cert = strdup(ca);
    if (cert == NULL || key == NULL ||
        (c->renewed_term == term && c->renewed_from != NULL && strcmp(c->renewed_from, cert) == 0))
        goto out;
    nodes = store_nodes(store);
    json_array_foreach(nodes, i, node) {
        const char *fields[] = {"api_address", "raft_address"};
        for (size_t f = 0; f < 2 && n_want < 2 * CLUSTER_MAX_NODES; f++) {
            const char *address = json_string_value(json_object_get(node, fields[f]));
            if (credentials__host(address, want[n_want]) != 0)
                continue;
            missing |= !tls_cert_names_ip(cert, want[n_want]);
            n_want++;
        }
    }
    if (!missing || tls_cert_ips(cert, old, MAX_IPS, &n_old) != 0)
        goto out;
    for (i = 0; i < n_old; i++)
        ips[n++] = old[i];
    for (i = 0; i < n_want; i++)
        ips[n++] = want[i];
    if (tls_make_leaf(ca, key, ips, n, &renewed) != 0) {
        vlog_error("cannot renew the cluster's TLS certificate");
        goto out;
    }
    cmd = json_pack("{s:s, s:s, s:s}", "op", "tls_cert_renew", "previous", cert, "tls_leaf",
                    renewed);
    free(c->renewed_from);
    c->renewed_from = cert;
    cert = NULL;
    c->renewed_term = term;
    vlog_info("renewing the cluster's TLS certificate to name every node's API and raft host");
out:
    json_decref(nodes);
    free(renewed);
    free(cert);
    free(ca);
    free(key);
    return cmd;
}

int credentials_learn(struct credentials *c, struct store *store)
{
    int learned = 0;
    if (c->secret[0] == '\0') {
        char *secret = store_meta_get(store, "cluster_secret");
        if (secret != NULL) {
            credentials__set_secret(c, secret);
            free(secret);
            learned = 1;
        }
    }
    if (!c->operator_tls) {
        char *cert = store_meta_get(store, "tls_cert");
        char *key = store_meta_get(store, "tls_key");
        char *leaf = store_meta_get(store, "tls_leaf");
        if (cert != NULL && key != NULL &&
            (c->tls_cert == NULL || strcmp(cert, c->tls_cert) != 0 ||
             strcmp(key, c->tls_key) != 0 || (leaf == NULL) != (c->tls_leaf == NULL) ||
             (leaf != NULL && strcmp(leaf, c->tls_leaf) != 0))) {
            learned = c->tls_cert == NULL ? 1 : CREDENTIALS_RENEWED;
            free(c->tls_cert);
            free(c->tls_key);
            free(c->tls_leaf);
            c->tls_cert = cert;
            c->tls_key = key;
            c->tls_leaf = leaf;
            credentials__serve(c);
        } else {
            free(cert);
            free(key);
            free(leaf);
        }
    }
    if (learned) {
        credentials__persist(c);
        if (c->admin_file[0] != '\0') {
            /* Another node's proposal made the cluster: its admin password counts. */
            json_t *admin = store_user_get(store, "admin");
            const char *hash = json_string_value(json_object_get(admin, "hash"));
            if (hash == NULL || strcmp(hash, c->admin_hash) != 0) {
                unlink(c->admin_file);
                vlog_info("the first admin's password was made by another node: see that "
                          "node's data dir (initial-admin-password)");
            } else {
                vlog_info("the first admin's password (user \"admin\") is in %s", c->admin_file);
            }
            json_decref(admin);
            c->admin_file[0] = '\0';
        }
    }
    return learned;
}

void credentials_close(struct credentials *c)
{
    free(c->tls_cert);
    free(c->tls_key);
    free(c->proposed_cert);
    free(c->proposed_key);
    free(c->renewed_from);
    free(c->tls_leaf);
    free(c->tls_serve);
    c->tls_cert = c->tls_key = c->proposed_cert = c->proposed_key = c->renewed_from = NULL;
    c->tls_leaf = c->tls_serve = NULL;
}
