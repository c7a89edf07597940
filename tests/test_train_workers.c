/*
 * test_train_workers.c — the worker supervisor's restart bookkeeping, with
 * real child processes.
 *
 * The "worker" here is a two-line shell script (the supervisor execs any
 * program), so each test controls how it ends.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/tmpdir_util.h"
#include "trainer/workers.h"

TestSuite(workers, .init = tmpdir_make, .fini = tmpdir_remove);

static void sleep_s(double s)
{
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&t, NULL);
}

/* a "worker" that exits with `code` at once */
static char *script(int code)
{
    static char path[400];
    snprintf(path, sizeof path, "%s/worker.sh", tmpdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\nexit %d\n", code);
    fclose(f);
    chmod(path, 0755);
    return path;
}

/* wait until worker 0 has ended; its index comes back from workers_poll */
static void wait_dead(struct workers *w)
{
    int dead[4];
    for (int t = 0; t < 500; t++) {
        if (workers_poll(w, dead, NULL) == 1) { cr_assert_eq(dead[0], 0); return; }
        sleep_s(0.01);
    }
    cr_assert_fail("worker did not end");
}

Test(workers, restarts_counted_per_time_window)
{
    struct workers *w = NULL;
    cr_assert_eq(workers_start(&w, script(1), NULL, 1, "ipc:///nonexistent", NULL, NULL), STATUS_OK, "%s",
                 status_msg());
    for (int k = 0; k < 3; k++) {
        wait_dead(w);
        cr_assert_eq(workers_exit_code(w, 0), 1);
        cr_assert_eq(workers_respawn(w, 0), STATUS_OK, "%s", status_msg());
        cr_assert_eq(workers_exit_code(w, 0), -1);   /* running again */
    }
    cr_expect_eq(workers_restarts(w), 3);
    cr_expect_eq(workers_restarts_within(w, 60), 3);
    sleep_s(0.4);
    /* the old ones fall out of a short window; the total stays */
    cr_expect_eq(workers_restarts_within(w, 0.3), 0);
    wait_dead(w);
    cr_assert_eq(workers_respawn(w, 0), STATUS_OK);
    cr_expect_eq(workers_restarts_within(w, 0.3), 1);
    cr_expect_eq(workers_restarts_within(w, 60), 4);
    cr_expect_eq(workers_restarts(w), 4);
    workers_stop(&w);
}

Test(workers, exit_code_and_signal_reported)
{
    struct workers *w = NULL;
    cr_assert_eq(workers_start(&w, script(3), NULL, 1, "ipc:///nonexistent", NULL, NULL), STATUS_OK);
    wait_dead(w);
    cr_expect_eq(workers_exit_code(w, 0), 3);
    workers_stop(&w);

    /* killed by a signal: -SIGNAL */
    char *p = script(0);
    FILE *f = fopen(p, "w");
    fprintf(f, "#!/bin/sh\nexec sleep 30\n");
    fclose(f);
    cr_assert_eq(workers_start(&w, p, NULL, 1, "ipc:///nonexistent", NULL, NULL), STATUS_OK);
    sleep_s(0.1);
    cr_expect_eq(workers_exit_code(w, 0), -1);
    int dead[1];
    cr_assert_eq(workers_poll(w, dead, NULL), 0);
    /* find the child: the only process whose parent is us and runs sleep */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "pkill -9 -P %d -x sleep", (int)getpid());
    cr_assert_eq(system(cmd), 0);
    wait_dead(w);
    cr_expect_eq(workers_exit_code(w, 0), -SIGKILL);
    workers_stop(&w);
}
