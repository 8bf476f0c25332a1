/* controller_link.c: the SE's sessions to every controller node, the frame protocol over
 * them and the SE state they drive (see controller_link.h). */
#include "se/controller_link.h"

#include <libssh/libssh.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "common/version.h"
#include "common/vlog.h"
#include "se/ctl_session.h"
#include "se/log_delivery.h"

/* A node said to be back is connected to within this spread (ctl_session_connect_soon). */
#define CONTROLLER_LINK_RETURN_SPREAD_MS 50
/* A node never heard from while it knew a leader: as if it missed every heartbeat. */
#define CONTROLLER_LINK_NEVER UINT32_MAX

/* One controller node and the session to it. */
struct ctl_node {
    struct controller_link *link;
    char address[72];
    struct ctl_session *session;
    long long node_id;          /* from its WELCOME; -1 until then */
    bool leader_known;          /* what its last WELCOME or HEARTBEAT said */
    bool heard;                 /* a frame came from it since the SE started */
    int64_t last_frame_mono_ms; /* when the last frame came from it */
    bool good;                  /* a frame came from it while it knew a leader */
    int64_t last_good_mono_ms;  /* when the last such frame came: misses count from here, so
                                 * a node that lost its leader fails like a silent one */
    int64_t opened_mono_ms;     /* when its session last opened */
    bool welcomed;              /* its WELCOME came on the session open now */
    int64_t last_frame_wall_ms;
    char ready_boot[40];        /* its incarnation as a "nodes_ready" list last gave it */
};

struct controller_link {
    uv_loop_t *loop;
    struct controller_link_params p;
    struct ctl_node nodes[CONTROLLER_LINK_NODES_MAX];
    size_t n_nodes;
    uv_timer_t heartbeat_timer;
    uint64_t heartbeat_seq;
    long long log_node;                /* the latest WELCOME's log_node; -1 until one */
    struct log_delivery *delivery;     /* NULL without a spool */
    struct log_delivery *metrics_delivery; /* NULL without a metrics spool */
    char run[48];                      /* this process's run ("EPOCH_MS-PID"): names its drop
                                        * episodes, which count from 1 in every run */
};

int controller_link_check_files(const char *key_path, const char *known_hosts, char *err,
                                size_t errlen)
{
    ssh_key key = NULL;
    struct stat st;
    FILE *f;

    if (access(key_path, R_OK) != 0 ||
        ssh_pki_import_privkey_file(key_path, NULL, NULL, NULL, &key) != SSH_OK) {
        snprintf(err, errlen, "--key %s: cannot read an OpenSSH private key from it", key_path);
        return VIGIL_EINVAL;
    }
    if (ssh_key_type(key) != SSH_KEYTYPE_ED25519) {
        snprintf(err, errlen, "--key %s: a %s key, not ed25519", key_path,
                 ssh_key_type_to_char(ssh_key_type(key)));
        ssh_key_free(key);
        return VIGIL_EINVAL;
    }
    ssh_key_free(key);
    f = fopen(known_hosts, "r");
    if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "--known-hosts %s: not a readable file", known_hosts);
        if (f)
            fclose(f);
        return VIGIL_EINVAL;
    }
    fclose(f);
    return 0;
}

/* Heartbeats missed in ELAPSED_MS of silence: an interval of --heartbeat-ms with no frame,
 * after a grace of half an interval for the answer's round trip and the timer's drift (one
 * miss after 1.5 intervals of silence, two after 2.5, ...). */
static int64_t controller_link__missed(const struct controller_link *l, int64_t elapsed_ms)
{
    int64_t interval = l->p.heartbeat_ms;
    return elapsed_ms <= interval + interval / 2 ? 0 : (elapsed_ms - interval / 2) / interval;
}

/* Heartbeats N missed since its last frame while it knew a leader; a closed session counts
 * at least one, a node never heard so CONTROLLER_LINK_NEVER. */
static uint32_t controller_link__misses(const struct controller_link *l, const struct ctl_node *n,
                                        int64_t now_mono_ms)
{
    int64_t m;

    if (!n->good)
        return CONTROLLER_LINK_NEVER;
    m = controller_link__missed(l, now_mono_ms - n->last_good_mono_ms);
    if (m == 0 && !n->leader_known)
        m = 1; /* it said it lost its leader: a miss at once */
    if (m == 0 && (n->session == NULL || ctl_session_state(n->session) != CTL_SESSION_OPEN))
        m = 1;
    return m > (int64_t)(CONTROLLER_LINK_NEVER - 1) ? CONTROLLER_LINK_NEVER - 1 : (uint32_t)m;
}

static void controller_link__move(struct controller_link *l, enum se_state to, const char *reason)
{
    if (se_state_current(l->p.state) != to)
        se_state_move(l->p.state, to, reason, time_now_ms());
}

/* Moves the SE state to what the nodes' misses say (controller_link.h). */
static void controller_link__evaluate(struct controller_link *l)
{
    int64_t now = time_mono_ms();
    uint32_t best = CONTROLLER_LINK_NEVER;
    const struct ctl_node *best_node = NULL;
    enum se_state cur = se_state_current(l->p.state), target;
    char reason[SE_STATE_REASON_MAX];

    for (size_t i = 0; i < l->n_nodes; i++) {
        uint32_t m = controller_link__misses(l, &l->nodes[i], now);
        if (m < best) {
            best = m;
            best_node = &l->nodes[i];
        }
    }
    if (best == 0)
        target = SE_STATE_CONNECTED;
    else if (best >= l->p.miss_limit)
        target = SE_STATE_HEADLESS;
    else
        target = SE_STATE_CONTROLLER_HEARTBEAT_FAILED;
    if (target == cur || (cur == SE_STATE_CONNECTING && target != SE_STATE_CONNECTED))
        return;
    if (target == SE_STATE_CONNECTED) {
        snprintf(reason, sizeof reason, "%s answers and knows a leader with quorum",
                 best_node->address);
        controller_link__move(l, SE_STATE_CONNECTED, reason);
        return;
    }
    if (cur == SE_STATE_HEADLESS)
        return; /* only a controller answering ends HEADLESS */
    if (best == CONTROLLER_LINK_NEVER)
        snprintf(reason, sizeof reason, "no controller of a working cluster is reachable");
    else
        snprintf(reason, sizeof reason, "every controller of a working cluster missed %u "
                 "heartbeat(s) of %u ms", best, l->p.heartbeat_ms);
    controller_link__move(l, SE_STATE_CONTROLLER_HEARTBEAT_FAILED, reason);
    if (target == SE_STATE_HEADLESS) {
        snprintf(reason, sizeof reason, "no controller answered for %u heartbeats (--miss-limit %u)",
                 best == CONTROLLER_LINK_NEVER ? l->p.miss_limit : best, l->p.miss_limit);
        controller_link__move(l, SE_STATE_HEADLESS, reason);
    }
}

static void controller_link__send(struct ctl_node *n, enum se_frame_type type, json_t *payload)
{
    int rc;
    if (payload == NULL)
        return;
    rc = ctl_session_send(n->session, type, payload);
    if (rc != 0 && rc != VIGIL_ESHUTDOWN)
        vlog_warn("controller_link %s: cannot send %s: %s", n->address, se_frame_type_name(type),
                  vigil_strerror(rc));
    json_decref(payload);
}

static void controller_link__on_opened(struct ctl_session *s, void *arg)
{
    struct ctl_node *n = arg;
    struct controller_link *l = n->link;
    struct log_sink_stats ls = {0};
    uint64_t log_seq = 0;
    (void)s;
    n->opened_mono_ms = time_mono_ms();
    n->welcomed = false;
    if (l->p.spool != NULL) {
        log_sink_stats(log_spool_sink(l->p.spool), &ls);
        log_seq = log_spool_first_unacked(l->p.spool);
    }
    controller_link__send(
        n, SE_FRAME_HELLO,
        json_pack("{sssssIsssIsIsIsIsI}", "name", l->p.name, "version", VIGIL_VERSION,
                  "config_version", (json_int_t)l->p.config_version(l->p.arg), "state",
                  se_state_name(se_state_current(l->p.state)), "log_seq", (json_int_t)log_seq,
                  "spooled_logs", (json_int_t)ls.spooled, "state_since",
                  (json_int_t)l->p.state->since_ms, "heartbeat_ms",
                  (json_int_t)l->p.heartbeat_ms, "miss_limit", (json_int_t)l->p.miss_limit));
}

/* Points log delivery at the log node's session once its WELCOME came on it (none while it
 * is closed): at once when it changed, and again when WELCOMED, the node whose WELCOME just
 * came, is the log node (its session opened again: resend from the ack mark). */
static void controller_link__retarget(struct controller_link *l, const struct ctl_node *welcomed)
{
    const struct ctl_node *want = NULL;
    void *session, *current;

    if (l->delivery == NULL)
        return;
    for (size_t i = 0; i < l->n_nodes && want == NULL; i++)
        if (l->log_node >= 0 && l->nodes[i].node_id == l->log_node && l->nodes[i].welcomed &&
            ctl_session_state(l->nodes[i].session) == CTL_SESSION_OPEN)
            want = &l->nodes[i];
    session = want ? want->session : NULL;
    current = log_delivery_target(l->delivery);
    if (session == current && (want == NULL || want != welcomed))
        return;
    if (want != NULL)
        vlog_info("controller_link %s: delivering access logs to log node %lld from seq %llu",
                  want->address, want->node_id,
                  (unsigned long long)log_spool_first_unacked(l->p.spool));
    else
        vlog_info("controller_link: log node %lld not connected; access logs wait in the spool",
                  l->log_node);
    log_delivery_set_target(l->delivery, session);
    if (l->metrics_delivery != NULL)
        log_delivery_set_target(l->metrics_delivery, session);
}

static struct ctl_node *controller_link__add(struct controller_link *l, const char *address);

/* WELCOME: the node's id, whether it knows a leader, and the cluster's nodes (a session is
 * added to each one not known yet, by id or by address). */
static void controller_link__on_welcome(struct ctl_node *n, const json_t *payload)
{
    struct controller_link *l = n->link;
    json_t *id = json_object_get(payload, "node_id"), *list = json_object_get(payload, "controllers");
    json_t *entry;
    size_t i;

    if (json_is_integer(id))
        n->node_id = json_integer_value(id);
    n->leader_known = json_is_true(json_object_get(payload, "leader_known"));
    n->welcomed = true;
    if (json_is_integer(json_object_get(payload, "log_node"))) {
        long long log_node = json_integer_value(json_object_get(payload, "log_node"));
        if (l->log_node >= 0 && log_node != l->log_node)
            vlog_info("controller_link %s: the log node is now %lld (was %lld)", n->address,
                      log_node, l->log_node);
        l->log_node = log_node;
    }
    vlog_info("controller_link %s: welcome from node %lld (%s)", n->address, n->node_id,
              n->leader_known ? "it knows a leader" : "it knows no leader");
    json_array_foreach(list, i, entry) {
        json_t *eid = json_object_get(entry, "node_id");
        const char *addr = json_string_value(json_object_get(entry, "address"));
        struct ctl_node *known = NULL, *added;
        if (addr == NULL || strlen(addr) >= sizeof n->address)
            continue;
        for (size_t k = 0; k < l->n_nodes && known == NULL; k++)
            if (strcmp(l->nodes[k].address, addr) == 0 ||
                (json_is_integer(eid) && l->nodes[k].node_id == json_integer_value(eid)))
                known = &l->nodes[k];
        if (known != NULL) {
            if (known->node_id < 0 && json_is_integer(eid))
                known->node_id = json_integer_value(eid);
        } else if ((added = controller_link__add(l, addr)) != NULL) {
            added->node_id = json_is_integer(eid) ? json_integer_value(eid) : -1;
            vlog_info("controller_link: learned controller %s from %s", addr, n->address);
        }
    }
}

/* "nodes_ready" of a WELCOME or HEARTBEAT from N: the nodes that admit SEs now, with their
 * incarnations. A node listed with an incarnation not seen before whose session waits out
 * its backoff is connected to at once: that is how the SE hears of a node's return. */
static void controller_link__on_nodes_ready(struct ctl_node *n, const json_t *payload)
{
    struct controller_link *l = n->link;
    json_t *entry;
    size_t i;

    json_array_foreach(json_object_get(payload, "nodes_ready"), i, entry) {
        json_t *id = json_object_get(entry, "node_id");
        const char *boot = json_string_value(json_object_get(entry, "boot"));
        struct ctl_node *k = NULL;
        if (!json_is_integer(id) || boot == NULL || strlen(boot) >= sizeof n->ready_boot)
            continue;
        for (size_t j = 0; j < l->n_nodes && k == NULL; j++)
            if (l->nodes[j].node_id == json_integer_value(id))
                k = &l->nodes[j];
        if (k == NULL || strcmp(k->ready_boot, boot) == 0)
            continue;
        snprintf(k->ready_boot, sizeof k->ready_boot, "%s", boot);
        if (k != n && ctl_session_connect_soon(k->session, CONTROLLER_LINK_RETURN_SPREAD_MS))
            vlog_info("controller_link %s: node %lld admits SEs (said %s): connecting now",
                      k->address, k->node_id, n->address);
    }
}

/* CONFIG: applied through the owner (unless that version is already served), then ACKed. */
static void controller_link__on_config(struct ctl_node *n, const json_t *payload)
{
    struct controller_link *l = n->link;
    json_t *v = json_object_get(payload, "config_version");
    uint64_t version = json_is_integer(v) && json_integer_value(v) > 0
                           ? (uint64_t)json_integer_value(v) : 0;
    char err[512];
    int rc;

    if (version == 0) {
        controller_link__send(n, SE_FRAME_CONFIG_ACK,
                              json_pack("{sOsbss}", "config_version", v ? v : json_null(), "ok", 0,
                                        "error", "config_version: must be a positive integer"));
        return;
    }
    if (version == l->p.config_version(l->p.arg)) {
        rc = 0;
    } else {
        rc = l->p.apply_config(l->p.arg, payload, version, err, sizeof err);
        if (rc != 0)
            vlog_warn("controller_link %s: config_version %llu refused, the running one stays: %s",
                      n->address, (unsigned long long)version, vlog_one_line(err));
        else
            vlog_info("controller_link %s: config_version %llu applied", n->address,
                      (unsigned long long)version);
    }
    if (rc == 0)
        controller_link__send(n, SE_FRAME_CONFIG_ACK,
                              json_pack("{sIsb}", "config_version", (json_int_t)version, "ok", 1));
    else
        controller_link__send(n, SE_FRAME_CONFIG_ACK,
                              json_pack("{sIsbss}", "config_version", (json_int_t)version, "ok", 0,
                                        "error", err));
}

static void controller_link__on_frame(struct ctl_session *s, struct se_frame *f, void *arg)
{
    struct ctl_node *n = arg;
    const json_t *p = f->payload;
    (void)s;

    n->heard = true;
    n->last_frame_mono_ms = time_mono_ms();
    n->last_frame_wall_ms = time_now_ms();
    switch (f->type) {
    case SE_FRAME_WELCOME:
        controller_link__on_welcome(n, p);
        controller_link__on_nodes_ready(n, p);
        controller_link__retarget(n->link, n);
        break;
    case SE_FRAME_CONFIG:
        controller_link__on_config(n, p);
        break;
    case SE_FRAME_HEARTBEAT:
        n->leader_known = json_is_true(json_object_get(p, "leader_known"));
        controller_link__on_nodes_ready(n, p);
        controller_link__send(n, SE_FRAME_HEARTBEAT_ACK,
                              json_pack("{sO}", "seq", json_object_get(p, "seq")
                                                           ? json_object_get(p, "seq") : json_null()));
        break;
    case SE_FRAME_HEARTBEAT_ACK:
        break;
    case SE_FRAME_LOGS_ACK:
        if (n->link->delivery != NULL)
            log_delivery_on_ack(n->link->delivery, n->session, p, n->address);
        break;
    case SE_FRAME_METRICS_ACK:
        if (n->link->metrics_delivery != NULL)
            log_delivery_on_ack(n->link->metrics_delivery, n->session, p, n->address);
        break;
    case SE_FRAME_BYE:
        vlog_info("controller_link %s: BYE: %s", n->address,
                  json_string_value(json_object_get(p, "reason")) ?: "no reason");
        break;
    default:
        vlog_warn("controller_link %s: unexpected %s frame ignored", n->address,
                  se_frame_type_name(f->type));
        break;
    }
    if (n->leader_known) {
        n->good = true;
        n->last_good_mono_ms = n->last_frame_mono_ms;
    }
    controller_link__evaluate(n->link);
}

static void controller_link__on_closed(struct ctl_session *s, const char *why, void *arg)
{
    struct ctl_node *n = arg;
    (void)s;
    (void)why;
    n->welcomed = false;
    controller_link__retarget(n->link, NULL);
    controller_link__evaluate(n->link);
}

static const struct ctl_session_ops controller_link__ops = {
    .opened = controller_link__on_opened,
    .frame = controller_link__on_frame,
    .closed = controller_link__on_closed,
};

static struct ctl_node *controller_link__add(struct controller_link *l, const char *address)
{
    struct ctl_node *n;
    struct ctl_session_params sp;

    if (l->n_nodes == CONTROLLER_LINK_NODES_MAX) {
        vlog_warn("controller_link: more than %d controllers; %s left out",
                  CONTROLLER_LINK_NODES_MAX, address);
        return NULL;
    }
    n = &l->nodes[l->n_nodes];
    memset(n, 0, sizeof *n);
    n->link = l;
    n->node_id = -1;
    snprintf(n->address, sizeof n->address, "%s", address);
    sp.address = n->address;
    sp.user = l->p.name;
    sp.key_path = l->p.key_path;
    sp.known_hosts = l->p.known_hosts;
    sp.ops = &controller_link__ops;
    sp.arg = n;
    if (ctl_session_create(l->loop, &sp, &n->session) != 0) {
        vlog_warn("controller_link: controller address %s is not HOST:PORT; left out", address);
        return NULL;
    }
    l->n_nodes++;
    return n;
}

/* The SE's HEARTBEAT payload (new, the caller's): seq, state, config_version and, with a
 * spool, "logs": what its cap cost this run (the controller raises SE_LOGS_DROPPED once per
 * episode from it) and how many records wait in it ("spooled"). */
static json_t *controller_link__heartbeat(const struct controller_link *l, json_t *vs)
{
    json_t *hb = json_pack("{sIsssI}", "seq", (json_int_t)l->heartbeat_seq, "state",
                           se_state_name(se_state_current(l->p.state)), "config_version",
                           (json_int_t)l->p.config_version(l->p.arg));
    struct log_spool_drops drops;
    struct log_sink_stats ls = {0};

    if (hb != NULL && l->p.spool != NULL) {
        log_spool_drops(l->p.spool, &drops);
        log_sink_stats(log_spool_sink(l->p.spool), &ls);
        json_object_set_new(hb, "logs",
                            json_pack("{sIsIsIsIsssI}", "dropped", (json_int_t)drops.dropped,
                                      "drop_episodes", (json_int_t)drops.episodes,
                                      "episode_dropped", (json_int_t)drops.episode_dropped,
                                      "spool_cap_bytes", (json_int_t)drops.cap_bytes, "run",
                                      l->run, "spooled", (json_int_t)ls.spooled));
    }
    if (hb != NULL && vs != NULL)
        json_object_set(hb, "vs", vs);
    return hb;
}

static int controller_link__send_logs(void *session, const char *text, size_t len)
{
    return ctl_session_send_text(session, SE_FRAME_LOGS, text, len);
}

static int controller_link__send_metrics(void *session, const char *text, size_t len)
{
    return ctl_session_send_text(session, SE_FRAME_METRICS, text, len);
}

static size_t controller_link__queued(void *session)
{
    return ctl_session_queued_bytes(session);
}

/* Every --heartbeat-ms: a HEARTBEAT on every open session, sessions of nodes silent for
 * --miss-limit intervals dropped, the state evaluated. */
static void controller_link__on_heartbeat_timer(uv_timer_t *t)
{
    struct controller_link *l = t->data;
    int64_t now = time_mono_ms();
    json_t *vs = l->p.vs_runtime != NULL ? l->p.vs_runtime(l->p.arg) : NULL;

    l->heartbeat_seq++;
    for (size_t i = 0; i < l->n_nodes; i++) {
        struct ctl_node *n = &l->nodes[i];
        int64_t quiet_since;
        if (ctl_session_state(n->session) != CTL_SESSION_OPEN)
            continue;
        quiet_since = n->heard && n->last_frame_mono_ms > n->opened_mono_ms ? n->last_frame_mono_ms
                                                                             : n->opened_mono_ms;
        if (controller_link__missed(l, now - quiet_since) >= (int64_t)l->p.miss_limit) {
            char why[128];
            snprintf(why, sizeof why, "nothing heard on this session for %lld ms (--miss-limit %u)",
                     (long long)(now - quiet_since), l->p.miss_limit);
            ctl_session_drop(n->session, why);
            continue;
        }
        controller_link__send(n, SE_FRAME_HEARTBEAT, controller_link__heartbeat(l, vs));
    }
    json_decref(vs);
    controller_link__evaluate(l);
}

int controller_link_start(uv_loop_t *loop, const struct controller_link_params *p,
                          struct controller_link **out)
{
    struct controller_link *l = calloc(1, sizeof *l);

    if (l == NULL)
        return VIGIL_ENOMEM;
    l->loop = loop;
    l->p = *p;
    l->log_node = -1;
    snprintf(l->run, sizeof l->run, "%lld-%d", (long long)time_now_ms(), (int)getpid());
    if (p->spool != NULL) {
        static const struct log_delivery_transport transport = {
            .send = controller_link__send_logs, .queued = controller_link__queued};
        if (log_delivery_create(loop, p->spool, &transport, &l->delivery) != 0) {
            free(l);
            return VIGIL_ENOMEM;
        }
    }
    if (p->spool != NULL && p->metrics_spool != NULL) {
        static const struct log_delivery_transport transport = {
            .send = controller_link__send_metrics, .queued = controller_link__queued,
            .ack_name = "METRICS_ACK"};
        if (log_delivery_create(loop, p->metrics_spool, &transport, &l->metrics_delivery) != 0) {
            log_delivery_close(l->delivery);
            free(l);
            return VIGIL_ENOMEM;
        }
    }
    for (size_t i = 0; i < p->n_controllers; i++) {
        if (controller_link__add(l, p->controllers[i]) == NULL) {
            for (size_t k = 0; k < l->n_nodes; k++)
                ctl_session_destroy(l->nodes[k].session);
            if (l->delivery != NULL)
                log_delivery_close(l->delivery); /* frees itself once its timers closed */
            if (l->metrics_delivery != NULL)
                log_delivery_close(l->metrics_delivery);
            free(l);
            return VIGIL_EINVAL;
        }
    }
    uv_timer_init(loop, &l->heartbeat_timer);
    l->heartbeat_timer.data = l;
    uv_timer_start(&l->heartbeat_timer, controller_link__on_heartbeat_timer, p->heartbeat_ms,
                   p->heartbeat_ms);
    *out = l;
    return 0;
}

json_t *controller_link_status_json(const struct controller_link *l)
{
    json_t *list = json_array();

    for (size_t i = 0; i < l->n_nodes; i++) {
        const struct ctl_node *n = &l->nodes[i];
        char when[TIME_RFC3339_LEN], failed_at[TIME_RFC3339_LEN];
        enum ctl_session_state st = ctl_session_state(n->session);
        int64_t failed_ms = 0;
        const char *failure = ctl_session_last_failure(n->session, &failed_ms);
        if (n->heard)
            time_format_rfc3339(n->last_frame_wall_ms, when);
        if (failure)
            time_format_rfc3339(failed_ms, failed_at);
        json_array_append_new(
            list, json_pack("{sssbsososbsssoso}", "address", n->address, "connected",
                            st == CTL_SESSION_OPEN, "last_heartbeat",
                            n->heard ? json_string(when) : json_null(), "node_id",
                            n->node_id >= 0 ? json_integer(n->node_id) : json_null(),
                            "leader_known", n->leader_known, "session", ctl_session_state_name(st),
                            "last_failure", failure ? json_string(failure) : json_null(),
                            "last_failure_time", failure ? json_string(failed_at) : json_null()));
    }
    return list;
}

static void controller_link__timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void controller_link_close(struct controller_link *l)
{
    if (l->delivery != NULL)
        log_delivery_close(l->delivery);
    l->delivery = NULL;
    if (l->metrics_delivery != NULL)
        log_delivery_close(l->metrics_delivery);
    l->metrics_delivery = NULL;
    for (size_t i = 0; i < l->n_nodes; i++) {
        controller_link__send(&l->nodes[i], SE_FRAME_BYE,
                              json_pack("{ss}", "reason", "the SE is stopping"));
        ctl_session_destroy(l->nodes[i].session);
    }
    uv_close((uv_handle_t *)&l->heartbeat_timer, controller_link__timer_closed);
}
