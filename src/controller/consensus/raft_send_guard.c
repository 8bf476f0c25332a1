/* raft_send_guard.c: refuses libraft's sends to an unknown server (see raft_send_guard.h). */
#include "controller/consensus/raft_send_guard.h"

#include <stddef.h>
#include <stdlib.h>

#include "common/errors.h"
#include "common/vlog.h"

struct raft_send_guard {
    struct raft_io *io; /* NULL: the slot is free */
    int (*send)(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                raft_io_send_cb cb);
    uint64_t refused;
};

/* libraft hands io->send only the raft_io, and io->data belongs to raft: the guards are
 * found here (loop thread only; a process has one, tests a few). */
#define RAFT_SEND_GUARD__MAX 4
static struct raft_send_guard raft_send_guard__all[RAFT_SEND_GUARD__MAX];

static struct raft_send_guard *raft_send_guard__of(const struct raft_io *io)
{
    for (int i = 0; i < RAFT_SEND_GUARD__MAX; i++)
        if (raft_send_guard__all[i].io == io)
            return &raft_send_guard__all[i];
    return NULL;
}

static int raft_send_guard__send(struct raft_io *io, struct raft_io_send *req,
                                 const struct raft_message *m, raft_io_send_cb cb)
{
    struct raft_send_guard *g = raft_send_guard__of(io);

    if (g == NULL)
        abort(); /* the wrapper is only ever installed with its guard */
    if (m->server_id != 0 && m->server_address != NULL)
        return g->send(io, req, m, cb);
    if (g->refused++ == 0)
        vlog_warn("raft: a message of type %d to server %llu with %s was not sent (libraft 0.15 "
                  "answers an append that completed after the leader became unknown; counted, "
                  "logged once)", (int)m->type, (unsigned long long)m->server_id,
                  m->server_address == NULL ? "no address" : "no server id");
    return RAFT_NOCONNECTION;
}

int raft_send_guard_install(struct raft_io *io)
{
    struct raft_send_guard *g = raft_send_guard__of(NULL);

    if (g == NULL)
        return VIGIL_ENOMEM;
    g->io = io;
    g->send = io->send;
    g->refused = 0;
    io->send = raft_send_guard__send;
    return 0;
}

uint64_t raft_send_guard_refused(const struct raft_io *io)
{
    const struct raft_send_guard *g = io != NULL ? raft_send_guard__of(io) : NULL;
    return g != NULL ? g->refused : 0;
}

void raft_send_guard_remove(struct raft_io *io)
{
    struct raft_send_guard *g = io != NULL ? raft_send_guard__of(io) : NULL;

    if (g == NULL)
        return;
    io->send = g->send;
    g->io = NULL;
}
