/* store_se.h: the store's commands on the SE runtime record (store_se.c), for the command
 * table in store.c, and the cleanup object_delete runs for a serviceengine. The record
 * has two parts: se_session, one row per (SE, node) session that node reported open (and
 * not closed since), and se_runtime, one row per SE: whether it counts as connected (the
 * SEs a restarted cluster waits for), since when, the node whose session brought it up,
 * its state as it last reported it. Nodes report only changes (a session opened, closed,
 * or its SE's reported state changed), never heartbeats. Each command runs inside the
 * transaction store.c holds and returns 0, VIGIL_EINVAL for a malformed command, or
 * VIGIL_EIO / VIGIL_ENOMEM; none refuses (STORE_OK). Loop thread.
 * docs/architecture.md, "The SE runtime record". */
#ifndef VIGIL_STORE_SE_H
#define VIGIL_STORE_SE_H

#include "controller/store/store-int.h"

/* "se_session" {"uuid", "change": "up"|"down"|"state", "node", "since" (the session's
 * open time, epoch ms, which names it), "time", "se_state"?, "state_since"?, "missed"?}:
 * node NODE's session with SE UUID opened, closed (MISSED > 0: for silence), or its SE
 * reported another state. Derives the SE events (module SEMGR), each once:
 * SE_UP at the SE's first session (no other node had one); SE_DOWN when its last closed
 * (se_runtime.connected = 0); SE_HEARTBEAT_FAILURE when a node closed a session for
 * silence (the first such close since a session of the SE last opened) or the SE's state
 * became CONTROLLER_HEARTBEAT_FAILED; SE_HEADLESS_RECOVERED
 * when a session reports HEADLESS (once per headless period, named by STATE_SINCE). A
 * report about an SE without a serviceengine object, or about a session already closed,
 * changes nothing. */
store_command_fn store_se_session;

/* "se_sessions_reset" {"node"}: node NODE (re)started: every session row it reported
 * before is gone. se_runtime is kept (a restarted controller is no SE going down; the
 * cluster waits for the SEs it says were connected). */
store_command_fn store_se_sessions_reset;

/* "node_left" {"id", "boot", "time", "role"}: the presence move (store_events_node_left)
 * and, when it recorded that incarnation as gone, the session rows node ID reported go
 * with it: each is closed as the node's own "down" report would close it (SE_DOWN for an
 * SE left with none), so a node that stopped for good leaves no SE looking connected. A
 * node that was only cut off reports its sessions again once it sees their rows gone
 * (se_session.c). */
store_command_fn store_se_node_left;

/* SE UUID's serviceengine object is being deleted: its runtime record goes with it, in
 * the same transaction. Returns 0 or VIGIL_EIO. */
int store_se_forget(struct store_db *db, const char *uuid);

#endif
