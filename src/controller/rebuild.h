/* rebuild.h: vigild --rebuild (contract, "vigild"): a node whose local raft state was refused
 * (damaged log, snapshot or metadata) moves it aside to DIR/damaged-<time>/ (kept, never
 * deleted) and starts again with its identity and an empty log, so that the leader sends it
 * a snapshot (or its log). Refused unless a leader with quorum answers first: a rebuilt node
 * with an empty log would vote for any candidate, and a minority's state must never become
 * the cluster's. Both functions run on the loop thread before raft starts. */
#ifndef VIGIL_REBUILD_H
#define VIGIL_REBUILD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "controller/net/http_client.h"

struct rebuild_leader {
    uint64_t id;       /* 0: none found */
    uint64_t term;
    char status[64];   /* its cluster status */
};

/* Asks every other node listed in DATA_DIR/nodes.json (the node records this node saved,
 * "api_address") for its report (GET SCHEME://ADDR/api/internal/peer with NODE_HEADER, the
 * node credential), running LOOP until every request ended (each within TIMEOUT_MS).
 * Fills LEADER with a node that says it leads and has quorum (its status is not
 * "Not Responsive"). Returns 0, or VIGIL_ENOQUORUM (none; ERR names what each node said)
 * or VIGIL_EINVAL (no node records to ask; ERR says so). CLIENT and LOOP are borrowed. */
int rebuild_find_leader(uv_loop_t *loop, struct http_client *client, const char *data_dir,
                        uint64_t self_id, const char *scheme, const char *node_header,
                        unsigned timeout_ms, struct rebuild_leader *leader, char *err,
                        size_t errlen);

/* Renames RAFT_DIR to DATA_DIR/damaged-<UTC time>/raft (its name into MOVED_TO, MOVED_LEN
 * bytes), makes a new empty RAFT_DIR whose raft metadata holds LEADER's term and a vote for
 * LEADER (this node never votes again in a term it may already have voted in), all synced.
 * Returns 0, or a negative errno with ERR saying which step failed (nothing is deleted). */
int rebuild_set_aside(const char *data_dir, const char *raft_dir,
                      const struct rebuild_leader *leader, char *moved_to, size_t moved_len,
                      char *err, size_t errlen);

#endif
