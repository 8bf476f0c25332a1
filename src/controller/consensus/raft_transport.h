/* raft_transport.h: libraft's TCP transport with Nagle's algorithm off.
 *
 * libraft 0.15 connects its peers with plain libuv TCP streams and never sets TCP_NODELAY.
 * With writes batched into one entry per loop iteration (cluster.c), a follower's reply
 * or the leader's next AppendEntries is often a small segment sent while the previous one
 * is unacknowledged: Nagle holds it until the peer's (delayed) ACK. Measured on 3 nodes at
 * 64 concurrent writes (docs/benchmarks.md): about 4.4k writes/s with Nagle, 6k without.
 * This transport wraps raft_uv_tcp and turns Nagle off on every stream it hands to libraft
 * (outgoing streams carry the messages; incoming ones only the handshake and nothing else,
 * set too for symmetry). Everything else (handshake, addresses, cancellation) is
 * raft_uv_tcp's. */
#ifndef VIGIL_RAFT_TRANSPORT_H
#define VIGIL_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

struct raft_transport {
    struct raft_uv_transport uv;     /* what raft_uv_init takes (the wrapper) */
    struct raft_uv_transport tcp;    /* libraft's TCP transport, wrapped */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
};

/* Initialises T (owned by the caller, which keeps it in place until raft_transport_close)
 * on LOOP. Returns 0 or a libraft error code (RAFT_NOMEM). */
int raft_transport_init(struct raft_transport *t, uv_loop_t *loop);

/* The interface to hand to raft_uv_init. Borrowed from T. */
struct raft_uv_transport *raft_transport_uv(struct raft_transport *t);

/* Releases what raft_transport_init allocated; call after raft_uv_close (or when
 * raft_uv_init failed), as with raft_uv_tcp_close. */
void raft_transport_close(struct raft_transport *t);

#endif
