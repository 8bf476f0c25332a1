/* raft_log_mark.h: the durable end of this node's raft log, marked after every append.
 *
 * A log that comes back shorter than what this node had durably stored lost entries it may
 * have acknowledged as a voter (a torn tail that was not one, a deleted segment, a cut the
 * segment checker could not see); such a node must never start, let alone win an election.
 * This module wraps a raft_io's load, append, truncate and snapshot_put:
 *   - after each completed append it pwrites the index of the last entry that append stored
 *     to DIR/log-end (a few bytes, no fsync: the page cache survives kill -9; the file is
 *     fsynced at most once a second by raft_log_mark_sync, and after a power loss it is at
 *     worst older, i.e. lower). It is written only after libraft reported the entries
 *     durable, so the mark is never ahead of the disk.
 *   - before a follower truncates its log (conflicting uncommitted entries) or installs a
 *     snapshot that replaces it, the mark is lowered (and fsynced) to what will remain, and
 *     appends still in flight are capped there; after the install the mark is the
 *     snapshot's index. A snapshot the node takes itself keeps the log's last index.
 *   - load records the last index of the log libraft loaded, for raft_log_mark_check.
 * File format: one line "vigil log end %020llu\n"; anything else counts as no mark (a
 * damaged side file loses the check, never the log). Everything runs on the loop thread. */
#ifndef VIGIL_RAFT_LOG_MARK_H
#define VIGIL_RAFT_LOG_MARK_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

struct raft_log_mark__append;

struct raft_log_mark {
    struct raft_io *io;
    int fd;                       /* DIR/log-end, -1 when it could not be opened */
    char path[700];
    uint64_t found;               /* the mark read at open (0: none or damaged) */
    bool found_damaged;
    uint64_t saved;               /* the value last written */
    bool dirty;                   /* written since the last fsync */
    bool failed;                  /* an append failed: the mark stays where it was */
    uint64_t next_index;          /* where the next append goes (as libraft's backend) */
    uint64_t loaded_last;         /* last index of the log load returned */
    bool loaded;
    struct raft_log_mark__append *pending; /* appends in flight, oldest first */
    int (*load)(struct raft_io *io, raft_term *term, raft_id *voted_for,
                struct raft_snapshot **snapshot, raft_index *start_index,
                struct raft_entry **entries, size_t *n_entries);
    int (*append)(struct raft_io *io, struct raft_io_append *req,
                  const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
    int (*truncate)(struct raft_io *io, raft_index index);
    int (*snapshot_put)(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb);
};

/* Reads DIR/log-end (DIR borrowed, e.g. the raft directory) and wraps IO (borrowed; it must
 * be initialised, e.g. by raft_uv_init, and not yet started; M and IO must stay where they
 * are until raft_log_mark_close). Call before raft_start. Returns 0, or VIGIL_EIO when
 * DIR/log-end cannot be opened or VIGIL_ENOMEM when too many logs are wrapped (ERR says
 * why; M is then unused and IO unchanged). */
int raft_log_mark_open(struct raft_log_mark *m, struct raft_io *io, const char *dir, char *err,
                       size_t errlen);

/* After raft_start: 0 when the loaded log reaches the mark found at open, or
 * VIGIL_ECORRUPT with one line in ERR naming both indexes. */
int raft_log_mark_check(const struct raft_log_mark *m, const char *dir, char *err,
                        size_t errlen);

/* fsyncs DIR/log-end if it changed since the last call (blocking, a few bytes). */
void raft_log_mark_sync(struct raft_log_mark *m);

/* Once raft is closed (no callback pending): fsyncs and closes the file and forgets IO.
 * Safe on an M whose open failed. */
void raft_log_mark_close(struct raft_log_mark *m);

#endif
