/* log_test_fixture.c: the log sink tests' fixture. */
#include "log_test_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

int log_test_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    strcpy(f->dir, "/tmp/vigil-log-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

int log_test_teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

void log_test_record(struct log_record *r, uint64_t seq)
{
    static const char uri[] = "/some/path/long/enough/to/make/a/line/of/a/few/hundred/bytes";

    memset(r, 0, sizeof *r);
    r->kind = LOG_RECORD_HTTP;
    r->seq = seq;
    r->timestamp_ms = 1795845600000LL + (int64_t)seq;
    r->vs_name = "web";
    strcpy(r->client_ip, "127.0.0.2");
    r->client_port = 40000;
    strcpy(r->server_ip, "127.0.0.1");
    r->server_port = 9001;
    r->method = "GET";
    r->uri = uri;
    r->uri_len = sizeof uri - 1;
    r->status = 200;
    r->total_ms = 1.0;
    r->server_ms = 0.5;
}
