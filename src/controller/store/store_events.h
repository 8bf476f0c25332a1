/* store_events.h: the store's commands on the event log, node presence, the leader record
 * and SE runtime records (store_events.c), for the command table in store.c. Each is a
 * store_command_fn (store-int.h): it runs inside the transaction store.c holds and
 * returns 0, VIGIL_EINVAL for a malformed command, or VIGIL_EIO / VIGIL_ENOMEM. None of
 * them refuses: an occurrence reported again (by several nodes, or by a new leader) is
 * recorded once and still STORE_OK. Loop thread. */
#ifndef VIGIL_STORE_EVENTS_H
#define VIGIL_STORE_EVENTS_H

#include "controller/store/store-int.h"

/* Records one event (its uuid derived from KEY) unless KEY is recorded already; the
 * oldest beyond STORE_EVENTS_KEEP go. Everything is borrowed (DETAILS too). Returns 0,
 * VIGIL_EIO. Inside the command's transaction, loop thread. */
int store_events_insert(struct store_db *db, const char *key, const char *event_id,
                        int64_t time_ms, const char *module, const char *obj_type,
                        const char *obj_name, const char *description, json_t *details);

/* "event_record": one event, unless its key is recorded already (the oldest beyond
 * STORE_EVENTS_KEEP go); STORE_OK. */
store_command_fn store_events_record;

/* "node_joined" / "node_left": a node's presence moved (deduped on the incarnation), with
 * the event it makes; STORE_OK. */
store_command_fn store_events_node_joined;
store_command_fn store_events_node_left;

/* "leader_elected": the leader of a term, and a failover event when it replaces another;
 * STORE_OK. */
store_command_fn store_events_leader_elected;

/* "se_runtime": an SE connected to a controller node, or went away; STORE_OK. */
store_command_fn store_events_se_runtime;

#endif
