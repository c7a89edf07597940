/*
 * signals.c — SIGINT/SIGTERM through sigwait() on a watcher thread (see
 * signals.h for why no handler may run on a oneDNN compute thread).
 *
 * The watcher is started once per process and never joined: it sleeps in
 * sigwait() until the process ends.  The flag pointer is atomic so a second
 * signals_watch() (another run in the same process) can redirect it.  A
 * forked child has no watcher (fork copies only the calling thread), so an
 * atfork handler forgets it there and signals_watch() in the child starts one.
 */
#include "shared/signals.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "shared/log.h"

static _Atomic(volatile sig_atomic_t *) watch_flag;
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static int watch_started, watch_atfork;

static void watched_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* signals_stop_now(): set while the process may simply end on a signal */
static _Atomic(const char *) stop_prog, stop_what;

static void stop_exit(int sig)
{
    char line[512];
    const char *prog = atomic_load(&stop_prog), *what = atomic_load(&stop_what);
    int n = snprintf(line, sizeof line, "%s: stopped by %s while %s; nothing was saved\n", prog,
                     sig == SIGINT ? "SIGINT" : "SIGTERM", what ? what : "starting");
    if (n > 0) {
        ssize_t k = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)k;
    }
    _exit(128 + sig);
}

static void *watcher(void *arg)
{
    (void)arg;
    sigset_t set;
    watched_set(&set);
    int ints = 0;
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGINT && ++ints >= 2) {
            log_warn("second SIGINT: exiting now without saving (the last checkpoint is kept)");
            _exit(128 + SIGINT);
        }
        volatile sig_atomic_t *f = atomic_load(&watch_flag);
        if (f) *f = sig;
        if (atomic_load(&stop_prog)) stop_exit(sig);
    }
    return NULL;
}

static void forget_watcher(void)
{
    pthread_mutex_init(&watch_mu, NULL);
    watch_started = 0;
}

static int watch_start(void)
{
    if (!watch_atfork) {
        if (pthread_atfork(NULL, NULL, forget_watcher) != 0) return ENOMEM;
        watch_atfork = 1;
    }
    sigset_t set;
    watched_set(&set);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    pthread_attr_t attr;
    pthread_t tid;
    if (rc == 0) rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, watcher, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return rc;
}

status signals_watch(volatile sig_atomic_t *flag)
{
    atomic_store(&watch_flag, flag);
    pthread_mutex_lock(&watch_mu);
    int rc = watch_started ? 0 : watch_start();
    if (rc == 0) watch_started = 1;
    pthread_mutex_unlock(&watch_mu);
    if (rc != 0) return FAIL(STATUS_STATE, "signals: cannot start the watcher thread: %s", strerror(rc));
    return STATUS_OK;
}

void signals_child_reset(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

void signals_stop_now(const char *prog, const char *what)
{
    atomic_store(&stop_what, what);
    atomic_store(&stop_prog, prog);
    volatile sig_atomic_t *f = atomic_load(&watch_flag);
    if (prog && f && *f) stop_exit(*f);
}
