/* events.h: this node's observations on their way into the replicated event log.
 * The leader is the only writer of the store, so every node queues what it observes
 * (a node left or joined, the leader's status changed, a leader was elected) as commands
 * and sends them, in order, to the leader (itself, or to /api/internal/command over the
 * leader link, leader_link.h), keeping each until it is committed. Observations made without quorum wait for it and are
 * recorded with their real time. Duplicates from several observers are dropped at apply
 * time (store_events.c). All on the loop thread. */
#ifndef VIGIL_EVENTS_H
#define VIGIL_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "controller/consensus/cluster.h"
#include "controller/consensus/leader_link.h"
#include "controller/status/status.h"

struct events;

/* Starts the outbox. CLUSTER and LINK are borrowed and must outlive it (LINK until the
 * call in flight, if any, has ended). BOOT is this process's incarnation id (copied).
 * Returns an object owned by the caller (events_close), or NULL. */
struct events *events_start(uv_loop_t *loop, struct cluster *cluster, struct leader_link *link,
                            uint64_t self_id, const char *boot);

/* Node ID (incarnation BOOT, last seen in ROLE) left, or joined, the working cluster. */
void events_node_presence(struct events *e, uint64_t id, const char *boot, bool joined,
                          const char *role);

/* This node, as leader, moved the cluster status FROM -> TO because of REASON. */
void events_status_changed(struct events *e, enum cluster_status from, enum cluster_status to,
                           const char *reason);

/* This node, as leader, committed the first entry of TERM. */
void events_leader_elected(struct events *e, uint64_t term);

/* Any other event (e.g. the AUTH ones): recorded once, with this observation's time. */
void events_record(struct events *e, const char *event_id, const char *module,
                   const char *obj_type, const char *obj_name, const char *description,
                   json_t *details);

/* Any command a node reports to the leader (e.g. its own node record): CMD (stolen) is
 * sent in order with the observations until committed. */
void events_submit(struct events *e, json_t *cmd);

void events_close(struct events *e);

#endif
