/* disk_guard.h: keeps libraft 0.15 from ever seeing a full disk (issue 10).
 *
 * libraft 0.15 cannot survive a failed log write: a leader truncates the entry and keeps
 * leading, so the next proposal reuses the same (term, index) the followers may already
 * hold (the logs diverge) and two reference-count slots share that key (the entry's
 * buffer is freed twice); a follower keeps the unwritten entries in memory while the
 * backend rolls its position back (later entries land at the wrong index on disk); a
 * follower whose append fails at once goes unavailable for good. So the guard wraps the
 * io's append, truncate and snapshot_put and checks the free space of the raft directory
 * (statvfs) before each append and every 100 ms:
 *   - under the reserve (one segment + the last snapshot + 2 MiB) the disk is "full";
 *   - a full leader's appends are refused at once with RAFT_NOSPACE before the backend
 *     sees them (raft_apply / raft_barrier then fail cleanly; the caller keeps its
 *     buffer), and the leader hands leadership to another voter;
 *   - a full follower's appends (and any truncate or snapshot_put after them) are held,
 *     in order, and handed to the backend once space is back (free >= reserve + 1 MiB);
 *     the follower simply does not acknowledge them meanwhile;
 *   - a write the backend still fails (the reserve was raced) stops the process with a
 *     clear message: reporting it to libraft 0.15 would damage the log.
 * One log line when the disk becomes full, one when space is back. All on the loop. */
#ifndef VIGIL_DISK_GUARD_H
#define VIGIL_DISK_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <raft.h>
#include <uv.h>

struct disk_guard;

/* Wraps IO (borrowed; its append, truncate and snapshot_put are replaced) of RAFT
 * (borrowed) whose log lives in DIR (copied), with segments of SEGMENT_BYTES. Call after
 * raft_start. Returns the guard (owned: disk_guard_close) or NULL (out of memory). */
struct disk_guard *disk_guard_start(uv_loop_t *loop, struct raft *raft, struct raft_io *io,
                                    const char *dir, uint64_t segment_bytes);

/* True while the free space of the raft directory is under the reserve. */
bool disk_guard_is_full(struct disk_guard *g);

/* Adds BYTES (the size of the latest snapshot, which the next one needs again) to the
 * reserve. */
void disk_guard_set_snapshot_bytes(struct disk_guard *g, uint64_t bytes);

/* Before raft_close: answers every held request RAFT_CANCELED (libraft then drops the
 * entries) and frees G once its timer is closed. G must not be used afterwards. */
void disk_guard_close(struct disk_guard *g);

#endif
