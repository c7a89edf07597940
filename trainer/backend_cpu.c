/*
 * backend_cpu.c — the CPU backend: memory, element-wise ops, loss, optimizer,
 * and the ops table.  Convolution, batch norm, pooling and fully connected
 * layers are in backend_cpu_nn.c.
 *
 * Host memory is 64-byte aligned and zeroed.  All loops are OpenMP loops over
 * the backend's thread count; OpenBLAS runs single-threaded inside them (see
 * backend_cpu.h).  This file is the reference the CUDA backend is checked
 * against, so every op follows backend.h's comments literally (forward
 * overwrites, backward accumulates).
 */
/* sqrtf without errno so the optimizer loops vectorise */
#pragma GCC optimize("no-math-errno")
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/rng.h"
#include "trainer/backend_cpu.h"

void openblas_set_num_threads(int);

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

void cpu_sgemm(struct cpu_ctx *c, int ta, int tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta, float *cc, int ldc)
{
    int nt = c->threads;
    int64_t work = (int64_t)m * n * k;
    if (nt <= 1 || work < (1 << 18)) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc);
        return;
    }
    int split_m = m >= n;
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int len = split_m ? m : n;
        int chunk = (len + T - 1) / T;
        if (split_m) chunk = (chunk + 3) & ~3;
        else chunk = (chunk + 15) & ~15;
        int s = t * chunk, e = s + chunk < len ? s + chunk : len;
        if (s < e) {
            if (split_m) {
                const float *as = ta ? a + s : a + (size_t)s * lda;
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                            tb ? CblasTrans : CblasNoTrans, e - s, n, k, alpha, as, lda, b, ldb,
                            beta, cc + (size_t)s * ldc, ldc);
            } else {
                const float *bs = tb ? b + (size_t)s * ldb : b + s;
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                            tb ? CblasTrans : CblasNoTrans, m, e - s, k, alpha, a, lda, bs, ldb,
                            beta, cc + s, ldc);
            }
        }
    }
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
    if (c) for (int t = 0; t < CPU_MAX_THREADS; t++) free(c->scratch[t]);
    free(c);
    free(be);
}

/* ---------------------------------------------------------------------- */
/* element-wise */

#define CHECK_ROWS(t, what) \
    do { if (!cpu_row_dense(t)) return FAIL(STATUS_UNSUPPORTED, "cpu %s: tensor rows not dense (sw=%lld sh=%lld w=%d)", what, (long long)(t)->sw, (long long)(t)->sh, (t)->w); } while (0)

static status cpu_input_normalize(struct backend *be, struct tensor *y, const uint8_t *x, int n,
                                  int h, int w, int c)
{
    if (y->h != h || y->w != w || n > y->n)
        return FAIL(STATUS_FORMAT, "input_normalize: batch %dx%dx%d does not fit input %dx%dx%d",
                    n, h, w, y->n, y->h, y->w);
    if (!(y->c == c || (c == 1 && y->c == 3)))
        return FAIL(STATUS_FORMAT, "input_normalize: %d-channel images for a %d-channel model", c,
                    y->c);
    float *yd = y->data;
    int yc = y->c;
    #pragma omp parallel for num_threads(ctx_of(be)->threads) schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *xs = x + (size_t)i * h * w * c;
        for (int ch = 0; ch < yc; ch++) {
            int src = c == 1 ? 0 : ch;
            for (int r = 0; r < h; r++) {
                float *row = yd + i * y->sn + ch * y->sc + r * y->sh;
                const uint8_t *xr = xs + (size_t)r * w * c + src;
                for (int q = 0; q < w; q++) row[q * y->sw] = (xr[(size_t)q * c] / 255.0f - 0.5f) * 2.0f;
            }
        }
    }
    return STATUS_OK;
}

static status cpu_bias_add_forward(struct backend *be, struct tensor *y, const float *b)
{
    CHECK_ROWS(y, "bias_add");
    int hw = y->h * y->w;
    float *yd = y->data;
    #pragma omp parallel for collapse(2) num_threads(ctx_of(be)->threads) schedule(static)
    for (int n = 0; n < y->n; n++)
        for (int c = 0; c < y->c; c++) {
            float *p = yd + n * y->sn + c * y->sc, v = b[c];
            for (int i = 0; i < hw; i++) p[i] += v;
        }
    return STATUS_OK;
}

static status cpu_bias_add_backward(struct backend *be, float *db, const struct tensor *dy)
{
    CHECK_ROWS(dy, "bias_add_backward");
    int hw = dy->h * dy->w;
    const float *d = dy->data;
    #pragma omp parallel for num_threads(ctx_of(be)->threads) schedule(static)
    for (int c = 0; c < dy->c; c++) {
        double s = 0;
        for (int n = 0; n < dy->n; n++) {
            const float *p = d + n * dy->sn + c * dy->sc;
            float ps = 0;
            for (int i = 0; i < hw; i++) ps += p[i];
            s += ps;
        }
        db[c] += (float)s;
    }
    return STATUS_OK;
}

static status cpu_relu_forward(struct backend *be, struct tensor *y, const struct tensor *x)
{
    CHECK_ROWS(y, "relu"); CHECK_ROWS(x, "relu");
    int hw = x->h * x->w;
    const float *xd = x->data;
    float *yd = y->data;
    #pragma omp parallel for collapse(2) num_threads(ctx_of(be)->threads) schedule(static)
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *xp = xd + n * x->sn + c * x->sc;
            float *yp = yd + n * y->sn + c * y->sc;
            for (int i = 0; i < hw; i++) yp[i] = xp[i] > 0 ? xp[i] : 0;
        }
    return STATUS_OK;
}

static status cpu_relu_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                const struct tensor *y)
{
    CHECK_ROWS(dx, "relu_backward"); CHECK_ROWS(dy, "relu_backward"); CHECK_ROWS(y, "relu_backward");
    int hw = y->h * y->w;
    #pragma omp parallel for collapse(2) num_threads(ctx_of(be)->threads) schedule(static)
    for (int n = 0; n < y->n; n++)
        for (int c = 0; c < y->c; c++) {
            const float *yp = (const float *)y->data + n * y->sn + c * y->sc;
            const float *gp = (const float *)dy->data + n * dy->sn + c * dy->sc;
            float *dp = (float *)dx->data + n * dx->sn + c * dx->sc;
            for (int i = 0; i < hw; i++) dp[i] += yp[i] > 0 ? gp[i] : 0;
        }
    return STATUS_OK;
}

/* element i of a logically dense NCHW tensor -> its offset */
static inline int64_t off_of(const struct tensor *t, int64_t i)
{
    int64_t hw = (int64_t)t->h * t->w, chw = hw * t->c;
    int64_t n = i / chw, r = i % chw, c = r / hw, s = r % hw;
    return n * t->sn + c * t->sc + (s / t->w) * t->sh + (s % t->w) * t->sw;
}

static status cpu_dropout_forward(struct backend *be, struct tensor *y, uint8_t *mask,
                                  const struct tensor *x, float keep, uint64_t seed,
                                  uint64_t stream)
{
    int64_t total = tensor_numel(x);
    const float *xd = x->data;
    float *yd = y->data;
    float inv = 1.0f / keep;
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
    int dense = tensor_is_dense(x, LAYOUT_NCHW) && tensor_is_dense(y, LAYOUT_NCHW);
    #pragma omp parallel for num_threads(ctx_of(be)->threads) schedule(static)
    for (int64_t i0 = 0; i0 < total; i0 += 256) {
        int64_t i1 = i0 + 256 < total ? i0 + 256 : total;
        uint32_t out[4];
        uint64_t blk = UINT64_MAX;
        for (int64_t i = i0; i < i1; i++) {
            uint64_t j = stream + (uint64_t)i;
            if (j / 4 != blk) {
                blk = j / 4;
                uint32_t ctr[4] = { (uint32_t)blk, (uint32_t)(blk >> 32), 0, 0 };
                rng_philox(ctr, key, out);
            }
            float u = (float)(out[j % 4] >> 8) * (1.0f / 16777216.0f);
            uint8_t m = u < keep;
            mask[i] = m;
            if (dense) yd[i] = m ? xd[i] * inv : 0.0f;
            else yd[off_of(y, i)] = m ? xd[off_of(x, i)] * inv : 0.0f;
        }
    }
    return STATUS_OK;
}

static status cpu_dropout_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                   const uint8_t *mask, float keep)
{
    int64_t total = tensor_numel(dy);
    float inv = 1.0f / keep;
    const float *g = dy->data;
    float *d = dx->data;
    int dense = tensor_is_dense(dx, LAYOUT_NCHW) && tensor_is_dense(dy, LAYOUT_NCHW);
    #pragma omp parallel for num_threads(ctx_of(be)->threads) schedule(static)
    for (int64_t i = 0; i < total; i++) {
        if (!mask[i]) continue;
        if (dense) d[i] += g[i] * inv;
        else d[off_of(dx, i)] += g[off_of(dy, i)] * inv;
    }
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* loss */

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
    }
    #pragma omp parallel for reduction(+:total) num_threads(ctx_of(be)->threads) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *z = (const float *)logits->data + n * logits->sn;
        float mx = z[0];
        for (int c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
        double se = 0;
        for (int c = 0; c < C; c++) se += exp((double)(z[c] - mx));
        double lse = mx + log(se);
        double l = 0;
        for (int c = 0; c < C; c++) {
            float t = c == labels[n] ? on : off;
            l += t * (lse - z[c]);
        }
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
/* optimizer */

static status cpu_rmsprop_update(struct backend *be, float *w, float *ms, float *mom,
                                 const float *g, size_t n, const struct rmsprop_params *p)
{
    const float lr = p->lr, dec = p->decay, om = 1.0f - p->decay, mu = p->momentum, eps = p->eps;
    const float wd = p->weight_decay, gs = p->grad_scale;
    #pragma omp parallel for simd num_threads(ctx_of(be)->threads) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = gs * g[i] + wd * w[i];
        float m = dec * ms[i] + om * gi * gi;
        ms[i] = m;
        float v = mu * mom[i] + lr * gi / sqrtf(m + eps);
        mom[i] = v;
        w[i] -= v;
    }
    return STATUS_OK;
}

static status cpu_ema_update(struct backend *be, float *shadow, const float *w, size_t n, float decay)
{
    const float a = 1.0f - decay;
    #pragma omp parallel for simd num_threads(ctx_of(be)->threads) schedule(static)
    for (size_t i = 0; i < n; i++) shadow[i] -= a * (shadow[i] - w[i]);
    return STATUS_OK;
}

static status cpu_axpby(struct backend *be, float *y, const float *x, size_t n, float a, float b)
{
    #pragma omp parallel for simd num_threads(ctx_of(be)->threads) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
    return STATUS_OK;
}

static status cpu_sumsq(struct backend *be, double *out, const float *x, size_t n)
{
    double s = 0;
    size_t nb = (n + 4095) / 4096;
    #pragma omp parallel for reduction(+:s) num_threads(ctx_of(be)->threads) schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t e = (b + 1) * 4096 < n ? (b + 1) * 4096 : n;
        float part = 0;
        #pragma omp simd reduction(+:part)
        for (size_t i = b * 4096; i < e; i++) part += x[i] * x[i];
        s += part;
    }
    *out = s;
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */

static const struct backend_ops cpu_ops = {
    .name = "cpu",
    .api_version = BACKEND_API_VERSION,
    .preferred_layout = LAYOUT_NCHW,
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
    openblas_set_num_threads(1);
    c->threads = threads;
    be->ops = &cpu_ops;
    be->ctx = c;
    be->device = 0;
    be->threads = threads;
    *out = be;
    return STATUS_OK;
}
