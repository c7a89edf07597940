/*
 * backend_cpu_pool.c — the CPU backend's thread pool.
 *
 * Why not OpenMP: libgomp's workers spin-wait between parallel regions, and
 * its spin policy is fixed when the library loads (OMP_WAIT_POLICY,
 * GOMP_SPINCOUNT).  On a 2-core machine shared with augment workers and
 * other jobs, spinning threads steal the cores the work needs: measured here,
 * the same NielsenNet step took 35 ms with short spins and 550 ms with
 * libgomp's default policy under load, and the layer tests went from 0.7 s
 * to 31 s.  This pool spins for a few microseconds and then sleeps on a
 * condition variable, so an idle trainer costs nothing and a busy machine
 * degrades gracefully.
 *
 * Model: cpu_parallel(pool, n, fn, arg) splits [0, n) into one contiguous
 * chunk per thread (static, so results never depend on scheduling), runs
 * chunk 0 on the caller and the others on the workers, and returns when all
 * are done.  Calls are not reentrant (one backend = one stream).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "trainer/backend/cpu/backend_cpu.h"

#define SPIN_ITERS 2000     /* ~50-100 us of pause instructions, then sleep */

struct cpu_pool {
    int threads;
    pthread_t tid[CPU_MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* workers wait here for a new job */
    pthread_cond_t done;        /* the caller waits here for the last worker */
    atomic_uint gen;            /* bumped per job */
    atomic_int pending;         /* workers still running the current job */
    int stop;
    cpu_task_fn fn;
    void *arg;
    int64_t n;
    struct worker_arg { struct cpu_pool *p; int t; } wa[CPU_MAX_THREADS];
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void chunk(int64_t n, int T, int t, int64_t *b, int64_t *e)
{
    int64_t per = n / T, rem = n % T;
    *b = t * per + (t < rem ? t : rem);
    *e = *b + per + (t < rem ? 1 : 0);
}

static void *worker(void *va)
{
    struct worker_arg *wa = va;
    struct cpu_pool *p = wa->p;
    int t = wa->t;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !p->stop)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (p->stop) return NULL;
        seen = g;
        int64_t b, e;
        chunk(p->n, p->threads, t, &b, &e);
        if (b < e) p->fn(p->arg, b, e, t);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

struct cpu_pool *cpu_pool_new(int threads)
{
    struct cpu_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int t = 1; t < p->threads; t++) {
        p->wa[t] = (struct worker_arg){ p, t };
        if (pthread_create(&p->tid[t], NULL, worker, &p->wa[t])) {
            p->threads = t;
            break;
        }
    }
    return p;
}

void cpu_pool_free(struct cpu_pool **pp)
{
    struct cpu_pool *p = pp ? *pp : NULL;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->threads; t++) pthread_join(p->tid[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done);
    free(p);
    *pp = NULL;
}

int cpu_pool_threads(const struct cpu_pool *p) { return p->threads; }

void cpu_parallel(struct cpu_pool *p, int64_t n, cpu_task_fn fn, void *arg)
{
    if (n <= 0) return;
    if (p->threads == 1 || n == 1) { fn(arg, 0, n, 0); return; }
    p->fn = fn; p->arg = arg; p->n = n;
    atomic_store_explicit(&p->pending, p->threads - 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    chunk(n, p->threads, 0, &b, &e);
    if (b < e) fn(arg, b, e, 0);
    for (int spins = 0; spins < SPIN_ITERS; spins++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
