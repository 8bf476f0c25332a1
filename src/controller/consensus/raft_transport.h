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
 * raft_uv_tcp's.
 *
 * It also remembers each stream's peer (id, socket, both addresses), so that a stream to a
 * peer that was cut off can be ended when the liveness channel sees the peer again
 * (raft_transport_kick): libraft 0.15 keeps such a stream while TCP retransmits into the
 * partition with exponential backoff, and the healed peer hears nothing for seconds
 * (issue 15 item 7, docs/reliability.md). */
#ifndef VIGIL_RAFT_TRANSPORT_H
#define VIGIL_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include <sys/socket.h>

#define RAFT_TRANSPORT_STREAMS 32

/* A stream handed to libraft (which owns and closes it): only its socket number and the
 * addresses it had are kept, to recognise it later (the number may have been reused). */
struct raft_transport_stream {
    uint64_t id;                      /* 0: free slot */
    int fd;
    struct sockaddr_storage local, peer;
    socklen_t local_len, peer_len;
};

struct raft_transport {
    struct raft_uv_transport uv;     /* what raft_uv_init takes (the wrapper) */
    struct raft_uv_transport tcp;    /* libraft's TCP transport, wrapped */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct raft_transport_stream streams[RAFT_TRANSPORT_STREAMS];
    unsigned next_slot;              /* where the next stream goes when none is free */
};

/* Initialises T (owned by the caller, which keeps it in place until raft_transport_close)
 * on LOOP. Returns 0 or a libraft error code (RAFT_NOMEM). */
int raft_transport_init(struct raft_transport *t, uv_loop_t *loop);

/* The interface to hand to raft_uv_init. Borrowed from T. */
struct raft_uv_transport *raft_transport_uv(struct raft_transport *t);

/* Ends (shutdown(2), both ways) every stream to or from peer ID that is still the
 * connection it was and on which the kernel is retransmitting (TCP_INFO: retransmits or
 * backoff), so that libraft sees an error at once and connects again; a healthy stream is
 * left alone. The streams stay libraft's (it closes them on the error as on any other).
 * Returns how many were ended. Loop thread. */
unsigned raft_transport_kick(struct raft_transport *t, uint64_t id);

/* Releases what raft_transport_init allocated; call after raft_uv_close (or when
 * raft_uv_init failed), as with raft_uv_tcp_close. */
void raft_transport_close(struct raft_transport *t);

#endif
