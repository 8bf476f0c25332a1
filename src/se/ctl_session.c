/* ctl_session.c: one non-blocking libssh client session to a controller (see ctl_session.h).
 *
 * Driving libssh from the loop: after the first ssh_connect the session's socket is known;
 * a uv_poll on it (readable, and writable while libssh has output pending) and a 50 ms
 * nudge timer during the handshake call the current step again until it stops answering
 * SSH_AGAIN. Once OPEN, each poll event reads what the channel holds
 * (ssh_channel_read_nonblocking, which also lets libssh flush its own output), hands whole
 * frames to the owner, then writes the outbound buffer. */
#include "se/ctl_session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libssh/libssh.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/errors.h"
#include "common/loop_timer.h"
#include "common/timeutil.h"
#include "common/vlog.h"

#define CTL_SESSION_NUDGE_MS 50
#define CTL_SESSION_HISTORY_MAX 16

struct ctl_session_record {
    enum ctl_session_state state;
    int64_t time_ms;
    char reason[96];
};

/* A uv_poll on a dup() of libssh's socket: libssh closes its descriptor itself on EOF or
 * an error, and the number may be reused at once (by a client connection); a poll on that
 * number would then unregister the new owner's descriptor from the loop when it stops.
 * The duplicate stays ours until the poll handle closed. */
struct ctl_session_poll {
    uv_poll_t handle;
    int fd;
};

/* A name lookup in libuv's thread pool (libssh's own would block the loop), for one
 * attempt; it counts as one of the session's handles until its callback ran. */
struct ctl_session_resolve {
    uv_getaddrinfo_t req;
    struct ctl_session *session;
    unsigned attempt;
};

struct ctl_session {
    uv_loop_t *loop;
    struct ctl_session_params p;
    char host[256];           /* as given: the name the host key is looked up under */
    char connect_ip[256];     /* HOST resolved (HOST itself when numeric); "" while resolving */
    unsigned attempt;         /* counts connection attempts (a stale lookup is ignored) */
    unsigned port;
    enum ctl_session_state state;
    struct ctl_session_record history[CTL_SESSION_HISTORY_MAX]; /* ring */
    unsigned history_next, history_len;
    ssh_session ssh;          /* NULL in BACKOFF */
    ssh_channel channel;
    ssh_key key;              /* loaded for each attempt (the file may be replaced) */
    struct ctl_session_poll *poll; /* on the session's socket; freed in its close callback */
    int poll_events;
    uv_timer_t timer;         /* backoff delay, or the handshake nudge */
    struct loop_timer flush;  /* "soon": writes the outbound buffer */
    int64_t handshake_start_ms;
    uint32_t backoff_ms;
    uint32_t jitter_state;    /* xorshift32, seeded per process and session */
    struct buf out;           /* control frames (ctl_session_send), written first */
    struct buf bulk;          /* bulk frames (ctl_session_send_text: LOGS), after them */
    size_t bulk_frame_left;   /* bytes of the bulk frame being written still to write (0:
                               * at a frame boundary, control frames may go first) */
    struct se_frame_decoder in;
    int handles_open;
    int destroyed;
};

static const char *const ctl_session__names[CTL_SESSION__COUNT] = {
    [CTL_SESSION_BACKOFF] = "BACKOFF", [CTL_SESSION_CONNECTING] = "CONNECTING",
    [CTL_SESSION_AUTH] = "AUTH",       [CTL_SESSION_CHANNEL] = "CHANNEL",
    [CTL_SESSION_OPEN] = "OPEN",
};

/* ctl_session__legal[from][to] (see ctl_session.h). */
static const unsigned char ctl_session__legal[CTL_SESSION__COUNT][CTL_SESSION__COUNT] = {
    [CTL_SESSION_BACKOFF] = {[CTL_SESSION_CONNECTING] = 1},
    [CTL_SESSION_CONNECTING] = {[CTL_SESSION_AUTH] = 1, [CTL_SESSION_BACKOFF] = 1},
    [CTL_SESSION_AUTH] = {[CTL_SESSION_CHANNEL] = 1, [CTL_SESSION_BACKOFF] = 1},
    [CTL_SESSION_CHANNEL] = {[CTL_SESSION_OPEN] = 1, [CTL_SESSION_BACKOFF] = 1},
    [CTL_SESSION_OPEN] = {[CTL_SESSION_BACKOFF] = 1},
};

static void ctl_session__step(struct ctl_session *s);

const char *ctl_session_state_name(enum ctl_session_state st)
{
    return (unsigned)st < CTL_SESSION__COUNT ? ctl_session__names[st] : "?";
}

/* The one setter of S->state: refuses (and logs) a move the table does not allow. */
static int ctl_session__move(struct ctl_session *s, enum ctl_session_state to, const char *reason)
{
    struct ctl_session_record *r;

    if (!ctl_session__legal[s->state][to]) {
        vlog_error("ctl_session %s: refused illegal move %s -> %s (%s)", s->p.address,
                   ctl_session_state_name(s->state), ctl_session_state_name(to), reason);
        return VIGIL_EINVAL;
    }
    vlog_debug("ctl_session %s: %s -> %s (%s)", s->p.address, ctl_session_state_name(s->state),
               ctl_session_state_name(to), reason);
    r = &s->history[s->history_next];
    s->history_next = (s->history_next + 1) % CTL_SESSION_HISTORY_MAX;
    if (s->history_len < CTL_SESSION_HISTORY_MAX)
        s->history_len++;
    r->state = to;
    r->time_ms = time_now_ms();
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    s->state = to;
    return 0;
}

/* One of S's handles (timer, flush, a pending lookup) closed: the last frees S. */
static void ctl_session__release(struct ctl_session *s)
{
    if (--s->handles_open == 0) {
        buf_free(&s->out);
        buf_free(&s->bulk);
        se_frame_decoder_free(&s->in);
        free(s);
    }
}

static void ctl_session__timer_closed(uv_handle_t *h)
{
    ctl_session__release(h->data);
}

static void ctl_session__flush_closed(struct loop_timer *t)
{
    ctl_session__release(t->data);
}

static void ctl_session__poll_closed(uv_handle_t *h)
{
    struct ctl_session_poll *p = (struct ctl_session_poll *)h;
    close(p->fd);
    free(p);
}

/* Frees the libssh objects and stops watching their socket (the poll handle is closed
 * before ssh_free closes the descriptor). */
static void ctl_session__teardown(struct ctl_session *s)
{
    if (s->poll) {
        uv_close((uv_handle_t *)&s->poll->handle, ctl_session__poll_closed);
        s->poll = NULL;
    }
    if (s->channel) {
        ssh_channel_free(s->channel);
        s->channel = NULL;
    }
    if (s->ssh) {
        ssh_disconnect(s->ssh);
        ssh_free(s->ssh);
        s->ssh = NULL;
    }
    if (s->key) {
        ssh_key_free(s->key);
        s->key = NULL;
    }
    s->poll_events = 0;
    s->out.len = 0;
    s->bulk.len = 0;
    s->bulk_frame_left = 0;
    se_frame_decoder_free(&s->in);
    se_frame_decoder_init(&s->in, 0);
}

static void ctl_session__on_timer(uv_timer_t *t);

/* The session's next pseudo-random number (xorshift32), drawn from a seed of the process
 * id, the time and the session, so that SEs started together do not reconnect in step (a
 * controller's return would meet every SE at the same instant). */
static uint32_t ctl_session__random(struct ctl_session *s)
{
    uint32_t x = s->jitter_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s->jitter_state = x;
    return x;
}

/* The jittered backoff delay: the current base +-20 %, then the base doubles up to the cap. */
static uint32_t ctl_session__next_backoff(struct ctl_session *s)
{
    uint32_t base = s->backoff_ms, jitter = base / 5, x = ctl_session__random(s);
    uint32_t delay;

    delay = base - jitter + (jitter ? x % (2 * jitter + 1) : 0);

    s->backoff_ms = base * 2 > CTL_SESSION_BACKOFF_MAX_MS ? CTL_SESSION_BACKOFF_MAX_MS : base * 2;
    return delay;
}

int ctl_session_connect_soon(struct ctl_session *s, uint32_t spread_ms)
{
    uint32_t delay;

    if (s->state != CTL_SESSION_BACKOFF || s->destroyed)
        return 0;
    delay = ctl_session__random(s) % (spread_ms + 1); /* 0 .. SPREAD_MS */
    s->backoff_ms = CTL_SESSION_BACKOFF_MIN_MS;
    uv_timer_start(&s->timer, ctl_session__on_timer, delay, 0);
    return 1;
}

/* A failure or a drop: one log line, libssh freed, the owner told (when it was OPEN), and
 * a reconnect after the backoff delay. */
static void ctl_session__fail(struct ctl_session *s, const char *reason)
{
    bool was_open = s->state == CTL_SESSION_OPEN;
    uint32_t delay;
    char why[256];

    if (s->state == CTL_SESSION_BACKOFF)
        return;
    snprintf(why, sizeof why, "%s", reason); /* REASON may be libssh's, freed below */
    ctl_session__teardown(s);
    ctl_session__move(s, CTL_SESSION_BACKOFF, why);
    delay = ctl_session__next_backoff(s);
    vlog_warn("ctl_session %s: %s; connecting again in %u ms", s->p.address, why, delay);
    uv_timer_start(&s->timer, ctl_session__on_timer, delay, 0);
    if (was_open && s->p.ops->closed && !s->destroyed)
        s->p.ops->closed(s, why, s->p.arg);
}

static void ctl_session__fail_ssh(struct ctl_session *s, const char *what)
{
    char why[256];
    snprintf(why, sizeof why, "%s: %s", what, s->ssh ? ssh_get_error(s->ssh) : "no session");
    ctl_session__fail(s, why);
}

static void ctl_session__on_poll(uv_poll_t *h, int status, int events);

/* Watches the socket for reading, and for writing while libssh has output pending. */
static void ctl_session__arm(struct ctl_session *s)
{
    int want = UV_READABLE;
    socket_t fd;

    if (s->ssh == NULL)
        return;
    /* Not for a non-empty outbound buffer: that waits for the peer's window adjust, which
     * comes readable (a writable socket would only spin the loop). */
    if (ssh_get_poll_flags(s->ssh) & SSH_WRITE_PENDING)
        want |= UV_WRITABLE;
    if (s->poll == NULL) {
        fd = ssh_get_fd(s->ssh);
        if (fd == SSH_INVALID_SOCKET)
            return; /* not yet: the nudge timer calls the step again */
        s->poll = malloc(sizeof *s->poll);
        if (s->poll != NULL)
            s->poll->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (s->poll == NULL || s->poll->fd < 0 ||
            uv_poll_init_socket(s->loop, &s->poll->handle, s->poll->fd) != 0) {
            if (s->poll && s->poll->fd >= 0)
                close(s->poll->fd);
            free(s->poll);
            s->poll = NULL;
            ctl_session__fail(s, "cannot watch the session's socket");
            return;
        }
        s->poll->handle.data = s;
        s->poll_events = 0;
    }
    if (want != s->poll_events) {
        uv_poll_start(&s->poll->handle, want, ctl_session__on_poll);
        s->poll_events = want;
    }
}

static int ctl_session__new_ssh(struct ctl_session *s)
{
    int yes = 1, no = 0, verbosity = SSH_LOG_NOLOG;
    long timeout = CTL_SESSION_HANDSHAKE_MS / 1000;

    if (ssh_pki_import_privkey_file(s->p.key_path, NULL, NULL, NULL, &s->key) != SSH_OK) {
        ctl_session__fail(s, "cannot load --key");
        return -1;
    }
    s->ssh = ssh_new();
    if (s->ssh == NULL) {
        ctl_session__fail(s, "out of memory for an SSH session");
        return -1;
    }
    if (ssh_options_set(s->ssh, SSH_OPTIONS_HOST, s->connect_ip) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_PORT, &s->port) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_USER, s->p.user) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_KNOWNHOSTS, s->p.known_hosts) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_NODELAY, &yes) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_TIMEOUT, &timeout) != 0 ||
        ssh_options_set(s->ssh, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) != 0) {
        ctl_session__fail_ssh(s, "cannot set the SSH options");
        return -1;
    }
    ssh_set_blocking(s->ssh, 0);
    return 0;
}

/* The host key check, right after the key exchange. Returns 0 (known) or -1 (refused). */
static int ctl_session__check_host_key(struct ctl_session *s)
{
    enum ssh_known_hosts_e known = ssh_session_is_known_server(s->ssh);
    const char *why;

    switch (known) {
    case SSH_KNOWN_HOSTS_OK: return 0;
    case SSH_KNOWN_HOSTS_CHANGED: why = "host key refused: it CHANGED (not the one in --known-hosts)"; break;
    case SSH_KNOWN_HOSTS_OTHER: why = "host key refused: --known-hosts holds another type of key for it"; break;
    case SSH_KNOWN_HOSTS_UNKNOWN: why = "host key refused: unknown (not in --known-hosts)"; break;
    case SSH_KNOWN_HOSTS_NOT_FOUND: why = "host key refused: --known-hosts cannot be read"; break;
    default: why = "host key refused: cannot check it against --known-hosts"; break;
    }
    ctl_session__fail(s, why);
    return -1;
}

/* One pass of the handshake step of the current state. Returns 1 when the state moved on
 * (call again), 0 when libssh waits for the peer, -1 after a failure. */
static int ctl_session__handshake_once(struct ctl_session *s)
{
    int rc;

    switch (s->state) {
    case CTL_SESSION_CONNECTING:
        if (s->ssh == NULL)
            return 0; /* the name is being looked up */
        rc = ssh_connect(s->ssh);
        if (rc == SSH_AGAIN)
            return 0;
        if (rc != SSH_OK) {
            ctl_session__fail_ssh(s, "connect");
            return -1;
        }
        /* the host key is known under the name given, not the address it resolved to */
        if (strcmp(s->connect_ip, s->host) != 0 &&
            ssh_options_set(s->ssh, SSH_OPTIONS_HOST, s->host) != 0) {
            ctl_session__fail_ssh(s, "host name");
            return -1;
        }
        if (ctl_session__check_host_key(s) != 0)
            return -1;
        ctl_session__move(s, CTL_SESSION_AUTH, "key exchange done, host key known");
        return 1;
    case CTL_SESSION_AUTH:
        rc = ssh_userauth_publickey(s->ssh, NULL, s->key);
        if (rc == SSH_AUTH_AGAIN)
            return 0;
        if (rc != SSH_AUTH_SUCCESS) {
            ctl_session__fail(s, rc == SSH_AUTH_ERROR ? "authentication failed"
                                                      : "authentication refused (this key and name)");
            return -1;
        }
        s->channel = ssh_channel_new(s->ssh);
        if (s->channel == NULL) {
            ctl_session__fail_ssh(s, "channel");
            return -1;
        }
        ctl_session__move(s, CTL_SESSION_CHANNEL, "authenticated");
        return 1;
    case CTL_SESSION_CHANNEL:
        if (!ssh_channel_is_open(s->channel)) {
            rc = ssh_channel_open_session(s->channel);
            if (rc == SSH_AGAIN)
                return 0;
            if (rc != SSH_OK) {
                ctl_session__fail_ssh(s, "channel open refused");
                return -1;
            }
        }
        rc = ssh_channel_request_subsystem(s->channel, SE_FRAME_SUBSYSTEM);
        if (rc == SSH_AGAIN)
            return 0;
        if (rc != SSH_OK) {
            ctl_session__fail_ssh(s, "subsystem " SE_FRAME_SUBSYSTEM " refused");
            return -1;
        }
        ctl_session__move(s, CTL_SESSION_OPEN, "subsystem " SE_FRAME_SUBSYSTEM " open");
        uv_timer_stop(&s->timer);
        s->backoff_ms = CTL_SESSION_BACKOFF_MIN_MS;
        vlog_info("ctl_session %s: open (%lld ms)", s->p.address,
                  (long long)(time_mono_ms() - s->handshake_start_ms));
        if (s->p.ops->opened)
            s->p.ops->opened(s, s->p.arg);
        return 0;
    default:
        return 0;
    }
}

/* OPEN: reads what the channel holds and hands each whole frame to the owner. */
static void ctl_session__read(struct ctl_session *s)
{
    char data[16384], err[200];
    struct se_frame f;
    int n, rc;

    while (s->state == CTL_SESSION_OPEN) {
        n = ssh_channel_read_nonblocking(s->channel, data, sizeof data, 0);
        if (n == SSH_EOF || n < 0 || ssh_channel_is_eof(s->channel) ||
            ssh_channel_is_closed(s->channel)) {
            if (n > 0 && se_frame_decoder_feed(&s->in, data, (size_t)n) != 0)
                n = -1;
            ctl_session__fail(s, n == SSH_ERROR && s->ssh ? ssh_get_error(s->ssh)
                                                          : "the controller closed the channel");
            return;
        }
        if (n == 0)
            return;
        if (se_frame_decoder_feed(&s->in, data, (size_t)n) != 0) {
            ctl_session__fail(s, "out of memory for a received frame");
            return;
        }
        while (s->state == CTL_SESSION_OPEN &&
               (rc = se_frame_decoder_next(&s->in, &f, err, sizeof err)) != 0) {
            if (rc < 0) {
                ctl_session__fail(s, err);
                return;
            }
            s->p.ops->frame(s, &f, s->p.arg);
            json_decref(f.payload);
        }
    }
}

/* Writes at most MOST bytes from the front of B, as far as the peer's window takes them.
 * Returns the bytes written (0: the window is full), or -1 after a failure (S failed). */
static long ctl_session__write_some(struct ctl_session *s, struct buf *b, size_t most)
{
    uint32_t window = ssh_channel_window_size(s->channel);
    uint32_t len = most < window ? (uint32_t)most : window;
    int n;

    if (len == 0)
        return 0;
    n = ssh_channel_write(s->channel, b->data, len);
    if (n == SSH_ERROR) {
        ctl_session__fail_ssh(s, "write");
        return -1;
    }
    buf_consume(b, (size_t)n);
    return n;
}

/* OPEN: writes as much of the outbound buffers as the peer's window takes. Never more: on
 * a full window ssh_channel_write would run libssh's packet loop waiting for an adjust;
 * the adjust comes readable instead, and the next step writes the rest. Control frames go
 * first; a bulk frame, once begun, is finished before the next control frame (frames never
 * interleave), so a heartbeat waits at most for the rest of one bulk frame. */
static void ctl_session__write(struct ctl_session *s)
{
    long n = 0;

    while (s->state == CTL_SESSION_OPEN) {
        if (s->bulk_frame_left == 0 && s->out.len > 0) {
            n = ctl_session__write_some(s, &s->out, s->out.len);
        } else if (s->bulk.len >= SE_FRAME_HEADER) {
            const unsigned char *h = (const unsigned char *)s->bulk.data;
            if (s->bulk_frame_left == 0)
                s->bulk_frame_left = SE_FRAME_HEADER + ((size_t)h[4] << 24 | (size_t)h[5] << 16 |
                                                        (size_t)h[6] << 8 | h[7]);
            n = ctl_session__write_some(s, &s->bulk, s->bulk_frame_left);
            if (n > 0)
                s->bulk_frame_left -= (size_t)n;
        } else {
            break;
        }
        if (n <= 0)
            break;
    }
    if (n >= 0) {
        buf_trim(&s->out, 65536);
        buf_trim(&s->bulk, 65536);
    }
}

static void ctl_session__step(struct ctl_session *s)
{
    if (s->state == CTL_SESSION_OPEN) {
        ctl_session__read(s);
        ctl_session__write(s);
    } else {
        while (s->state != CTL_SESSION_BACKOFF && s->state != CTL_SESSION_OPEN &&
               ctl_session__handshake_once(s) > 0)
            ;
        if (s->state == CTL_SESSION_OPEN) {
            ctl_session__read(s); /* frames that came with the subsystem's answer */
            ctl_session__write(s);
        }
    }
    if (s->state != CTL_SESSION_BACKOFF)
        ctl_session__arm(s);
}

static void ctl_session__on_poll(uv_poll_t *h, int status, int events)
{
    struct ctl_session *s = h->data;
    (void)events;
    if (status == UV_EBADF) {
        /* libuv's word for POLLERR on the socket: a reset or refused connection */
        ctl_session__fail(s, "the connection was reset or refused (socket error)");
        return;
    }
    if (status < 0) {
        ctl_session__fail(s, uv_strerror(status));
        return;
    }
    ctl_session__step(s);
}

/* Makes the libssh session for CONNECT_IP and takes the first step. */
static void ctl_session__connect(struct ctl_session *s)
{
    if (ctl_session__new_ssh(s) != 0)
        return;
    ctl_session__step(s);
}

static void ctl_session__on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct ctl_session_resolve *r = (struct ctl_session_resolve *)req;
    struct ctl_session *s = r->session;
    bool current = !s->destroyed && r->attempt == s->attempt &&
                   s->state == CTL_SESSION_CONNECTING && s->ssh == NULL;
    char why[320];

    if (current && (status != 0 || res == NULL)) {
        snprintf(why, sizeof why, "cannot resolve %s: %s", s->host,
                 status ? uv_strerror(status) : "no address");
        ctl_session__fail(s, why);
    } else if (current) {
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, s->connect_ip,
                    sizeof s->connect_ip);
        ctl_session__connect(s);
    }
    uv_freeaddrinfo(res);
    free(r);
    ctl_session__release(s);
}

static void ctl_session__start_attempt(struct ctl_session *s)
{
    struct in6_addr numeric;
    struct ctl_session_resolve *r;
    struct addrinfo hints;

    ctl_session__move(s, CTL_SESSION_CONNECTING, "connecting");
    s->attempt++;
    s->handshake_start_ms = time_mono_ms();
    uv_timer_start(&s->timer, ctl_session__on_timer, CTL_SESSION_NUDGE_MS, CTL_SESSION_NUDGE_MS);
    if (inet_pton(AF_INET, s->host, &numeric) == 1 || inet_pton(AF_INET6, s->host, &numeric) == 1) {
        snprintf(s->connect_ip, sizeof s->connect_ip, "%s", s->host);
        ctl_session__connect(s);
        return;
    }
    s->connect_ip[0] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        ctl_session__fail(s, "out of memory for a name lookup");
        return;
    }
    r->session = s;
    r->attempt = s->attempt;
    if (uv_getaddrinfo(s->loop, &r->req, ctl_session__on_resolved, s->host, NULL, &hints) != 0) {
        free(r);
        ctl_session__fail(s, "cannot start a name lookup");
        return;
    }
    s->handles_open++;
}

/* BACKOFF: the delay passed. Handshake: the nudge, and the deadline. */
static void ctl_session__on_timer(uv_timer_t *t)
{
    struct ctl_session *s = t->data;

    if (s->state == CTL_SESSION_BACKOFF) {
        ctl_session__start_attempt(s);
    } else if (s->state != CTL_SESSION_OPEN) {
        if (time_mono_ms() - s->handshake_start_ms > CTL_SESSION_HANDSHAKE_MS) {
            char why[96];
            snprintf(why, sizeof why, "handshake not done after %d ms (stuck in %s)",
                     CTL_SESSION_HANDSHAKE_MS, ctl_session_state_name(s->state));
            ctl_session__fail(s, why);
            return;
        }
        ctl_session__step(s);
    }
}

static void ctl_session__on_flush(struct loop_timer *t)
{
    struct ctl_session *s = t->data;
    if (s->state == CTL_SESSION_OPEN)
        ctl_session__step(s);
}

int ctl_session_create(uv_loop_t *loop, const struct ctl_session_params *p,
                       struct ctl_session **out)
{
    struct ctl_session *s;
    const char *colon = strrchr(p->address, ':');
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;

    if (colon == NULL || colon == p->address || (size_t)(colon - p->address) >= 256 ||
        *end != '\0' || port < 1 || port > 65535)
        return VIGIL_EINVAL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return VIGIL_ENOMEM;
    s->loop = loop;
    s->p = *p;
    memcpy(s->host, p->address, (size_t)(colon - p->address));
    s->port = (unsigned)port;
    s->state = CTL_SESSION_BACKOFF;
    s->backoff_ms = CTL_SESSION_BACKOFF_MIN_MS;
    s->jitter_state = ((uint32_t)getpid() * 2654435761u) ^ (uint32_t)time_mono_ms() ^
                      (uint32_t)(uintptr_t)s;
    if (s->jitter_state == 0)
        s->jitter_state = 1;
    se_frame_decoder_init(&s->in, 0);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    loop_timer_init(loop, &s->flush, ctl_session__on_flush);
    s->flush.data = s;
    s->handles_open = 2;
    uv_timer_start(&s->timer, ctl_session__on_timer, 0, 0);
    *out = s;
    return 0;
}

/* Whether a frame may be queued: 0, or VIGIL_ESHUTDOWN when S is not OPEN or its peer does
 * not read (the outbound buffers passed CTL_SESSION_OUT_MAX: S is dropped). */
static int ctl_session__may_queue(struct ctl_session *s)
{
    if (s->state != CTL_SESSION_OPEN)
        return VIGIL_ESHUTDOWN;
    if (s->out.len + s->bulk.len > CTL_SESSION_OUT_MAX) {
        ctl_session__fail(s, "the controller does not read what is sent (output buffer full)");
        return VIGIL_ESHUTDOWN;
    }
    return 0;
}

int ctl_session_send(struct ctl_session *s, enum se_frame_type type, const json_t *payload)
{
    int rc = ctl_session__may_queue(s);

    if (rc == 0)
        rc = se_frame_append(&s->out, type, payload);
    if (rc == 0)
        loop_timer_start(&s->flush, 0);
    return rc;
}

int ctl_session_send_text(struct ctl_session *s, enum se_frame_type type, const char *text,
                          size_t len)
{
    int rc = ctl_session__may_queue(s);

    if (rc == 0)
        rc = se_frame_append_text(&s->bulk, type, text, len);
    if (rc == 0)
        loop_timer_start(&s->flush, 0);
    return rc;
}

size_t ctl_session_queued_bytes(const struct ctl_session *s)
{
    return s->out.len + s->bulk.len;
}

void ctl_session_drop(struct ctl_session *s, const char *why)
{
    ctl_session__fail(s, why);
}

void ctl_session_destroy(struct ctl_session *s)
{
    if (s->destroyed)
        return;
    s->destroyed = 1;
    if (s->state == CTL_SESSION_OPEN)
        ctl_session__write(s); /* what is queued (a BYE) goes out before the disconnect */
    ctl_session__teardown(s);
    uv_close((uv_handle_t *)&s->timer, ctl_session__timer_closed);
    loop_timer_close(&s->flush, ctl_session__flush_closed);
}

enum ctl_session_state ctl_session_state(const struct ctl_session *s)
{
    return s->state;
}

const char *ctl_session_address(const struct ctl_session *s)
{
    return s->p.address;
}

const char *ctl_session_last_failure(const struct ctl_session *s, int64_t *when_ms)
{
    for (unsigned i = 0; i < s->history_len; i++) {
        unsigned k = (s->history_next + CTL_SESSION_HISTORY_MAX - 1 - i) % CTL_SESSION_HISTORY_MAX;
        if (s->history[k].state == CTL_SESSION_BACKOFF && s->history[k].reason[0] != '\0') {
            if (when_ms)
                *when_ms = s->history[k].time_ms;
            return s->history[k].reason;
        }
    }
    return NULL;
}
