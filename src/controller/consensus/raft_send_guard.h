/* raft_send_guard.h: fences a libraft 0.15 defect in its send path.
 *
 * A follower whose log append completes after it lost track of the leader (it saw a higher
 * term while the entries were being written: convertToFollower clears current_leader) sends
 * its AppendEntries result to server 0 at address NULL (replication.c, appendFollowerCb ->
 * sendAppendEntriesResult); libraft's UvSend copies the address with strlen and the node
 * dies (SIGSEGV, strlen <- UvSend <- sendAppendEntriesResult <- appendFollowerCb; seen
 * twice on two nodes at once in the 1000-SE reconnect storm, during election churn).
 *
 * The guard wraps io->send and refuses a message with no server id or no address
 * (RAFT_NOCONNECTION, nothing sent; that caller ignores the outcome and frees its request,
 * and there is no leader to tell: the next leader learns this log from its own
 * AppendEntries). Every other message passes unchanged. Each refusal is counted; the first
 * one is logged. Loop thread only; one guard per raft_io. */
#ifndef VIGIL_RAFT_SEND_GUARD_H
#define VIGIL_RAFT_SEND_GUARD_H

#include <raft.h>
#include <stdint.h>

/* Wraps IO->send (IO borrowed: initialised, e.g. by raft_uv_init, not yet started, and
 * alive until raft_send_guard_remove). Returns 0, or VIGIL_ENOMEM when too many ios are
 * guarded (IO unchanged). */
int raft_send_guard_install(struct raft_io *io);

/* Sends refused so far on IO (0 when IO is not guarded). */
uint64_t raft_send_guard_refused(const struct raft_io *io);

/* Forgets IO (after raft_close completed); its send stays wrapped only while guarded. */
void raft_send_guard_remove(struct raft_io *io);

#endif
