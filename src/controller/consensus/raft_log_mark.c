#include "controller/consensus/raft_log_mark.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/errors.h"
#include "common/vlog.h"

#define RAFT_LOG_MARK__NAME "log-end"
#define RAFT_LOG_MARK__PREFIX "vigil log end "
#define RAFT_LOG_MARK__LEN (sizeof RAFT_LOG_MARK__PREFIX - 1 + 20 + 1)

/* One append in flight: raft's request and what it stores. */
struct raft_log_mark__append {
    struct raft_io_append inner;       /* handed to the wrapped backend */
    struct raft_io_append *outer;      /* raft's own request */
    raft_io_append_cb outer_cb;
    struct raft_log_mark *m;
    uint64_t last;                     /* index of its last entry */
    uint64_t cap;                      /* a truncation or install since it was sent */
    struct raft_log_mark__append *next;
};

/* One install (snapshot_put with trailing 0) in flight. */
struct raft_log_mark__install {
    struct raft_io_snapshot_put inner;
    struct raft_io_snapshot_put *outer;
    raft_io_snapshot_put_cb outer_cb;
    struct raft_log_mark *m;
    uint64_t index;
};

/* Writes VALUE as the mark (SYNC: fsynced before returning). A failed write leaves the file
 * as it was, and the next write tries again. */
static void raft_log_mark__write(struct raft_log_mark *m, uint64_t value, bool sync)
{
    char line[RAFT_LOG_MARK__LEN + 1];

    if (m->fd < 0)
        return;
    snprintf(line, sizeof line, RAFT_LOG_MARK__PREFIX "%020llu\n", (unsigned long long)value);
    if (pwrite(m->fd, line, RAFT_LOG_MARK__LEN, 0) != (ssize_t)RAFT_LOG_MARK__LEN) {
        vlog_warn("raft log mark %s: cannot write: %s", m->path, strerror(errno));
        return;
    }
    m->saved = value;
    m->dirty = true;
    if (sync)
        raft_log_mark_sync(m);
}

/* Lowers the mark to at most VALUE, durably, and caps the appends in flight there (what
 * they stored is about to be removed). */
static void raft_log_mark__lower(struct raft_log_mark *m, uint64_t value)
{
    for (struct raft_log_mark__append *a = m->pending; a != NULL; a = a->next)
        if (a->cap > value)
            a->cap = value;
    if (m->saved > value)
        raft_log_mark__write(m, value, true);
}

/* libraft hands a backend function only the raft_io, and io->data belongs to raft: the
 * wrapped ios and their marks are found here (loop thread only; a process has one). */
#define RAFT_LOG_MARK__MAX 4
static struct raft_log_mark *raft_log_mark__all[RAFT_LOG_MARK__MAX];

static struct raft_log_mark *raft_log_mark__of(struct raft_io *io)
{
    for (int i = 0; i < RAFT_LOG_MARK__MAX; i++)
        if (raft_log_mark__all[i] != NULL && raft_log_mark__all[i]->io == io)
            return raft_log_mark__all[i];
    abort(); /* a wrapped function is only ever installed with its mark */
}

/* --- the wrapped raft_io functions ---------------------------------------------------- */

static int raft_log_mark__load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                               struct raft_snapshot **snapshot, raft_index *start_index,
                               struct raft_entry **entries, size_t *n_entries)
{
    struct raft_log_mark *m = raft_log_mark__of(io);
    int rv = m->load(io, term, voted_for, snapshot, start_index, entries, n_entries);

    if (rv == 0) {
        /* As libraft's backend: the next append goes right after what was loaded. */
        m->next_index = *start_index + *n_entries;
        m->loaded_last = m->next_index - 1;
        m->loaded = true;
    }
    return rv;
}

static void raft_log_mark__unlink(struct raft_log_mark *m, struct raft_log_mark__append *a)
{
    struct raft_log_mark__append **p = &m->pending;
    while (*p != NULL && *p != a)
        p = &(*p)->next;
    if (*p == a)
        *p = a->next;
}

static void raft_log_mark__appended(struct raft_io_append *inner, int status)
{
    struct raft_log_mark__append *a = inner->data;
    struct raft_log_mark *m = a->m;
    uint64_t stored = a->last < a->cap ? a->last : a->cap;

    raft_log_mark__unlink(m, a);
    if (status != 0)
        m->failed = true; /* the backend is broken; never mark past what it surely holds */
    else if (!m->failed && stored > m->saved)
        raft_log_mark__write(m, stored, false);
    a->outer_cb(a->outer, status);
    free(a);
}

static int raft_log_mark__append(struct raft_io *io, struct raft_io_append *req,
                                 const struct raft_entry entries[], unsigned n,
                                 raft_io_append_cb cb)
{
    struct raft_log_mark *m = raft_log_mark__of(io);
    struct raft_log_mark__append *a = calloc(1, sizeof *a), **tail;
    int rv;

    if (a == NULL)
        return RAFT_NOMEM;
    a->outer = req;
    a->outer_cb = cb;
    a->m = m;
    a->last = m->next_index + n - 1;
    a->cap = UINT64_MAX;
    a->inner.data = a;
    rv = m->append(io, &a->inner, entries, n, raft_log_mark__appended);
    if (rv != 0) {
        free(a);
        return rv;
    }
    m->next_index += n;
    for (tail = &m->pending; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = a;
    return 0;
}

static int raft_log_mark__truncate(struct raft_io *io, raft_index index)
{
    struct raft_log_mark *m = raft_log_mark__of(io);

    /* Entries from INDEX on go (a follower drops conflicting uncommitted ones): lowered
     * durably first, so that no crash finds the log shorter than the mark. */
    raft_log_mark__lower(m, index - 1);
    m->next_index = index;
    return m->truncate(io, index);
}

static void raft_log_mark__installed(struct raft_io_snapshot_put *inner, int status)
{
    struct raft_log_mark__install *s = inner->data;
    struct raft_log_mark *m = s->m;

    if (status == 0) {
        /* The log is now the snapshot (written and synced before the old segments went). */
        m->next_index = s->index + 1;
        if (!m->failed && m->saved != s->index)
            raft_log_mark__write(m, s->index, false);
    }
    s->outer_cb(s->outer, status);
    free(s);
}

static int raft_log_mark__snapshot_put(struct raft_io *io, unsigned trailing,
                                       struct raft_io_snapshot_put *req,
                                       const struct raft_snapshot *snapshot,
                                       raft_io_snapshot_put_cb cb)
{
    struct raft_log_mark *m = raft_log_mark__of(io);
    struct raft_log_mark__install *s;
    int rv;

    if (trailing != 0) /* a snapshot of this node's own: the log keeps its last index */
        return m->snapshot_put(io, trailing, req, snapshot, cb);
    /* An install replaces the whole log by SNAPSHOT: it may be shorter than the log was
     * (uncommitted entries of an old term). */
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return RAFT_NOMEM;
    s->outer = req;
    s->outer_cb = cb;
    s->m = m;
    s->index = snapshot->index;
    s->inner.data = s;
    raft_log_mark__lower(m, snapshot->index);
    rv = m->snapshot_put(io, trailing, &s->inner, snapshot, raft_log_mark__installed);
    if (rv != 0)
        free(s);
    return rv;
}

/* --- open, check, close ---------------------------------------------------------------- */

/* The mark in M's file, or 0 (none yet, or damaged: then *DAMAGED). */
static uint64_t raft_log_mark__read(struct raft_log_mark *m, bool *damaged)
{
    char line[RAFT_LOG_MARK__LEN + 1];
    unsigned long long value = 0;
    ssize_t got = pread(m->fd, line, RAFT_LOG_MARK__LEN, 0);
    size_t prefix = sizeof RAFT_LOG_MARK__PREFIX - 1;

    *damaged = false;
    if (got == 0)
        return 0;
    line[got > 0 ? got : 0] = '\0';
    *damaged = true;
    if (got != (ssize_t)RAFT_LOG_MARK__LEN || memcmp(line, RAFT_LOG_MARK__PREFIX, prefix) != 0 ||
        line[RAFT_LOG_MARK__LEN - 1] != '\n')
        return 0;
    for (size_t i = prefix; i < RAFT_LOG_MARK__LEN - 1; i++) {
        if (line[i] < '0' || line[i] > '9')
            return 0;
        value = value * 10 + (unsigned long long)(line[i] - '0');
    }
    *damaged = false;
    return value;
}

int raft_log_mark_open(struct raft_log_mark *m, struct raft_io *io, const char *dir, char *err,
                       size_t errlen)
{
    int slot = -1;

    memset(m, 0, sizeof *m);
    m->fd = -1;
    for (int i = 0; i < RAFT_LOG_MARK__MAX && slot < 0; i++)
        if (raft_log_mark__all[i] == NULL)
            slot = i;
    if (slot < 0) {
        snprintf(err, errlen, "raft log mark: too many raft logs open");
        return VIGIL_ENOMEM;
    }
    snprintf(m->path, sizeof m->path, "%s/" RAFT_LOG_MARK__NAME, dir);
    m->fd = open(m->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m->fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", m->path, strerror(errno));
        return VIGIL_EIO;
    }
    m->found = raft_log_mark__read(m, &m->found_damaged);
    if (m->found_damaged)
        vlog_warn("%s is damaged: this start cannot check that the raft log is whole; the "
                  "mark is rewritten with the next append", m->path);
    m->saved = m->found;
    m->io = io;
    m->load = io->load;
    m->append = io->append;
    m->truncate = io->truncate;
    m->snapshot_put = io->snapshot_put;
    io->load = raft_log_mark__load;
    io->append = raft_log_mark__append;
    io->truncate = raft_log_mark__truncate;
    io->snapshot_put = raft_log_mark__snapshot_put;
    raft_log_mark__all[slot] = m;
    return 0;
}

int raft_log_mark_check(const struct raft_log_mark *m, const char *dir, char *err, size_t errlen)
{
    if (!m->loaded || m->loaded_last >= m->found)
        return 0;
    snprintf(err, errlen, "damaged raft log in %s: it ends at index %llu but this node had "
             "durably stored up to index %llu (%s): entries were cut off or lost; start it "
             "with --rebuild to take the leader's state",
             dir, (unsigned long long)m->loaded_last, (unsigned long long)m->found, m->path);
    return VIGIL_ECORRUPT;
}

void raft_log_mark_sync(struct raft_log_mark *m)
{
    if (m->fd < 0 || !m->dirty)
        return;
    if (fdatasync(m->fd) != 0)
        vlog_warn("raft log mark %s: fsync: %s", m->path, strerror(errno));
    else
        m->dirty = false;
}

void raft_log_mark_close(struct raft_log_mark *m)
{
    if (m->io == NULL)
        return;
    raft_log_mark_sync(m);
    close(m->fd);
    m->fd = -1;
    for (int i = 0; i < RAFT_LOG_MARK__MAX; i++)
        if (raft_log_mark__all[i] == m)
            raft_log_mark__all[i] = NULL;
    m->io = NULL;
}
