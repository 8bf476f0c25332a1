/* raft_transport: libraft's TCP transport with Nagle off. Two transports on one loop over
 * loopback: the stream libraft gets from connect (the one its messages go out on) and the
 * one it gets from accept both have TCP_NODELAY set; ids and addresses pass through; a
 * healthy stream is not ended by raft_transport_kick; a connect cancelled by close reports
 * an error to its caller; close calls back. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/consensus/raft_transport.h"

struct pair {
    uv_loop_t loop;
    struct raft_transport a, b;
    char b_address[64];
    int connected, accepted, closed;
    int connect_status;
    int out_nodelay, in_nodelay;
    raft_id accepted_id;
    char accepted_address[64];
    struct uv_stream_s *out, *in;
};

static struct pair *the_pair;

static int nodelay_of(struct uv_stream_s *stream)
{
    uv_os_fd_t fd;
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(uv_fileno((uv_handle_t *)stream, &fd), 0);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on;
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      struct uv_stream_s *stream)
{
    struct pair *p = the_pair;
    assert_ptr_equal(t, raft_transport_uv(&p->b));
    p->accepted = 1;
    p->accepted_id = id;
    snprintf(p->accepted_address, sizeof p->accepted_address, "%s", address);
    p->in_nodelay = nodelay_of(stream);
    p->in = stream;
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    struct pair *p = req->data;
    p->connected = 1;
    p->connect_status = status;
    if (status == 0) {
        p->out_nodelay = nodelay_of(stream);
        p->out = stream;
    }
}

static void on_closed(struct raft_uv_transport *t)
{
    (void)t;
    the_pair->closed++;
}

static void free_stream(uv_handle_t *h)
{
    raft_free(h);
}

static void run_until(struct pair *p, int *flag)
{
    for (int i = 0; i < 2000 && !*flag; i++)
        uv_run(&p->loop, UV_RUN_NOWAIT), usleep(1000);
    assert_true(*flag);
}

static void test_streams_have_nodelay(void **state)
{
    static struct pair p;
    struct raft_uv_connect req;
    struct sockaddr_in sa;
    int port, fd;
    socklen_t len = sizeof sa;
    (void)state;

    memset(&p, 0, sizeof p);
    the_pair = &p;
    /* a free port on 127.0.0.1 */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    snprintf(p.b_address, sizeof p.b_address, "127.0.0.1:%d", port);

    assert_int_equal(uv_loop_init(&p.loop), 0);
    assert_int_equal(raft_transport_init(&p.a, &p.loop), 0);
    assert_int_equal(raft_transport_init(&p.b, &p.loop), 0);
    struct raft_uv_transport *a = raft_transport_uv(&p.a), *b = raft_transport_uv(&p.b);
    assert_int_equal(a->init(a, 1, "127.0.0.1:1"), 0);
    assert_int_equal(b->init(b, 2, p.b_address), 0);
    assert_int_equal(b->listen(b, on_accept), 0);

    req.data = &p;
    assert_int_equal(a->connect(a, &req, 2, p.b_address, on_connect), 0);
    run_until(&p, &p.connected);
    assert_int_equal(p.connect_status, 0);
    assert_ptr_equal(req.cb, on_connect); /* the caller's request, its own callback */
    assert_int_equal(p.out_nodelay, 1);
    run_until(&p, &p.accepted);
    assert_int_equal(p.accepted_id, 1);
    assert_string_equal(p.accepted_address, "127.0.0.1:1");
    assert_int_equal(p.in_nodelay, 1);
    /* raft_transport_kick ends only streams the kernel is retransmitting on: these two are
     * healthy (the netns test test_rejoin.py covers a stream into a partition), and a peer
     * with no stream has nothing to end */
    assert_int_equal(raft_transport_kick(&p.a, 2), 0);
    assert_int_equal(raft_transport_kick(&p.b, 1), 0);
    assert_int_equal(raft_transport_kick(&p.a, 99), 0);
    assert_int_equal(nodelay_of(p.out), 1); /* still open */

    /* a connect still in progress when the transport closes is answered, not lost */
    p.connected = 0;
    assert_int_equal(a->connect(a, &req, 3, "127.0.0.1:1", on_connect), 0);
    uv_close((uv_handle_t *)p.out, free_stream);
    uv_close((uv_handle_t *)p.in, free_stream);
    a->close(a, on_closed);
    b->close(b, on_closed);
    run_until(&p, &p.connected);
    assert_int_not_equal(p.connect_status, 0);
    for (int i = 0; i < 200 && p.closed < 2; i++)
        uv_run(&p.loop, UV_RUN_NOWAIT), usleep(1000);
    assert_int_equal(p.closed, 2);
    raft_transport_close(&p.a);
    raft_transport_close(&p.b);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&p.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streams_have_nodelay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
