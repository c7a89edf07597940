/*
 * backend_cpu.h — private to the CPU backend (backend_cpu*.c).
 *
 * The CPU backend is host memory plus OpenBLAS SGEMM and our own thread pool
 * (backend_cpu_pool.c, which explains why not OpenMP).  We keep OpenBLAS
 * single-threaded and parallelise ourselves (over samples for convolutions,
 * over output blocks for the fully connected GEMMs), so there is exactly one
 * pool on the machine's cores and no two pools spin against each other.
 *
 * Tensors must be "row-dense": sw == 1 and sh == w (NCHW with any sample and
 * channel strides, which is what channel-slice views of a concat are).  Ops
 * check this and FAIL otherwise.
 */
#ifndef DEEPER_BACKEND_CPU_H
#define DEEPER_BACKEND_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "trainer/backend.h"

#define CPU_MAX_THREADS 64

/* The pool: fn(arg, begin, end, thread) runs once per thread on a
 * contiguous static chunk of [0, n). */
typedef void (*cpu_task_fn)(void *arg, int64_t begin, int64_t end, int thread);
struct cpu_pool;
struct cpu_pool *cpu_pool_new(int threads);
void cpu_pool_free(struct cpu_pool **p);
int  cpu_pool_threads(const struct cpu_pool *p);
void cpu_parallel(struct cpu_pool *p, int64_t n, cpu_task_fn fn, void *arg);

struct cpu_ctx {
    int threads;
    struct cpu_pool *pool;
    /* per-thread scratch (im2col columns, private weight-gradient sums) */
    float *scratch[CPU_MAX_THREADS];
    size_t scratch_n[CPU_MAX_THREADS];
};

/* Per-thread scratch of at least n floats (grown as needed; NULL on OOM). */
float *cpu_scratch(struct cpu_ctx *c, int t, size_t n);

static inline int cpu_row_dense(const struct tensor *t)
{
    return t->sw == 1 && t->sh == t->w;
}

/* The (n, c) plane of a float tensor: h*w floats, dense when cpu_row_dense. */
static inline float *cpu_plane(const struct tensor *t, int64_t n, int64_t c)
{
    return (float *)t->data + n * t->sn + c * t->sc;
}

/* C[M,N] = alpha * op(A) op(B) + beta * C (row-major) on the calling thread:
 * oneDNN's dnnl_sgemm (chosen by measurement, docs/benchmarks.md), or
 * OpenBLAS when built with -DDEEPER_CPU_OPENBLAS. */
void cpu_gemm1(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/* The same, split over the backend's threads along M or N. */
void cpu_sgemm(struct cpu_ctx *c, int ta, int tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta, float *cc, int ldc);

/* Ops implemented in backend_cpu_nn.c */
status cpu_conv2d_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                          const struct tensor *w, const struct conv_params *p);
status cpu_conv2d_backward_data(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                const struct tensor *w, const struct conv_params *p);
status cpu_conv2d_backward_filter(struct backend *be, struct tensor *dw, const struct tensor *dy,
                                  const struct tensor *x, const struct conv_params *p);
status cpu_bn_train_forward(struct backend *be, struct tensor *y, float *save_mean,
                            float *save_invstd, const struct tensor *x, const float *gamma,
                            const float *beta, float *running_mean, float *running_var,
                            const struct bn_params *p);
status cpu_bn_infer_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                            const float *gamma, const float *beta, const float *running_mean,
                            const float *running_var, const struct bn_params *p);
status cpu_bn_backward(struct backend *be, struct tensor *dx, float *dgamma, float *dbeta,
                       const struct tensor *dy, const struct tensor *x, const float *gamma,
                       const float *save_mean, const float *save_invstd, const struct bn_params *p);
status cpu_pool_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                        const struct pool_params *p);
status cpu_pool_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                         const struct tensor *x, const struct tensor *y, const struct pool_params *p);
status cpu_fc_forward(struct backend *be, struct tensor *y, const struct tensor *x, const float *w,
                      const float *b, int in, int out);
status cpu_fc_backward(struct backend *be, struct tensor *dx, float *dw, float *db,
                       const struct tensor *dy, const struct tensor *x, const float *w, int in,
                       int out);

#endif
