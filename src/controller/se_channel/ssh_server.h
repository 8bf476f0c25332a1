/* ssh_server.h: the SE channel's transport, a libssh server driven from the libuv loop
 * (never a thread of its own).
 *
 * Each accepted connection is one session: non-blocking key exchange with the node's host
 * key, public-key authentication (the SSH user name is the SE's name, the key must be the
 * public_key of the serviceengine object of that name), then one channel running the
 * subsystem SE_FRAME_SUBSYSTEM that carries frames (common/se_frame.h) both ways. The
 * handshake and authentication have a deadline; a session that breaks a rule (a refused
 * key, a stall, a malformed or oversized frame, a full outbound queue) is closed with one
 * log line and nothing else is disturbed.
 *
 * What the transport never does from inside a libssh callback: write, poll, or hand a
 * frame up. Received bytes stay in libssh's channel buffer (bounded by the channel window)
 * until the loop's prepare phase reads them, splits them into frames and calls the
 * owner's on_frame; frames sent go into a per-session outbound queue flushed from that
 * same phase, bounded by the peer's window. Writability is watched only while libssh
 * says SSH_WRITE_PENDING. TCP_NODELAY is set on every session's socket.
 *
 * Everything runs on the loop thread. */
#ifndef VIGIL_SE_CHANNEL_SSH_SERVER_H
#define VIGIL_SE_CHANNEL_SSH_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "common/se_frame.h"
#include "controller/store/store.h"

struct ssh_server;
struct ssh_server_session;

/* A session's life; only ssh_server.c's one setter moves it (its table of legal moves):
 * HANDSHAKE -> AUTH -> OPEN -> CLOSING, and any -> CLOSING. */
enum ssh_session_state {
    SSH_SESSION_HANDSHAKE, /* key exchange under way */
    SSH_SESSION_AUTH,      /* keys exchanged: waiting for authentication and the subsystem */
    SSH_SESSION_OPEN,      /* the vigil-se subsystem runs: frames flow */
    SSH_SESSION_CLOSING,   /* closed: handles closing, nothing more is read or sent */
    SSH_SESSION__COUNT
};

/* "HANDSHAKE", ... (static), "?" for a value that is no state. */
const char *ssh_session_state_name(enum ssh_session_state state);

/* What the session's owner (the protocol, se_session.c) is told. Each runs on the loop
 * thread, never from inside a libssh callback.
 * - on_open: the subsystem runs for SE NAME (authenticated). Returns the owner's state for
 *   this session (handed back to on_frame and on_close), or NULL to close the session.
 * - on_frame: a frame arrived; FRAME->payload is borrowed for the call. The owner may send
 *   and close from here.
 * - on_close: the session closes (once, for every session on_open accepted), REASON says
 *   why; SESSION must not be used after it returns.
 * - caught_up: a query, and the one callback run from inside libssh's authentication: 1
 *   once the node's store holds the cluster's SEs (se_sessions_ready). Until then no
 *   connection is accepted (they wait in the kernel's backlog; looked at again every 20 ms),
 *   so an SE is not refused for an object this node has not applied yet; a refusal that
 *   still meets it says the node is catching up rather than that the SE does not exist. */
struct ssh_server_callbacks {
    void *(*on_open)(void *data, struct ssh_server_session *session, const char *se_name);
    void (*on_frame)(void *data, void *owner_state, const struct se_frame *frame);
    void (*on_close)(void *data, void *owner_state, const char *reason);
    int (*caught_up)(void *data);
    void *data;
};

struct ssh_server_config {
    const char *host_key_path; /* the node's ed25519 host key (OpenSSH private key file) */
    unsigned max_sessions;     /* sessions at once; more are accepted and closed at once */
    unsigned handshake_ms;     /* from accept to the subsystem running, at most */
    size_t max_inbound_payload;  /* the largest frame payload a session accepts */
    size_t max_outbound_bytes;   /* queued and unsent bytes per session, at most */
};

/* Serves the SE channel on LISTEN_FD (a listening TCP socket, stolen: closed by the server,
 * also on failure). STORE (borrowed, outlives the server) authorises keys; CALLBACKS are
 * copied. Returns 0 and *OUT (owned, released by ssh_server_close), or a negative code
 * with a one-line reason in ERR: VIGIL_EINVAL (the host key does not load), VIGIL_ENOMEM,
 * or a negative libuv error. */
int ssh_server_start(uv_loop_t *loop, int listen_fd, const struct ssh_server_config *cfg,
                     struct store *store, const struct ssh_server_callbacks *callbacks,
                     struct ssh_server **out, char *err, size_t errlen);

/* Queues a frame of TYPE with PAYLOAD (borrowed) on SESSION (an OPEN session handed to
 * on_open and not yet closed); it is written from the loop's next prepare phase. Returns 0;
 * VIGIL_ETOOBIG when the frame would take the session's outbound queue over its bound
 * (nothing queued; the session is closed from the next prepare phase, the peer does not
 * read) or the payload is too big, VIGIL_ESHUTDOWN when the session is closing, or
 * VIGIL_EINVAL / VIGIL_ENOMEM (se_frame_append). Never calls on_close itself. */
int ssh_server_session_send(struct ssh_server_session *session, enum se_frame_type type,
                            const json_t *payload);

/* Closes SESSION: an OPEN session first gets BYE {"reason": REASON} and what it has
 * queued (as much as the peer's window takes now), then the SSH session ends. on_close
 * runs with REASON before this returns (the owner's state is gone then), and SESSION
 * must not be used after. Logged with REASON as one line. A no-op when it is closing
 * already. Not from inside a libssh callback (the owner's callbacks never are). */
void ssh_server_session_close(struct ssh_server_session *session, const char *reason);

/* The peer's address, "HOST:PORT" (borrowed, lives as long as SESSION). */
const char *ssh_server_session_peer(const struct ssh_server_session *session);

/* How many sessions exist now (any state but closed). */
unsigned ssh_server_session_count(const struct ssh_server *server);

/* How many of SERVER's sessions are in each state, into COUNTS (indexed by the state).
 * Loop thread. */
void ssh_server_session_states(const struct ssh_server *server,
                               unsigned counts[SSH_SESSION__COUNT]);

/* Stops accepting, closes every session with REASON (BYE to the open ones), closes every
 * handle and frees SERVER; DONE(DATA) (may be NULL) runs from the loop once all is
 * closed. */
void ssh_server_close(struct ssh_server *server, const char *reason, void (*done)(void *data),
                      void *data);

#endif
