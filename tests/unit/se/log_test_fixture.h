/* log_test_fixture.h: what the tests of the log sinks (log_file, log_spool) share: a loop
 * and a fresh temporary directory per test, and a sample record. */
#ifndef VIGIL_TEST_LOG_FIXTURE_H
#define VIGIL_TEST_LOG_FIXTURE_H

#include <stdint.h>
#include <uv.h>

#include "se/log_record.h"

struct fixture {
    uv_loop_t loop;
    char dir[64];
};

/* cmocka setup: a new fixture in *STATE (a loop, an empty directory under /tmp). */
int log_test_setup(void **state);

/* cmocka teardown: removes the directory, closes the loop (which must have nothing left). */
int log_test_teardown(void **state);

/* Fills *R with an HTTP record numbered SEQ, a few hundred bytes once encoded. The strings
 * it points to are static. */
void log_test_record(struct log_record *r, uint64_t seq);

#endif
