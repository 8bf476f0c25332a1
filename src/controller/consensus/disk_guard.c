#include "controller/consensus/disk_guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "common/vlog.h"

#define DISK_GUARD__CHECK_MS 100
#define DISK_GUARD__MARGIN ((uint64_t)2 << 20)     /* on top of a segment and a snapshot */
#define DISK_GUARD__HYSTERESIS ((uint64_t)1 << 20) /* "back" needs this much more */
#define DISK_GUARD__MAX 8                          /* guarded io instances per process */

/* A request held while the disk is full, handed to the backend in order later. */
struct disk_guard__held {
    struct disk_guard__held *next;
    enum { DISK_GUARD__APPEND, DISK_GUARD__TRUNCATE, DISK_GUARD__SNAPSHOT } type;
    struct raft_io_append *append;          /* libraft's own request (borrowed) */
    const struct raft_entry *entries;       /* referenced by libraft until the callback */
    unsigned n;
    raft_io_append_cb append_cb;
    raft_index truncate_index;
    unsigned trailing;
    struct raft_io_snapshot_put *put;
    const struct raft_snapshot *snapshot;
    raft_io_snapshot_put_cb put_cb;
};

/* One append handed to the backend: its failure is caught here, never passed on. */
struct disk_guard__append {
    struct raft_io_append inner;
    struct raft_io_append *outer;
    raft_io_append_cb outer_cb;
    struct disk_guard *g;
};

struct disk_guard {
    uv_loop_t *loop;
    struct raft *raft;
    struct raft_io *io;
    char dir[600];
    uint64_t segment_bytes, snapshot_bytes;
    bool full;
    bool closing;
    uv_timer_t timer;
    struct raft_transfer transfer;
    bool transferring;
    unsigned handovers;           /* leadership handed over during this full spell */
    unsigned inflight;            /* appends handed to the backend, not yet called back */
    struct disk_guard__held *head, *tail;
    int (*orig_append)(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
    int (*orig_truncate)(struct raft_io *io, raft_index index);
    int (*orig_snapshot_put)(struct raft_io *io, unsigned trailing,
                             struct raft_io_snapshot_put *req, const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb);
};

static struct disk_guard *disk_guard__all[DISK_GUARD__MAX];

static struct disk_guard *disk_guard__of(struct raft_io *io)
{
    for (unsigned i = 0; i < DISK_GUARD__MAX; i++)
        if (disk_guard__all[i] != NULL && disk_guard__all[i]->io == io)
            return disk_guard__all[i];
    abort(); /* only guarded io instances are routed here */
}

static uint64_t disk_guard__free_bytes(struct disk_guard *g)
{
    struct statvfs st;
    if (statvfs(g->dir, &st) != 0)
        return UINT64_MAX; /* cannot tell: the backend's own errors still stop us */
    return (uint64_t)st.f_bavail * st.f_frsize;
}

static uint64_t disk_guard__reserve(struct disk_guard *g)
{
    return g->segment_bytes + g->snapshot_bytes + DISK_GUARD__MARGIN;
}

static void disk_guard__flush(struct disk_guard *g);

/* Re-reads the free space and moves between ok and full (logging each move). */
static bool disk_guard__update(struct disk_guard *g)
{
    uint64_t free_bytes = disk_guard__free_bytes(g), reserve = disk_guard__reserve(g);

    if (!g->full && free_bytes < reserve) {
        g->full = true;
        vlog_warn("disk: full: %s has %llu KiB free, under the %llu KiB reserve; writes are "
                  "refused (503 disk full) and raft log writes wait until space returns",
                  g->dir, (unsigned long long)(free_bytes >> 10),
                  (unsigned long long)(reserve >> 10));
    } else if (g->full && free_bytes >= reserve + DISK_GUARD__HYSTERESIS) {
        g->full = false;
        g->handovers = 0;
        vlog_info("disk: space is back: %s has %llu KiB free; writes resume", g->dir,
                  (unsigned long long)(free_bytes >> 10));
    }
    return g->full;
}

/* A log write failed in the backend although the reserve said there was room (another
 * process filled the disk, or a hardware error). libraft 0.15 would truncate and reuse
 * the index (or keep unwritten entries); stopping keeps every log whole. */
static void disk_guard__fatal(struct disk_guard *g, int status)
{
    vlog_error("disk: a raft log write in %s failed (%s: %s); stopping so that the log "
               "stays consistent (libraft 0.15 cannot recover from a failed write)",
               g->dir, raft_strerror(status), g->io->errmsg);
    fprintf(stderr, "vigild: a raft log write in %s failed (%s); stopping: free space and "
                    "start the node again\n", g->dir, raft_strerror(status));
    exit(3);
}

static void disk_guard__appended(struct raft_io_append *inner, int status)
{
    struct disk_guard__append *a = inner->data;
    struct disk_guard *g = a->g;
    struct raft_io_append *outer = a->outer;
    raft_io_append_cb cb = a->outer_cb;

    if (status != 0 && status != RAFT_CANCELED)
        disk_guard__fatal(g, status);
    free(a);
    g->inflight--;
    if (g->closing && g->inflight == 0 && g->timer.data == NULL)
        free(g); /* the timer is closed already */
    cb(outer, status);
}

/* Hands an append to the backend. Returns 0; a synchronous failure stops the process
 * (the backend may have queued the request all the same: UvAppend). */
static int disk_guard__submit_append(struct disk_guard *g, struct raft_io_append *req,
                                     const struct raft_entry entries[], unsigned n,
                                     raft_io_append_cb cb)
{
    struct disk_guard__append *a = calloc(1, sizeof *a);
    int rv;

    if (a == NULL)
        return RAFT_NOMEM; /* nothing reached the backend: libraft cleans up */
    a->outer = req;
    a->outer_cb = cb;
    a->g = g;
    a->inner.data = a;
    g->inflight++;
    rv = g->orig_append(g->io, &a->inner, entries, n, disk_guard__appended);
    if (rv != 0)
        disk_guard__fatal(g, rv);
    return 0;
}

static int disk_guard__hold(struct disk_guard *g, struct disk_guard__held *h)
{
    struct disk_guard__held *copy = malloc(sizeof *copy);
    if (copy == NULL)
        return RAFT_NOMEM;
    *copy = *h;
    copy->next = NULL;
    if (g->tail != NULL)
        g->tail->next = copy;
    else
        g->head = copy;
    g->tail = copy;
    return 0;
}

static int disk_guard__append(struct raft_io *io, struct raft_io_append *req,
                              const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct disk_guard *g = disk_guard__of(io);

    if (g->closing)
        return g->orig_append(io, req, entries, n, cb);
    disk_guard__update(g);
    if (g->full && raft_state(g->raft) == RAFT_LEADER) {
        /* Before the backend saw it: raft_apply discards the entry, the caller keeps
         * (and frees) its buffer. */
        snprintf(io->errmsg, sizeof io->errmsg, "disk full");
        return RAFT_NOSPACE;
    }
    if (!g->full) {
        disk_guard__flush(g); /* space came back since the last timer tick */
        return disk_guard__submit_append(g, req, entries, n, cb);
    }
    return disk_guard__hold(g, &(struct disk_guard__held){.type = DISK_GUARD__APPEND,
                                                          .append = req, .entries = entries,
                                                          .n = n, .append_cb = cb});
}

static int disk_guard__truncate(struct raft_io *io, raft_index index)
{
    struct disk_guard *g = disk_guard__of(io);

    if (g->head == NULL || g->closing)
        return g->orig_truncate(io, index);
    return disk_guard__hold(g, &(struct disk_guard__held){.type = DISK_GUARD__TRUNCATE,
                                                          .truncate_index = index});
}

static int disk_guard__snapshot_put(struct raft_io *io, unsigned trailing,
                                    struct raft_io_snapshot_put *req,
                                    const struct raft_snapshot *snapshot,
                                    raft_io_snapshot_put_cb cb)
{
    struct disk_guard *g = disk_guard__of(io);

    if (g->head == NULL || g->closing)
        return g->orig_snapshot_put(io, trailing, req, snapshot, cb);
    return disk_guard__hold(g, &(struct disk_guard__held){.type = DISK_GUARD__SNAPSHOT,
                                                          .trailing = trailing, .put = req,
                                                          .snapshot = snapshot, .put_cb = cb});
}

/* Hands the held requests to the backend, oldest first. A backend that refuses a held
 * truncate or snapshot at once stops the process (libraft was told it was accepted). */
static void disk_guard__flush(struct disk_guard *g)
{
    while (g->head != NULL) {
        struct disk_guard__held *h = g->head;
        int rv = 0;
        g->head = h->next;
        if (g->head == NULL)
            g->tail = NULL;
        if (h->type == DISK_GUARD__APPEND)
            rv = disk_guard__submit_append(g, h->append, h->entries, h->n, h->append_cb);
        else if (h->type == DISK_GUARD__TRUNCATE)
            rv = g->orig_truncate(g->io, h->truncate_index);
        else
            rv = g->orig_snapshot_put(g->io, h->trailing, h->put, h->snapshot, h->put_cb);
        free(h);
        if (rv != 0)
            disk_guard__fatal(g, rv);
    }
}

static void disk_guard__on_transferred(struct raft_transfer *req)
{
    struct disk_guard *g = req->data;
    g->transferring = false;
}

static void disk_guard__on_timer(uv_timer_t *t)
{
    struct disk_guard *g = t->data;

    if (disk_guard__update(g)) {
        /* A leader that cannot append hands over to a voter that can (a single node
         * keeps leading and refuses writes). */
        if (raft_state(g->raft) == RAFT_LEADER && !g->transferring &&
            g->raft->transfer == NULL && g->raft->configuration.n > 1) {
            g->transfer.data = g;
            if (raft_transfer(g->raft, &g->transfer, 0, disk_guard__on_transferred) == 0) {
                g->transferring = true;
                if (g->handovers++ == 0) /* once per full spell: it may be elected again */
                    vlog_info("disk: full: handing leadership to another voter");
            }
        }
        return;
    }
    disk_guard__flush(g);
}

struct disk_guard *disk_guard_start(uv_loop_t *loop, struct raft *raft, struct raft_io *io,
                                    const char *dir, uint64_t segment_bytes)
{
    struct disk_guard *g;
    unsigned slot = 0;

    while (slot < DISK_GUARD__MAX && disk_guard__all[slot] != NULL)
        slot++;
    if (slot == DISK_GUARD__MAX || (g = calloc(1, sizeof *g)) == NULL)
        return NULL;
    g->loop = loop;
    g->raft = raft;
    g->io = io;
    snprintf(g->dir, sizeof g->dir, "%s", dir);
    g->segment_bytes = segment_bytes;
    g->orig_append = io->append;
    g->orig_truncate = io->truncate;
    g->orig_snapshot_put = io->snapshot_put;
    io->append = disk_guard__append;
    io->truncate = disk_guard__truncate;
    io->snapshot_put = disk_guard__snapshot_put;
    disk_guard__all[slot] = g;
    uv_timer_init(loop, &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, disk_guard__on_timer, 0, DISK_GUARD__CHECK_MS);
    return g;
}

bool disk_guard_is_full(struct disk_guard *g)
{
    return g->full;
}

void disk_guard_set_snapshot_bytes(struct disk_guard *g, uint64_t bytes)
{
    g->snapshot_bytes = bytes;
}

static void disk_guard__on_closed(uv_handle_t *h)
{
    struct disk_guard *g = h->data;
    g->timer.data = NULL; /* closed: the last append callback frees G */
    if (g->inflight == 0)
        free(g);
}

void disk_guard_close(struct disk_guard *g)
{
    g->closing = true;
    for (unsigned i = 0; i < DISK_GUARD__MAX; i++)
        if (disk_guard__all[i] == g)
            disk_guard__all[i] = NULL;
    /* The io keeps our functions until it is closed: route them straight through. */
    g->io->append = g->orig_append;
    g->io->truncate = g->orig_truncate;
    g->io->snapshot_put = g->orig_snapshot_put;
    while (g->head != NULL) {
        struct disk_guard__held *h = g->head;
        g->head = h->next;
        if (h->type == DISK_GUARD__APPEND)
            h->append_cb(h->append, RAFT_CANCELED);
        else if (h->type == DISK_GUARD__SNAPSHOT)
            h->put_cb(h->put, RAFT_CANCELED);
        free(h);
    }
    g->tail = NULL;
    uv_close((uv_handle_t *)&g->timer, disk_guard__on_closed);
}
