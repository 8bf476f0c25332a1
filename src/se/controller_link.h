/* controller_link.h: the SE's side of the SE channel: one ctl_session to every controller
 * node (those of --controllers, and those a WELCOME names), the frame protocol over them
 * (HELLO, WELCOME, CONFIG / CONFIG_ACK, HEARTBEAT / HEARTBEAT_ACK, LOGS / LOGS_ACK through
 * log_delivery to the log node's session only, BYE), heartbeats every
 * --heartbeat-ms, misses counted per node, and the SE state driven from them through
 * se_state_move only (the contract's definitions):
 *   CONNECTED                    some node's session is OPEN, the node knows a leader with
 *                                quorum (its last WELCOME or HEARTBEAT said so) and a frame
 *                                came from it within the last --heartbeat-ms;
 *   CONTROLLER_HEARTBEAT_FAILED  every such node missed at least one interval (a node whose
 *                                session is closed counts as having missed one);
 *   HEADLESS                     every one missed --miss-limit intervals.
 * Misses count from the last frame of a node while it knew a leader: a node that says it
 * lost its leader counts one miss at once and fails on like a silent one. A node knowing no
 * leader never makes the SE CONNECTED. A session whose node missed
 * --miss-limit intervals is dropped and connected again (a silently dead peer is noticed
 * only so). Traffic is served in every state: the link never touches the engine itself; a
 * pushed config goes to the owner's apply function. Loop thread only. */
#ifndef VIGIL_SE_CONTROLLER_LINK_H
#define VIGIL_SE_CONTROLLER_LINK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "se/log_spool.h"
#include "se/se_state.h"

#define CONTROLLER_LINK_NODES_MAX 32

struct controller_link;

/* What the link needs from its owner (main); pointers borrowed, outliving the link. */
struct controller_link_params {
    const char *name;                /* --name: the SSH user and HELLO's name */
    const char *key_path;            /* --key */
    const char *known_hosts;         /* --known-hosts */
    const char (*controllers)[72];   /* --controllers, "HOST:PORT" each */
    size_t n_controllers;
    uint32_t heartbeat_ms;           /* --heartbeat-ms */
    uint32_t miss_limit;             /* --miss-limit */
    struct se_state_machine *state;  /* moved by the link only through se_state_move */
    /* Applies a pushed config: CONFIG is the whole CONFIG payload (borrowed; the file shape
     * plus "config_version"), VERSION its config_version. Returns 0 (serving it, and kept as
     * the last good one) or an error with a one-line reason in ERR (the running config
     * stays). */
    int (*apply_config)(void *arg, const json_t *config, uint64_t version, char *err,
                        size_t errlen);
    uint64_t (*config_version)(void *arg);  /* the config_version being served (0: none) */
    /* Each HEARTBEAT's "vs": the virtual services' health and counters (a new array,
     * engine_vs_runtime's shape; NULL: none sent), made once per heartbeat tick. May be
     * NULL. */
    json_t *(*vs_runtime)(void *arg);
    void *arg;
    /* The access-log spool (NULL: no delivery): its records go to the log node (WELCOME's
     * log_node) through a log_delivery the link owns, HELLO carries its "log_seq" (the first
     * seq not acknowledged) and "spooled_logs", each HEARTBEAT its drops ("logs"). */
    struct log_spool *spool;
    /* The metrics spool (vs_metrics.h; NULL: none): delivered to the same log node as
     * METRICS frames through a second log_delivery, acknowledged by METRICS_ACK. */
    struct log_spool *metrics_spool;
};

/* Checks the files controller mode needs: KEY_PATH a readable OpenSSH ed25519 private key,
 * KNOWN_HOSTS a readable regular file. Returns 0, or VIGIL_EINVAL with a one-line message
 * naming the flag and the problem in ERR. Any thread (it reads files). */
int controller_link_check_files(const char *key_path, const char *known_hosts, char *err,
                                size_t errlen);

/* Makes the link on LOOP with P (copied) and starts a session to every controller. Returns
 * 0 and the link in *OUT (owned by the caller, ended with controller_link_close),
 * VIGIL_EINVAL (a controller address is not HOST:PORT) or VIGIL_ENOMEM. */
int controller_link_start(uv_loop_t *loop, const struct controller_link_params *p,
                          struct controller_link **out);

/* The /status "controllers" list (a new array, the caller's): one object per node,
 * {"address", "connected", "last_heartbeat" (RFC 3339 of the last frame from it, or null),
 * "node_id" (or null), "leader_known", "session" (its ctl_session state), "last_failure" and
 * "last_failure_time" (why and when its session last failed or was refused, or null)}. */
json_t *controller_link_status_json(const struct controller_link *l);

/* Sends BYE {"reason"} on every open session and closes it (an SSH disconnect), and the
 * link's timer, and frees the link once
 * its timer closed (each session frees itself once its handles closed). L must not be
 * used afterwards. */
void controller_link_close(struct controller_link *l);

#endif
