/* ctl_session.h: one SSH session from the SE to one controller node, driven from the SE's
 * libuv loop with libssh's non-blocking client calls (connecting never stalls the data
 * plane), carrying se_frame frames on one channel running SE_FRAME_SUBSYSTEM.
 *
 * A session's own state machine (ctl_session__move is its one setter, with a table of legal
 * moves and a history):
 *   BACKOFF    -> CONNECTING  the backoff delay passed (or the session was just made); a
 *                             host name is first looked up in libuv's thread pool
 *   CONNECTING -> AUTH        TCP, key exchange done, host key found in --known-hosts
 *                             under the host as given ("[name]:port" for a name)
 *   AUTH       -> CHANNEL     public-key authentication (user = the SE's name) accepted
 *   CHANNEL    -> OPEN        channel open and subsystem SE_FRAME_SUBSYSTEM accepted
 *   CONNECTING, AUTH, CHANNEL, OPEN -> BACKOFF   a failure, a refusal, the peer closed,
 *                             a handshake over CTL_SESSION_HANDSHAKE_MS, or ctl_session_drop
 * Every failure is one log line naming the node and the reason; the session then waits a
 * jittered, capped delay (100 ms doubling to 5 s, +-20 %; back to 100 ms once OPEN) and
 * connects again, forever, until ctl_session_destroy.
 *
 * Frames to send are queued in two outbound buffers, control frames before bulk ones (LOGS),
 * flushed from the loop (never from inside a libssh callback: no libssh callbacks are used
 * at all). Loop thread only. */
#ifndef VIGIL_SE_CTL_SESSION_H
#define VIGIL_SE_CTL_SESSION_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "common/se_frame.h"

#define CTL_SESSION_HANDSHAKE_MS 10000
#define CTL_SESSION_BACKOFF_MIN_MS 100
#define CTL_SESSION_BACKOFF_MAX_MS 5000
/* The most a session buffers for sending; past it the session is dropped (a stuck peer). */
#define CTL_SESSION_OUT_MAX (16u << 20)

enum ctl_session_state {
    CTL_SESSION_BACKOFF = 0,
    CTL_SESSION_CONNECTING,
    CTL_SESSION_AUTH,
    CTL_SESSION_CHANNEL,
    CTL_SESSION_OPEN,
    CTL_SESSION__COUNT
};

struct ctl_session;

/* What a session tells its owner, each from the loop (a poll or timer callback of the
 * session), never from inside libssh. The owner may call ctl_session_send and
 * ctl_session_drop from them, not ctl_session_destroy. */
struct ctl_session_ops {
    void (*opened)(struct ctl_session *s, void *arg);              /* now OPEN */
    void (*frame)(struct ctl_session *s, struct se_frame *f, void *arg); /* payload borrowed */
    void (*closed)(struct ctl_session *s, const char *why, void *arg);   /* was OPEN */
};

/* What a session needs; every pointer borrowed and outliving the session. */
struct ctl_session_params {
    const char *address;      /* "HOST:PORT" of the node's --se-listen */
    const char *user;         /* the SE's --name */
    const char *key_path;     /* --key: an OpenSSH ed25519 private key */
    const char *known_hosts;  /* --known-hosts */
    const struct ctl_session_ops *ops;
    void *arg;                /* given to OPS */
};

/* "BACKOFF", "CONNECTING", ... (static); "?" out of range. */
const char *ctl_session_state_name(enum ctl_session_state s);

/* Makes a session on LOOP with P (copied; its strings borrowed) and starts connecting on
 * the loop's next iteration. Returns 0 and the session in *OUT (owned by the caller, ended
 * with ctl_session_destroy), VIGIL_EINVAL (ADDRESS is not HOST:PORT) or VIGIL_ENOMEM. */
int ctl_session_create(uv_loop_t *loop, const struct ctl_session_params *p,
                       struct ctl_session **out);

/* Queues one frame of TYPE with PAYLOAD (borrowed) and schedules a flush from the loop.
 * Returns 0, VIGIL_ESHUTDOWN (the session is not OPEN: nothing queued), or an error of
 * se_frame_append. */
int ctl_session_send(struct ctl_session *s, enum se_frame_type type, const json_t *payload);

/* Queues one bulk frame of TYPE whose payload is TEXT (LEN bytes, borrowed; the text of
 * one JSON object, built by the caller) and schedules a flush. Bulk frames (the access-log
 * records' LOGS) are written after the control frames of ctl_session_send: a control frame
 * queued later still goes first once the bulk frame being written is finished, so
 * heartbeats never wait behind queued logs. Returns 0, VIGIL_ESHUTDOWN (not OPEN, or the
 * outbound buffers passed CTL_SESSION_OUT_MAX: the session is dropped) or an error of
 * se_frame_append_text. */
int ctl_session_send_text(struct ctl_session *s, enum se_frame_type type, const char *text,
                          size_t len);

/* Bytes queued and not yet written to the channel (control and bulk frames). */
size_t ctl_session_queued_bytes(const struct ctl_session *s);

/* Closes the SSH session now with WHY (borrowed, logged) and reconnects after the backoff
 * delay. OPS->closed runs first when it was OPEN. A no-op in BACKOFF. */
void ctl_session_drop(struct ctl_session *s, const char *why);

/* A node said to be back (controller_link: another node's "nodes_ready"): in BACKOFF, the
 * backoff starts again from its minimum and the next attempt comes within SPREAD_MS
 * (jittered, so that the SEs told together do not all connect in the same millisecond)
 * instead of after the delay drawn. Returns 1 when it did so, 0 in any other state. */
int ctl_session_connect_soon(struct ctl_session *s, uint32_t spread_ms);

/* Writes what is queued as far as the peer's window takes it (a BYE), closes the SSH
 * session (an SSH disconnect) and the session's handles; its memory is freed once the last
 * handle closed. S must not be used afterwards; OPS are not called any more. */
void ctl_session_destroy(struct ctl_session *s);

/* The session's state, and its address (borrowed from the params). */
enum ctl_session_state ctl_session_state(const struct ctl_session *s);
const char *ctl_session_address(const struct ctl_session *s);

/* The reason of the session's latest move to BACKOFF (a failure, a refusal, a drop; borrowed,
 * valid until the session's next move) and its wall-clock time in *WHEN_MS (may be NULL),
 * from its history; NULL when it has not failed since it was made (or not in the history's
 * last CTL_SESSION_HISTORY_MAX moves). */
const char *ctl_session_last_failure(const struct ctl_session *s, int64_t *when_ms);

#endif
