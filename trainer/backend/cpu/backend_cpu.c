/*
 * backend_cpu.c — the CPU backend: memory, element-wise ops, loss, optimizer,
 * and the ops table.  Convolution, batch norm, pooling and fully connected
 * layers are in backend_cpu_nn.c.
 *
 * Host memory is 64-byte aligned and zeroed.  All loops run on the backend's
 * thread pool (backend_cpu_pool.c) in static chunks, so results do not depend
 * on timing; OpenBLAS runs single-threaded inside them (backend_cpu.h).  This file is the reference the CUDA backend is checked
 * against, so every op follows backend.h's comments literally (forward
 * overwrites, backward accumulates).
 */
/* float sums reassociated so the vector loops vectorise (results stay
 * deterministic for a given build); RMSProp's sqrt uses SSE explicitly because
 * GCC will not vectorise sqrtf under -fmath-errno, which a pragma cannot lift */
#pragma GCC optimize("-O3", "-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math")
#ifdef DEEPER_CPU_OPENBLAS
#include <cblas.h>
#else
#include <dnnl.h>
#include <omp.h>
#endif
#include <math.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/rng.h"
#include "trainer/backend/cpu/backend_cpu.h"

#ifdef DEEPER_CPU_OPENBLAS
void openblas_set_num_threads(int);
#endif

/* oneDNN runs its GEMM on OpenMP threads when the calling thread's OpenMP
 * limit allows; we parallelise above it, so every thread that calls a GEMM
 * limits itself to 1 first (OpenMP's limit is per calling thread). */
static _Thread_local int gemm_thread_ready;

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <stdio.h>
/* The GEMM library is not instrumented, so ASan cannot see it read or write
 * out of bounds; under ASan every call's three matrices are checked here
 * (row-major: rows*ld elements, the last row only up to its width). */
static void gemm_region_check(const char *what, const float *p, int rows, int cols, int ld)
{
    if (rows <= 0 || cols <= 0) return;
    size_t bytes = ((size_t)(rows - 1) * (size_t)ld + (size_t)cols) * sizeof(float);
    void *bad = __asan_region_is_poisoned((void *)p, bytes);
    if (bad) {
        fprintf(stderr, "cpu_gemm1: matrix %s [%d x %d, ld %d] at %p reaches poisoned memory at offset %td\n",
                what, rows, cols, ld, (const void *)p, (const char *)bad - (const char *)p);
        __sanitizer_print_stack_trace();
        abort();
    }
}
#endif

void cpu_gemm1(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
#if defined(__SANITIZE_ADDRESS__)
    gemm_region_check("A", a, ta ? k : m, ta ? m : k, lda);
    gemm_region_check("B", b, tb ? n : k, tb ? k : n, ldb);
    gemm_region_check("C", c, m, n, ldc);
#endif
#ifdef DEEPER_CPU_OPENBLAS
    (void)gemm_thread_ready;
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    if (!gemm_thread_ready) { omp_set_num_threads(1); gemm_thread_ready = 1; }
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

static struct cpu_ctx *ctx_of(struct backend *be) { return (struct cpu_ctx *)be->ctx; }

float *cpu_scratch(struct cpu_ctx *c, int t, size_t n)
{
    if (c->scratch_n[t] >= n) return c->scratch[t];
    free(c->scratch[t]);
    c->scratch_n[t] = 0;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    c->scratch[t] = aligned_alloc(64, bytes);
    if (!c->scratch[t]) return NULL;
    c->scratch_n[t] = n;
    return c->scratch[t];
}

struct sgemm_job {
    int ta, tb, m, n, k, split_m;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc, blk;
};

static void sgemm_task(void *va, int64_t b0, int64_t b1, int t)
{
    struct sgemm_job *j = va;
    int len = j->split_m ? j->m : j->n;
    int s = (int)b0 * j->blk, e = (int)b1 * j->blk < len ? (int)b1 * j->blk : len;
    if (s >= e) return;
    if (j->split_m) {
        const float *as = j->ta ? j->a + s : j->a + (size_t)s * j->lda;
        cpu_gemm1(j->ta, j->tb, e - s, j->n, j->k, j->alpha, as, j->lda, j->b, j->ldb, j->beta,
                  j->c + (size_t)s * j->ldc, j->ldc);
    } else {
        const float *bs = j->tb ? j->b + (size_t)s * j->ldb : j->b + s;
        cpu_gemm1(j->ta, j->tb, j->m, e - s, j->k, j->alpha, j->a, j->lda, bs, j->ldb, j->beta,
                  j->c + s, j->ldc);
    }
}

void cpu_sgemm(struct cpu_ctx *c, int ta, int tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta, float *cc, int ldc)
{
    int64_t work = (int64_t)m * n * k;
    if (c->threads <= 1 || work < (1 << 18)) {
        cpu_gemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
        return;
    }
    struct sgemm_job j = { ta, tb, m, n, k, m >= n, alpha, beta, a, b, cc, lda, ldb, ldc, 0 };
    j.blk = j.split_m ? 4 : 16;
    int len = j.split_m ? m : n;
    cpu_parallel(c->pool, (len + j.blk - 1) / j.blk, sgemm_task, &j);
}

/* ---------------------------------------------------------------------- */
/* memory */

static void *cpu_alloc(struct backend *be, size_t bytes)
{
    size_t b = (bytes + 63) & ~(size_t)63;
    if (b == 0) b = 64;
    void *p = aligned_alloc(64, b);
    if (p) memset(p, 0, b);
    return p;
}
static void cpu_free(struct backend *be, void *p) { free(p); }
static status cpu_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes) memmove(dst, src, bytes);
    return STATUS_OK;
}
static status cpu_zero(struct backend *be, void *p, size_t bytes)
{
    if (bytes) memset(p, 0, bytes);
    return STATUS_OK;
}
static status cpu_sync(struct backend *be) { return STATUS_OK; }
static void cpu_destroy(struct backend *be)
{
    struct cpu_ctx *c = ctx_of(be);
    if (c) {
        cpu_pool_free(&c->pool);
        for (int t = 0; t < CPU_MAX_THREADS; t++) free(c->scratch[t]);
    }
    free(c);
    free(be);
}

/* ---------------------------------------------------------------------- */
/* element-wise */

#define CHECK_ROWS(t, what) \
    do { if (!cpu_row_dense(t)) return FAIL(STATUS_UNSUPPORTED, "cpu %s: tensor rows not dense (sw=%lld sh=%lld w=%d)", what, (long long)(t)->sw, (long long)(t)->sh, (t)->w); } while (0)

struct norm_job { struct tensor *y; const uint8_t *x; int h, w, c; };

static void norm_task(void *va, int64_t b, int64_t e, int t)
{
    struct norm_job *j = va;
    struct tensor *y = j->y;
    int h = j->h, w = j->w, c = j->c;
    for (int64_t i = b; i < e; i++) {
        const uint8_t *xs = j->x + (size_t)i * h * w * c;
        for (int ch = 0; ch < y->c; ch++) {
            int src = c == 1 ? 0 : ch;
            for (int r = 0; r < h; r++) {
                float *row = cpu_plane(y, i, ch) + r * y->sh;
                const uint8_t *xr = xs + (size_t)r * w * c + src;
                for (int q = 0; q < w; q++) row[q * y->sw] = (xr[(size_t)q * c] * (1.0f / 255.0f) - 0.5f) * 2.0f;
            }
        }
    }
}

static status cpu_input_normalize(struct backend *be, struct tensor *y, const uint8_t *x, int n,
                                  int h, int w, int c)
{
    if (y->h != h || y->w != w || n > y->n)
        return FAIL(STATUS_FORMAT, "input_normalize: batch %dx%dx%d does not fit input %dx%dx%d",
                    n, h, w, y->n, y->h, y->w);
    if (!(y->c == c || (c == 1 && y->c == 3)))
        return FAIL(STATUS_FORMAT, "input_normalize: %d-channel images for a %d-channel model", c,
                    y->c);
    struct norm_job j = { y, x, h, w, c };
    cpu_parallel(ctx_of(be)->pool, n, norm_task, &j);
    return STATUS_OK;
}

/* per-(sample, channel) plane loops: y (and x, dy) row-dense */
struct plane_job { struct tensor *y; const struct tensor *x, *g; const float *b; float *db; };

static void bias_fwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct plane_job *j = va;
    struct tensor *y = j->y;
    int hw = y->h * y->w;
    for (int64_t q = b; q < e; q++) {
        int n = (int)(q / y->c), c = (int)(q % y->c);
        float *p = cpu_plane(y, n, c), v = j->b[c];
        for (int i = 0; i < hw; i++) p[i] += v;
    }
}

static status cpu_bias_add_forward(struct backend *be, struct tensor *y, const float *b)
{
    CHECK_ROWS(y, "bias_add");
    struct plane_job j = { .y = y, .b = b };
    cpu_parallel(ctx_of(be)->pool, (int64_t)y->n * y->c, bias_fwd_task, &j);
    return STATUS_OK;
}

static void bias_bwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct plane_job *j = va;
    const struct tensor *dy = j->g;
    int hw = dy->h * dy->w;
    for (int64_t c = b; c < e; c++) {
        double s = 0;
        for (int n = 0; n < dy->n; n++) {
            const float *p = cpu_plane(dy, n, c);
            float ps = 0;
            for (int i = 0; i < hw; i++) ps += p[i];
            s += ps;
        }
        j->db[c] += (float)s;
    }
}

static status cpu_bias_add_backward(struct backend *be, float *db, const struct tensor *dy)
{
    CHECK_ROWS(dy, "bias_add_backward");
    struct plane_job j = { .g = dy, .db = db };
    cpu_parallel(ctx_of(be)->pool, dy->c, bias_bwd_task, &j);
    return STATUS_OK;
}

static void relu_fwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct plane_job *j = va;
    const struct tensor *x = j->x;
    struct tensor *y = j->y;
    int hw = x->h * x->w;
    for (int64_t q = b; q < e; q++) {
        int n = (int)(q / x->c), c = (int)(q % x->c);
        const float *xp = cpu_plane(x, n, c);
        float *yp = cpu_plane(y, n, c);
        for (int i = 0; i < hw; i++) yp[i] = xp[i] < 0 ? 0 : xp[i];   /* NaN passes through (TF), so divergence shows in the loss */
    }
}

static status cpu_relu_forward(struct backend *be, struct tensor *y, const struct tensor *x)
{
    CHECK_ROWS(y, "relu"); CHECK_ROWS(x, "relu");
    struct plane_job j = { .y = y, .x = x };
    cpu_parallel(ctx_of(be)->pool, (int64_t)x->n * x->c, relu_fwd_task, &j);
    return STATUS_OK;
}

static void relu_bwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct plane_job *j = va;
    const struct tensor *y = j->x, *dy = j->g;
    struct tensor *dx = j->y;
    int hw = y->h * y->w;
    for (int64_t q = b; q < e; q++) {
        int n = (int)(q / y->c), c = (int)(q % y->c);
        const float *yp = cpu_plane(y, n, c);
        const float *gp = cpu_plane(dy, n, c);
        float *dp = cpu_plane(dx, n, c);
        for (int i = 0; i < hw; i++) dp[i] += yp[i] > 0 ? gp[i] : 0;
    }
}

static status cpu_relu_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                const struct tensor *y)
{
    CHECK_ROWS(dx, "relu_backward"); CHECK_ROWS(dy, "relu_backward"); CHECK_ROWS(y, "relu_backward");
    struct plane_job j = { .y = dx, .x = y, .g = dy };
    cpu_parallel(ctx_of(be)->pool, (int64_t)y->n * y->c, relu_bwd_task, &j);
    return STATUS_OK;
}

/* element i of a logically dense NCHW tensor -> its offset */
static inline int64_t off_of(const struct tensor *t, int64_t i)
{
    int64_t hw = (int64_t)t->h * t->w, chw = hw * t->c;
    int64_t n = i / chw, r = i % chw, c = r / hw, s = r % hw;
    return n * t->sn + c * t->sc + (s / t->w) * t->sh + (s % t->w) * t->sw;
}

struct drop_job {
    struct tensor *y; const struct tensor *x; uint8_t *mask; const uint8_t *cmask;
    float keep; uint64_t seed, stream; int64_t total; int dense;
};

#define DROP_BLK 1024

static void drop_fwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct drop_job *j = va;
    const float *xd = j->x->data;
    float *yd = j->y->data;
    float inv = 1.0f / j->keep;
    uint32_t key[2] = { (uint32_t)j->seed, (uint32_t)(j->seed >> 32) };
    int64_t i0 = b * DROP_BLK, i1 = e * DROP_BLK < j->total ? e * DROP_BLK : j->total;
    uint32_t out[4];
    uint64_t blk = UINT64_MAX;
    for (int64_t i = i0; i < i1; i++) {
        uint64_t q = j->stream + (uint64_t)i;
        if (q / 4 != blk) {
            blk = q / 4;
            uint32_t ctr[4] = { (uint32_t)blk, (uint32_t)(blk >> 32), 0, 0 };
            rng_philox(ctr, key, out);
        }
        float u = (float)(out[q % 4] >> 8) * (1.0f / 16777216.0f);
        uint8_t m = u < j->keep;
        j->mask[i] = m;
        if (j->dense) yd[i] = m ? xd[i] * inv : 0.0f;
        else yd[off_of(j->y, i)] = m ? xd[off_of(j->x, i)] * inv : 0.0f;
    }
}

static status cpu_dropout_forward(struct backend *be, struct tensor *y, uint8_t *mask,
                                  const struct tensor *x, float keep, uint64_t seed,
                                  uint64_t stream)
{
    struct drop_job j = { y, x, mask, NULL, keep, seed, stream, tensor_numel(x),
                          tensor_is_dense(x, LAYOUT_NCHW) && tensor_is_dense(y, LAYOUT_NCHW) };
    cpu_parallel(ctx_of(be)->pool, (j.total + DROP_BLK - 1) / DROP_BLK, drop_fwd_task, &j);
    return STATUS_OK;
}

static void drop_bwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct drop_job *j = va;
    const float *g = j->x->data;
    float *d = j->y->data;
    float inv = 1.0f / j->keep;
    for (int64_t i = b; i < e; i++) {
        if (!j->cmask[i]) continue;
        if (j->dense) d[i] += g[i] * inv;
        else d[off_of(j->y, i)] += g[off_of(j->x, i)] * inv;
    }
}

static status cpu_dropout_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                   const uint8_t *mask, float keep)
{
    struct drop_job j = { dx, dy, NULL, mask, keep, 0, 0, tensor_numel(dy),
                          tensor_is_dense(dx, LAYOUT_NCHW) && tensor_is_dense(dy, LAYOUT_NCHW) };
    cpu_parallel(ctx_of(be)->pool, j.total, drop_bwd_task, &j);
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* loss (batch-sized: single-threaded, deterministic summation order) */

static status cpu_softmax_xent(struct backend *be, float *loss_host, struct tensor *dlogits,
                               const struct tensor *logits, const int32_t *labels, float smoothing,
                               float scale)
{
    int N = logits->n, C = logits->c * logits->h * logits->w;
    if (logits->h * logits->w != 1 || logits->sc != 1)
        return FAIL(STATUS_UNSUPPORTED, "softmax_xent: logits must be [N, C] dense rows");
    double total = 0;
    float on = 1.0f - smoothing + smoothing / C, off = smoothing / C;
    for (int n = 0; n < N; n++) {
        if (labels[n] < 0 || labels[n] >= C)
            return FAIL(STATUS_FORMAT, "softmax_xent: label %d of sample %d outside [0, %d)",
                        labels[n], n, C);
        const float *z = (const float *)logits->data + n * logits->sn;
        float mx = z[0];
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double se = 0;
        for (int c = 0; c < C; c++) se += exp((double)(z[c] - mx));
        double lse = mx + log(se);
        double l = 0;
        for (int c = 0; c < C; c++) l += (c == labels[n] ? on : off) * (lse - z[c]);
        total += l;
        if (dlogits) {
            float *d = (float *)dlogits->data + n * dlogits->sn;
            float s = scale / N;
            for (int c = 0; c < C; c++) {
                float p = (float)exp(z[c] - lse);
                d[c] += s * (p - (c == labels[n] ? on : off));
            }
        }
    }
    *loss_host = (float)(total / N);
    return STATUS_OK;
}

static status cpu_softmax(struct backend *be, struct tensor *probs, const struct tensor *logits)
{
    int N = logits->n, C = logits->c;
    if (logits->h * logits->w != 1 || logits->sc != 1 || probs->sc != 1)
        return FAIL(STATUS_UNSUPPORTED, "softmax: logits must be [N, C] dense rows");
    for (int n = 0; n < N; n++) {
        const float *z = (const float *)logits->data + n * logits->sn;
        float *p = (float *)probs->data + n * probs->sn;
        float mx = z[0];
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double se = 0;
        for (int c = 0; c < C; c++) se += exp((double)(z[c] - mx));
        for (int c = 0; c < C; c++) p[c] = (float)(exp((double)(z[c] - mx)) / se);
    }
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* optimizer: vector loops over blocks of VEC_BLK floats */

#define VEC_BLK 8192

struct vec_job {
    float *w, *ms, *mom, *y;
    const float *g, *x;
    size_t n;
    struct rmsprop_params p;
    float a, b;
    double part[CPU_MAX_THREADS];
};

/* the end of chunk [b, e) of blocks: e * VEC_BLK, or n for the last */
static size_t vec_end(const struct vec_job *j, int64_t e)
{
    size_t end = (size_t)e * VEC_BLK;
    return end < j->n ? end : j->n;
}

/* runs task over j->n floats, a block of VEC_BLK per item */
static status vec_run(struct backend *be, struct vec_job *j, void (*task)(void *, int64_t, int64_t, int))
{
    cpu_parallel(ctx_of(be)->pool, (int64_t)((j->n + VEC_BLK - 1) / VEC_BLK), task, j);
    return STATUS_OK;
}

static void rms_task(void *va, int64_t b, int64_t e, int t)
{
    struct vec_job *j = va;
    const float lr = j->p.lr, dec = j->p.decay, om = 1.0f - j->p.decay, mu = j->p.momentum;
    const float eps = j->p.eps, wd = j->p.weight_decay, gs = j->p.grad_scale;
    size_t s = (size_t)b * VEC_BLK, end = vec_end(j, e);
    float *restrict w = j->w, *restrict ms = j->ms, *restrict mom = j->mom;
    const float *restrict g = j->g;
    size_t i = s;
#if defined(__SSE2__)
    const __m128 vgs = _mm_set1_ps(gs), vwd = _mm_set1_ps(wd), vdec = _mm_set1_ps(dec);
    const __m128 vom = _mm_set1_ps(om), vmu = _mm_set1_ps(mu), vlr = _mm_set1_ps(lr), veps = _mm_set1_ps(eps);
    for (; i + 4 <= end; i += 4) {
        __m128 wi = _mm_loadu_ps(w + i);
        __m128 gi = _mm_add_ps(_mm_mul_ps(vgs, _mm_loadu_ps(g + i)), _mm_mul_ps(vwd, wi));
        __m128 m = _mm_add_ps(_mm_mul_ps(vdec, _mm_loadu_ps(ms + i)), _mm_mul_ps(vom, _mm_mul_ps(gi, gi)));
        _mm_storeu_ps(ms + i, m);
        __m128 v = _mm_add_ps(_mm_mul_ps(vmu, _mm_loadu_ps(mom + i)),
                              _mm_div_ps(_mm_mul_ps(vlr, gi), _mm_sqrt_ps(_mm_add_ps(m, veps))));
        _mm_storeu_ps(mom + i, v);
        _mm_storeu_ps(w + i, _mm_sub_ps(wi, v));
    }
#endif
    for (; i < end; i++) {
        float gi = gs * g[i] + wd * w[i];
        float m = dec * ms[i] + om * gi * gi;
        ms[i] = m;
        float v = mu * mom[i] + lr * gi / sqrtf(m + eps);
        mom[i] = v;
        w[i] -= v;
    }
}

static status cpu_rmsprop_update(struct backend *be, float *w, float *ms, float *mom,
                                 const float *g, size_t n, const struct rmsprop_params *p)
{
    struct vec_job j = { .w = w, .ms = ms, .mom = mom, .g = g, .n = n, .p = *p };
    return vec_run(be, &j, rms_task);
}

static void ema_task(void *va, int64_t b, int64_t e, int t)
{
    struct vec_job *j = va;
    size_t s = (size_t)b * VEC_BLK, end = vec_end(j, e);
    float *restrict sh = j->y;
    const float *restrict w = j->x;
    const float a = j->a;
    for (size_t i = s; i < end; i++) sh[i] -= a * (sh[i] - w[i]);
}

static status cpu_ema_update(struct backend *be, float *shadow, const float *w, size_t n, float decay)
{
    struct vec_job j = { .y = shadow, .x = w, .n = n, .a = 1.0f - decay };
    return vec_run(be, &j, ema_task);
}

static void axpby_task(void *va, int64_t b, int64_t e, int t)
{
    struct vec_job *j = va;
    size_t s = (size_t)b * VEC_BLK, end = vec_end(j, e);
    float *restrict y = j->y;
    const float *restrict x = j->x;
    const float a = j->a, bb = j->b;
    for (size_t i = s; i < end; i++) y[i] = a * x[i] + bb * y[i];
}

static status cpu_axpby(struct backend *be, float *y, const float *x, size_t n, float a, float b)
{
    struct vec_job j = { .y = y, .x = x, .n = n, .a = a, .b = b };
    return vec_run(be, &j, axpby_task);
}

static void sumsq_task(void *va, int64_t b, int64_t e, int t)
{
    struct vec_job *j = va;
    double s = 0;
    for (int64_t k = b; k < e; k++) {
        size_t i0 = (size_t)k * VEC_BLK, i1 = vec_end(j, k + 1);
        float part = 0;
        #pragma GCC ivdep
        for (size_t i = i0; i < i1; i++) part += j->x[i] * j->x[i];
        s += part;
    }
    j->part[t] = s;
}

static status cpu_sumsq(struct backend *be, double *out, const float *x, size_t n)
{
    struct vec_job j = { .x = x, .n = n };
    vec_run(be, &j, sumsq_task);
    double s = 0;
    for (int t = 0; t < ctx_of(be)->threads; t++) s += j.part[t];
    *out = s;
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */

static const struct backend_ops cpu_ops = {
    .name = "cpu",
    .api_version = BACKEND_API_VERSION,
    .preferred_layout = LAYOUT_NCHW,
    .host_memory = 1,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_h2d = cpu_copy,
    .copy_d2h = cpu_copy,
    .copy_d2d = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .destroy = cpu_destroy,
    .input_normalize = cpu_input_normalize,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward_data = cpu_conv2d_backward_data,
    .conv2d_backward_filter = cpu_conv2d_backward_filter,
    .batchnorm_train_forward = cpu_bn_train_forward,
    .batchnorm_infer_forward = cpu_bn_infer_forward,
    .batchnorm_backward = cpu_bn_backward,
    .bias_add_forward = cpu_bias_add_forward,
    .bias_add_backward = cpu_bias_add_backward,
    .pool_forward = cpu_pool_forward,
    .pool_backward = cpu_pool_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .fc_forward = cpu_fc_forward,
    .fc_backward = cpu_fc_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .softmax_xent = cpu_softmax_xent,
    .softmax = cpu_softmax,
    .rmsprop_update = cpu_rmsprop_update,
    .ema_update = cpu_ema_update,
    .axpby = cpu_axpby,
    .sumsq = cpu_sumsq,
};

status backend_new_cpu(struct backend **out, int threads)
{
    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > CPU_MAX_THREADS) threads = CPU_MAX_THREADS;
    struct backend *be = calloc(1, sizeof *be);
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be); free(c);
        return FAIL(STATUS_NOMEM, "cpu backend: out of memory");
    }
#ifdef DEEPER_CPU_OPENBLAS
    openblas_set_num_threads(1);
#endif
    c->pool = cpu_pool_new(threads);
    if (!c->pool) {
        free(be); free(c);
        return FAIL(STATUS_NOMEM, "cpu backend: cannot start %d threads", threads);
    }
    threads = cpu_pool_threads(c->pool);
    c->threads = threads;
    be->ops = &cpu_ops;
    be->ctx = c;
    be->device = 0;
    be->threads = threads;
    *out = be;
    return STATUS_OK;
}
