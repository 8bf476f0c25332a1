/* test_se_options.c: vigil-se's command line and its --config INI file (se_options.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/errors.h"
#include "se/se_options.h"

static char ini_path[64];

static void write_ini(const char *text)
{
    FILE *f;
    strcpy(ini_path, "/tmp/test_se_options.XXXXXX");
    assert_true(mkstemp(ini_path) >= 0);
    f = fopen(ini_path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int parse(struct se_options *o, char *err, size_t errlen, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    return se_options_parse(argc, argv, o, err, errlen);
}

static void test_ini_then_flags_win(void **state)
{
    struct se_options o;
    char err[256] = "";
    char *argv[] = {"vigil-se", "--config", ini_path, "--miss-limit", "7", NULL};
    (void)state;
    write_ini("# a comment\n; another\n[section]\n  name = se-a \n data-dir=/tmp/d\n"
              "admin = 127.0.0.1:9100\nconfig-file = /tmp/c.json\nmiss-limit = 4\n"
              "heartbeat-ms = 250\n");
    argv[2] = ini_path;
    assert_int_equal(parse(&o, err, sizeof err, argv), 0);
    assert_string_equal(o.name, "se-a");
    assert_string_equal(o.data_dir, "/tmp/d");
    assert_string_equal(o.config_file, "/tmp/c.json");
    assert_int_equal(o.admin.port, 9100);
    assert_int_equal(o.heartbeat_ms, 250);
    assert_int_equal(o.miss_limit, 7); /* the flag wins */
    se_options_free(&o);
    unlink(ini_path);
}

static void test_ini_refusals_name_the_line(void **state)
{
    static const struct {
        const char *text, *expect;
    } cases[] = {
        {"name = a\nbogus = 1\n", ":2: unknown setting"},
        {"name = a\njust words\n", ":2: expected 'name = value'"},
        {"miss-limit = 0\n", ":1: --miss-limit: must be an integer"},
        {"config = /etc/x\n", ":1: unknown setting"},
        {"admin = nowhere\n", ":1: --admin:"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct se_options o;
        char err[256] = "";
        char *argv[] = {"vigil-se", "--config", ini_path, NULL};
        write_ini(cases[i].text);
        argv[2] = ini_path;
        assert_int_equal(parse(&o, err, sizeof err, argv), VIGIL_EINVAL);
        assert_non_null(strstr(err, ini_path));
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].expect);
        assert_null(strchr(err, '\n'));
        unlink(ini_path);
    }
}

static void test_missing_file(void **state)
{
    struct se_options o;
    char err[256] = "";
    char *argv[] = {"vigil-se", "--config=/nonexistent/se.conf", NULL};
    (void)state;
    assert_int_equal(parse(&o, err, sizeof err, argv), VIGIL_EINVAL);
    assert_non_null(strstr(err, "cannot read /nonexistent/se.conf"));
}

static void test_help_lists_every_flag(void **state)
{
    static const char *const flags[] = {"--name", "--data-dir", "--controllers", "--key",
                                        "--known-hosts", "--admin", "--heartbeat-ms",
                                        "--miss-limit", "--config-file", "--spool-cap-mb",
                                        "--config", "--help", "--version"};
    char text[8192];
    FILE *f = fmemopen(text, sizeof text, "w");
    (void)state;
    assert_non_null(f);
    se_options_print_help(f);
    fclose(f);
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        char needle[40];
        snprintf(needle, sizeof needle, "  %s ", flags[i]);
        if (strstr(text, needle) == NULL)
            fail_msg("--help lacks %s", flags[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini_then_flags_win),
        cmocka_unit_test(test_ini_refusals_name_the_line),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_help_lists_every_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
