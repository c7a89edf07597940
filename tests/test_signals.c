/*
 * test_signals.c — SIGINT/SIGTERM through the watcher thread (shared/signals.h).
 *
 * The storm test is the regression test for the crash that made
 * tests/e2e/train_signals.sh fail in CI: a signal handler that interrupts
 * oneDNN's JIT GEMM writes its frame into the heap.  Here two threads run
 * the same GEMMs as NielsenNet's FC layers while a child process sends
 * SIGTERM every few microseconds; with handlers this aborted within a second
 * (free(): invalid next size), with the watcher no handler runs at all.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/signals.h"
#include "trainer/backend_cpu.h"

static volatile sig_atomic_t flag;

static int blocked_here(int sig)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, sig);
}

static void *report_mask(void *out)
{
    *(int *)out = blocked_here(SIGINT) && blocked_here(SIGTERM);
    return NULL;
}

static int wait_flag(int want, double secs)
{
    double t0 = log_now();
    while (flag != want && log_now() - t0 < secs) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return flag == want;
}

Test(signals, flag_set_by_watcher_and_mask_inherited)
{
    flag = 0;
    cr_assert_eq(signals_watch(&flag), STATUS_OK, "%s", status_msg());
    cr_assert(blocked_here(SIGINT) && blocked_here(SIGTERM), "the calling thread must block SIGINT/SIGTERM");
    int inherited = 0;
    pthread_t t;
    pthread_create(&t, NULL, report_mask, &inherited);
    pthread_join(t, NULL);
    cr_assert(inherited, "threads created after signals_watch must block SIGINT/SIGTERM too");
    kill(getpid(), SIGTERM);
    cr_assert(wait_flag(SIGTERM, 5), "SIGTERM did not reach the flag (flag = %d)", (int)flag);
    flag = 0;
    kill(getpid(), SIGINT);
    cr_assert(wait_flag(SIGINT, 5), "SIGINT did not reach the flag (flag = %d)", (int)flag);
}

Test(signals, child_reset_unblocks_before_exec)
{
    cr_assert_eq(signals_watch(&flag), STATUS_OK);
    pid_t pid = fork();
    if (pid == 0) {
        signals_child_reset();
        _exit(blocked_here(SIGINT) || blocked_here(SIGTERM) ? 3 : 0);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "a child after signals_child_reset still blocks signals");
}

Test(signals, second_sigint_exits_130)
{
    pid_t pid = fork();
    if (pid == 0) {
        flag = 0;
        signals_watch(&flag);
        kill(getpid(), SIGINT);
        if (!wait_flag(SIGINT, 5)) _exit(4);    /* two pending SIGINTs would merge into one */
        kill(getpid(), SIGINT);
        sleep(10);
        _exit(0);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 130, "Ctrl-C twice must end the process with 130 (status %#x)", ws);
}

static double storm_end;
static float *storm_mats[2];

static void *gemm_loop(void *arg)
{
    long t = (long)arg;
    float *w = storm_mats[t];
    float *x = w + 1000 * 1000, *y = x + 16 * 1000;
    long iters = 0;
    while (log_now() < storm_end) {
        /* NielsenNet fc2 forward, backward-data and backward-filter shapes */
        cpu_gemm1(0, 1, 16, 1000, 1000, 1.0f, x, 1000, w, 1000, 0.0f, y, 1000);
        cpu_gemm1(0, 0, 16, 1000, 1000, 1.0f, y, 1000, w, 1000, 0.0f, x, 1000);
        cpu_gemm1(1, 0, 1000, 1000, 16, 1e-6f, y, 1000, x, 1000, 1.0f, w, 1000);
        free(malloc(1000 + (size_t)(iters % 3000)));
        iters++;
    }
    return (void *)iters;
}

Test(signals, storm_during_gemm_leaves_heap_intact, .timeout = 60)
{
    flag = 0;
    cr_assert_eq(signals_watch(&flag), STATUS_OK);
    for (int t = 0; t < 2; t++) {
        storm_mats[t] = calloc(1000 * 1000 + 2 * 16 * 1000, sizeof(float));
        cr_assert_not_null(storm_mats[t]);
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        signals_child_reset();
        for (;;) {
            if (kill(parent, SIGTERM) != 0) _exit(0);
            struct timespec ts = { 0, 5000 };
            nanosleep(&ts, NULL);
        }
    }
    /* both threads compute: the kernel offers a process signal to the main
     * thread first, so it must be inside GEMMs too for the test to bite */
    storm_end = log_now() + 1.5;
    pthread_t th;
    pthread_create(&th, NULL, gemm_loop, (void *)1L);
    long iters0 = (long)gemm_loop((void *)0L);
    void *r1;
    pthread_join(th, &r1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(flag, SIGTERM, "the SIGTERM storm never reached the flag");
    cr_assert(iters0 > 0 && (long)r1 > 0, "no GEMM ran during the storm");
    for (int t = 0; t < 2; t++) free(storm_mats[t]);
}

/* While loading, one SIGTERM ends the process at once with one line, even
 * when the loading thread is stuck in a call that never looks at a flag
 * (here: pause()).  A signal that came before the phase began ends it on
 * entry.  Run in forked children, as the process ends. */
Test(signals, stop_now_ends_a_stuck_load)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        if (signals_watch(&flag) != STATUS_OK) _exit(2);
        signals_stop_now("deeper test", "loading a checkpoint");
        kill(getpid(), SIGTERM);
        for (;;) pause();   /* stuck: no flag is ever polled */
    }
    close(pfd[1]);
    int ws = 0;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    char buf[256] = { 0 };
    ssize_t k = read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    cr_assert(k > 0);
    cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + SIGTERM, "status %x", ws);
    cr_expect_str_eq(buf, "deeper test: stopped by SIGTERM while loading a checkpoint; nothing was saved\n");

    /* the signal first, then the phase: ends on entry */
    pid = fork();
    if (pid == 0) {
        if (signals_watch(&flag) != STATUS_OK) _exit(2);
        kill(getpid(), SIGINT);
        while (!flag) usleep(1000);
        signals_stop_now("deeper test", "loading");
        _exit(0);   /* not reached */
    }
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + SIGINT, "status %x", ws);

    /* after the phase, a signal only sets the flag again */
    pid = fork();
    if (pid == 0) {
        flag = 0;
        if (signals_watch(&flag) != STATUS_OK) _exit(2);
        signals_stop_now("deeper test", "loading");
        signals_stop_now(NULL, NULL);
        kill(getpid(), SIGTERM);
        for (int i = 0; i < 2000 && !flag; i++) usleep(1000);
        _exit(flag == SIGTERM ? 0 : 3);
    }
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "status %x", ws);
}
