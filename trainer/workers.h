/*
 * workers.h — spawn, watch and stop local `deeper-augment` worker processes.
 *
 * `deeper train` and `deeper eval` start W augment workers from the same bin
 * directory as themselves (so a build tree and an installed tree both work),
 * each with `--worker I --num_workers W --connect ENDPOINT` plus the common
 * arguments the caller gives.  Children get PR_SET_PDEATHSIG(SIGTERM), so a
 * trainer killed with SIGKILL does not leave workers behind.
 *
 * workers_poll() reaps children that exited (waitpid WNOHANG) and reports
 * each one with one line naming the worker, its pid and how it ended; the
 * caller decides whether to respawn it (workers_respawn, with extra
 * arguments such as where to start).  workers_stop() sends SIGTERM, waits up
 * to 3 s, then SIGKILLs what is left.
 */
#ifndef DEEPER_WORKERS_H
#define DEEPER_WORKERS_H

#include <sys/types.h>

#include "shared/status.h"

struct workers;

/* Path of `deeper-NAME` next to the running executable (caller frees). */
status workers_sibling_exe(const char *name, char **out);

/* Start n workers: exe, then `common` args (NULL-terminated), then
 * --worker I --num_workers n --connect endpoint, then per-worker extra args
 * from extra(i) (NULL-terminated array or NULL; may be NULL function). */
typedef const char *const *(*workers_extra_fn)(int i, void *ctx);
status workers_start(struct workers **out, const char *exe, const char *const *common, int n,
                     const char *endpoint, workers_extra_fn extra, void *ctx);

/* The same, each worker given --dispatcher ENDPOINT instead of --connect
 * (proto/dispatch.md; --worker I --num_workers n only name it). */
status workers_start_dispatched(struct workers **out, const char *exe, const char *const *common, int n,
                                const char *endpoint, workers_extra_fn extra, void *ctx);

/* Reap exited workers.  Returns the number that ended since the last call;
 * their indices are written to dead[] (room for n) and, when clean is not
 * NULL, clean[k] = 1 for an exit with status 0.  Abnormal ends (a signal, a
 * non-zero status) are logged with one warning line each. */
int workers_poll(struct workers *w, int *dead, int *clean);

/* Start worker i again (after it died). */
status workers_respawn(struct workers *w, int i);

int workers_count(const struct workers *w);
int workers_restarts(const struct workers *w);

/* Restarts in the last `secs` seconds (monotonic clock; the newest
 * WORKERS_RESTART_MEMORY are remembered).  The trainer gives up when a
 * window holds too many, so rare deaths over a long run never end it. */
#define WORKERS_RESTART_MEMORY 64
int workers_restarts_within(const struct workers *w, double secs);

/* How worker i last ended: its exit status (0..255), or -SIGNAL when a
 * signal killed it; -1 while it has not ended.  An exit status of
 * WORKER_EXIT_PERMANENT (augment/worker.h) means a restart cannot help. */
int workers_exit_code(const struct workers *w, int i);

/* Stop all (SIGTERM, 3 s grace, SIGKILL), free; NULL-safe. */
void workers_stop(struct workers **w);

#endif
