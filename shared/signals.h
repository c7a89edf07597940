/*
 * signals.h — Ctrl-C and SIGTERM as a flag, taken on a thread of their own.
 *
 * A program that computes with oneDNN must never run a signal handler on a
 * compute thread: oneDNN's JIT f32 GEMM kernels (Debian 12 ships 2.6.3; fixed
 * upstream in 3.11.2, PR uxlfoundation/oneDNN#4855) point the stack pointer
 * at a heap workspace while they run, so the kernel writes the handler's
 * frame into the heap.  The result is a later "free(): invalid size" abort:
 * `deeper train` died that way on about one Ctrl-C in twenty.
 *
 * signals_watch() therefore blocks SIGINT and SIGTERM in the calling thread
 * (every thread created afterwards inherits the mask: call it before any
 * thread exists) and starts one watcher thread that takes them with
 * sigwait() and stores the signal number in *flag.  No handler ever runs.
 * A second SIGINT (Ctrl-C twice) ends the process at once with status 130,
 * as users expect; repeated SIGTERMs only set the flag again.  While a
 * program is loading, one signal ends it at once (signals_stop_now).
 *
 * A process forked from such a program inherits the blocked mask through
 * exec: call signals_child_reset() in the child before execv().
 */
#ifndef DEEPER_SIGNALS_H
#define DEEPER_SIGNALS_H

#include <signal.h>

#include "shared/status.h"

/* Start watching SIGINT/SIGTERM (once per process; later calls only change
 * the flag).  *flag becomes the signal number when one arrives. */
status signals_watch(volatile sig_atomic_t *flag);

/* While a program loads or sets up (a checkpoint, the model, the dataset),
 * nothing polls the flag and nothing is worth saving, and a load can sit in
 * a call that never looks at a flag (a slow disk, a long checksum).  Between
 * signals_stop_now("deeper train", "loading") and signals_stop_now(NULL,
 * NULL) the watcher itself ends the process on SIGINT/SIGTERM: it writes
 * "PROG: stopped by SIGTERM while WHAT; nothing was saved" to stderr and
 * exits with 128 + the signal number.  The strings are borrowed (use
 * literals).  A signal that came before the call ends the process in the
 * call. */
void signals_stop_now(const char *prog, const char *what);

/* In a forked child before exec: unblock every signal (async-signal-safe). */
void signals_child_reset(void);

#endif
