/*
 * test_train_workers.c — the worker supervisor's restart bookkeeping and the
 * stale socket sweep, with real child processes and real unix sockets.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/stream.h"
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
    cr_assert_eq(workers_start(&w, script(1), NULL, 1, "ipc:///nonexistent", 0, NULL, NULL), STATUS_OK, "%s",
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
    cr_assert_eq(workers_start(&w, script(3), NULL, 1, "ipc:///nonexistent", 0, NULL, NULL), STATUS_OK);
    wait_dead(w);
    cr_expect_eq(workers_exit_code(w, 0), 3);
    workers_stop(&w);

    /* killed by a signal: -SIGNAL */
    char *p = script(0);
    FILE *f = fopen(p, "w");
    fprintf(f, "#!/bin/sh\nexec sleep 30\n");
    fclose(f);
    cr_assert_eq(workers_start(&w, p, NULL, 1, "ipc:///nonexistent", 0, NULL, NULL), STATUS_OK);
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

static void make_socket(const char *name)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int k = snprintf(a.sun_path, sizeof a.sun_path, "%.60s/%.40s", tmpdir, name);
    cr_assert(k > 0 && (size_t)k < sizeof a.sun_path, "socket path too long");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    cr_assert(s >= 0);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0, "bind %s: %s", a.sun_path, strerror(errno));
    close(s);   /* the file stays, as after kill -9 */
}

static int exists(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%.200s", tmpdir, name);
    struct stat sb;
    return lstat(p, &sb) == 0;
}

Test(workers, stale_sockets_of_dead_processes_removed)
{
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    int live = (int)getppid();
    char n[8][64];
    snprintf(n[0], 64, "deeper-train-%d", (int)dead);
    snprintf(n[1], 64, "deeper-train-%d-w0", (int)dead);
    snprintf(n[2], 64, "deeper-train-%d-w12", (int)dead);
    snprintf(n[3], 64, "deeper-train-%d-w0", live);            /* alive: kept */
    snprintf(n[4], 64, "deeper-train-%d-wx", (int)dead);       /* not our name: kept */
    snprintf(n[5], 64, "deeper-train-%d-w1", (int)getpid());   /* our own: kept */
    for (int i = 0; i < 6; i++) make_socket(n[i]);
    snprintf(n[6], 64, "deeper-train-%d-w3", (int)dead);       /* a regular file: kept */
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, n[6]);
    FILE *f = fopen(p, "w");
    fclose(f);
    int removed = -1;
    cr_assert_eq(stream_ipc_remove_stale(tmpdir, "deeper-train-", &removed), STATUS_OK, "%s", status_msg());
    cr_expect_eq(removed, 3);
    for (int i = 0; i < 3; i++) cr_expect(!exists(n[i]), "%s still there", n[i]);
    for (int i = 3; i < 7; i++) cr_expect(exists(n[i]), "%s removed", n[i]);
}
