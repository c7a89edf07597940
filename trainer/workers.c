/*
 * workers.c — the local augment-worker supervisor (see workers.h).
 *
 * Spawning uses fork + execv (no shell): the argument vector is built once
 * per worker and kept so a respawn repeats it exactly (the extra-args
 * callback is asked again, so a respawned worker can be told a new start
 * position).  Only this module calls waitpid on the children it started.
 */
#include "trainer/workers.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/signals.h"

struct workers {
    int n;
    pid_t *pid;
    char *exe;
    char **common;
    int ncommon;
    char *endpoint;
    const char *ep_flag;        /* "--connect" or "--dispatcher" */
    workers_extra_fn extra;
    void *ctx;
    int restarts;
    double restart_at[WORKERS_RESTART_MEMORY];   /* ring of monotonic times, newest at restarts-1 */
    int *exit_code;                              /* workers_exit_code */
};

static double mono_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

status workers_sibling_exe(const char *name, char **out)
{
    char self[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (k <= 0) return FAIL(STATUS_IO, "/proc/self/exe: %s", strerror(errno));
    self[k] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    if (asprintf(out, "%s/deeper-%s", self, name) < 0) return FAIL(STATUS_NOMEM, "out of memory");
    if (access(*out, X_OK) != 0) {
        status st = FAIL(STATUS_NOT_FOUND, "%s: not found or not executable (build it with make)", *out);
        free(*out);
        *out = NULL;
        return st;
    }
    return STATUS_OK;
}

static status spawn_one(struct workers *w, int i)
{
    const char *const *extra = w->extra ? w->extra(i, w->ctx) : NULL;
    int nextra = 0;
    while (extra && extra[nextra]) nextra++;
    char idx[16], num[16];
    snprintf(idx, sizeof idx, "%d", i);
    snprintf(num, sizeof num, "%d", w->n);
    int argc = 0;
    char **argv = calloc((size_t)(w->ncommon + nextra + 8), sizeof(char *));
    if (!argv) return FAIL(STATUS_NOMEM, "out of memory");
    argv[argc++] = w->exe;
    for (int k = 0; k < w->ncommon; k++) argv[argc++] = w->common[k];
    argv[argc++] = "--worker"; argv[argc++] = idx;
    argv[argc++] = "--num_workers"; argv[argc++] = num;
    argv[argc++] = (char *)(w->ep_flag ? w->ep_flag : "--connect"); argv[argc++] = w->endpoint;
    for (int k = 0; k < nextra; k++) argv[argc++] = (char *)extra[k];
    argv[argc] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) { free(argv); return FAIL(STATUS_IO, "fork: %s", strerror(errno)); }
    if (pid == 0) {
        signals_child_reset();   /* the trainer's blocked SIGINT/SIGTERM would survive exec */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        execv(argv[0], argv);
        fprintf(stderr, "%s: exec: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    w->pid[i] = pid;
    return STATUS_OK;
}

static status start(struct workers **out, const char *exe, const char *const *common, int n, const char *endpoint,
                    workers_extra_fn extra, void *ctx, const char *ep_flag)
{
    *out = NULL;
    struct workers *w = calloc(1, sizeof(*w));
    if (!w) return FAIL(STATUS_NOMEM, "out of memory");
    w->n = n;
    w->ep_flag = ep_flag;
    w->extra = extra;
    w->ctx = ctx;
    w->pid = calloc((size_t)(n ? n : 1), sizeof(pid_t));
    w->exit_code = malloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; w->exit_code && i < n; i++) w->exit_code[i] = -1;
    w->exe = strdup(exe);
    w->endpoint = strdup(endpoint);
    while (common && common[w->ncommon]) w->ncommon++;
    w->common = calloc((size_t)w->ncommon + 1, sizeof(char *));
    status st = STATUS_OK;
    if (!w->pid || !w->exit_code || !w->exe || !w->endpoint || !w->common) { st = FAIL(STATUS_NOMEM, "out of memory"); goto fail; }
    for (int k = 0; k < w->ncommon; k++)
        if (!(w->common[k] = strdup(common[k]))) { st = FAIL(STATUS_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < n; i++)
        if ((st = spawn_one(w, i)) != STATUS_OK) goto fail;
    *out = w;
    return STATUS_OK;
fail:
    workers_stop(&w);
    return st;
}

status workers_start(struct workers **out, const char *exe, const char *const *common, int n,
                     const char *endpoint, workers_extra_fn extra, void *ctx)
{
    return start(out, exe, common, n, endpoint, extra, ctx, "--connect");
}

status workers_start_dispatched(struct workers **out, const char *exe, const char *const *common, int n,
                                const char *endpoint, workers_extra_fn extra, void *ctx)
{
    return start(out, exe, common, n, endpoint, extra, ctx, "--dispatcher");
}

int workers_poll(struct workers *w, int *dead, int *clean)
{
    int nd = 0;
    for (int i = 0; i < w->n; i++) {
        if (w->pid[i] <= 0) continue;
        int ws;
        pid_t r = waitpid(w->pid[i], &ws, WNOHANG);
        if (r != w->pid[i]) continue;
        if (WIFSIGNALED(ws))
            log_warn("augment worker %d (pid %d) was killed by signal %d (%s)", i, (int)r, WTERMSIG(ws),
                     strsignal(WTERMSIG(ws)));
        else if (WEXITSTATUS(ws) != 0)
            log_warn("augment worker %d (pid %d) exited with status %d", i, (int)r, WEXITSTATUS(ws));
        w->pid[i] = 0;
        w->exit_code[i] = WIFSIGNALED(ws) ? -WTERMSIG(ws) : WEXITSTATUS(ws);
        if (clean) clean[nd] = WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
        dead[nd++] = i;
    }
    return nd;
}

status workers_respawn(struct workers *w, int i)
{
    w->restart_at[w->restarts % WORKERS_RESTART_MEMORY] = mono_now();
    w->restarts++;
    w->exit_code[i] = -1;
    TRY(spawn_one(w, i));
    log_info("augment worker %d restarted (pid %d)", i, (int)w->pid[i]);
    return STATUS_OK;
}

int workers_count(const struct workers *w) { return w->n; }
int workers_restarts(const struct workers *w) { return w->restarts; }

int workers_restarts_within(const struct workers *w, double secs)
{
    double now = mono_now();
    int k = 0, have = w->restarts < WORKERS_RESTART_MEMORY ? w->restarts : WORKERS_RESTART_MEMORY;
    for (int j = 0; j < have; j++)
        if (now - w->restart_at[j] <= secs) k++;
    return k;
}

int workers_exit_code(const struct workers *w, int i) { return (i >= 0 && i < w->n) ? w->exit_code[i] : -1; }

void workers_stop(struct workers **pw)
{
    struct workers *w = *pw;
    if (!w) return;
    for (int i = 0; i < w->n; i++)
        if (w->pid && w->pid[i] > 0) kill(w->pid[i], SIGTERM);
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    for (int t = 0; t < 150; t++) {
        int alive = 0;
        for (int i = 0; i < w->n; i++) {
            if (!w->pid || w->pid[i] <= 0) continue;
            if (waitpid(w->pid[i], NULL, WNOHANG) == w->pid[i]) w->pid[i] = 0;
            else alive++;
        }
        if (!alive) break;
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < w->n; i++)
        if (w->pid && w->pid[i] > 0) { kill(w->pid[i], SIGKILL); waitpid(w->pid[i], NULL, 0); }
    for (int k = 0; k < w->ncommon; k++) free(w->common[k]);
    free(w->common); free(w->pid); free(w->exit_code); free(w->exe); free(w->endpoint);
    free(w);
    *pw = NULL;
}
