/* test_prom_text.c: the Prometheus text writer (common/prom_text.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prom_text.h"

static char *render(void (*fn)(FILE *f, void *arg), void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fn(f, arg);
    fclose(f);
    return text;
}

static void family_and_samples(FILE *f, void *arg)
{
    char labels[64];
    const char *const keys[] = {"path", "code"}, *values[] = {"a\"b\\c\nd", "200"};
    (void)arg;
    prom_text_family(f, "vigil_x_total", "counter", "Help with \\ and\nnewline");
    prom_text_sample_u64(f, "vigil_x_total", prom_text_labels(labels, sizeof labels, keys, values, 2),
                         18446744073709551615ull);
    prom_text_sample(f, "vigil_y", NULL, 0.25);
}

static void test_escaping(void **state)
{
    char *t = render(family_and_samples, NULL);
    (void)state;
    assert_string_equal(t, "# HELP vigil_x_total Help with \\\\ and\\nnewline\n"
                           "# TYPE vigil_x_total counter\n"
                           "vigil_x_total{path=\"a\\\"b\\\\c\\nd\",code=\"200\"} 18446744073709551615\n"
                           "vigil_y 0.25\n");
    free(t);
}

static void test_labels_truncate_whole_pairs(void **state)
{
    char out[16];
    const char *const keys[] = {"a", "b"}, *values[] = {"12345", "67890"};
    (void)state;
    prom_text_labels(out, sizeof out, keys, values, 2);
    assert_string_equal(out, "a=\"12345\"");
}

static void test_histogram(void **state)
{
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct prom_histogram h;
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    (void)state;
    prom_histogram_init(&h, bounds, 3);
    prom_histogram_observe(&h, 0.0005);
    prom_histogram_observe(&h, 0.01);
    prom_histogram_observe(&h, 0.5);
    f = open_memstream(&text, &len);
    prom_text_histogram(f, "vigil_h_seconds", "k=\"v\"", &h);
    prom_text_histogram(f, "vigil_g_seconds", NULL, &h);
    fclose(f);
    assert_string_equal(text, "vigil_h_seconds_bucket{k=\"v\",le=\"0.001\"} 1\n"
                              "vigil_h_seconds_bucket{k=\"v\",le=\"0.01\"} 2\n"
                              "vigil_h_seconds_bucket{k=\"v\",le=\"0.1\"} 2\n"
                              "vigil_h_seconds_bucket{k=\"v\",le=\"+Inf\"} 3\n"
                              "vigil_h_seconds_sum{k=\"v\"} 0.5105\n"
                              "vigil_h_seconds_count{k=\"v\"} 3\n"
                              "vigil_g_seconds_bucket{le=\"0.001\"} 1\n"
                              "vigil_g_seconds_bucket{le=\"0.01\"} 2\n"
                              "vigil_g_seconds_bucket{le=\"0.1\"} 2\n"
                              "vigil_g_seconds_bucket{le=\"+Inf\"} 3\n"
                              "vigil_g_seconds_sum 0.5105\n"
                              "vigil_g_seconds_count 3\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_labels_truncate_whole_pairs),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
