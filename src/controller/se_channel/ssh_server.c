/* ssh_server.c: the SE channel's SSH server on the libuv loop (see ssh_server.h).
 *
 * Per session: one uv_poll on a duplicate of its socket (poll_fd, ours: closed in the poll
 * handle's close callback). libssh closes its own descriptor whenever it meets an error or
 * the peer's DISCONNECT, inside whatever call we made; watching that number would leave
 * libuv watching a closed descriptor until the session ends, and a socket or file opened
 * meanwhile (on this loop, or a raft segment on libuv's thread pool) could get the number:
 * libuv then refuses it (EEXIST) or hands its events to this session. The duplicate keeps
 * the socket open, and its number ours, until the handle is closed. Readable (or writable while libssh has output
 * pending) runs the key exchange (HANDSHAKE) or ssh_event_dopoll (AUTH, OPEN); libssh's
 * callbacks only record what happened (authenticated, the subsystem asked for, the peer
 * closed). The server's uv_prepare handle then services the sessions that have work: it
 * moves a session to OPEN, reads the channel into the frame decoder, hands frames to the
 * owner, and flushes the outbound queue, all outside libssh's callbacks. A uv_idle handle
 * keeps the loop from blocking while a session still has buffered input. A timer closes
 * sessions whose handshake deadline passed. */
#include "controller/se_channel/ssh_server.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/netaddr.h"
#include "common/objects.h"
#include "common/timeutil.h"
#include "common/vlog.h"

/* How often handshake deadlines are checked. */
#define SSH_SERVER__TICK_MS 250
/* Bytes read from one session's channel in one prepare pass (then the others get a turn). */
#define SSH_SERVER__READ_PER_PASS (256 * 1024)
/* Connections accepted in one readable event of the listening socket. */
#define SSH_SERVER__ACCEPT_PER_EVENT 64
/* Sessions in HANDSHAKE or AUTH at once. Every key exchange and signature runs on this
 * loop, which is raft's: a reconnect storm of hundreds of SEs would otherwise keep it busy
 * long enough to miss raft heartbeats. Past it the listening socket is not read (new
 * connections wait in the kernel's backlog) until a handshake ends; a client that stalls
 * holds its place only until its handshake deadline. */
#define SSH_SERVER__MAX_HANDSHAKES 64
/* While this node has not caught up with the cluster's log (cb.caught_up), connections wait
 * in the kernel's backlog instead of being accepted: an SE whose serviceengine object is in
 * what the node has not applied would be refused and back off (after a whole-cluster
 * restart, hundreds of SEs at once: a longer reconnect storm). How often it looks again. */
#define SSH_SERVER__CATCH_UP_MS 20
/* Refused authentication attempts before the session is closed. */
#define SSH_SERVER__AUTH_TRIES 3

struct ssh_server_session {
    struct ssh_server *server;
    struct ssh_server_session *prev, *next; /* every session of the server */
    struct ssh_server_session *work_next;   /* the server's work list, while in_work */
    int in_work;
    enum ssh_session_state state;
    ssh_session ssh;
    ssh_event event;     /* after the key exchange: drives auth and the channel */
    ssh_channel channel; /* the session channel, once the client opened it */
    struct ssh_server_callbacks_struct server_cb;
    struct ssh_channel_callbacks_struct channel_cb;
    uv_poll_t poll;
    int poll_events;
    int fd;                      /* the socket (libssh owns and closes it) */
    int poll_fd;                 /* our duplicate of it, watched by poll (ours) */
    int64_t deadline_ms;         /* the handshake's end (HANDSHAKE, AUTH) */
    char peer[80];               /* "HOST:PORT" */
    char se_name[OBJ_NAME_MAX + 1]; /* the authenticated SSH user */
    int authenticated;
    int auth_refusals;
    int subsystem_asked;         /* the client asked for the vigil-se subsystem */
    int peer_ended;              /* the client sent EOF or closed the channel */
    char pending_close[200];     /* a reason found inside a libssh callback ("": none) */
    enum vlog_level pending_level; /* how that reason is logged */
    struct se_frame_decoder decoder;
    struct buf out;              /* frames queued and not yet written */
    void *owner;                 /* the owner's state (on_open's answer) */
};

struct ssh_server {
    uv_loop_t *loop;
    struct store *store;
    struct ssh_server_config cfg;
    struct ssh_server_callbacks cb;
    ssh_bind bind;
    int listen_fd;
    uv_poll_t listen_poll;
    uv_prepare_t prepare;
    uv_idle_t idle;
    uv_timer_t tick;
    struct ssh_server_session *sessions;
    unsigned count;
    unsigned handshaking;        /* sessions in HANDSHAKE or AUTH */
    int accept_paused;           /* the listening socket is not watched: handshaking is full,
                                  * or the node has not caught up (catch_up runs then) */
    uv_timer_t catch_up;         /* every SSH_SERVER__CATCH_UP_MS until the node caught up */
    int catch_up_logged;
    int64_t paused_logged_ms;    /* the last "handshakes in progress" line */
    struct ssh_server_session *work;      /* sessions with work for the next pass */
    struct ssh_server_session *servicing; /* what is left of this pass's list */
    int64_t refused_logged_ms;   /* the last "too many sessions" line */
    int closing;
    unsigned handles_open;       /* the server's own handles not yet closed */
    unsigned sessions_closing;   /* sessions whose poll handle is closing */
    void (*done)(void *data);
    void *done_data;
};

/* --- the session's state ------------------------------------------------------------- */

static const char *const ssh_server__state_names[SSH_SESSION__COUNT] = {
    [SSH_SESSION_HANDSHAKE] = "HANDSHAKE",
    [SSH_SESSION_AUTH] = "AUTH",
    [SSH_SESSION_OPEN] = "OPEN",
    [SSH_SESSION_CLOSING] = "CLOSING",
};

/* ssh_server__legal[from][to]. */
static const unsigned char ssh_server__legal[SSH_SESSION__COUNT][SSH_SESSION__COUNT] = {
    [SSH_SESSION_HANDSHAKE] = {[SSH_SESSION_AUTH] = 1, [SSH_SESSION_CLOSING] = 1},
    [SSH_SESSION_AUTH] = {[SSH_SESSION_OPEN] = 1, [SSH_SESSION_CLOSING] = 1},
    [SSH_SESSION_OPEN] = {[SSH_SESSION_CLOSING] = 1},
};

const char *ssh_session_state_name(enum ssh_session_state state)
{
    return (unsigned)state < SSH_SESSION__COUNT ? ssh_server__state_names[state] : "?";
}

static void ssh_server__on_listen(uv_poll_t *h, int status, int events);

/* 1 when this node's store holds the cluster's SEs (or the owner does not say). */
static int ssh_server__caught_up(struct ssh_server *server)
{
    return server->cb.caught_up == NULL || server->cb.caught_up(server->cb.data);
}

/* Watches the listening socket again when it was paused and nothing holds it back now. */
static void ssh_server__resume_accept(struct ssh_server *server)
{
    if (server->accept_paused && !server->closing &&
        server->handshaking < SSH_SERVER__MAX_HANDSHAKES && ssh_server__caught_up(server)) {
        server->accept_paused = 0;
        uv_poll_start(&server->listen_poll, UV_READABLE, ssh_server__on_listen);
    }
}

/* A session left HANDSHAKE or AUTH: accepting resumes when it was paused for the bound. */
static void ssh_server__handshake_over(struct ssh_server *server)
{
    server->handshaking--;
    ssh_server__resume_accept(server);
}

static void ssh_server__on_catch_up(uv_timer_t *t)
{
    struct ssh_server *server = t->data;

    if (!ssh_server__caught_up(server))
        return;
    uv_timer_stop(&server->catch_up);
    vlog_info("se channel: this node caught up with the cluster's log: accepting SEs");
    ssh_server__resume_accept(server);
}

/* The one setter of a session's state: checks the move against the table, logs it. */
static int ssh_server__set_state(struct ssh_server_session *s, enum ssh_session_state to,
                                 const char *reason)
{
    if (!ssh_server__legal[s->state][to]) {
        vlog_error("se channel %s: illegal move %s -> %s refused (%s)", s->peer,
                   ssh_session_state_name(s->state), ssh_session_state_name(to), reason);
        return VIGIL_EINVAL;
    }
    vlog_debug("se channel %s: %s -> %s (%s)", s->peer, ssh_session_state_name(s->state),
               ssh_session_state_name(to), reason);
    if (s->state != SSH_SESSION_OPEN && to != SSH_SESSION_AUTH)
        ssh_server__handshake_over(s->server);
    s->state = to;
    return 0;
}

/* --- closing ------------------------------------------------------------------------- */

static void ssh_server__maybe_done(struct ssh_server *server)
{
    if (!server->closing || server->handles_open > 0 || server->sessions_closing > 0 ||
        server->sessions != NULL)
        return;
    if (server->bind != NULL)
        ssh_bind_free(server->bind);
    if (server->done != NULL)
        server->done(server->done_data);
    free(server);
}

/* The poll handle is closed: libssh may now close the socket and free the session. */
static void ssh_server__on_session_closed(uv_handle_t *h)
{
    struct ssh_server_session *s = h->data;
    struct ssh_server *server = s->server;

    if (s->event != NULL) {
        ssh_event_remove_session(s->event, s->ssh);
        ssh_event_free(s->event);
    }
    if (s->channel != NULL)
        ssh_channel_free(s->channel);
    ssh_disconnect(s->ssh);
    ssh_free(s->ssh);
    close(s->poll_fd);
    se_frame_decoder_free(&s->decoder);
    buf_free(&s->out);
    free(s);
    server->sessions_closing--;
    ssh_server__maybe_done(server);
}

static void ssh_server__flush(struct ssh_server_session *s);

/* Ends session S for REASON (logged at LEVEL): BYE and a last flush when it is OPEN, the
 * owner told, then the poll handle closed (the rest is freed in its close callback). */
static void ssh_server__end(struct ssh_server_session *s, enum vlog_level level,
                            const char *reason)
{
    struct ssh_server *server = s->server;
    void *owner = s->owner;

    if (s->state == SSH_SESSION_CLOSING)
        return;
    vlog(level, "se channel %s%s%s: closed: %s", s->peer, s->se_name[0] ? " SE " : "",
         s->se_name, reason);
    if (s->state == SSH_SESSION_OPEN) {
        json_t *bye = json_pack("{s:s}", "reason", reason);
        if (bye != NULL && se_frame_append(&s->out, SE_FRAME_BYE, bye) == 0)
            ssh_server__flush(s);
        json_decref(bye);
        if (s->channel != NULL)
            ssh_channel_close(s->channel);
    }
    ssh_server__set_state(s, SSH_SESSION_CLOSING, reason);
    if (s->in_work) { /* out of the work lists before it is freed */
        struct ssh_server_session **link = &server->work;
        while (*link != NULL && *link != s)
            link = &(*link)->work_next;
        if (*link == NULL)
            for (link = &server->servicing; *link != s;)
                link = &(*link)->work_next;
        *link = s->work_next;
        s->in_work = 0;
    }
    s->owner = NULL;
    if (owner != NULL && server->cb.on_close != NULL)
        server->cb.on_close(server->cb.data, owner, reason);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        server->sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    server->count--;
    server->sessions_closing++;
    uv_close((uv_handle_t *)&s->poll, ssh_server__on_session_closed);
}

static void ssh_server__endf(struct ssh_server_session *s, enum vlog_level level,
                             const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void ssh_server__endf(struct ssh_server_session *s, enum vlog_level level,
                             const char *fmt, ...)
{
    char reason[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    ssh_server__end(s, level, reason);
}

void ssh_server_session_close(struct ssh_server_session *session, const char *reason)
{
    ssh_server__end(session, VLOG_INFO, reason);
}

/* Records a reason to close S found inside a libssh callback; the close happens after
 * libssh returned. */
static void ssh_server__close_later(struct ssh_server_session *s, enum vlog_level level,
                                    const char *reason)
{
    if (s->pending_close[0] != '\0')
        return;
    snprintf(s->pending_close, sizeof s->pending_close, "%s", reason);
    s->pending_level = level;
}

/* --- work list and poll events ------------------------------------------------------ */

static void ssh_server__add_work(struct ssh_server_session *s)
{
    if (s->in_work || s->state == SSH_SESSION_CLOSING)
        return;
    s->in_work = 1;
    s->work_next = s->server->work;
    s->server->work = s;
}

static void ssh_server__on_session_poll(uv_poll_t *h, int status, int events);

/* Watches readability always, writability only while libssh has output pending. */
static void ssh_server__update_poll(struct ssh_server_session *s)
{
    int want = UV_READABLE;
    if (s->state == SSH_SESSION_CLOSING)
        return;
    if (ssh_get_poll_flags(s->ssh) & SSH_WRITE_PENDING)
        want |= UV_WRITABLE;
    if (want != s->poll_events) {
        s->poll_events = want;
        uv_poll_start(&s->poll, want, ssh_server__on_session_poll);
    }
}

/* --- libssh callbacks: record only ------------------------------------------------- */

/* The key PUBLIC_KEY ("ssh-ed25519 BASE64") as a libssh key, or NULL. */
static ssh_key ssh_server__import_key(const char *public_key)
{
    const char *b64 = public_key != NULL ? strchr(public_key, ' ') : NULL;
    ssh_key key = NULL;
    if (b64 == NULL || ssh_pki_import_pubkey_base64(b64 + 1, SSH_KEYTYPE_ED25519, &key) != SSH_OK)
        return NULL;
    return key;
}

/* 1 if KEY is the public_key of serviceengine object OBJ (borrowed). */
static int ssh_server__key_of(const json_t *obj, ssh_key key)
{
    ssh_key have = ssh_server__import_key(json_string_value(json_object_get(obj, "public_key")));
    int same = have != NULL && ssh_key_cmp(have, key, SSH_KEY_CMP_PUBLIC) == 0;
    ssh_key_free(have);
    return same;
}

/* The name of the serviceengine object other than NAME whose public_key is KEY, into OUT
 * ("" when none). */
static void ssh_server__key_owner(struct ssh_server *server, const char *name, ssh_key key,
                                  char *out, size_t len)
{
    int64_t total = 0;
    json_t *all = store_object_list(server->store, OBJ_SERVICEENGINE, 0, -1, &total);
    size_t i;
    json_t *obj;

    out[0] = '\0';
    json_array_foreach(all, i, obj) {
        const char *other = json_string_value(json_object_get(obj, "name"));
        if (other != NULL && strcmp(other, name) != 0 && ssh_server__key_of(obj, key)) {
            snprintf(out, len, "%s", other);
            break;
        }
    }
    json_decref(all);
}

/* Why KEY may not log in as SE USER (a one-line reason into WHY), or 0 when it may. */
static int ssh_server__authorize(struct ssh_server *server, const char *user, ssh_key key,
                                 char *why, size_t len)
{
    json_t *obj = store_object_get_by_name(server->store, OBJ_SERVICEENGINE, user);
    char owner[OBJ_NAME_MAX + 1];
    int ok;

    if (obj != NULL && ssh_server__key_of(obj, key)) {
        json_decref(obj);
        return 0;
    }
    ssh_server__key_owner(server, user, key, owner, sizeof owner);
    if (owner[0] != '\0')
        snprintf(why, len, "the key offered for SE '%s' is the public_key of serviceengine '%s'",
                 user, owner);
    else if (obj == NULL)
        snprintf(why, len, "no serviceengine is named '%s' (and the key is no SE's)", user);
    else
        snprintf(why, len, "the key offered for SE '%s' is not its public_key", user);
    ok = obj != NULL ? -1 : -2;
    json_decref(obj);
    return ok;
}

static int ssh_server__on_auth_pubkey(ssh_session ssh, const char *user, struct ssh_key_struct *key,
                                      char signature_state, void *userdata)
{
    struct ssh_server_session *s = userdata;
    char why[400];

    (void)ssh;
    if (signature_state != SSH_PUBLICKEY_STATE_NONE &&
        signature_state != SSH_PUBLICKEY_STATE_VALID) {
        ssh_server__close_later(s, VLOG_WARN, "authentication refused: a bad signature");
        return SSH_AUTH_DENIED;
    }
    if (strlen(user) > OBJ_NAME_MAX ||
        ssh_server__authorize(s->server, user, key, why, sizeof why) != 0) {
        if (strlen(user) > OBJ_NAME_MAX)
            snprintf(why, sizeof why, "the SSH user name is longer than an SE name may be");
        else if (s->server->cb.caught_up != NULL && !s->server->cb.caught_up(s->server->cb.data))
            snprintf(why, sizeof why, "this node has not caught up with the cluster's log yet "
                     "(SE '%.100s' may be in what it has not applied)", user);
        if (s->auth_refusals == 0)
            vlog_warn("se channel %s: authentication refused: %s", s->peer, why);
        if (++s->auth_refusals >= SSH_SERVER__AUTH_TRIES)
            ssh_server__close_later(s, VLOG_WARN, "authentication refused");
        return SSH_AUTH_DENIED;
    }
    if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
        s->authenticated = 1;
        snprintf(s->se_name, sizeof s->se_name, "%s", user);
    }
    return SSH_AUTH_SUCCESS;
}

static int ssh_server__on_subsystem(ssh_session ssh, ssh_channel channel, const char *subsystem,
                                    void *userdata)
{
    struct ssh_server_session *s = userdata;
    (void)ssh;
    (void)channel;
    if (strcmp(subsystem, SE_FRAME_SUBSYSTEM) != 0 || s->subsystem_asked) {
        ssh_server__close_later(s, VLOG_WARN, "the client asked for another subsystem than " SE_FRAME_SUBSYSTEM);
        return SSH_ERROR;
    }
    s->subsystem_asked = 1;
    return SSH_OK;
}

static void ssh_server__on_channel_eof(ssh_session ssh, ssh_channel channel, void *userdata)
{
    struct ssh_server_session *s = userdata;
    (void)ssh;
    (void)channel;
    s->peer_ended = 1; /* what it sent before is still read */
}

static void ssh_server__on_channel_close(ssh_session ssh, ssh_channel channel, void *userdata)
{
    struct ssh_server_session *s = userdata;
    (void)ssh;
    (void)channel;
    s->peer_ended = 1;
}

static ssh_channel ssh_server__on_channel_open(ssh_session ssh, void *userdata)
{
    struct ssh_server_session *s = userdata;

    if (!s->authenticated || s->channel != NULL)
        return NULL;
    s->channel = ssh_channel_new(ssh);
    if (s->channel == NULL)
        return NULL;
    memset(&s->channel_cb, 0, sizeof s->channel_cb);
    s->channel_cb.userdata = s;
    s->channel_cb.channel_subsystem_request_function = ssh_server__on_subsystem;
    s->channel_cb.channel_eof_function = ssh_server__on_channel_eof;
    s->channel_cb.channel_close_function = ssh_server__on_channel_close;
    ssh_callbacks_init(&s->channel_cb);
    ssh_set_channel_callbacks(s->channel, &s->channel_cb);
    return s->channel;
}

/* --- driving a session ------------------------------------------------------------ */

/* True once libssh closed S's socket itself (the peer left, or an error): the session
 * must end before the loop runs on, since the descriptor may be reused. */
static int ssh_server__socket_gone(struct ssh_server_session *s)
{
    return ssh_get_fd(s->ssh) != s->fd ||
           (ssh_get_status(s->ssh) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

/* Ends S when a libssh callback found a reason to, or libssh closed its socket. Returns 1
 * when S ended. */
static int ssh_server__end_if_over(struct ssh_server_session *s)
{
    if (s->pending_close[0] != '\0') {
        ssh_server__end(s, s->pending_level, s->pending_close);
        return 1;
    }
    if (ssh_server__socket_gone(s)) {
        ssh_server__endf(s, VLOG_INFO, "the connection ended (%s)", ssh_get_error(s->ssh));
        return 1;
    }
    return 0;
}

/* Runs libssh for S after a socket event (or right after accept). */
static void ssh_server__drive(struct ssh_server_session *s)
{
    if (s->state == SSH_SESSION_HANDSHAKE) {
        int rc = ssh_handle_key_exchange(s->ssh);
        if (rc == SSH_AGAIN && ssh_server__socket_gone(s)) {
            ssh_server__end(s, VLOG_INFO, "the client left during the key exchange");
            return;
        }
        if (rc == SSH_AGAIN) {
            ssh_server__update_poll(s);
            return;
        }
        if (rc != SSH_OK) {
            ssh_server__endf(s, VLOG_WARN, "key exchange failed: %s", ssh_get_error(s->ssh));
            return;
        }
        s->event = ssh_event_new();
        if (s->event == NULL || ssh_event_add_session(s->event, s->ssh) != SSH_OK) {
            ssh_server__end(s, VLOG_ERROR, "out of memory");
            return;
        }
        ssh_server__set_state(s, SSH_SESSION_AUTH, "keys exchanged");
    }
    ssh_event_dopoll(s->event, 0);
    if (ssh_server__end_if_over(s))
        return;
    if (s->peer_ended && s->state != SSH_SESSION_OPEN && !s->subsystem_asked) {
        ssh_server__end(s, VLOG_INFO, "the client closed the channel");
        return;
    }
    if (s->state == SSH_SESSION_OPEN || s->subsystem_asked)
        ssh_server__add_work(s);
    ssh_server__update_poll(s);
}

static void ssh_server__on_session_poll(uv_poll_t *h, int status, int events)
{
    struct ssh_server_session *s = h->data;
    (void)events;
    if (status < 0) {
        /* libuv reports a socket error (POLLERR, e.g. the peer reset it) as UV_EBADF */
        ssh_server__end(s, VLOG_INFO, "the connection failed (reset by the peer?)");
        return;
    }
    ssh_server__drive(s);
}

/* Writes as much of S's queue as the peer's window takes now (outside libssh callbacks). */
static void ssh_server__flush(struct ssh_server_session *s)
{
    while (s->out.len > 0 && s->channel != NULL) {
        uint32_t window = ssh_channel_window_size(s->channel);
        size_t n = s->out.len;
        int written;
        if (window == 0)
            break;
        if (n > window)
            n = window;
        if (n > 65536)
            n = 65536;
        written = ssh_channel_write(s->channel, s->out.data, (uint32_t)n);
        if (written == SSH_ERROR) {
            buf_free(&s->out); /* the session is lost: nothing more can go out */
            if (s->state == SSH_SESSION_OPEN)
                ssh_server__close_later(s, VLOG_WARN, "cannot write to the channel");
            return;
        }
        if (written <= 0)
            break;
        buf_consume(&s->out, (size_t)written);
    }
    buf_trim(&s->out, BUF_MIN_CAP);
}

/* Reads S's channel into its decoder and hands whole frames to the owner. Returns 1 when
 * input is left for a later pass, 0 otherwise (S may be closed on return: check state). */
static int ssh_server__read_frames(struct ssh_server_session *s)
{
    struct ssh_server *server = s->server;
    char chunk[16384];
    size_t read_total = 0;

    while (s->state == SSH_SESSION_OPEN && s->pending_close[0] == '\0') {
        struct se_frame frame;
        char why[200];
        int rc = se_frame_decoder_next(&s->decoder, &frame, why, sizeof why);
        int n;

        if (rc == 1) {
            if (server->cb.on_frame != NULL && s->owner != NULL)
                server->cb.on_frame(server->cb.data, s->owner, &frame);
            json_decref(frame.payload);
            continue;
        }
        if (rc < 0) {
            ssh_server__endf(s, VLOG_WARN, "refused a frame: %s", why);
            return 0;
        }
        if (read_total >= SSH_SERVER__READ_PER_PASS)
            return 1;
        n = ssh_channel_read_nonblocking(s->channel, chunk, sizeof chunk, 0);
        if (n == SSH_EOF) {
            ssh_server__end(s, VLOG_INFO, "the SE ended the channel");
            return 0;
        }
        if (n < 0) {
            ssh_server__endf(s, VLOG_INFO, "cannot read the channel: %s", ssh_get_error(s->ssh));
            return 0;
        }
        if (n == 0 && s->peer_ended) {
            ssh_server__end(s, VLOG_INFO, "the SE closed the channel");
            return 0;
        }
        if (n == 0)
            return 0;
        read_total += (size_t)n;
        if (se_frame_decoder_feed(&s->decoder, chunk, (size_t)n) != 0) {
            ssh_server__end(s, VLOG_ERROR, "out of memory");
            return 0;
        }
    }
    return 0;
}

/* One session's turn in the prepare phase. */
static void ssh_server__service(struct ssh_server_session *s)
{
    struct ssh_server *server = s->server;
    int more = 0;

    if (s->state == SSH_SESSION_AUTH && s->subsystem_asked) {
        ssh_server__set_state(s, SSH_SESSION_OPEN, "subsystem " SE_FRAME_SUBSYSTEM);
        vlog_info("se channel %s: SE '%s' connected", s->peer, s->se_name);
        s->owner = server->cb.on_open != NULL
                       ? server->cb.on_open(server->cb.data, s, s->se_name)
                       : NULL;
        if (s->owner == NULL) {
            ssh_server__end(s, VLOG_WARN, "the session was not accepted");
            return;
        }
    }
    if (s->state == SSH_SESSION_OPEN)
        more = ssh_server__read_frames(s);
    if (s->state != SSH_SESSION_OPEN)
        return;
    if (s->pending_close[0] == '\0')
        ssh_server__flush(s);
    if (ssh_server__end_if_over(s))
        return;
    /* Writing may have read more into libssh's channel buffer, with no socket event to
     * come for it. */
    if (!more && ssh_channel_poll(s->channel, 0) > 0)
        more = 1;
    if (more)
        ssh_server__add_work(s);
    ssh_server__update_poll(s);
}

static void ssh_server__on_idle(uv_idle_t *h)
{
    (void)h; /* only keeps the loop from blocking while work is left */
}

static void ssh_server__on_prepare(uv_prepare_t *h)
{
    struct ssh_server *server = h->data;
    struct ssh_server_session *s;

    /* This pass serves the sessions listed before it; work found meanwhile waits for the
     * next pass (the idle handle keeps the loop from blocking until then). */
    server->servicing = server->work;
    server->work = NULL;
    while ((s = server->servicing) != NULL) {
        server->servicing = s->work_next;
        s->in_work = 0;
        ssh_server__service(s);
    }
    if (server->work != NULL)
        uv_idle_start(&server->idle, ssh_server__on_idle);
    else
        uv_idle_stop(&server->idle);
}

int ssh_server_session_send(struct ssh_server_session *session, enum se_frame_type type,
                            const json_t *payload)
{
    size_t before = session->out.len;
    int rc;

    if (session->state != SSH_SESSION_OPEN)
        return VIGIL_ESHUTDOWN;
    rc = se_frame_append(&session->out, type, payload);
    if (rc != 0)
        return rc;
    if (session->out.len > session->server->cfg.max_outbound_bytes) {
        session->out.len = before;
        ssh_server__close_later(session, VLOG_WARN, "the SE does not read: its outbound queue is full");
        ssh_server__add_work(session);
        return VIGIL_ETOOBIG;
    }
    ssh_server__add_work(session);
    return 0;
}

const char *ssh_server_session_peer(const struct ssh_server_session *session)
{
    return session->peer;
}

unsigned ssh_server_session_count(const struct ssh_server *server)
{
    return server->count;
}

void ssh_server_session_states(const struct ssh_server *server,
                               unsigned counts[SSH_SESSION__COUNT])
{
    memset(counts, 0, SSH_SESSION__COUNT * sizeof counts[0]);
    for (const struct ssh_server_session *s = server->sessions; s != NULL; s = s->next)
        if ((unsigned)s->state < SSH_SESSION__COUNT)
            counts[s->state]++;
}

/* --- accepting ------------------------------------------------------------------ */

static void ssh_server__peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[64] = "?";
    unsigned port = 0;

    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            uv_ip4_name(in, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(in6, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(out, len, "%s:%u", host, port);
}

/* A new session on accepted socket FD (stolen). */
static void ssh_server__session_new(struct ssh_server *server, int fd)
{
    struct ssh_server_session *s = calloc(1, sizeof *s);
    int one = 1, rc;

    if (s == NULL || (s->ssh = ssh_new()) == NULL) {
        free(s);
        close(fd);
        return;
    }
    s->server = server;
    s->fd = fd;
    ssh_server__peer_name(fd, s->peer, sizeof s->peer);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ssh_bind_accept_fd(server->bind, s->ssh, fd) != SSH_OK) {
        int owned = ssh_get_fd(s->ssh) == fd; /* then ssh_free closes it */
        vlog_warn("se channel %s: cannot start a session: %s", s->peer, ssh_get_error(server->bind));
        ssh_free(s->ssh);
        if (!owned)
            close(fd);
        free(s);
        return;
    }
    ssh_set_blocking(s->ssh, 0);
    s->server_cb.userdata = s;
    s->server_cb.auth_pubkey_function = ssh_server__on_auth_pubkey;
    s->server_cb.channel_open_request_session_function = ssh_server__on_channel_open;
    ssh_callbacks_init(&s->server_cb);
    ssh_set_server_callbacks(s->ssh, &s->server_cb);
    ssh_set_auth_methods(s->ssh, SSH_AUTH_METHOD_PUBLICKEY);
    se_frame_decoder_init(&s->decoder, server->cfg.max_inbound_payload);
    s->state = SSH_SESSION_HANDSHAKE;
    s->deadline_ms = time_mono_ms() + server->cfg.handshake_ms;
    s->poll_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    rc = s->poll_fd < 0 ? -errno : uv_poll_init(server->loop, &s->poll, s->poll_fd);
    if (rc != 0) {
        vlog_warn("se channel %s: cannot watch the session's socket: %s", s->peer,
                  uv_strerror(rc));
        if (s->poll_fd >= 0)
            close(s->poll_fd);
        ssh_free(s->ssh); /* closes FD */
        se_frame_decoder_free(&s->decoder);
        free(s);
        return;
    }
    s->poll.data = s;
    server->handshaking++;
    s->next = server->sessions;
    if (server->sessions != NULL)
        server->sessions->prev = s;
    server->sessions = s;
    server->count++;
    ssh_server__drive(s);
}

static void ssh_server__on_listen(uv_poll_t *h, int status, int events)
{
    struct ssh_server *server = h->data;
    (void)events;
    if (status < 0 || server->closing)
        return;
    if (!ssh_server__caught_up(server)) {
        if (!server->catch_up_logged)
            vlog_info("se channel: this node has not caught up with the cluster's log yet: "
                      "new connections wait until it has");
        server->catch_up_logged = 1;
        uv_poll_stop(&server->listen_poll);
        server->accept_paused = 1;
        uv_timer_start(&server->catch_up, ssh_server__on_catch_up, SSH_SERVER__CATCH_UP_MS,
                       SSH_SERVER__CATCH_UP_MS);
        return;
    }
    for (int i = 0; i < SSH_SERVER__ACCEPT_PER_EVENT; i++) {
        int fd;
        if (server->handshaking >= SSH_SERVER__MAX_HANDSHAKES) {
            int64_t now = time_mono_ms();
            if (now - server->paused_logged_ms >= 1000) {
                vlog_info("se channel: %u handshakes in progress, the most at once: new "
                          "connections wait", server->handshaking);
                server->paused_logged_ms = now;
            }
            uv_poll_stop(&server->listen_poll);
            server->accept_paused = 1;
            return;
        }
        fd = accept4(server->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                errno != ECONNABORTED)
                vlog_warn("se channel: accept: %s", strerror(errno));
            return;
        }
        if (server->count >= server->cfg.max_sessions) {
            int64_t now = time_mono_ms();
            if (now - server->refused_logged_ms >= 1000) {
                vlog_warn("se channel: %u sessions open, the most allowed: refusing connections",
                          server->count);
                server->refused_logged_ms = now;
            }
            close(fd);
            continue;
        }
        ssh_server__session_new(server, fd);
    }
}

/* Closes the sessions whose handshake deadline passed. */
static void ssh_server__on_tick(uv_timer_t *t)
{
    struct ssh_server *server = t->data;
    int64_t now = time_mono_ms();
    struct ssh_server_session *s = server->sessions;

    while (s != NULL) {
        struct ssh_server_session *next = s->next;
        if ((s->state == SSH_SESSION_HANDSHAKE || s->state == SSH_SESSION_AUTH) &&
            now >= s->deadline_ms)
            ssh_server__endf(s, VLOG_WARN, "the handshake did not finish within %u ms (in %s)",
                             server->cfg.handshake_ms, ssh_session_state_name(s->state));
        s = next;
    }
}

/* --- start and close ---------------------------------------------------------------- */

static void ssh_server__on_handle_closed(uv_handle_t *h)
{
    struct ssh_server *server = h->data;
    if (h == (uv_handle_t *)&server->listen_poll)
        close(server->listen_fd); /* not while libuv watches it */
    server->handles_open--;
    ssh_server__maybe_done(server);
}

static int ssh_server__fail(struct ssh_server *server, int rc, char *err, size_t errlen,
                            const char *what)
{
    snprintf(err, errlen, "se channel: %s", what);
    if (server->bind != NULL)
        ssh_bind_free(server->bind);
    close(server->listen_fd);
    free(server);
    return rc;
}

int ssh_server_start(uv_loop_t *loop, int listen_fd, const struct ssh_server_config *cfg,
                     struct store *store, const struct ssh_server_callbacks *callbacks,
                     struct ssh_server **out, char *err, size_t errlen)
{
    struct ssh_server *server = calloc(1, sizeof *server);
    int rc;

    if (server == NULL) {
        close(listen_fd);
        snprintf(err, errlen, "se channel: out of memory");
        return VIGIL_ENOMEM;
    }
    server->loop = loop;
    server->store = store;
    server->cfg = *cfg;
    server->cb = *callbacks;
    server->listen_fd = listen_fd;
    server->bind = ssh_bind_new();
    if (server->bind == NULL)
        return ssh_server__fail(server, VIGIL_ENOMEM, err, errlen, "out of memory");
    if (ssh_bind_options_set(server->bind, SSH_BIND_OPTIONS_HOSTKEY, cfg->host_key_path) != SSH_OK)
        return ssh_server__fail(server, VIGIL_EINVAL, err, errlen, "cannot use the host key");
    ssh_bind_set_blocking(server->bind, 0);
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    rc = uv_poll_init(loop, &server->listen_poll, listen_fd);
    if (rc != 0)
        return ssh_server__fail(server, rc, err, errlen, "cannot watch the listening socket");
    server->listen_poll.data = server;
    uv_prepare_init(loop, &server->prepare);
    server->prepare.data = server;
    uv_idle_init(loop, &server->idle);
    server->idle.data = server;
    uv_timer_init(loop, &server->tick);
    server->tick.data = server;
    uv_timer_init(loop, &server->catch_up);
    server->catch_up.data = server;
    server->handles_open = 5;
    uv_poll_start(&server->listen_poll, UV_READABLE, ssh_server__on_listen);
    uv_prepare_start(&server->prepare, ssh_server__on_prepare);
    uv_timer_start(&server->tick, ssh_server__on_tick, SSH_SERVER__TICK_MS, SSH_SERVER__TICK_MS);
    *out = server;
    return 0;
}

void ssh_server_close(struct ssh_server *server, const char *reason, void (*done)(void *data),
                      void *data)
{
    if (server->closing)
        return;
    server->closing = 1;
    server->done = done;
    server->done_data = data;
    while (server->sessions != NULL)
        ssh_server__end(server->sessions, VLOG_INFO, reason);
    uv_close((uv_handle_t *)&server->listen_poll, ssh_server__on_handle_closed);
    uv_close((uv_handle_t *)&server->prepare, ssh_server__on_handle_closed);
    uv_close((uv_handle_t *)&server->idle, ssh_server__on_handle_closed);
    uv_close((uv_handle_t *)&server->tick, ssh_server__on_handle_closed);
    uv_close((uv_handle_t *)&server->catch_up, ssh_server__on_handle_closed);
}
