/* se_session.c: the SE channel's protocol, controller side (see se_session.h and
 * docs/architecture.md, "The SE channel"). */
#include "controller/se_channel/se_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/loop_timer.h"
#include "common/objects.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/logs/log_store.h"
#include "controller/se_channel/se_stream.h"
#include "controller/se_channel/vs_reports.h"

struct se_session {
    struct se_sessions *owner;
    struct ssh_server_session *link;
    struct se_session *prev, *next;
    char name[OBJ_NAME_MAX + 1];
    char uuid[OBJ_UUID_LEN + 1];
    char *public_key;         /* its serviceengine object's, when the session opened */
    int welcomed;             /* HELLO answered */
    int pushed;               /* a CONFIG went out ... */
    uint64_t pushed_version;  /* ... at this config_version */
    uint64_t heartbeat_seq;   /* the last HEARTBEAT this node sent */
    int64_t last_heard_ms;    /* the last frame from the SE (monotonic) */
    int64_t last_heard_wall_ms; /* the same, epoch ms (for the runtime record) */
    int64_t since_wall_ms;    /* HELLO, epoch ms: names the session in the reports */
    char se_state[40];        /* the state its HELLO or last HEARTBEAT said */
    int64_t se_config_version; /* the config_version its HELLO, last HEARTBEAT or ACK said */
    int silent;               /* being closed for missing heartbeats */
    unsigned heartbeat_ms;    /* the SE's --heartbeat-ms (HELLO), else the node's */
    unsigned miss_limit;      /* the SE's --miss-limit (HELLO), else the node's */
    int64_t last_sent_ms;     /* the last HEARTBEAT (or the WELCOME) sent (monotonic) */
    int64_t reported_ms;      /* when its SE_SESSION_UP last went to the reporter (monotonic) */
    uint64_t log_node;        /* the SE's log node as WELCOME named it */
    struct se_stream logs;    /* its LOGS frames (se_stream.h) */
    struct se_stream metrics; /* its METRICS frames */
    int64_t logs_episodes_reported; /* the SE's drop_episodes last reported from this session */
    int64_t logs_spooled;   /* the SE's log records waiting in its spool (HELLO, HEARTBEAT), -1: not said */
    int64_t logs_dropped;   /* what its spool's cap cost it this run (HEARTBEAT), -1: not said */
};

/* The node checks its sessions this often: each gets a HEARTBEAT every heartbeat_ms of
 * its own and is closed once silent for its miss_limit intervals. */
#define SE_SESSIONS_TICK_MS 100
/* The bounds of the intervals and limits an SE's HELLO may ask for: those of vigil-se's
 * --heartbeat-ms and --miss-limit. Below one tick, the node still waits miss_limit ticks. */
#define SE_SESSIONS_HEARTBEAT_MIN_MS 10
#define SE_SESSIONS_HEARTBEAT_MAX_MS 600000
#define SE_SESSIONS_MISS_LIMIT_MAX 1000
/* A session whose row the replicated state lacks this long after it was reported (the
 * leader recorded this node as gone while it was only cut off) is reported again. */
#define SE_SESSIONS_REREPORT_MS 5000

struct se_sessions {
    uv_loop_t *loop;
    struct store *store;
    struct cluster *cluster;
    uint64_t node_id;
    char node_name[128];
    unsigned heartbeat_ms;
    unsigned miss_limit;
    struct se_session *list;
    unsigned count;
    int leader_known;         /* as last told to the SEs */
    char boot[40];            /* this process's incarnation */
    struct peers *peers;      /* borrowed; NULL until se_sessions_set_peers */
    int ready;                /* se_sessions_ready latched */
    char *nodes_ready_told;   /* "nodes_ready" as last sent (compact JSON), or NULL */
    /* The config objects of every type (not SEs) as read for the configs of the current
     * config_version; read again after the store's config watch. */
    json_t *objects[OBJ__COUNT];
    int objects_valid;
    uv_timer_t heartbeat;
    struct loop_timer push;   /* a config push on the next loop iteration */
    int handles_open;
    se_sessions_report_cb report;
    void *report_data;
    struct log_store *log_store; /* borrowed; NULL: LOGS frames are not stored (not acked) */
    struct vs_reports *vs_reports; /* owned: the SEs' HEARTBEAT "vs" lists (NULL: none kept) */
};

/* True if this node knows a leader with quorum: it leads and heard from a majority within
 * an election timeout, or it follows a leader it heard from (raft forgets the leader when
 * a follower's election timer runs out). */
static int se_sessions__leader_known(struct se_sessions *p)
{
    if (cluster_is_leader(p->cluster))
        return cluster_leader_has_quorum(p->cluster);
    return cluster_leader(p->cluster, NULL) != 0;
}

/* The raft term of the leader record ("leader" in meta, written once a leader committed
 * the first entry of its term) this node's store applied last; 0: none or unreadable. */
static uint64_t se_sessions__recorded_leader_term(struct se_sessions *p)
{
    char *text = store_meta_get(p->store, "leader");
    json_t *rec = text != NULL ? json_loads(text, 0, NULL) : NULL;
    json_int_t term = json_integer_value(json_object_get(rec, "term"));
    json_decref(rec);
    free(text);
    return term > 0 ? (uint64_t)term : 0;
}

bool se_sessions_ready(struct se_sessions *p)
{
    uint64_t term;
    if (p->ready || !se_sessions__leader_known(p))
        return p->ready;
    /* Applied the current leader's record of its own term: everything committed before
     * its term is applied here too. The commit index alone is not enough: after a whole
     * cluster restart a node's commit index is its snapshot's until the new leader commits
     * in its term, and its store then lacks what its log holds past the snapshot. */
    term = cluster_term(p->cluster);
    p->ready = term > 0 && se_sessions__recorded_leader_term(p) == term;
    if (p->ready)
        vlog_info("se channel: this node admits SEs (a leader with quorum known, applied index "
                  "%llu)", (unsigned long long)cluster_applied_index(p->cluster));
    return p->ready;
}

/* "nodes_ready" (se_session.h): [{"node_id", "boot"}] in the order of the members. */
static json_t *se_sessions__nodes_ready(struct se_sessions *p)
{
    struct cluster_member members[CLUSTER_MAX_NODES];
    unsigned n = cluster_members(p->cluster, members, CLUSTER_MAX_NODES);
    json_t *list = json_array();

    for (unsigned i = 0; i < n; i++) {
        const struct peer_state *ps = NULL;
        const char *boot = NULL;
        if (members[i].id == p->node_id)
            boot = se_sessions_ready(p) ? p->boot : NULL;
        else if (p->peers != NULL && (ps = peers_get(p->peers, members[i].id)) != NULL &&
                 ps->reachable && ps->se_ready && ps->boot[0] != '\0')
            boot = ps->boot;
        if (boot != NULL)
            json_array_append_new(list, json_pack("{s:I, s:s}", "node_id",
                                                  (json_int_t)members[i].id, "boot", boot));
    }
    return list;
}

static void se_sessions__send(struct se_session *s, enum se_frame_type type, json_t *payload)
{
    int rc;
    if (payload == NULL)
        return;
    rc = ssh_server_session_send(s->link, type, payload);
    if (rc != 0 && rc != VIGIL_ESHUTDOWN && rc != VIGIL_ETOOBIG)
        vlog_error("se channel SE '%s': cannot send %s: %s", s->name, se_frame_type_name(type),
                   vigil_strerror(rc));
    json_decref(payload);
}

/* --- WELCOME ------------------------------------------------------------------------- */

/* The node that stores SE UUID's logs: FNV-1a (64 bits) of the uuid's text, modulo the
 * number of node records, picks one in order of node id. The same on every node that has
 * the same records; changes only when the records do. 0 when there are none. */
static uint64_t se_sessions__log_node(const json_t *nodes, const char *uuid)
{
    uint64_t hash = 14695981039346656037ULL;
    size_t n = json_array_size(nodes);
    if (n == 0)
        return 0;
    for (const unsigned char *c = (const unsigned char *)uuid; *c; c++) {
        hash ^= *c;
        hash *= 1099511628211ULL;
    }
    return (uint64_t)json_integer_value(json_object_get(json_array_get(nodes, hash % n), "id"));
}

/* WELCOME for S, whose log node it records. */
static json_t *se_sessions__welcome(struct se_sessions *p, struct se_session *s)
{
    json_t *nodes = store_nodes(p->store); /* ordered by id */
    json_t *controllers = json_array();
    char *cluster_uuid = store_meta_get(p->store, "cluster_uuid");
    uint64_t log_node = se_sessions__log_node(nodes, s->uuid);
    s->log_node = log_node != 0 ? log_node : p->node_id;
    size_t i;
    json_t *node, *welcome;

    json_array_foreach(nodes, i, node) {
        json_array_append_new(controllers,
                              json_pack("{s:O, s:O}", "node_id", json_object_get(node, "id"),
                                        "address", json_object_get(node, "se_address")));
    }
    welcome = json_pack("{s:I, s:s, s:s, s:o, s:I, s:I, s:b, s:o}", "node_id",
                        (json_int_t)p->node_id, "node_name", p->node_name, "cluster_uuid",
                        cluster_uuid != NULL ? cluster_uuid : "", "controllers", controllers,
                        "log_node", (json_int_t)(log_node != 0 ? log_node : p->node_id),
                        "heartbeat_ms", (json_int_t)s->heartbeat_ms, "leader_known",
                        p->leader_known, "nodes_ready", se_sessions__nodes_ready(p));
    free(cluster_uuid);
    json_decref(nodes);
    return welcome;
}

/* --- CONFIG ---------------------------------------------------------------------------- */

/* True if virtual service VS applies to SE UUID: its se_refs name it, or are empty. */
static int se_sessions__applies(const json_t *vs, const char *uuid)
{
    const json_t *refs = json_object_get(vs, "se_refs");
    size_t i;
    json_t *ref;
    if (json_array_size(refs) == 0)
        return 1;
    json_array_foreach(refs, i, ref) {
        if (json_is_string(ref) && strcmp(json_string_value(ref), uuid) == 0)
            return 1;
    }
    return 0;
}

/* The objects of ALL (borrowed, in creation order) whose uuid is a key of WANTED
 * (borrowed). */
static json_t *se_sessions__objects_in(const json_t *all, const json_t *wanted)
{
    json_t *out = json_array();
    size_t i;
    json_t *obj;

    json_array_foreach(all, i, obj) {
        const char *uuid = json_string_value(json_object_get(obj, "uuid"));
        if (uuid != NULL && json_object_get(wanted, uuid) != NULL)
            json_array_append(out, obj);
    }
    return out;
}

/* Every object of TYPE at the current config_version, read from the store once per
 * version and shared by the configs built from it (borrowed). */
static const json_t *se_sessions__all(struct se_sessions *p, enum obj_type type)
{
    int64_t total = 0;
    if (!p->objects_valid) {
        for (int t = 0; t < OBJ__COUNT; t++) {
            json_decref(p->objects[t]);
            p->objects[t] = t == OBJ_SERVICEENGINE
                                ? NULL
                                : store_object_list(p->store, (enum obj_type)t, 0, -1, &total);
        }
        p->objects_valid = 1;
    }
    return p->objects[type];
}

/* SE UUID's whole config at VERSION, the --config-file shape plus "config_version". */
static json_t *se_sessions__config(struct se_sessions *p, const char *uuid, uint64_t version)
{
    const json_t *all_vs = se_sessions__all(p, OBJ_VIRTUALSERVICE);
    json_t *vs_list = json_array(), *pool_ids = json_object(), *monitor_ids = json_object();
    json_t *pools, *monitors, *obj, *ref;
    size_t i, j;

    json_array_foreach(all_vs, i, obj) {
        const char *pool = json_string_value(json_object_get(obj, "pool_ref"));
        if (!se_sessions__applies(obj, uuid))
            continue;
        json_array_append(vs_list, obj);
        if (pool != NULL)
            json_object_set_new(pool_ids, pool, json_true());
    }
    pools = se_sessions__objects_in(se_sessions__all(p, OBJ_POOL), pool_ids);
    json_array_foreach(pools, i, obj) {
        json_array_foreach(json_object_get(obj, "health_monitor_refs"), j, ref) {
            if (json_is_string(ref))
                json_object_set_new(monitor_ids, json_string_value(ref), json_true());
        }
    }
    monitors = se_sessions__objects_in(se_sessions__all(p, OBJ_HEALTHMONITOR), monitor_ids);
    json_decref(pool_ids);
    json_decref(monitor_ids);
    return json_pack("{s:I, s:o, s:o, s:o}", "config_version", (json_int_t)version,
                     "healthmonitor", monitors, "pool", pools, "virtualservice", vs_list);
}

/* Sends S its config when it said HELLO, the SEs were told that the node knows a leader
 * with quorum (se_sessions_poke: the HEARTBEAT saying so goes before the CONFIG), and S
 * has not had this config_version yet. */
static void se_sessions__push(struct se_sessions *p, struct se_session *s)
{
    uint64_t version;
    if (!s->welcomed || !p->leader_known)
        return;
    version = store_config_version(p->store);
    if (s->pushed && s->pushed_version == version)
        return;
    s->pushed = 1;
    s->pushed_version = version;
    vlog_debug("se channel SE '%s': CONFIG at config_version %" PRIu64, s->name, version);
    se_sessions__send(s, SE_FRAME_CONFIG, se_sessions__config(p, s->uuid, version));
}

/* Why S may not go on (its serviceengine object was deleted, renamed, or given another
 * key) into WHY, or 0 when it may. */
static int se_sessions__revoked(struct se_sessions *p, const struct se_session *s, char *why,
                                size_t len)
{
    json_t *se = store_object_get(p->store, OBJ_SERVICEENGINE, s->uuid);
    const char *name = json_string_value(json_object_get(se, "name"));
    const char *key = json_string_value(json_object_get(se, "public_key"));
    int revoked = 1;

    if (se == NULL)
        snprintf(why, len, "its serviceengine object was deleted");
    else if (name == NULL || strcmp(name, s->name) != 0)
        snprintf(why, len, "its serviceengine object was renamed");
    else if (key == NULL || strcmp(key, s->public_key) != 0)
        snprintf(why, len, "its serviceengine object has another public_key now");
    else
        revoked = 0;
    json_decref(se);
    return revoked;
}

/* After a config change: sessions whose SE lost its object or key end, the others get
 * the new config. */
static void se_sessions__on_push(struct loop_timer *t)
{
    struct se_sessions *p = t->data;
    struct se_session *s;

    se_sessions_poke(p);
    s = p->list;
    while (s != NULL) {
        struct se_session *next = s->next;
        char why[120];
        if (se_sessions__revoked(p, s, why, sizeof why))
            ssh_server_session_close(s->link, why); /* frees S */
        else
            se_sessions__push(p, s);
        s = next;
    }
}

/* The store's config watch: runs inside the apply path, so only schedules the push. */
static void se_sessions__on_config_change(void *data)
{
    struct se_sessions *p = data;
    p->objects_valid = 0;
    loop_timer_start(&p->push, 0);
}

/* --- reports ------------------------------------------------------------------------- */

/* Tells the reporter (if any) of a change of S: opened, closed, or its SE's state. */
static void se_sessions__report(struct se_sessions *p, const struct se_session *s,
                                enum se_session_change change, int64_t state_since_ms)
{
    struct se_session_report r = {change, s->uuid, s->name, s->se_state, s->since_wall_ms,
                                  state_since_ms, s->silent ? s->miss_limit : 0, {0, 0, 0, 0, ""},
                                  change == SE_SESSION_UP ? s->logs_spooled : -1};
    if (p->report != NULL)
        p->report(p->report_data, &r);
}

/* A HEARTBEAT's "state": reported when it is another than the one last said. */
static void se_sessions__on_se_state(struct se_sessions *p, struct se_session *s,
                                     const json_t *heartbeat)
{
    const char *state = json_string_value(json_object_get(heartbeat, "state"));
    if (state == NULL || strcmp(state, s->se_state) == 0 || strlen(state) >= sizeof s->se_state)
        return;
    snprintf(s->se_state, sizeof s->se_state, "%s", state);
    se_sessions__report(p, s, SE_SESSION_STATE, 0);
}

/* --- frames ---------------------------------------------------------------------------- */

/* A HEARTBEAT to S with NODES_READY (borrowed: se_sessions__nodes_ready). */
static void se_sessions__heartbeat(struct se_sessions *p, struct se_session *s,
                                   json_t *nodes_ready)
{
    s->last_sent_ms = time_mono_ms();
    se_sessions__send(s, SE_FRAME_HEARTBEAT,
                      json_pack("{s:I, s:b, s:O}", "seq", (json_int_t)++s->heartbeat_seq,
                                "leader_known", p->leader_known, "nodes_ready", nodes_ready));
}

/* NODES_READY (borrowed) as the SEs are told it now; returns 1 when it differs from what
 * they were told before. */
static int se_sessions__tell_nodes_ready(struct se_sessions *p, json_t *nodes_ready)
{
    char *text = json_dumps(nodes_ready, JSON_COMPACT);
    int changed = text == NULL || p->nodes_ready_told == NULL ||
                  strcmp(text, p->nodes_ready_told) != 0;
    free(p->nodes_ready_told);
    p->nodes_ready_told = text;
    return changed;
}

/* A HEARTBEAT now to every SE past HELLO, with NODES_READY (borrowed). */
static void se_sessions__heartbeat_all(struct se_sessions *p, json_t *nodes_ready)
{
    for (struct se_session *s = p->list; s != NULL; s = s->next)
        if (s->welcomed)
            se_sessions__heartbeat(p, s, nodes_ready);
}

/* HELLO: checks it names the authenticated SE, answers WELCOME and CONFIG. Returns 0, or
 * VIGIL_EINVAL with a reason in WHY (close the session). */
static int se_sessions__on_hello(struct se_sessions *p, struct se_session *s, json_t *hello,
                                 char *why, size_t len)
{
    const char *name = NULL, *state = "?", *version = "?";
    json_int_t config_version = 0, state_since = 0, heartbeat_ms = 0, miss_limit = 0;
    json_int_t spooled = -1;

    if (s->welcomed) {
        snprintf(why, len, "a second HELLO");
        return VIGIL_EINVAL;
    }
    if (json_unpack(hello, "{s:s, s?s, s?I, s?s, s?I, s?I, s?I, s?I}", "name", &name, "version",
                    &version, "config_version", &config_version, "state", &state,
                    "state_since", &state_since, "heartbeat_ms", &heartbeat_ms, "miss_limit",
                    &miss_limit, "spooled_logs", &spooled) != 0) {
        snprintf(why, len, "HELLO needs \"name\" (a string), and \"config_version\", "
                 "\"heartbeat_ms\" and \"miss_limit\" numbers");
        return VIGIL_EINVAL;
    }
    if ((heartbeat_ms != 0 && (heartbeat_ms < SE_SESSIONS_HEARTBEAT_MIN_MS ||
                               heartbeat_ms > SE_SESSIONS_HEARTBEAT_MAX_MS)) ||
        (miss_limit != 0 && (miss_limit < 1 || miss_limit > SE_SESSIONS_MISS_LIMIT_MAX))) {
        snprintf(why, len, "HELLO asks for heartbeat_ms %lld (%d-%d) and miss_limit %lld (1-%d)",
                 (long long)heartbeat_ms, SE_SESSIONS_HEARTBEAT_MIN_MS,
                 SE_SESSIONS_HEARTBEAT_MAX_MS, (long long)miss_limit, SE_SESSIONS_MISS_LIMIT_MAX);
        return VIGIL_EINVAL;
    }
    if (heartbeat_ms != 0)
        s->heartbeat_ms = (unsigned)heartbeat_ms;
    if (miss_limit != 0)
        s->miss_limit = (unsigned)miss_limit;
    if (strcmp(name, s->name) != 0) {
        snprintf(why, len, "HELLO names SE '%.100s', the session authenticated SE '%.100s'",
                 name, s->name);
        return VIGIL_EINVAL;
    }
    vlog_info("se channel SE '%s': HELLO (version %s, state %s, config_version %lld, heartbeats "
              "every %u ms, %u missed close it)", s->name, version, state,
              (long long)config_version, s->heartbeat_ms, s->miss_limit);
    se_sessions_poke(p); /* WELCOME's leader_known is what every SE is told */
    se_sessions__send(s, SE_FRAME_WELCOME, se_sessions__welcome(p, s));
    s->last_sent_ms = time_mono_ms();
    s->welcomed = 1;
    s->se_config_version = config_version;
    s->logs_spooled = spooled >= 0 ? spooled : -1;
    s->since_wall_ms = time_now_ms();
    snprintf(s->se_state, sizeof s->se_state, "%s", strlen(state) < sizeof s->se_state ? state : "?");
    se_sessions__report(p, s, SE_SESSION_UP, state_since);
    s->reported_ms = time_mono_ms();
    se_sessions__push(p, s);
    return 0;
}

static void se_sessions__on_config_ack(struct se_session *s, json_t *ack)
{
    json_int_t version = -1;
    int ok = 0;
    const char *error = "";

    if (json_unpack(ack, "{s:I, s:b, s?s}", "config_version", &version, "ok", &ok, "error",
                    &error) != 0) {
        vlog_warn("se channel SE '%s': a CONFIG_ACK without \"config_version\" and \"ok\": ignored",
                  s->name);
        return;
    }
    if (ok) {
        s->se_config_version = version;
        vlog_info("se channel SE '%s': applied config_version %lld", s->name, (long long)version);
    }
    else
        vlog_warn("se channel SE '%s': refused config_version %lld: %s", s->name,
                  (long long)version, error);
}

/* --- the logs' counts ---------------------------------------------------------------- */

/* A HEARTBEAT's "logs" {"dropped", "drop_episodes", "episode_dropped", "spool_cap_bytes",
 * "run"?}: on the SE's log node, a drop episode not yet reported from this session goes to
 * the reporter (SE_SESSION_LOGS_DROPPED); the leader records it once per (SE, run, episode). */
static void se_sessions__on_logs_counts(struct se_sessions *p, struct se_session *s,
                                        const json_t *heartbeat)
{
    const json_t *logs = json_object_get(heartbeat, "logs");
    const json_t *run = json_object_get(logs, "run");
    const json_t *spooled = json_object_get(logs, "spooled"), *dropped_now = json_object_get(logs, "dropped");
    json_int_t dropped = 0, episodes = 0, episode_dropped = 0, cap = 0;
    char run_text[64] = "";
    struct se_session_report r = {SE_SESSION_LOGS_DROPPED, s->uuid, s->name, s->se_state,
                                  s->since_wall_ms, 0, 0, {0, 0, 0, 0, ""}, -1};

    if (json_is_integer(spooled) && json_integer_value(spooled) >= 0)
        s->logs_spooled = json_integer_value(spooled);
    if (json_is_integer(dropped_now) && json_integer_value(dropped_now) >= 0)
        s->logs_dropped = json_integer_value(dropped_now);
    if (!json_is_object(logs) ||
        json_unpack((json_t *)logs, "{s:I, s:I, s?I, s?I}", "dropped", &dropped, "drop_episodes",
                    &episodes, "episode_dropped", &episode_dropped, "spool_cap_bytes", &cap) != 0 ||
        episodes <= s->logs_episodes_reported || s->log_node != p->node_id)
        return;
    s->logs_episodes_reported = episodes;
    if (json_is_string(run) && json_string_length(run) < sizeof run_text)
        snprintf(run_text, sizeof run_text, "%s", json_string_value(run));
    else if (json_is_integer(run))
        snprintf(run_text, sizeof run_text, "%lld", (long long)json_integer_value(run));
    r.logs.dropped = dropped;
    r.logs.episode = episodes;
    r.logs.episode_dropped = episode_dropped;
    r.logs.spool_cap_bytes = cap;
    r.logs.run = run_text;
    vlog_warn("se channel SE '%s': its log spool dropped records (%lld in this run, drop "
              "episode %lld, cap %lld bytes)", s->name, (long long)dropped, (long long)episodes,
              (long long)cap);
    if (p->report != NULL)
        p->report(p->report_data, &r);
}

static void se_sessions__on_frame(void *data, void *owner_state, const struct se_frame *frame)
{
    struct se_sessions *p = data;
    struct se_session *s = owner_state;
    char why[300] = "";

    s->last_heard_ms = time_mono_ms();
    s->last_heard_wall_ms = time_now_ms();
    if (frame->type != SE_FRAME_HELLO && frame->type != SE_FRAME_BYE && !s->welcomed) {
        snprintf(why, sizeof why, "%s before HELLO", se_frame_type_name(frame->type));
    } else {
        switch (frame->type) {
        case SE_FRAME_HELLO:
            se_sessions__on_hello(p, s, frame->payload, why, sizeof why);
            break;
        case SE_FRAME_CONFIG_ACK:
            se_sessions__on_config_ack(s, frame->payload);
            break;
        case SE_FRAME_HEARTBEAT: {
            json_t *seq = json_object_get(frame->payload, "seq");
            json_t *version = json_object_get(frame->payload, "config_version");
            se_sessions__send(s, SE_FRAME_HEARTBEAT_ACK,
                              json_pack("{s:O}", "seq", seq != NULL ? seq : json_null()));
            if (json_is_integer(version) && json_integer_value(version) >= 0)
                s->se_config_version = json_integer_value(version);
            se_sessions__on_se_state(p, s, frame->payload);
            se_sessions__on_logs_counts(p, s, frame->payload);
            if (p->vs_reports != NULL)
                vs_reports_put(p->vs_reports, s->uuid, json_object_get(frame->payload, "vs"),
                               time_mono_ms());
            break;
        }
        case SE_FRAME_HEARTBEAT_ACK:
            break; /* liveness only: last_heard_ms */
        case SE_FRAME_LOGS:
            se_stream_receive(&s->logs, p->log_store, frame->payload, why, sizeof why);
            break;
        case SE_FRAME_METRICS:
            se_stream_receive(&s->metrics, p->log_store, frame->payload, why, sizeof why);
            break;
        case SE_FRAME_BYE: {
            const char *reason = json_string_value(json_object_get(frame->payload, "reason"));
            snprintf(why, sizeof why, "the SE said BYE: %.200s", reason != NULL ? reason : "");
            ssh_server_session_close(s->link, why); /* frees S */
            return;
        }
        default:
            snprintf(why, sizeof why, "a %s frame is not sent by an SE",
                     se_frame_type_name(frame->type));
        }
    }
    if (why[0] != '\0')
        ssh_server_session_close(s->link, why); /* frees S */
}

/* --- sessions ------------------------------------------------------------------------- */

static void *se_sessions__on_open(void *data, struct ssh_server_session *link, const char *se_name)
{
    struct se_sessions *p = data;
    json_t *se = store_object_get_by_name(p->store, OBJ_SERVICEENGINE, se_name);
    const char *uuid = json_string_value(json_object_get(se, "uuid"));
    const char *key = json_string_value(json_object_get(se, "public_key"));
    struct se_session *s;

    if (uuid == NULL || key == NULL || (s = calloc(1, sizeof *s)) == NULL) {
        json_decref(se);
        return NULL;
    }
    s->public_key = strdup(key);
    if (s->public_key == NULL) {
        free(s);
        json_decref(se);
        return NULL;
    }
    s->owner = p;
    s->link = link;
    snprintf(s->name, sizeof s->name, "%s", se_name);
    snprintf(s->uuid, sizeof s->uuid, "%s", uuid);
    s->last_heard_ms = time_mono_ms();
    s->heartbeat_ms = p->heartbeat_ms;
    s->logs_spooled = s->logs_dropped = -1;
    s->miss_limit = p->miss_limit;
    se_stream_init(&s->logs, SE_STREAM_LOGS, link, s->uuid, s->name);
    se_stream_init(&s->metrics, SE_STREAM_METRICS, link, s->uuid, s->name);
    json_decref(se);
    s->next = p->list;
    if (p->list != NULL)
        p->list->prev = s;
    p->list = s;
    p->count++;
    return s;
}

static void se_sessions__on_close(void *data, void *owner_state, const char *reason)
{
    struct se_sessions *p = data;
    struct se_session *s = owner_state;
    (void)reason; /* ssh_server logged it */
    if (s->welcomed)
        se_sessions__report(p, s, SE_SESSION_DOWN, 0);
    se_stream_cancel(&s->logs); /* stored all the same, never acked here */
    se_stream_cancel(&s->metrics);
    if (p->vs_reports != NULL)
        vs_reports_forget(p->vs_reports, s->uuid);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        p->list = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    p->count--;
    free(s->public_key);
    free(s);
}

/* Takes in whether this node knows a leader with quorum now; when it learnt one, a config
 * held back goes out on the next loop iteration. Returns 1 when it changed. */
static int se_sessions__update_leader_known(struct se_sessions *p)
{
    int known = se_sessions__leader_known(p);
    if (known == p->leader_known)
        return 0;
    p->leader_known = known;
    if (known)
        loop_timer_start(&p->push, 0);
    return 1;
}

/* S's session row is in the replicated state, or S is reported again: the leader drops the
 * rows of a node it records as gone (store_se_node_left), and this node may have been only
 * cut off. Checked with the heartbeats, only while a leader with quorum is known and once
 * a report had time to be applied. */
static void se_sessions__check_recorded(struct se_sessions *p, struct se_session *s, int64_t now)
{
    if (!p->leader_known || now - s->reported_ms < SE_SESSIONS_REREPORT_MS ||
        store_se_session_recorded(p->store, s->uuid, p->node_id, s->since_wall_ms))
        return;
    vlog_info("se channel SE '%s': its session here is not in the replicated state (this "
              "node was recorded as gone): reported again", s->name);
    se_sessions__report(p, s, SE_SESSION_UP, 0);
    s->reported_ms = now;
}

/* Every SE_SESSIONS_TICK_MS: a changed leader_known or nodes_ready goes to every SE at
 * once; each SE past HELLO gets a HEARTBEAT once its own interval passed; a session silent
 * for its miss_limit intervals is closed. */
static void se_sessions__on_heartbeat(uv_timer_t *t)
{
    struct se_sessions *p = t->data;
    int64_t now = time_mono_ms();
    struct se_session *s = p->list;
    json_t *nodes;
    int leader_changed;

    leader_changed = se_sessions__update_leader_known(p);
    nodes = se_sessions__nodes_ready(p);
    if (se_sessions__tell_nodes_ready(p, nodes) || leader_changed)
        se_sessions__heartbeat_all(p, nodes);
    while (s != NULL) {
        struct se_session *next = s->next;
        int64_t limit = (int64_t)s->miss_limit *
                        (s->heartbeat_ms > SE_SESSIONS_TICK_MS ? s->heartbeat_ms : SE_SESSIONS_TICK_MS);
        if (now - s->last_heard_ms > limit) {
            char why[120];
            snprintf(why, sizeof why, "silent for %lld ms (%u heartbeats of %u ms missed)",
                     (long long)(now - s->last_heard_ms), s->miss_limit, s->heartbeat_ms);
            s->silent = 1;
            ssh_server_session_close(s->link, why); /* frees S */
        } else if (s->welcomed && now - s->last_sent_ms >= (int64_t)s->heartbeat_ms) {
            se_sessions__heartbeat(p, s, nodes);
            se_sessions__check_recorded(p, s, now);
        }
        s = next;
    }
    json_decref(nodes);
}

void se_sessions_poke(struct se_sessions *sessions)
{
    json_t *nodes;
    if (!se_sessions__update_leader_known(sessions))
        return;
    nodes = se_sessions__nodes_ready(sessions);
    se_sessions__tell_nodes_ready(sessions, nodes);
    se_sessions__heartbeat_all(sessions, nodes);
    json_decref(nodes);
}

void se_sessions_set_log_store(struct se_sessions *sessions, struct log_store *log_store)
{
    sessions->log_store = log_store;
}

void se_sessions_set_peers(struct se_sessions *sessions, struct peers *peers)
{
    sessions->peers = peers;
}

void se_sessions_peers_changed(struct se_sessions *sessions)
{
    json_t *nodes = se_sessions__nodes_ready(sessions);
    if (se_sessions__tell_nodes_ready(sessions, nodes))
        se_sessions__heartbeat_all(sessions, nodes);
    json_decref(nodes);
}

unsigned se_sessions_count(const struct se_sessions *sessions)
{
    unsigned n = 0;
    for (const struct se_session *s = sessions->list; s != NULL; s = s->next)
        n += s->welcomed;
    return n;
}

void se_sessions_set_reporter(struct se_sessions *sessions, se_sessions_report_cb cb, void *data)
{
    sessions->report = cb;
    sessions->report_data = data;
}

void se_sessions_heard(const struct se_sessions *sessions, const char *uuid,
                       struct se_sessions_heard *out)
{
    out->last_heard_ms = 0;
    out->config_version = -1;
    out->logs_spooled = out->logs_dropped = -1;
    for (const struct se_session *s = sessions->list; s != NULL; s = s->next) {
        if (!s->welcomed || strcmp(s->uuid, uuid) != 0)
            continue;
        if (s->last_heard_wall_ms > out->last_heard_ms)
            out->last_heard_ms = s->last_heard_wall_ms;
        if (s->se_config_version > out->config_version)
            out->config_version = s->se_config_version;
        if (s->last_heard_wall_ms >= out->last_heard_ms && s->logs_spooled >= 0) {
            /* the counts of the session heard from last: the newest */
            out->logs_spooled = s->logs_spooled;
            out->logs_dropped = s->logs_dropped;
        }
    }
}

json_t *se_sessions_vs_runtime(const struct se_sessions *sessions, const char *vs_uuid)
{
    if (sessions->vs_reports == NULL)
        return NULL;
    return vs_reports_runtime(sessions->vs_reports, vs_uuid);
}

static int se_sessions__caught_up(void *data)
{
    return se_sessions_ready(data);
}

struct ssh_server_callbacks se_sessions_callbacks(struct se_sessions *sessions)
{
    return (struct ssh_server_callbacks){se_sessions__on_open, se_sessions__on_frame,
                                         se_sessions__on_close, se_sessions__caught_up, sessions};
}

struct se_sessions *se_sessions_new(uv_loop_t *loop, struct store *store,
                                    struct cluster *cluster,
                                    const struct se_sessions_config *cfg)
{
    struct se_sessions *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->loop = loop;
    p->store = store;
    p->cluster = cluster;
    p->node_id = cfg->node_id;
    snprintf(p->node_name, sizeof p->node_name, "%s", cfg->node_name);
    p->heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    p->miss_limit = cfg->miss_limit > 0 ? cfg->miss_limit : 3;
    snprintf(p->boot, sizeof p->boot, "%s", cfg->boot != NULL ? cfg->boot : "");
    p->vs_reports = vs_reports_new(); /* NULL: virtual services show no runtime */
    if (loop_timer_init(loop, &p->push, se_sessions__on_push) != 0) {
        vs_reports_free(p->vs_reports);
        free(p);
        return NULL;
    }
    p->push.data = p;
    uv_timer_init(loop, &p->heartbeat);
    p->heartbeat.data = p;
    uv_timer_start(&p->heartbeat, se_sessions__on_heartbeat, SE_SESSIONS_TICK_MS,
                   SE_SESSIONS_TICK_MS);
    p->handles_open = 2;
    store_set_config_watch(store, se_sessions__on_config_change, p);
    return p;
}

static void se_sessions__maybe_free(struct se_sessions *p)
{
    if (--p->handles_open > 0)
        return;
    for (int t = 0; t < OBJ__COUNT; t++)
        json_decref(p->objects[t]);
    free(p->nodes_ready_told);
    vs_reports_free(p->vs_reports);
    free(p);
}

static void se_sessions__on_push_closed(struct loop_timer *t)
{
    se_sessions__maybe_free(t->data);
}

static void se_sessions__on_heartbeat_closed(uv_handle_t *h)
{
    se_sessions__maybe_free(h->data);
}

void se_sessions_close(struct se_sessions *sessions)
{
    store_set_config_watch(sessions->store, NULL, NULL);
    loop_timer_close(&sessions->push, se_sessions__on_push_closed);
    uv_close((uv_handle_t *)&sessions->heartbeat, se_sessions__on_heartbeat_closed);
}
