/* se_session.h: the SE channel's protocol on the controller's side, one session per SE
 * connection that ssh_server.c opened (docs/architecture.md, "The SE channel").
 *
 * On HELLO the node answers WELCOME (itself, the cluster, the controllers' SE addresses,
 * the SE's log node, the heartbeat interval, whether it knows a leader with quorum) and
 * CONFIG: the SE's config (the virtual services whose se_refs name the SE or are empty,
 * with the pools and health monitors they reference) at the store's config_version. A
 * new CONFIG follows every change of the config_version, pushed from the store's apply
 * path, and only while the node knows a leader with quorum (a follower serves from its
 * replica). After a change, a session whose serviceengine object was deleted, renamed or
 * given another public_key is closed. CONFIG_ACK is logged. HEARTBEAT is answered with HEARTBEAT_ACK; the node sends
 * its own HEARTBEAT every heartbeat interval (and at once when it learns or loses its
 * leader), and closes a session silent for longer than miss_limit intervals. Each
 * change of a session past HELLO (up, down, the SE's reported state) goes to the reporter
 * (se_sessions_set_reporter); heartbeats do not (docs/architecture.md, "The SE runtime
 * record").
 *
 * Everything runs on the loop thread. */
#ifndef VIGIL_SE_CHANNEL_SE_SESSION_H
#define VIGIL_SE_CHANNEL_SE_SESSION_H

#include <stdint.h>
#include <uv.h>

#include "controller/consensus/cluster.h"
#include "controller/consensus/peers.h"
#include "controller/logs/log_store.h"
#include "controller/se_channel/ssh_server.h"
#include "controller/store/store.h"

struct se_sessions;

struct se_sessions_config {
    uint64_t node_id;
    const char *node_name;  /* copied */
    unsigned heartbeat_ms;  /* the node's HEARTBEAT interval, told to SEs in WELCOME */
    unsigned miss_limit;    /* intervals of silence after which a session is closed */
    const char *boot;       /* this process's incarnation (copied), told in "nodes_ready" */
};

/* The protocol for every SE session of this node. STORE and CLUSTER are borrowed and
 * outlive it; it sets the store's config watch (store_set_config_watch). Returns the
 * protocol (owned by the caller, released by se_sessions_close) or NULL (out of memory). */
struct se_sessions *se_sessions_new(uv_loop_t *loop, struct store *store,
                                    struct cluster *cluster,
                                    const struct se_sessions_config *cfg);

/* The callbacks ssh_server_start takes, serving SESSIONS (borrowed). */
struct ssh_server_callbacks se_sessions_callbacks(struct se_sessions *sessions);

/* The cluster's role, leader or term changed: tells the SEs at once when this node learnt
 * or lost a leader with quorum, and pushes a config that waited for one. */
void se_sessions_poke(struct se_sessions *sessions);

/* True once this node admits SEs as the cluster knows them: it knows a leader with quorum
 * and its store applied that leader's record of its own term (written once the leader
 * committed the first entry of its term), so everything committed before is applied too.
 * (A restarted node's commit index is its snapshot's until the new leader commits in its
 * term: applied >= commit says nothing then.) Latched: stays true for the process's life.
 * Told to the peers in this node's report ("se_ready"). */
bool se_sessions_ready(struct se_sessions *sessions);

/* "nodes_ready" in every WELCOME and HEARTBEAT: the nodes that admit SEs now, as
 * [{"node_id", "boot"}]: this node once se_sessions_ready, and each member PEERS (borrowed,
 * outliving SESSIONS; NULL: none) last found reachable with "se_ready". An SE connects at
 * once to a node newly listed (or listed with a new boot) instead of waiting out its
 * reconnect backoff: that is how a node's return reaches its SEs within a peer poll. */
void se_sessions_set_peers(struct se_sessions *sessions, struct peers *peers);

/* A peer answered (or this node's readiness may have moved): when "nodes_ready" is not
 * what the SEs were last told, every SE past HELLO gets a HEARTBEAT with it now. */
void se_sessions_peers_changed(struct se_sessions *sessions);

/* LOGS and METRICS frames (docs/architecture.md, "Access logs") go into LOG_STORE
 * (borrowed, outliving SESSIONS; NULL: none, frames are then taken but neither stored nor
 * acked), each stream on its own (se_stream.h): each frame is checked (first_seq, 1 to
 * LOG_STORE_BATCH_MAX records with consecutive seqs, each record's fields, at most 4
 * unacknowledged per stream; else one line and the session closes, nothing stored) and
 * answered LOGS_ACK / METRICS_ACK {"through_seq"} once durable, in frame order; a failed
 * commit closes the session. */
void se_sessions_set_log_store(struct se_sessions *sessions, struct log_store *log_store);

/* A change of one session (docs/architecture.md, "The SE runtime record"):
 * - SE_SESSION_UP: the SE said HELLO on it (the session counts from here);
 * - SE_SESSION_DOWN: a session that said HELLO closed (MISSED > 0: this node closed it
 *   because the SE missed that many heartbeat intervals);
 * - SE_SESSION_STATE: the SE's HEARTBEAT says another state than before. */
enum se_session_change {
    SE_SESSION_UP,
    SE_SESSION_DOWN,
    SE_SESSION_STATE,
    /* - SE_SESSION_LOGS_DROPPED: on the SE's log node, its HEARTBEAT's "logs" counts a drop
     *   episode this session did not report yet (LOGS below; the SE_LOGS_DROPPED event). */
    SE_SESSION_LOGS_DROPPED,
};

/* Every pointer is borrowed for the callback's duration. */
struct se_session_report {
    enum se_session_change change;
    const char *uuid;        /* the SE's serviceengine object */
    const char *name;
    const char *se_state;    /* the state the SE said last ("?" if none) */
    int64_t since_ms;        /* HELLO on this node, epoch ms: names the session */
    int64_t state_since_ms;  /* UP: when the SE entered SE_STATE (its HELLO), else 0 */
    unsigned missed;
    struct {                 /* LOGS_DROPPED: the SE's log spool counts, this run of the SE */
        int64_t dropped, episode, episode_dropped, spool_cap_bytes;
        const char *run;     /* the SE's run as its HEARTBEAT names it ("" when it does not) */
    } logs;
    int64_t spooled_logs;    /* UP: the log records the SE had spooled at its HELLO (-1: not said) */
};

/* CB(DATA, report) is called on the loop thread for every change of every session, from
 * inside the frame or close handling (it must not close sessions). NULL: nobody is told
 * (so set it NULL before the reporter's object goes away). Replaces the previous one. */
typedef void (*se_sessions_report_cb)(void *data, const struct se_session_report *report);
void se_sessions_set_reporter(struct se_sessions *sessions, se_sessions_report_cb cb, void *data);

/* What this node heard from SE UUID on its sessions past HELLO: the latest time (epoch ms)
 * it heard anything (0: no such session), and the config_version the SE last said it serves
 * (HELLO, HEARTBEAT, CONFIG_ACK), the highest over its sessions here (-1: no such session),
 * and its log spool's counts (records waiting, records dropped by the cap this run) as the
 * session heard from last said them (-1: not said). */
struct se_sessions_heard {
    int64_t last_heard_ms;
    int64_t config_version;
    int64_t logs_spooled, logs_dropped; /* its log spool's counts as last said (-1: never) */
};
void se_sessions_heard(const struct se_sessions *sessions, const char *uuid,
                       struct se_sessions_heard *out);

/* The runtime of virtual service VS_UUID (borrowed) from what the SEs connected here said
 * in their latest HEARTBEATs (vs_reports_runtime's shape, a new object), or NULL when none
 * reported it. */
json_t *se_sessions_vs_runtime(const struct se_sessions *sessions, const char *vs_uuid);

/* How many sessions have said HELLO. */
unsigned se_sessions_count(const struct se_sessions *sessions);

/* Removes the store's config watch, closes the timers and frees SESSIONS once they are
 * closed. Call it after the ssh_server serving it closed (every session is gone). */
void se_sessions_close(struct se_sessions *sessions);

#endif
