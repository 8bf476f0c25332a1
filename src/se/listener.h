/* listener.h: a listening socket of a virtual service (VIP:port), accepting by hand
 * through uv_poll so that accepting can pause when descriptors run low (the connection
 * waits in the backlog instead of being refused). Each accepted socket goes to the accept
 * callback of its hooks (main hands it to the HTTP or TCP proxy by the listener's current
 * se_vs); running out of descriptors calls out_of_fds. The listener calls nothing above
 * it. Loop thread only. */
#ifndef VIGIL_SE_LISTENER_H
#define VIGIL_SE_LISTENER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <uv.h>

#include "common/objects.h"
#include "se/engine-t.h"

/* What a listener calls (borrowed; ARG is passed back). */
struct listener_hooks {
    listener_accept_fn *accept;      /* an accepted socket, while the listener has a service */
    void (*out_of_fds)(void *arg);   /* accept failed for lack of descriptors */
    void *arg;
};

struct se_listener {
    int refs;
    struct listener_hooks hooks;
    uv_poll_t poll;
    int fd;
    struct sockaddr_in addr;
    char label[24];          /* "ip:port" */
    struct se_vs *vs;        /* current service (one reference), NULL once closed */
    /* The current service's consistent-hash header name ("" for none, TCP services and
     * other algorithms), copied here so that a client connection, which holds the
     * listener, can match request headers against it while the service changes. */
    char hash_header[OBJ_HASH_HEADER_MAX + 1];
    bool closed;             /* no longer in the configuration: connections finish and go */
    bool polling;
    struct se_listener *next; /* engine's list */
};

/* Binds and listens on ADDR on LOOP with HOOKS (copied), accepting at once unless PAUSED.
 * Returns 0 and the listener in *OUT (one reference, the caller's: the engine) or a
 * negative errno (e.g. -EADDRINUSE). */
int listener_open(uv_loop_t *loop, const struct sockaddr_in *addr,
                  const struct listener_hooks *hooks, bool paused, struct se_listener **out);

/* Points L at VS (may be NULL), taking over the caller's reference, and copies VS's
 * consistent-hash header name into L->hash_header. Returns the previous service, whose
 * reference goes back to the caller (NULL when none). */
struct se_vs *listener_set_vs(struct se_listener *l, struct se_vs *vs);

/* Stops accepting for good and drops the engine's reference; connections that hold a
 * reference keep L's memory until they go. The caller first takes L's service back with
 * listener_set_vs(L, NULL). */
void listener_close(struct se_listener *l);

/* Stops or restarts accepting (descriptor shortage). */
void listener_pause(struct se_listener *l);
void listener_resume(struct se_listener *l);

struct se_listener *listener_ref(struct se_listener *l);
void listener_unref(struct se_listener *l);

#endif
