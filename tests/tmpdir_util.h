/*
 * tmpdir_util.h — a fresh temporary directory per test, for criterion suites
 * that write files (header-only, static functions; tests/test_shard.c,
 * tests/test_ingest_inputs.c).
 *
 * Use: TestSuite(name, .init = tmpdir_make, .fini = tmpdir_remove); each test
 * then works in `tmpdir` ($TMPDIR or /tmp, "deeperXXXXXX"), which is removed
 * with everything in it after the test.  Criterion runs each test in its own
 * process, so one static buffer per test binary is enough.
 */
#ifndef DEEPER_TESTS_TMPDIR_UTIL_H
#define DEEPER_TESTS_TMPDIR_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

static char tmpdir[256];

static void tmpdir_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/deeperXXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp %s failed", tmpdir);
}

static void tmpdir_remove(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
}

#endif
