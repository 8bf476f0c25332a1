/* main.c: vigild, a controller node. Owns the daemon's parts and wires them together:
 * options -> data dir -> store -> REST server -> raft (cluster) -> node registration and
 * the status driver. */
#include <errno.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/objects.h"
#include "common/sd_notify.h"
#include "common/timeutil.h"
#include "common/version.h"
#include "common/vlog.h"
#include "controller/auth/auth.h"
#include "controller/auth/auth_crypto.h"
#include "controller/consensus/cluster.h"
#include "controller/credentials.h"
#include "controller/net/http_server.h"
#include "controller/options.h"
#include "controller/api/api.h"
#include "controller/api/api_stream.h"
#include "controller/api/rest.h"
#include "controller/status/events.h"
#include "controller/net/http_client.h"
#include "controller/consensus/leader_link.h"
#include "controller/consensus/peers.h"
#include "controller/status/status_driver.h"
#include "controller/store/store.h"
#include "controller/auth/tls.h"
#include "controller/vip/vip.h"
#include "controller/api/write_path.h"
#include "controller/se_channel/se_session.h"
#include "controller/se_channel/ssh_server.h"
#include "controller/logs/log_store.h"
#include "controller/rebuild.h"

#define VIGILD_MAX_BODY (1024 * 1024)
/* Registration retries, learning credentials, saving DIR/nodes.json. */
#define VIGILD_HOUSEKEEPING_MS 50
/* The SE channel: sessions at once, the handshake's deadline, the node's heartbeat and how
 * many a silent SE may miss, the largest frame an SE may send, what may wait for one. */
#define VIGILD_SE_MAX_SESSIONS 4096
#define VIGILD_SE_HANDSHAKE_MS 10000
#define VIGILD_SE_HEARTBEAT_MS 1000
#define VIGILD_SE_MISS_LIMIT 3
#define VIGILD_SE_MAX_INBOUND (1024 * 1024)
#define VIGILD_SE_MAX_OUTBOUND (2 * SE_FRAME_MAX_PAYLOAD + 65536)

struct vigild {
    uv_loop_t loop;
    struct vigild_options opts;
    char raft_dir[600];
    char host_key_pub[256];
    char host_key_path[700];
    int lock_fd;
    struct store *store;
    struct cluster *cluster;
    struct http_server *api;
    int api_fd;                  /* the API's bound socket until the server runs */
    int se_fd;                   /* --se-listen, bound at start until the SE channel serves it */
    struct ssh_server *se_server; /* the SE channel's transport */
    struct se_sessions *se_sessions; /* the SE channel's protocol */
    struct log_store *log_store; /* DIR/logs.db, the SEs' access logs (NULL: none could be made) */
    char log_store_damage[1500]; /* what log_store_open set aside, for the event ("" if none) */
    struct credentials cred;
    struct auth *auth;
    const char *scheme;          /* "http" (--no-tls) or "https" */
    struct rest *rest;           /* the API's gate and router */
    struct api_objects api_objects; /* the API's areas: what each one's handlers see */
    struct api_cluster api_cluster;
    struct api_metrics api_metrics;
    struct api_auth api_auth;
    struct api_events api_events;
    struct api_analytics api_analytics;
    struct api_stream *stream;   /* GET /api/stream (the live stream), or NULL once closed */
    struct http_client *client;
    struct leader_link *link;    /* every call to the leader (writes, commands, events) */
    struct write_path *write_path;
    struct peers *peers;
    struct status_driver *driver;
    struct events *events;
    struct vip *vip;             /* the cluster IP (--vip), or NULL */
    char boot[OBJ_UUID_LEN + 1]; /* this process's incarnation */
    uint64_t last_leader;        /* the leader last known (for the role of a node that left) */
    int self_joined;             /* this incarnation reported its own join */
    uv_timer_t housekeeping_timer;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    char *nodes_written;         /* the node records last saved in DIR/nodes.json */
    uint64_t init_proposed_term; /* the term in which this node proposed cluster_init */
    uint64_t cert_checked_term;  /* the term in which credentials_renew last ran */
    /* --rebuild: what this node reports to its peers until it caught up ("" once done). */
    char rebuild_report[900];
    char rebuild_moved_to[700];
    uint64_t rebuild_leader;
    uint64_t rebuild_target;      /* the leader's commit index as first reported after it */
    int peer_rebuilding;          /* a peer's report says it rebuilds: short install timeout */
    int64_t rebuild_started_ms;
    int stopping;
};

static void vigild__die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Startup failures: one line on stderr, exit status 2. */
static void vigild__die(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "vigild: %s\n", vlog_one_line(line));
    exit(2);
}

/* --- the data directory ------------------------------------------------------------ */

static void vigild__mkdirs(const char *path)
{
    char buf[600];
    struct stat st;

    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            vigild__die("cannot create data dir %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        vigild__die("cannot create data dir %s: %s", path, strerror(errno));
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        vigild__die("data dir %s is not a directory", path);
}

static void vigild__open_data_dir(struct vigild *d)
{
    char path[700];

    vigild__mkdirs(d->opts.data_dir);
    snprintf(path, sizeof path, "%s/LOCK", d->opts.data_dir);
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0)
        vigild__die("data dir %s is not usable: %s", d->opts.data_dir, strerror(errno));
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0)
        vigild__die("data dir %s is in use by another vigild", d->opts.data_dir);
    snprintf(d->raft_dir, sizeof d->raft_dir, "%s/raft", d->opts.data_dir);
    if (mkdir(d->raft_dir, 0700) != 0 && errno != EEXIST)
        vigild__die("cannot create %s: %s", d->raft_dir, strerror(errno));
}

/* A restarted node takes its identity (id, raft address) from DIR/node.json; a new one
 * records the flags' values there. Returns true for a new node. */
static bool vigild__identity(struct vigild *d)
{
    char path[700];
    json_error_t jerr;
    json_t *id;
    struct vigild_options *o = &d->opts;

    snprintf(path, sizeof path, "%s/node.json", o->data_dir);
    id = json_load_file(path, 0, &jerr);
    if (id == NULL && access(path, F_OK) == 0)
        vigild__die("damaged %s: %s", path, jerr.text);
    if (id != NULL) {
        json_int_t nid = 0;
        const char *raft = NULL;
        struct netaddr a;
        if (json_unpack(id, "{s:I, s:s}", "id", &nid, "raft", &raft) != 0 || nid < 1 ||
            netaddr_parse(raft, &a) != 0)
            vigild__die("damaged %s: expected {\"id\": N, \"raft\": \"HOST:PORT\"}", path);
        if ((o->id_set && (uint64_t)nid != o->id) ||
            (o->raft_set && (strcmp(a.host, o->raft.host) != 0 || a.port != o->raft.port)))
            vlog_warn("this data dir belongs to node %lld at %s: using that identity, not the flags'",
                      (long long)nid, raft);
        if (!o->name_set)
            snprintf(o->name, sizeof o->name, "node-%lld", (long long)nid);
        o->id = (uint64_t)nid;
        o->raft = a;
        json_decref(id);
        return false;
    }
    {
        char text[256];
        int rv;
        snprintf(text, sizeof text, "{\"id\": %llu, \"raft\": \"%s:%u\"}\n",
                 (unsigned long long)o->id, o->raft.host, o->raft.port);
        rv = file_write_atomic(o->data_dir, "node.json", text);
        if (rv != 0)
            vigild__die("cannot write %s: %s", path, strerror(-rv));
    }
    return true;
}

/* Loads (or makes, on the first start) the node's SSH host key; keeps its public half. */
static void vigild__host_key(struct vigild *d)
{
    char *path = d->host_key_path;
    ssh_key key = NULL;
    char *b64 = NULL;

    snprintf(path, sizeof d->host_key_path, "%s/ssh_host_ed25519_key", d->opts.data_dir);
    if (access(path, F_OK) != 0) {
        if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK ||
            ssh_pki_export_privkey_file(key, NULL, NULL, NULL, path) != SSH_OK)
            vigild__die("cannot create the SSH host key %s", path);
        chmod(path, 0600);
        ssh_key_free(key);
        key = NULL;
    }
    if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, &key) != SSH_OK ||
        ssh_key_type(key) != SSH_KEYTYPE_ED25519 || ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK)
        vigild__die("damaged SSH host key %s (remove it to make a new one)", path);
    snprintf(d->host_key_pub, sizeof d->host_key_pub, "ssh-ed25519 %s", b64);
    ssh_string_free_char(b64);
    ssh_key_free(key);
}

/* --- node registration ---------------------------------------------------------------- */

static void vigild__advertised(const struct vigild *d, const struct netaddr *a, char *out,
                               size_t len)
{
    /* A wildcard listener is advertised with the node's raft host. */
    snprintf(out, len, "%s:%u", netaddr_is_wildcard(a) ? d->opts.raft.host : a->host, a->port);
}

static void vigild__start_api(struct vigild *d);

/* Keeps DIR/nodes.json equal to the store's node records, so that after a restart the
 * liveness channel knows every member's address before the store has caught up. Returns 1
 * when the records changed. */
static int vigild__save_nodes(struct vigild *d)
{
    json_t *nodes = store_nodes(d->store);
    char *text = json_array_size(nodes) > 0 ? json_dumps(nodes, JSON_COMPACT) : NULL;
    int changed = 0;

    if (text != NULL && (d->nodes_written == NULL || strcmp(text, d->nodes_written) != 0)) {
        if (file_write_atomic(d->opts.data_dir, "nodes.json", text) == 0) {
            free(d->nodes_written);
            d->nodes_written = text;
            text = NULL;
            changed = 1;
        }
    }
    free(text);
    json_decref(nodes);
    return changed;
}

static void vigild__load_nodes(struct vigild *d)
{
    char path[700];
    json_t *nodes;
    snprintf(path, sizeof path, "%s/nodes.json", d->opts.data_dir);
    nodes = json_load_file(path, 0, NULL);
    if (nodes == NULL)
        return; /* none yet, or damaged: the store's records arrive with the log */
    if (!json_is_array(nodes)) {
        json_decref(nodes);
        return;
    }
    peers_set_known_nodes(d->peers, nodes);
}

/* --rebuild: refused (exit 2, nothing touched) unless a leader with quorum answers; then the
 * raft state goes to DIR/damaged-<time>/ and raft starts empty (see rebuild.h). */
static void vigild__rebuild(struct vigild *d)
{
    struct rebuild_leader leader;
    char err[1200];

    d->rebuild_started_ms = time_mono_ms();
    if (rebuild_find_leader(&d->loop, d->client, d->opts.data_dir, d->opts.id, d->scheme,
                            d->cred.node_header, 2 * d->opts.election_timeout_ms + 2000, &leader,
                            err, sizeof err) != 0 ||
        rebuild_set_aside(d->opts.data_dir, d->raft_dir, &leader, d->rebuild_moved_to,
                          sizeof d->rebuild_moved_to, err, sizeof err) != 0)
        vigild__die("%s", err);
    d->rebuild_leader = leader.id;
    snprintf(d->rebuild_report, sizeof d->rebuild_report,
             "rebuilding its damaged local state from the leader (the old state is in %s)",
             d->rebuild_moved_to);
    vlog_info("rebuild: node %llu leads term %llu (%s); this node's raft state was moved to %s; "
              "taking the leader's state", (unsigned long long)leader.id,
              (unsigned long long)leader.term, leader.status, d->rebuild_moved_to);
}

/* The rebuild's event, once the events outbox runs; and its end, once this node applied
 * what its leader had committed when the leader's first report after the rebuild came
 * (called from housekeeping). A snapshot's index is not the end: the entries after it
 * follow. */
static void vigild__rebuild_progress(struct vigild *d, int started)
{
    uint64_t applied;
    if (d->rebuild_report[0] == '\0')
        return;
    if (started) {
        json_t *details = json_pack("{s:s, s:s, s:I}", "node_name", d->opts.name, "moved_to",
                                    d->rebuild_moved_to, "leader_node",
                                    (json_int_t)d->rebuild_leader);
        events_record(d->events, "CONTROLLER_NODE_REBUILT", "CLUSTERMGR", "CONTROLLER_NODE",
                      d->opts.name, d->rebuild_report, details);
        json_decref(details);
        return;
    }
    if (d->rebuild_target == 0) {
        uint64_t leader = cluster_leader(d->cluster, NULL);
        const struct peer_state *ps = leader != 0 ? peers_get(d->peers, leader) : NULL;
        json_int_t commit = ps != NULL && ps->reachable && ps->report != NULL
                                ? json_integer_value(json_object_get(ps->report, "commit_index"))
                                : 0;
        if (commit <= 0)
            return;
        d->rebuild_target = (uint64_t)commit;
    }
    applied = cluster_applied_index(d->cluster);
    if (applied < d->rebuild_target)
        return;
    vlog_info("rebuild: done: caught up with the leader at index %llu in %lld ms",
              (unsigned long long)applied, (long long)(time_mono_ms() - d->rebuild_started_ms));
    d->rebuild_report[0] = '\0';
}

/* While a reachable peer reports that it rebuilds, the install-snapshot timeout is short:
 * libraft 0.15 ignores the rebuilt node's answer to the snapshot (below the match index of
 * its old incarnation) and waits for the timeout before it sends the entries after it. */
static void vigild__watch_rebuilding_peers(struct vigild *d)
{
    struct cluster_member members[CLUSTER_MAX_NODES];
    unsigned n = cluster_members(d->cluster, members, CLUSTER_MAX_NODES);
    int rebuilding = 0;

    for (unsigned i = 0; i < n && !rebuilding; i++) {
        const struct peer_state *ps = members[i].id != d->opts.id ? peers_get(d->peers, members[i].id)
                                                                   : NULL;
        json_t *errors = ps != NULL && ps->reachable ? json_object_get(ps->report, "errors") : NULL;
        const char *first = json_string_value(json_array_get(errors, 0));
        rebuilding = first != NULL && strstr(first, "rebuilding") != NULL;
    }
    if (rebuilding != d->peer_rebuilding) {
        d->peer_rebuilding = rebuilding;
        cluster_set_install_timeout(d->cluster, rebuilding ? CLUSTER_INSTALL_TIMEOUT_REBUILD_MS
                                                           : CLUSTER_INSTALL_TIMEOUT_MS);
        vlog_info("cluster: %s", rebuilding ? "a peer is rebuilding: install-snapshot timeout "
                                              "3 s until it is done"
                                            : "install-snapshot timeout back to 30 s");
    }
}

/* Housekeeping on a short timer: learns the cluster's credentials (starts the HTTPS server
 * once the certificate is known, hands it a renewed one), keeps DIR/nodes.json current, as
 * the leader of a new cluster proposes the cluster's identity (uuid, key, certificate, first
 * admin), and as a leader renews the certificate when a node's host is missing from it. */
static void vigild__on_housekeeping(uv_timer_t *t)
{
    struct vigild *d = t->data;
    char *cuuid;
    int learned, nodes_changed;

    if (d->stopping)
        return;
    learned = credentials_learn(&d->cred, d->store);
    if (learned && d->api == NULL) {
        vigild__start_api(d);
    } else if (learned == CREDENTIALS_RENEWED && !d->opts.no_tls && d->api != NULL) {
        char fp[96];
        if (d->cred.tls_serve == NULL ||
            http_server_set_cert(d->api, d->cred.tls_serve, d->cred.tls_key) != 0)
            vlog_error("cannot serve the renewed cluster certificate: keeping the previous one");
        else if (tls_fingerprint(d->cred.tls_serve, fp) == 0)
            vlog_info("serving the renewed cluster certificate, SHA-256 fingerprint %s", fp);
    }
    vigild__rebuild_progress(d, 0);
    vigild__watch_rebuilding_peers(d);
    nodes_changed = vigild__save_nodes(d);
    if (!cluster_is_leader(d->cluster))
        return;
    /* Checked when the node records or the certificate changed, and once per term. */
    if (nodes_changed || learned || d->cert_checked_term != cluster_term(d->cluster)) {
        json_t *renew = credentials_renew(&d->cred, d->store, cluster_term(d->cluster));
        d->cert_checked_term = cluster_term(d->cluster);
        if (renew != NULL)
            events_submit(d->events, renew);
    }
    if (d->init_proposed_term == cluster_term(d->cluster))
        return;
    cuuid = store_meta_get(d->store, "cluster_uuid");
    if (cuuid == NULL) {
        char uuid[OBJ_UUID_LEN + 1];
        json_t *cmd;
        obj_uuid_generate(uuid);
        cmd = json_pack("{s:s, s:s, s:s}", "op", "cluster_init", "uuid", uuid, "name",
                        d->opts.cluster_name);
        credentials_fill_init(&d->cred, &d->opts, cmd);
        /* Once per term; if several leaders propose one, the first committed wins. */
        events_submit(d->events, cmd);
        d->init_proposed_term = cluster_term(d->cluster);
    }
    free(cuuid);
}

/* This node's record (addresses, name, SSH host key), reported to the leader at start
 * and kept until committed. */
static void vigild__register(struct vigild *d)
{
    char raft[80], api[80], se[80];
    vigild__advertised(d, &d->opts.raft, raft, sizeof raft);
    vigild__advertised(d, &d->opts.api, api, sizeof api);
    vigild__advertised(d, &d->opts.se_listen, se, sizeof se);
    events_submit(d->events,
                  json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:s, s:s}}", "op", "node_register", "node",
                            "id", (json_int_t)d->opts.id, "name", d->opts.name, "raft_address",
                            raft, "api_address", api, "se_address", se, "se_host_key",
                            d->host_key_pub));
}

/* --- wiring ----------------------------------------------------------------------------- */

static void vigild__on_auth_event(void *data, const char *event_id, const char *user,
                                  const char *ip)
{
    struct vigild *d = data;
    char desc[300];
    json_t *details = json_pack("{s:s, s:s, s:s}", "username", user, "client_ip", ip, "node",
                                d->opts.name);
    snprintf(desc, sizeof desc, "%s for user %s from %s",
             strcmp(event_id, "USER_LOGIN") == 0          ? "Login"
             : strcmp(event_id, "USER_LOGIN_FAILED") == 0 ? "Failed login"
                                                          : "Account locked after failed logins",
             user, ip);
    events_record(d->events, event_id, "AUTH", "USER", user, desc, details);
    json_decref(details);
}

/* Builds the API: each area gets what its handlers use, the router its routes (auth first,
 * objects last: see api.h). */
static void vigild__wire_api(struct vigild *d)
{
    d->rest = rest_new(&d->loop, d->auth, d->opts.id);
    if (d->rest == NULL)
        vigild__die("out of memory");
    d->api_auth = (struct api_auth){d->auth, d->store, d->write_path};
    d->api_cluster = (struct api_cluster){d->store, d->cluster, d->driver, d->peers,
                                          d->write_path, d->opts.id, d->boot,
                                          d->opts.cluster_name, d->opts.vip, NULL,
                                          d->rebuild_report, NULL, time_now_ms()};
    d->api_events = (struct api_events){d->store};
    d->api_analytics = (struct api_analytics){d->log_store, d->store, d->cluster, d->client,
                                              d->opts.id, d->scheme, d->cred.node_header};
    d->api_objects = (struct api_objects){d->store, d->cluster, d->write_path, NULL};
    d->api_metrics = (struct api_metrics){d->cluster, d->driver, NULL, d->opts.id, d->opts.name};
    d->stream = api_stream_new(&d->loop, d->store, &d->api_cluster, &d->api_objects);
    if (d->stream == NULL)
        vigild__die("out of memory");
    if (api_auth_register(d->rest, &d->api_auth) != 0 ||
        api_analytics_register(d->rest, &d->api_analytics) != 0 ||
        api_cluster_register(d->rest, &d->api_cluster) != 0 ||
        api_events_register(d->rest, &d->api_events) != 0 ||
        api_stream_register(d->rest, d->stream) != 0 ||
        api_metrics_register(d->rest, &d->api_metrics) != 0 || api_ui_register(d->rest) != 0 ||
        api_objects_register(d->rest, &d->api_objects) != 0)
        vigild__die("the API's route table is full");
}

/* Tells systemd STATE (Type=notify units); a failure is logged, never fatal. */
static void vigild__notify(const char *state)
{
    int rv = sd_notify_send(state);
    if (rv < 0)
        vlog_warn("cannot notify systemd (%s): %s", state, strerror(-rv));
}

/* Serves the API once it can: at once over plain HTTP, over TLS once the certificate is
 * known (given, from DIR, or replicated from the first leader). */
static void vigild__start_api(struct vigild *d)
{
    char err[512], fp[96];
    if (d->api != NULL || (!d->opts.no_tls && d->cred.tls_serve == NULL))
        return;
    d->api = http_server_start_fd(&d->loop, d->api_fd, d->opts.no_tls ? NULL : d->cred.tls_serve,
                                  d->opts.no_tls ? NULL : d->cred.tls_key, VIGILD_MAX_BODY,
                                  rest_handle, d->rest, err, sizeof err);
    d->api_fd = -1;
    if (d->api == NULL) {
        vlog_error("--api: %s", err);
        exit(2);
    }
    http_server_set_answered_cb(d->api, rest_count_answer, NULL);
    vigild__notify("READY=1"); /* systemd (Type=notify): the API serves */
    if (!d->opts.no_tls && tls_fingerprint(d->cred.tls_serve, fp) == 0)
        vlog_info("serving https on %s:%u, certificate SHA-256 fingerprint %s", d->opts.api.host,
                  d->opts.api.port, fp);
}

static void vigild__on_cluster_change(void *data)
{
    struct vigild *d = data;
    uint64_t leader = cluster_leader(d->cluster, NULL);
    if (leader != 0)
        d->last_leader = leader;
    if (leader != 0 && !d->self_joined && d->events != NULL) {
        d->self_joined = 1;
        events_node_presence(d->events, d->opts.id, d->boot, true,
                             leader == d->opts.id ? "CLUSTER_LEADER" : "CLUSTER_FOLLOWER");
    }
    if (d->driver != NULL)
        status_driver_poke(d->driver);
    if (d->vip != NULL)
        vip_update(d->vip);
    if (d->se_sessions != NULL)
        se_sessions_poke(d->se_sessions);
}

static void vigild__on_peer_change(void *data, uint64_t id, bool reachable, const char *prev_boot)
{
    struct vigild *d = data;
    const struct peer_state *ps = peers_get(d->peers, id);
    /* The role it had: as it last reported itself, or as this node last knew it. */
    const char *role = (ps != NULL && ps->leader_id == id) || id == d->last_leader
                           ? "CLUSTER_LEADER"
                           : "CLUSTER_FOLLOWER";

    if (reachable) {
        /* Also for a node that restarted unseen (a new boot while reachable): its leaving
         * was not observed, so only the join is reported. */
        if (ps != NULL)
            events_node_presence(d->events, id, ps->boot, true,
                                 ps->leader_id == id ? "CLUSTER_LEADER" : "CLUSTER_FOLLOWER");
        status_driver_member_rejoined(d->driver, id);
        cluster_peer_back(d->cluster, id);
    } else if (ps != NULL) {
        events_node_presence(d->events, id, ps->boot, false, role);
    }
    status_driver_poke(d->driver);
}

/* A peer answered: its readiness for SEs may have moved, which this node's SEs hear at once
 * (se_sessions_peers_changed). */
static void vigild__on_peer_answer(void *data, uint64_t id)
{
    struct vigild *d = data;
    (void)id;
    if (d->se_sessions != NULL)
        se_sessions_peers_changed(d->se_sessions);
}

static void vigild__on_status_move(void *data, enum cluster_status from, enum cluster_status to,
                                   const char *reason, bool as_leader)
{
    struct vigild *d = data;
    if (!as_leader)
        return;
    events_status_changed(d->events, from, to, reason);
    if (to == STATUS_WAITING_FOR_SES) {
        /* The first entry of this leader's term is committed. */
        events_leader_elected(d->events, cluster_term(d->cluster));
        events_node_presence(d->events, d->opts.id, d->boot, true, "CLUSTER_LEADER");
    }
}

/* --- the SE channel ---------------------------------------------------------------- */

/* SE_LOGS_DROPPED for R's drop episode, through the outbox: its key names the SE, the SE's
 * run and the episode, so the leader records it once however often it is reported (a
 * reconnect, this node's restart: the store drops an event whose key it holds). */
static void vigild__report_logs_dropped(struct vigild *d, const struct se_session_report *r)
{
    char key[300], desc[300];
    snprintf(key, sizeof key, "SE_LOGS_DROPPED:%s:%s:%lld", r->uuid, r->logs.run,
             (long long)r->logs.episode);
    snprintf(desc, sizeof desc, "Service Engine %s dropped access-log records: its spool hit "
             "its cap of %lld bytes", r->name, (long long)r->logs.spool_cap_bytes);
    events_submit(d->events,
                  json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:{s:s, s:I, s:I, s:I, s:I}}",
                            "op", "event_record", "key", key, "event_id", "SE_LOGS_DROPPED",
                            "time", (json_int_t)time_now_ms(), "module", "SEMGR", "obj_type",
                            "SERVICEENGINE", "obj_name", r->name, "description", desc, "details",
                            "se_name", r->name, "dropped", (json_int_t)r->logs.dropped,
                            "spool_cap_bytes", (json_int_t)r->logs.spool_cap_bytes, "episode",
                            (json_int_t)r->logs.episode, "episode_dropped",
                            (json_int_t)r->logs.episode_dropped));
}

/* A change of one of this node's SE sessions, on its way to the leader through the
 * events outbox (in order, kept until committed): the leader's FSM derives the SE runtime
 * record and the SE events from it (store_se.h). */
static void vigild__on_se_report(void *data, const struct se_session_report *r)
{
    struct vigild *d = data;
    static const char *const changes[] = {"up", "down", "state", "logs_dropped"};
    json_t *cmd;

    if (r->change == SE_SESSION_LOGS_DROPPED) {
        vigild__report_logs_dropped(d, r);
        return;
    }
    cmd = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "op", "se_session", "uuid",
                            r->uuid, "change", changes[r->change], "node", (json_int_t)d->opts.id,
                            "since", (json_int_t)r->since_ms, "time", (json_int_t)time_now_ms(),
                            "se_state", r->se_state);
    if (cmd == NULL)
        return;
    if (r->state_since_ms > 0)
        json_object_set_new(cmd, "state_since", json_integer((json_int_t)r->state_since_ms));
    if (r->missed > 0)
        json_object_set_new(cmd, "missed", json_integer((json_int_t)r->missed));
    if (r->change == SE_SESSION_UP && r->spooled_logs >= 0)
        json_object_set_new(cmd, "spooled_logs", json_integer((json_int_t)r->spooled_logs));
    events_submit(d->events, cmd);
}

/* Serves --se-listen (bound at start) with the SE channel: the protocol gets the store
 * and the cluster, the transport the host key, the store (keys) and the protocol. */
static void vigild__start_se_channel(struct vigild *d)
{
    struct se_sessions_config pc = {d->opts.id, d->opts.name, VIGILD_SE_HEARTBEAT_MS,
                                    VIGILD_SE_MISS_LIMIT, d->boot};
    struct ssh_server_config sc = {d->host_key_path,
                                   d->opts.test_se_max_sessions > 0 ? d->opts.test_se_max_sessions
                                                                    : VIGILD_SE_MAX_SESSIONS,
                                   VIGILD_SE_HANDSHAKE_MS, VIGILD_SE_MAX_INBOUND,
                                   VIGILD_SE_MAX_OUTBOUND};
    struct ssh_server_callbacks cb;
    char err[256];

    d->se_sessions = se_sessions_new(&d->loop, d->store, d->cluster, &pc);
    if (d->se_sessions == NULL)
        vigild__die("out of memory");
    /* The session rows this node reported in an earlier life are gone with it; queued
     * first, so that the leader applies it before any report of this life. */
    events_submit(d->events, json_pack("{s:s, s:I}", "op", "se_sessions_reset", "node",
                                       (json_int_t)d->opts.id));
    se_sessions_set_reporter(d->se_sessions, vigild__on_se_report, d);
    se_sessions_set_log_store(d->se_sessions, d->log_store);
    se_sessions_set_peers(d->se_sessions, d->peers);
    peers_set_answer_cb(d->peers, vigild__on_peer_answer, d);
    d->api_objects.se_sessions = d->se_sessions;
    d->api_cluster.se_sessions = d->se_sessions;
    cb = se_sessions_callbacks(d->se_sessions);
    if (ssh_server_start(&d->loop, d->se_fd, &sc, d->store, &cb, &d->se_server, err,
                         sizeof err) != 0)
        vigild__die("--se-listen: %s", err);
    d->se_fd = -1;
    d->api_metrics.se_server = d->se_server;
}

/* After the SE sessions: the commit running completes, then the files close. */
static void vigild__close_log_store(struct vigild *d)
{
    d->api_analytics.log_store = NULL;
    if (d->log_store != NULL)
        log_store_close(d->log_store);
    d->log_store = NULL;
}

/* DIR/logs.db; a damaged one is set aside (the event is raised once the outbox runs). A
 * store that cannot be made at all leaves the node without one: logged, never fatal. */
static void vigild__open_log_store(struct vigild *d)
{
    struct log_store_config lc = {d->opts.data_dir, (uint64_t)d->opts.log_retention_mb << 20,
                                  (int64_t)d->opts.log_retention_hours * 3600 * 1000, 0,
                                  d->opts.test_log_commit_delay_ms};
    char err[1500];
    d->log_store = log_store_open(&d->loop, &lc, d->log_store_damage,
                                  sizeof d->log_store_damage, err, sizeof err);
    if (d->log_store_damage[0] != '\0')
        vlog_error("%s", d->log_store_damage);
    if (d->log_store == NULL)
        vlog_error("%s: this node runs without a log store (SEs keep their records spooled)", err);
}

/* The damaged log store set aside at start, as an event (LOG_STORE_DAMAGED). */
static void vigild__report_log_store_damage(struct vigild *d)
{
    json_t *details;
    if (d->log_store_damage[0] == '\0')
        return;
    details = json_pack("{s:s, s:s}", "node_name", d->opts.name, "reason", d->log_store_damage);
    events_record(d->events, "LOG_STORE_DAMAGED", "CLUSTERMGR", "CONTROLLER_NODE", d->opts.name,
                  d->log_store_damage, details);
    json_decref(details);
}

static void vigild__on_se_server_closed(void *data)
{
    struct vigild *d = data;
    d->se_server = NULL;
    se_sessions_close(d->se_sessions);
    d->se_sessions = NULL;
    vigild__close_log_store(d);
}

/* --- stop ------------------------------------------------------------------------------ */

static void vigild__on_handle_closed(uv_handle_t *h)
{
}

static void vigild__on_api_closed(void *data)
{
    struct vigild *d = data;
    uv_close((uv_handle_t *)&d->sigterm, vigild__on_handle_closed);
    uv_close((uv_handle_t *)&d->sigint, vigild__on_handle_closed);
}

static void vigild__on_cluster_closed(void *data)
{
    struct vigild *d = data;
    d->cluster = NULL;
    events_close(d->events);
    status_driver_close(d->driver);
    peers_close(d->peers);
    http_client_close(d->client); /* ends the leader link's calls in flight */
    leader_link_close(d->link);
    auth_close(d->auth);
    if (d->api != NULL) {
        http_server_close(d->api, vigild__on_api_closed, d);
    } else {
        if (d->api_fd >= 0)
            close(d->api_fd);
        vigild__on_api_closed(d);
    }
}

/* Clean stop: hand leadership over, close raft (failing what waits on it), then the
 * liveness channel, the client and the API server. */
static void vigild__stop(struct vigild *d)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    vigild__notify("STOPPING=1");
    rest_set_stopping(d->rest);
    api_stream_close(d->stream); /* every stream ends while the API still serves */
    d->stream = NULL;
    write_path_stop(d->write_path);
    leader_link_stop(d->link);
    vlog_info("stopping");
    vigild__save_nodes(d);
    uv_close((uv_handle_t *)&d->housekeeping_timer, vigild__on_handle_closed);
    if (d->se_sessions != NULL) { /* the outbox closes with raft: its reports would wait */
        se_sessions_set_reporter(d->se_sessions, NULL, NULL);
        peers_set_answer_cb(d->peers, NULL, NULL);
        d->api_objects.se_sessions = NULL;
        d->api_cluster.se_sessions = NULL;
    }
    d->api_metrics.se_server = NULL;
    if (d->se_server != NULL) /* BYE to every SE while this node still answers */
        ssh_server_close(d->se_server, "the controller node is stopping",
                         vigild__on_se_server_closed, d);
    if (d->vip != NULL) {
        d->api_cluster.vip_mgr = NULL;
        vip_close(d->vip); /* before the hand-over: never two holders */
        d->vip = NULL;
    }
    cluster_close(d->cluster, vigild__on_cluster_closed, d);
}

static void vigild__on_signal(uv_signal_t *s, int signum)
{
    vigild__stop(s->data);
}

/* --- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static struct vigild d;
    struct cluster_config cc;
    char err[512];
    int rv;

    signal(SIGPIPE, SIG_IGN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            options_print_help(stdout);
            return 0;
        }
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--version") == 0) { /* contract: one line, exit 0 */
            printf("vigild %s\n", VIGIL_VERSION);
            return 0;
        }
    if (options_parse(&d.opts, argc, argv, err, sizeof err) != 0)
        vigild__die("%s", err);
    vlog_init("vigild", d.opts.verbose ? VLOG_DEBUG : VLOG_INFO);

    if (auth_crypto_init(d.opts.test_fast_password_hash) != 0)
        vigild__die("cannot initialise libsodium");
    vigild__open_data_dir(&d);
    {
        bool new_node = vigild__identity(&d);
        vigild__host_key(&d);
        if (credentials_open(&d.cred, &d.opts, new_node, err, sizeof err) != 0)
            vigild__die("%s", err);
    }
    d.scheme = d.opts.no_tls ? "http" : "https";

    if (store_open(&d.store) != 0)
        vigild__die("cannot open the in-memory database");
    store_set_events_keep(d.store, d.opts.test_events_keep); /* 0 unless a test build's knob */
    uv_loop_init(&d.loop);
    d.client = http_client_new(&d.loop);
    if (d.client == NULL)
        vigild__die("cannot start the HTTP client");

    obj_uuid_generate(d.boot);
    d.api_fd = http_server_bind(&d.opts.api, err, sizeof err);
    if (d.api_fd < 0)
        vigild__die("--api: %s", err);
    d.se_fd = http_server_listen(&d.opts.se_listen, err, sizeof err);
    if (d.se_fd < 0)
        vigild__die("--se-listen: %s", err);
    d.auth = auth_new(&d.loop, d.store, d.cred.secret, vigild__on_auth_event, &d);
    if (d.auth == NULL)
        vigild__die("out of memory");
    if (!d.opts.no_tls && !d.cred.operator_tls)
        http_client_set_ca(d.client, (const char *const *)&d.cred.tls_cert);

    if (d.opts.rebuild)
        vigild__rebuild(&d);
    memset(&cc, 0, sizeof cc);
    cc.id = d.opts.id;
    cc.rebuilding = d.opts.rebuild;
    {
        static char raft_addr[sizeof cc.voters[0].address];
        snprintf(raft_addr, sizeof raft_addr, "%s:%u", d.opts.raft.host, d.opts.raft.port);
        cc.raft_address = raft_addr;
        if (d.opts.n_cluster > 0) {
            memcpy(cc.voters, d.opts.cluster, sizeof cc.voters);
            cc.n_voters = d.opts.n_cluster;
        } else {
            cc.voters[0].id = d.opts.id;
            snprintf(cc.voters[0].address, sizeof cc.voters[0].address, "%s", raft_addr);
            cc.n_voters = 1;
        }
    }
    cc.raft_dir = d.raft_dir;
    cc.heartbeat_ms = d.opts.heartbeat_ms;
    cc.election_timeout_ms = d.opts.election_timeout_ms;
    cc.snapshot_threshold = d.opts.snapshot_threshold;
    cc.snapshot_trailing = d.opts.snapshot_trailing;
    rv = cluster_start(&d.loop, &cc, d.store, &d.cluster, err, sizeof err);
    if (rv != 0)
        vigild__die("%s", err);
    /* Peers are asked every heartbeat and count as gone after 2 election timeouts. */
    d.peers = peers_start(&d.loop, d.client, d.store, d.cluster, d.opts.id,
                          d.opts.heartbeat_ms < 100 ? d.opts.heartbeat_ms : 100,
                          2 * d.opts.election_timeout_ms, vigild__on_peer_change, &d);
    d.driver = status_driver_start(&d.loop, d.cluster, d.peers, d.store, d.opts.id,
                                   d.opts.se_wait_s);
    d.link = leader_link_new(&d.loop, d.cluster, d.store, d.client, d.opts.id, d.scheme,
                             d.cred.node_header, d.opts.election_timeout_ms);
    d.write_path = d.link != NULL ? write_path_new(&d.loop, d.cluster, d.link, d.opts.election_timeout_ms,
                                                   rest_identity)
                                  : NULL;
    d.events = d.link != NULL ? events_start(&d.loop, d.cluster, d.link, d.opts.id, d.boot) : NULL;
    if (d.peers == NULL || d.driver == NULL || d.write_path == NULL || d.events == NULL)
        vigild__die("out of memory");
    status_driver_set_move_cb(d.driver, vigild__on_status_move, &d);
    peers_set_header(d.peers, d.cred.node_header, d.scheme);
    vigild__load_nodes(&d);
    vigild__open_log_store(&d);
    vigild__report_log_store_damage(&d);
    vigild__rebuild_progress(&d, 1);
    vigild__wire_api(&d);
    vigild__start_api(&d);
    vigild__register(&d);
    vigild__start_se_channel(&d);
    cluster_set_watch(d.cluster, vigild__on_cluster_change, &d);
    write_path_set_wrong_answer_index(d.write_path, d.opts.test_wrong_answer_index);
    if (d.opts.test_apply_delay_ms > 0)
        cluster_set_apply_delay(d.cluster, d.opts.test_apply_delay_ms);
    if (d.opts.vip[0] != '\0') {
        /* Taken about one election timeout after winning an election; see vip.h. */
        struct vip_config vc = {d.opts.vip, d.opts.vip_dev, d.opts.election_timeout_ms,
                                d.opts.heartbeat_ms};
        if (vip_open(&d.loop, d.cluster, &vc, &d.vip, err, sizeof err) != 0)
            vigild__die("%s", err);
        d.api_cluster.vip_mgr = d.vip;
    }

    uv_timer_init(&d.loop, &d.housekeeping_timer);
    d.housekeeping_timer.data = &d;
    uv_timer_start(&d.housekeeping_timer, vigild__on_housekeeping, 0, VIGILD_HOUSEKEEPING_MS);
    uv_signal_init(&d.loop, &d.sigterm);
    d.sigterm.data = &d;
    uv_signal_start(&d.sigterm, vigild__on_signal, SIGTERM);
    uv_signal_init(&d.loop, &d.sigint);
    d.sigint.data = &d;
    uv_signal_start(&d.sigint, vigild__on_signal, SIGINT);

    vlog_info("node %llu (%s) serving the API on %s:%u, raft on %s, data in %s",
              (unsigned long long)d.opts.id, d.opts.name, d.opts.api.host, d.opts.api.port,
              cc.raft_address, d.opts.data_dir);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    write_path_free(d.write_path);
    rest_free(d.rest);
    store_close(d.store);
    credentials_close(&d.cred);
    free(d.nodes_written);
    vlog_info("stopped");
    return 0;
}
