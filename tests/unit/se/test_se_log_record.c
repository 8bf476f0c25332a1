/* Unit tests of log_record.c (JSON line encoding) and log_seq.c (numbers never reused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "se/log_record.h"
#include "se/log_seq.h"

static void encodes_valid_json_with_every_field(void **state)
{
    static char line[LOG_RECORD_LINE_MAX];
    const char uri[] = "/a\"b\\c\x01\xff?x=1";
    struct log_record r = {0};
    json_error_t err;
    json_t *j;
    size_t n;

    r.seq = 42;
    r.timestamp_ms = 1795845600123LL; /* 2026-11-28T06:00:00.123Z */
    r.se_name = "se-1";
    r.vs_name = "web";
    r.vs_uuid = "0b3a2e8e-7c65-4c2a-9d8f-1e2f3a4b5c6d";
    strcpy(r.client_ip, "127.0.0.2");
    r.client_port = 40000;
    strcpy(r.server_ip, "127.0.0.1");
    r.server_port = 9001;
    r.method = "GET";
    r.uri = uri;
    r.uri_len = sizeof uri - 1;
    r.status = 200;
    r.bytes_in = 80;
    r.bytes_out = 1234;
    r.total_ms = 1.5;
    r.server_ms = 0.25;
    n = log_record_encode(&r, line, sizeof line);
    assert_true(n > 0);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    j = json_loadb(line, n, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
    assert_string_equal(json_string_value(json_object_get(j, "timestamp")),
                        "2026-11-28T06:00:00.123Z");
    assert_string_equal(json_string_value(json_object_get(j, "client_ip")), "127.0.0.2");
    assert_int_equal(json_integer_value(json_object_get(j, "server_port")), 9001);
    assert_string_equal(json_string_value(json_object_get(j, "uri")),
                        "/a\"b\\c\x01\xc3\xbf?x=1");
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_true(json_real_value(json_object_get(j, "total_ms")) == 1.5);
    assert_string_equal(json_string_value(json_object_get(j, "vs_name")), "web");
    json_decref(j);
}

static void tcp_record_without_server_and_cut_uri(void **state)
{
    static char line[LOG_RECORD_LINE_MAX];
    static char big[LOG_RECORD_URI_MAX + 100];
    struct log_record r = {0};
    json_t *j;
    size_t n;

    r.kind = LOG_RECORD_TCP;
    r.timestamp_ms = 0;
    strcpy(r.client_ip, "127.0.0.1");
    r.server_ms = -1;
    n = log_record_encode(&r, line, sizeof line);
    j = json_loadb(line, n, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "tcp");
    assert_true(json_is_null(json_object_get(j, "server_ip")));
    assert_true(json_is_null(json_object_get(j, "server_ms")));
    json_decref(j);

    memset(big, 'u', sizeof big);
    r.kind = LOG_RECORD_HTTP;
    r.uri = big;
    r.uri_len = sizeof big;
    n = log_record_encode(&r, line, sizeof line);
    j = json_loadb(line, n, 0, NULL);
    assert_non_null(j);
    assert_int_equal(strlen(json_string_value(json_object_get(j, "uri"))), LOG_RECORD_URI_MAX);
    assert_true(json_is_true(json_object_get(j, "uri_truncated")));
    json_decref(j);
    /* too small a buffer is refused, not overrun */
    assert_int_equal(log_record_encode(&r, line, 100), 0);
}

static void sequence_survives_clean_and_crash_restarts(void **state)
{
    char dir[] = "/tmp/vigil-seq-XXXXXX";
    char path[64];
    struct log_seq *s;
    uint64_t last = 0;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(log_seq_open(dir, "log.seq", &s), 0);
    assert_int_equal(log_seq_next(s), 1);
    for (int i = 0; i < LOG_SEQ_BLOCK + 10; i++)
        last = log_seq_next(s);
    log_seq_close(s); /* clean: continues right after */
    assert_int_equal(log_seq_open(dir, "log.seq", &s), 0);
    assert_int_equal(log_seq_next(s), last + 1);
    last = log_seq_next(s);
    log_seq_close(s);
    /* a crash: a child takes numbers and dies without log_seq_close */
    pid_t pid = fork();
    if (pid == 0) {
        struct log_seq *c;
        if (log_seq_open(dir, "log.seq", &c) != 0)
            _exit(1);
        for (int i = 0; i < 100; i++)
            log_seq_next(c);
        _exit(log_seq_next(c) > last ? 0 : 1);
    }
    int status = -1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    assert_int_equal(log_seq_open(dir, "log.seq", &s), 0);
    assert_true(log_seq_next(s) > last + 101);
    log_seq_close(s);
    /* a damaged file is refused */
    snprintf(path, sizeof path, "%s/log.seq", dir);
    FILE *f = fopen(path, "w");
    fputs("garbage\n", f);
    fclose(f);
    assert_int_not_equal(log_seq_open(dir, "log.seq", &s), 0);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_valid_json_with_every_field),
        cmocka_unit_test(tcp_record_without_server_and_cut_uri),
        cmocka_unit_test(sequence_survives_clean_and_crash_restarts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
