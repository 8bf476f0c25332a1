/* test_options.c: vigild's flags and --config INI file (controller/options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "controller/options.h"

#define MAX_ARGS 64

/* Runs options_parse on "vigild" followed by the NULL-terminated arguments. */
static int parse_v(struct vigild_options *o, char *err, size_t errlen, va_list ap)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    const char *a;

    argv[argc++] = (char *)"vigild";
    while ((a = va_arg(ap, const char *)) != NULL) {
        assert_true(argc < MAX_ARGS - 1);
        argv[argc++] = (char *)a;
    }
    argv[argc] = NULL;
    err[0] = '\0';
    return options_parse(o, argc, argv, err, errlen);
}

static int parse(struct vigild_options *o, char *err, size_t errlen, ...)
{
    va_list ap;
    int rv;
    va_start(ap, errlen);
    rv = parse_v(o, err, errlen, ap);
    va_end(ap);
    return rv;
}

/* Asserts the arguments parse. */
#define GOOD(o, ...)                                                                      \
    do {                                                                                  \
        char err_[512];                                                                   \
        int rv_ = parse(o, err_, sizeof err_, __VA_ARGS__, (const char *)NULL);           \
        if (rv_ != 0)                                                                     \
            fail_msg("refused (%d): %s", rv_, err_);                                      \
    } while (0)

/* Asserts the arguments are refused with VIGIL_EINVAL and an error containing EXPECT. */
static void bad_v(const char *expect, ...)
{
    struct vigild_options o;
    char err[512];
    va_list ap;
    int rv;

    va_start(ap, expect);
    rv = parse_v(&o, err, sizeof err, ap);
    va_end(ap);
    if (rv != VIGIL_EINVAL)
        fail_msg("expected VIGIL_EINVAL naming '%s', got %d", expect, rv);
    if (strstr(err, expect) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, expect);
    /* One line: the caller prints it as is. */
    assert_null(strchr(err, '\n'));
}
#define BAD(expect, ...) bad_v(expect, ##__VA_ARGS__, (const char *)NULL)

/* A temporary INI file with TEXT; PATH receives its name. */
static void write_ini(char *path, size_t len, const char *text)
{
    int fd;
    FILE *f;
    snprintf(path, len, "/tmp/vigil-test-options-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void **state)
{
    struct vigild_options o;
    (void)state;

    memset(&o, 0x5a, sizeof o); /* must not depend on what was there */
    GOOD(&o, "--data-dir", "/tmp/d");
    assert_string_equal(o.data_dir, "/tmp/d");
    assert_int_equal(o.id, 1);
    assert_string_equal(o.raft.host, "127.0.0.1");
    assert_int_equal(o.raft.port, 7000);
    assert_string_equal(o.api.host, "127.0.0.1");
    assert_int_equal(o.api.port, 8080);
    assert_string_equal(o.se_listen.host, "127.0.0.1");
    assert_int_equal(o.se_listen.port, 5098);
    assert_string_equal(o.name, "node-1");
    assert_string_equal(o.cluster_name, "vigil");
    assert_int_equal(o.n_cluster, 0);
    assert_int_equal(o.heartbeat_ms, 50);
    assert_int_equal(o.election_timeout_ms, 300);
    assert_int_equal(o.se_wait_s, 30);
    assert_string_equal(o.vip, "");
    assert_string_equal(o.vip_dev, "");
    assert_false(o.id_set);
    assert_false(o.raft_set);
    assert_false(o.name_set);
    assert_false(o.rebuild);
    assert_int_equal(o.snapshot_threshold, 4096);
    assert_int_equal(o.snapshot_trailing, 1024);
    assert_int_equal(o.test_apply_delay_ms, 0);
    assert_false(o.verbose);
}

/* The default name follows the id. */
static void test_default_name(void **state)
{
    struct vigild_options o;
    (void)state;
    GOOD(&o, "--data-dir", "d", "--id", "7");
    assert_string_equal(o.name, "node-7");
    assert_true(o.id_set);
    assert_false(o.name_set);
}

static void test_every_flag(void **state)
{
    struct vigild_options o;
    (void)state;

    GOOD(&o, "--data-dir", "/var/lib/vigil", "--id", "2", "--raft", "127.0.0.2:7001", "--api",
         "0.0.0.0:8081", "--se-listen", "127.0.0.2:5099", "--name", "alpha",
         "--cluster", "1@127.0.0.1:7000,2@127.0.0.2:7001,3@127.0.0.3:7002", "--cluster-name",
         "prod", "--heartbeat-ms", "20", "--election-timeout-ms", "200", "--se-wait-s", "0",
         "--vip", "198.18.0.100/24", "--vip-dev", "veth0", "--snapshot-threshold", "64",
         "--snapshot-trailing", "16", "--verbose", "--rebuild");
    assert_string_equal(o.data_dir, "/var/lib/vigil");
    assert_true(o.rebuild);
    assert_int_equal(o.id, 2);
    assert_true(o.id_set);
    assert_string_equal(o.raft.host, "127.0.0.2");
    assert_int_equal(o.raft.port, 7001);
    assert_true(o.raft_set);
    assert_string_equal(o.api.host, "0.0.0.0");
    assert_int_equal(o.api.port, 8081);
    assert_string_equal(o.se_listen.host, "127.0.0.2");
    assert_int_equal(o.se_listen.port, 5099);
    assert_string_equal(o.name, "alpha");
    assert_true(o.name_set);
    assert_int_equal(o.n_cluster, 3);
    assert_int_equal(o.cluster[0].id, 1);
    assert_string_equal(o.cluster[0].address, "127.0.0.1:7000");
    assert_int_equal(o.cluster[1].id, 2);
    assert_string_equal(o.cluster[1].address, "127.0.0.2:7001");
    assert_int_equal(o.cluster[2].id, 3);
    assert_string_equal(o.cluster[2].address, "127.0.0.3:7002");
    assert_string_equal(o.cluster_name, "prod");
    assert_int_equal(o.heartbeat_ms, 20);
    assert_int_equal(o.election_timeout_ms, 200);
    assert_int_equal(o.se_wait_s, 0);
    assert_string_equal(o.vip, "198.18.0.100/24");
    assert_string_equal(o.vip_dev, "veth0");
    assert_int_equal(o.snapshot_threshold, 64);
    assert_int_equal(o.snapshot_trailing, 16);
    assert_int_equal(o.test_apply_delay_ms, 0);
    assert_true(o.verbose);
}

/* The test-only knobs exist only in a build with -Dtest_knobs=true (this file is built twice:
 * test_options with the knobs, test_options_default as the installed build has it). */
static void test_test_knobs(void **state)
{
    static const char *const ini_lines[] = {"test-apply-delay-ms = 5\n",
                                            "test-fast-password-hash = true\n",
                                            "test-se-max-sessions = 2\n",
                                            "test-wrong-answer-index = true\n"};
    char path[64];
    (void)state;
#ifdef VIGIL_TEST_KNOBS
    {
        struct vigild_options o;
        GOOD(&o, "--data-dir", "d", "--test-apply-delay-ms", "5", "--test-fast-password-hash",
             "--test-wrong-answer-index", "--test-se-max-sessions", "3");
        assert_int_equal(o.test_apply_delay_ms, 5);
        assert_int_equal(o.test_se_max_sessions, 3);
        assert_true(o.test_fast_password_hash);
        assert_true(o.test_wrong_answer_index);
        for (size_t i = 0; i < sizeof ini_lines / sizeof ini_lines[0]; i++) {
            write_ini(path, sizeof path, ini_lines[i]);
            GOOD(&o, "--data-dir", "d", "--config", path);
            unlink(path);
        }
        assert_true(o.test_wrong_answer_index);
    }
#else
    BAD("unknown flag --test-fast-password-hash", "--data-dir", "d", "--test-fast-password-hash");
    BAD("unknown flag --test-wrong-answer-index", "--data-dir", "d", "--test-wrong-answer-index");
    BAD("unknown flag --test-apply-delay-ms", "--data-dir", "d", "--test-apply-delay-ms", "5");
    BAD("unknown flag --test-apply-delay-ms", "--data-dir", "d", "--test-apply-delay-ms=5");
    BAD("unknown flag --test-se-max-sessions", "--data-dir", "d", "--test-se-max-sessions", "2");
    for (size_t i = 0; i < sizeof ini_lines / sizeof ini_lines[0]; i++) {
        write_ini(path, sizeof path, ini_lines[i]);
        BAD("unknown setting 'test-", "--data-dir", "d", "--config", path);
        unlink(path);
    }
#endif
}

/* --flag=value works like --flag value; a later flag wins over an earlier one. */
static void test_equals_and_repeats(void **state)
{
    struct vigild_options o;
    (void)state;

    GOOD(&o, "--data-dir=/d", "--id=3", "--raft=127.0.0.3:7002", "--heartbeat-ms=10",
         "--election-timeout-ms=100", "--name=a", "--name=b");
    assert_string_equal(o.data_dir, "/d");
    assert_int_equal(o.id, 3);
    assert_int_equal(o.raft.port, 7002);
    assert_int_equal(o.heartbeat_ms, 10);
    assert_int_equal(o.election_timeout_ms, 100);
    assert_string_equal(o.name, "b");

    /* Heartbeat exactly half of the election timeout is allowed. */
    GOOD(&o, "--data-dir", "d", "--heartbeat-ms", "150", "--election-timeout-ms", "300");
    /* Trailing is clamped to the threshold. */
    GOOD(&o, "--data-dir", "d", "--snapshot-threshold", "10", "--snapshot-trailing", "50");
    assert_int_equal(o.snapshot_trailing, 10);
    /* A one-member cluster of this node. */
    GOOD(&o, "--data-dir", "d", "--cluster", "1@127.0.0.1:7000");
    assert_int_equal(o.n_cluster, 1);
    /* A later --cluster replaces an earlier one. */
    GOOD(&o, "--data-dir", "d", "--cluster", "1@127.0.0.1:7000,2@127.0.0.2:7000", "--cluster",
         "1@127.0.0.1:7000");
    assert_int_equal(o.n_cluster, 1);
    /* Nine members is the most. */
    GOOD(&o, "--data-dir", "d", "--cluster",
         "1@127.0.0.1:7000,2@127.0.0.2:7000,3@127.0.0.3:7000,4@127.0.0.4:7000,5@127.0.0.5:7000,"
         "6@127.0.0.6:7000,7@127.0.0.7:7000,8@127.0.0.8:7000,9@127.0.0.9:7000");
    assert_int_equal(o.n_cluster, 9);
}

static void test_config_file(void **state)
{
    struct vigild_options o;
    char path[64], arg[80];
    (void)state;

    write_ini(path, sizeof path,
              "# vigild settings\n"
              "; another comment\n"
              "[vigild]\n"
              "\n"
              "data-dir = /from/file\n"
              "id=2\n"
              "  raft   =   127.0.0.2:7001  \r\n"
              "name = from-file\n"
              "cluster = 1@127.0.0.1:7000,2@127.0.0.2:7001\n"
              "cluster-name = filecluster\n"
              "heartbeat-ms = 40\n"
              "election-timeout-ms = 400\n"
              "se-wait-s = 12\n"
              "se-listen = 127.0.0.2:5099\n"
              "api = 127.0.0.2:8081\n"
              "vip = 198.18.0.100/24\n"
              "vip-dev = veth1\n"
              "verbose = 1\n");

    /* The file alone. */
    GOOD(&o, "--config", path);
    assert_string_equal(o.data_dir, "/from/file");
    assert_int_equal(o.id, 2);
    assert_string_equal(o.raft.host, "127.0.0.2");
    assert_int_equal(o.raft.port, 7001);
    assert_string_equal(o.name, "from-file");
    assert_int_equal(o.n_cluster, 2);
    assert_string_equal(o.cluster_name, "filecluster");
    assert_int_equal(o.heartbeat_ms, 40);
    assert_int_equal(o.election_timeout_ms, 400);
    assert_int_equal(o.se_wait_s, 12);
    assert_int_equal(o.se_listen.port, 5099);
    assert_int_equal(o.api.port, 8081);
    assert_string_equal(o.vip, "198.18.0.100/24");
    assert_string_equal(o.vip_dev, "veth1");
    assert_true(o.verbose);

    /* Flags win, whether they come before or after --config. */
    GOOD(&o, "--name", "from-flag", "--config", path, "--heartbeat-ms", "30", "--data-dir",
         "/from/flag");
    assert_string_equal(o.name, "from-flag");
    assert_int_equal(o.heartbeat_ms, 30);
    assert_string_equal(o.data_dir, "/from/flag");
    assert_int_equal(o.election_timeout_ms, 400); /* still from the file */
    assert_string_equal(o.cluster_name, "filecluster");

    /* --config=FILE too; a flag's --cluster replaces the file's. */
    snprintf(arg, sizeof arg, "--config=%s", path);
    GOOD(&o, arg, "--cluster", "2@127.0.0.2:7001");
    assert_int_equal(o.n_cluster, 1);
    assert_int_equal(o.cluster[0].id, 2);

    /* The check across settings sees the merged result: the flag's --raft against the
     * file's --cluster. */
    BAD("--raft is 127.0.0.9:7001", "--config", path, "--raft", "127.0.0.9:7001");
    unlink(path);
}

static void test_config_file_bad(void **state)
{
    char path[64];
    (void)state;

    BAD("--config", "--data-dir", "d", "--config", "/nonexistent/vigil.ini");
    BAD("--config needs a value", "--data-dir", "d", "--config");

    write_ini(path, sizeof path, "data-dir = d\nbogus = 1\n");
    BAD("unknown setting 'bogus'", "--config", path);
    BAD(":2:", "--config", path);
    unlink(path);

    write_ini(path, sizeof path, "data-dir = d\nid = 0\n");
    BAD("--id", "--config", path);
    unlink(path);

    write_ini(path, sizeof path, "data-dir d\n");
    BAD("key = value", "--config", path);
    unlink(path);

    /* A file cannot name another file. */
    write_ini(path, sizeof path, "config = /etc/other.ini\n");
    BAD("config", "--data-dir", "d", "--config", path);
    unlink(path);

    write_ini(path, sizeof path, "heartbeat-ms = 200\n");
    BAD("--heartbeat-ms", "--data-dir", "d", "--config", path);
    unlink(path);
}

static void test_bad_flags(void **state)
{
    (void)state;

    BAD("--data-dir is required");
    BAD("--data-dir is required", "--id", "2");
    BAD("--data-dir", "--data-dir", "");
    BAD("unknown flag --bogus", "--data-dir", "d", "--bogus", "1");
    BAD("unknown flag --bogus", "--data-dir", "d", "--bogus=1");
    BAD("'stray'", "--data-dir", "d", "stray");
    BAD("-x", "--data-dir", "d", "-x");
    BAD("--id needs a value", "--data-dir", "d", "--id");

    BAD("--id", "--data-dir", "d", "--id", "0");
    BAD("--id", "--data-dir", "d", "--id", "-1");
    BAD("--id", "--data-dir", "d", "--id", "abc");
    BAD("--id", "--data-dir", "d", "--id", "1x");
    BAD("--id", "--data-dir", "d", "--id", "");
    BAD("--id", "--data-dir", "d", "--id", "1000001");
    BAD("--id", "--data-dir", "d", "--id", "99999999999999999999999");

    BAD("--raft", "--data-dir", "d", "--raft", "localhost:7000");
    BAD("--raft", "--data-dir", "d", "--raft", "127.0.0.1");
    BAD("--raft", "--data-dir", "d", "--raft", "127.0.0.1:0");
    BAD("--raft", "--data-dir", "d", "--raft", "127.0.0.1:65536");
    BAD("--raft", "--data-dir", "d", "--raft", "127.0.0.256:7000");
    BAD("--raft", "--data-dir", "d", "--raft", "127.0.0:7000");
    BAD("--api", "--data-dir", "d", "--api", "1.2.3.4:port");
    BAD("--se-listen", "--data-dir", "d", "--se-listen", "::1:5098");

    BAD("--heartbeat-ms", "--data-dir", "d", "--heartbeat-ms", "151");
    BAD("--heartbeat-ms", "--data-dir", "d", "--heartbeat-ms", "100", "--election-timeout-ms",
        "150");
    BAD("--heartbeat-ms", "--data-dir", "d", "--heartbeat-ms", "0");
    BAD("--election-timeout-ms", "--data-dir", "d", "--election-timeout-ms", "x");
    BAD("--se-wait-s", "--data-dir", "d", "--se-wait-s", "-5");
    BAD("--se-wait-s", "--data-dir", "d", "--se-wait-s", "86401");
    BAD("--snapshot-threshold", "--data-dir", "d", "--snapshot-threshold", "1");
    BAD("--snapshot-trailing", "--data-dir", "d", "--snapshot-trailing", "0");

    BAD("--vip", "--data-dir", "d", "--vip", "198.18.0.100/24");
    BAD("--vip", "--data-dir", "d", "--vip-dev", "eth0");

    BAD("--name", "--data-dir", "d", "--name", "");
    BAD("--name", "--data-dir", "d", "--name", "bad\tname");
    BAD("--cluster-name", "--data-dir", "d", "--cluster-name", "");
    {
        char longname[300];
        memset(longname, 'n', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        BAD("--name", "--data-dir", "d", "--name", longname);
    }
}

static void test_bad_cluster(void **state)
{
    (void)state;

    /* This node's id (1 by default) is not listed. */
    BAD("--cluster does not list this node's --id 1", "--data-dir", "d", "--cluster",
        "2@127.0.0.2:7000,3@127.0.0.3:7000");
    BAD("--id 4", "--data-dir", "d", "--id", "4", "--cluster",
        "1@127.0.0.1:7000,2@127.0.0.2:7000,3@127.0.0.3:7000");
    /* Listed with another address than --raft. */
    BAD("--cluster lists 1@127.0.0.1:7001 but --raft is 127.0.0.1:7000", "--data-dir", "d",
        "--cluster", "1@127.0.0.1:7001,2@127.0.0.2:7000");
    BAD("--raft is 127.0.0.2:7000", "--data-dir", "d", "--id", "2", "--raft", "127.0.0.2:7000",
        "--cluster", "1@127.0.0.1:7000,2@127.0.0.3:7000");
    /* Duplicate ids. */
    BAD("--cluster: id 2 is listed twice", "--data-dir", "d", "--cluster",
        "1@127.0.0.1:7000,2@127.0.0.2:7000,2@127.0.0.3:7000");
    /* Malformed members. */
    BAD("--cluster", "--data-dir", "d", "--cluster", "127.0.0.1:7000");
    BAD("--cluster", "--data-dir", "d", "--cluster", "0@127.0.0.1:7000");
    BAD("--cluster", "--data-dir", "d", "--cluster", "x@127.0.0.1:7000");
    BAD("--cluster", "--data-dir", "d", "--cluster", "1@127.0.0.1");
    BAD("--cluster", "--data-dir", "d", "--cluster", "1@host:7000");
    BAD("--cluster", "--data-dir", "d", "--cluster", "");
    BAD("--cluster", "--data-dir", "d", "--cluster", ",,,");
    BAD("--cluster: at most 9", "--data-dir", "d", "--cluster",
        "1@127.0.0.1:7000,2@127.0.0.2:7000,3@127.0.0.3:7000,4@127.0.0.4:7000,5@127.0.0.5:7000,"
        "6@127.0.0.6:7000,7@127.0.0.7:7000,8@127.0.0.8:7000,9@127.0.0.9:7000,10@127.0.0.10:7000");
    {
        char huge[2048];
        memset(huge, '1', sizeof huge - 1);
        huge[sizeof huge - 1] = '\0';
        BAD("--cluster", "--data-dir", "d", "--cluster", huge);
    }
}

/* A small error buffer is not overrun and still gets a terminated message. */
static void test_small_err_buffer(void **state)
{
    struct vigild_options o;
    char err[16];
    (void)state;

    memset(err, 'z', sizeof err);
    assert_int_equal(parse(&o, err, 8, "--data-dir", "d", "--bogus", (const char *)NULL),
                     VIGIL_EINVAL);
    assert_true(strlen(err) < 8);
    assert_int_equal(err[8], 'z');
}

static void test_usage(void **state)
{
    char u[8192];
    FILE *f = fmemopen(u, sizeof u, "w");
    (void)state;
    assert_non_null(f);
    options_print_help(f);
    fclose(f);
    assert_null(strstr(u, "--test-"));
    assert_null(strstr(u, "--snapshot-"));
    assert_non_null(strstr(u, "--data-dir"));
    assert_non_null(strstr(u, "--cluster"));
    assert_non_null(strstr(u, "--config"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_default_name),
        cmocka_unit_test(test_every_flag),
        cmocka_unit_test(test_test_knobs),
        cmocka_unit_test(test_equals_and_repeats),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_config_file_bad),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_bad_cluster),
        cmocka_unit_test(test_small_err_buffer),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
