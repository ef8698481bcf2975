/*
 * util_criterion.c - what every Criterion test binary (test_core,
 * test_server) sets up before its first test: the suites' and tests'
 * .timeout values, written for a normal run, are multiplied by
 * $BACKPROPD_TEST_TIMEOUT_SCALE (test_timeout_scale, util_server.h) like
 * the harness's own waits, so a sanitized or Valgrind run is not killed
 * for time.  A timeout is a guard against a hang, not a bound a test
 * asserts, so a scale below 1 leaves it as written.
 *
 * The hook runs in Criterion's runner process, which enforces the
 * timeouts, before any test starts.  (Linked into the bench binaries too,
 * which have their own main and never run it.)
 */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "util_server.h"

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    double k = test_timeout_scale();
    if (k <= 1.0)
        return;
    FOREACH_SET(struct criterion_suite_set *ss, set->suites) {
        if (ss->suite.data)
            ss->suite.data->timeout *= k;
        FOREACH_SET(struct criterion_test *t, ss->tests) {
            if (t->data)
                t->data->timeout *= k;
        }
    }
}
