/* test_raft_send_guard.c: the send guard (controller/consensus/raft_send_guard.c), first over
 * a fake raft_io, then against libraft 0.15 itself (its in-memory fixture): a follower whose
 * append completes after it saw a higher term answers the unknown leader (server 0, address
 * NULL), the message that crashed two nodes in the 1000-SE storm (strlen in UvSend). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "controller/consensus/raft_send_guard.h"

/* ---------------------------------------------------------------------------------- */
/* A fake backend that records what reaches it                                        */

static unsigned fake_sends;
static raft_id fake_last_id;

static int fake_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                     raft_io_send_cb cb)
{
    (void)io;
    (void)req;
    (void)cb;
    fake_sends++;
    fake_last_id = m->server_id;
    return 0;
}

static void test_refuses_only_a_message_without_id_or_address(void **state)
{
    struct raft_io io;
    struct raft_io_send req;
    struct raft_message m;
    (void)state;

    memset(&io, 0, sizeof io);
    memset(&m, 0, sizeof m);
    io.send = fake_send;
    fake_sends = 0;
    assert_int_equal(raft_send_guard_install(&io), 0);
    assert_ptr_not_equal(io.send, fake_send);

    m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
    m.server_id = 2;
    m.server_address = "127.0.0.1:9002";
    assert_int_equal(io.send(&io, &req, &m, NULL), 0);
    assert_int_equal(fake_sends, 1);
    assert_int_equal(fake_last_id, 2);

    m.server_address = NULL; /* the defect's message */
    assert_int_equal(io.send(&io, &req, &m, NULL), RAFT_NOCONNECTION);
    m.server_id = 0;
    assert_int_equal(io.send(&io, &req, &m, NULL), RAFT_NOCONNECTION);
    m.server_address = "127.0.0.1:9002";
    assert_int_equal(io.send(&io, &req, &m, NULL), RAFT_NOCONNECTION);
    assert_int_equal(fake_sends, 1);
    assert_int_equal(raft_send_guard_refused(&io), 3);

    raft_send_guard_remove(&io);
    assert_ptr_equal(io.send, fake_send);
    assert_int_equal(raft_send_guard_refused(&io), 0);
}

/* ---------------------------------------------------------------------------------- */
/* libraft 0.15's own path to that message                                             */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    (void)fsm;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].len = 8;
    (*bufs)[0].base = raft_calloc(1, 8);
    *n = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    (void)fsm;
    raft_free(buf->base);
    return 0;
}

static void applied(struct raft_apply *req, int status, void *result)
{
    (void)status;
    (void)result;
    free(req);
}

static void test_libraft_answers_an_unknown_leader_and_the_guard_refuses(void **state)
{
    struct raft_fsm fsms[3];
    struct raft_fixture f;
    struct raft_configuration conf;
    struct raft_apply *req = calloc(1, sizeof *req);
    struct raft_buffer buf;
    struct raft *follower;
    raft_term term;
    (void)state;

    memset(fsms, 0, sizeof fsms);
    assert_int_equal(raft_fixture_initialize(&f), 0);
    for (int i = 0; i < 3; i++) {
        fsms[i].version = 1;
        fsms[i].apply = fsm_apply;
        fsms[i].snapshot = fsm_snapshot;
        fsms[i].restore = fsm_restore;
        assert_int_equal(raft_fixture_grow(&f, &fsms[i]), 0);
    }
    assert_int_equal(raft_fixture_configuration(&f, 3, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&f), 0);
    follower = raft_fixture_get(&f, 1);
    assert_int_equal(raft_send_guard_install(follower->io), 0);

    raft_fixture_elect(&f, 0);
    assert_int_equal(raft_fixture_leader_index(&f), 0);
    term = raft_fixture_get(&f, 0)->current_term;
    /* Server 1's disk is slow: the next entry is still being written 3 s after it came. */
    raft_fixture_set_disk_latency(&f, 1, 3000);
    buf.len = 8;
    buf.base = raft_calloc(1, 8);
    assert_int_equal(raft_apply(raft_fixture_get(&f, 0), req, &buf, 1, applied), 0);
    raft_fixture_step_until_elapsed(&f, 100); /* the entry reached 1 and 2 */
    /* Then the leader is cut off, and 1 cannot answer 2: 2 stands for election every
     * 500 ms and can never win; 1 times out (1.1 s), stands too, and 2's next vote
     * request, with a higher term, makes it a follower that knows no leader. */
    for (unsigned i = 1; i < 3; i++) {
        raft_fixture_disconnect(&f, 0, i);
        raft_fixture_disconnect(&f, i, 0);
    }
    raft_fixture_disconnect(&f, 1, 2);
    raft_fixture_set_randomized_election_timeout(&f, 2, 500);
    raft_fixture_step_until_elapsed(&f, 2500);
    assert_true(follower->current_term > term + 1);
    assert_int_equal(follower->state, RAFT_FOLLOWER);
    assert_int_equal(follower->follower_state.current_leader.id, 0);
    assert_null(follower->follower_state.current_leader.address);
    assert_int_equal(raft_send_guard_refused(follower->io), 0);
    /* The append completes: libraft answers the leader it no longer knows (id 0, address
     * NULL), which UvSend would strlen. */
    raft_fixture_step_until_elapsed(&f, 1000);
    assert_int_equal(follower->state, RAFT_FOLLOWER);
    assert_true(raft_send_guard_refused(follower->io) >= 1);

    raft_send_guard_remove(follower->io);
    raft_fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_only_a_message_without_id_or_address),
        cmocka_unit_test(test_libraft_answers_an_unknown_leader_and_the_guard_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
