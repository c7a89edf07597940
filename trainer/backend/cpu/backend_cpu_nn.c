/*
 * backend_cpu_nn.c — the CPU backend's layers: convolution (im2col + SGEMM,
 * 1x1 convolutions straight to SGEMM), batch norm, max/avg pooling, fully
 * connected.
 *
 * Parallelism (the backend's pool, static chunks): convolutions run a chunk
 * of samples per thread, each thread with its own im2col buffer; the filter gradient is summed in per-thread
 * private buffers and reduced at the end (so the result does not depend on
 * scheduling order beyond float rounding of that final sum, which is fixed
 * for a given thread count).  Batch norm runs one channel per iteration,
 * pooling one (sample, channel) plane per iteration, and the fully connected
 * GEMMs are split over threads by cpu_sgemm.
 *
 * Layout: NCHW with dense rows (backend_cpu.h); weights [out, in, kh, kw].
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "trainer/backend/cpu/backend_cpu.h"

static struct cpu_ctx *ctx_of(struct backend *be) { return (struct cpu_ctx *)be->ctx; }

#define CHECK_ROWS(t, what) \
    do { if (!cpu_row_dense(t)) return FAIL(STATUS_UNSUPPORTED, "cpu %s: tensor rows not dense", what); } while (0)

/* ---------------------------------------------------------------------- */
/* convolution */

static int conv_out(int in, int k, int s, int pad) { return (in + 2 * pad - k) / s + 1; }

/* col[(ci*kh + i)*kw + j][oy*ow + ox] = x[ci][oy*s - pad + i][ox*s - pad + j];
 * rows of col are ld floats apart (several samples side by side) */
static void im2col(const float *x, int64_t sc, int cin, int h, int w, const struct conv_params *p,
                   int oh, int ow, float *col, int64_t ld)
{
    int ohw = ld;
    for (int ci = 0; ci < cin; ci++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++) {
                float *dst = col + ((size_t)(ci * p->kh + i) * p->kw + j) * ohw;
                const float *xc = x + ci * sc;
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * p->stride_h - p->pad_h + i;
                    float *d = dst + oy * ow;
                    if (iy < 0 || iy >= h) { for (int ox = 0; ox < ow; ox++) d[ox] = 0; continue; }
                    const float *xr = xc + (size_t)iy * w;
                    if (p->stride_w == 1) {
                        int ox0 = p->pad_w - j, ox1 = w + p->pad_w - j;   /* valid ox range */
                        if (ox0 < 0) ox0 = 0;
                        if (ox1 > ow) ox1 = ow;
                        for (int ox = 0; ox < ox0 && ox < ow; ox++) d[ox] = 0;
                        /* rows are short (10-35 floats): an inline loop beats memcpy calls */
                        const float *xs = xr - p->pad_w + j;
                        for (int ox = ox0; ox < ox1; ox++) d[ox] = xs[ox];
                        for (int ox = ox1 > ox0 ? ox1 : ox0; ox < ow; ox++) d[ox] = 0;
                    } else {
                        for (int ox = 0; ox < ow; ox++) {
                            int ix = ox * p->stride_w - p->pad_w + j;
                            d[ox] = (ix >= 0 && ix < w) ? xr[ix] : 0.0f;
                        }
                    }
                }
            }
}

/* x[ci][..] += col (the adjoint of im2col) */
static void col2im_add(const float *col, float *x, int64_t sc, int cin, int h, int w,
                       const struct conv_params *p, int oh, int ow, int64_t ld)
{
    int64_t ohw = ld;
    for (int ci = 0; ci < cin; ci++)
        for (int i = 0; i < p->kh; i++)
            for (int j = 0; j < p->kw; j++) {
                const float *src = col + ((size_t)(ci * p->kh + i) * p->kw + j) * ohw;
                float *xc = x + ci * sc;
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * p->stride_h - p->pad_h + i;
                    if (iy < 0 || iy >= h) continue;
                    float *xr = xc + (size_t)iy * w;
                    const float *s = src + oy * ow;
                    if (p->stride_w == 1) {
                        /* valid ox: 0 <= ox - pad + j < w */
                        int ox0 = p->pad_w - j > 0 ? p->pad_w - j : 0;
                        int ox1 = w + p->pad_w - j < ow ? w + p->pad_w - j : ow;
                        float *xo = xr - p->pad_w + j;
                        for (int ox = ox0; ox < ox1; ox++) xo[ox] += s[ox];
                        continue;
                    }
                    for (int ox = 0; ox < ow; ox++) {
                        int ix = ox * p->stride_w - p->pad_w + j;
                        if (ix >= 0 && ix < w) xr[ix] += s[ox];
                    }
                }
            }
}

static int is_pointwise(const struct conv_params *p)
{
    return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
           p->pad_w == 0;
}

static status conv_check(const struct tensor *y, const struct tensor *x, const struct tensor *w,
                         const struct conv_params *p, const char *what)
{
    if (!cpu_row_dense(y) || !cpu_row_dense(x))
        return FAIL(STATUS_UNSUPPORTED, "cpu %s: tensor rows not dense", what);
    if (w->n != y->c || w->c != x->c || w->h != p->kh || w->w != p->kw || x->n != y->n)
        return FAIL(STATUS_FORMAT, "cpu %s: weight [%d,%d,%d,%d] does not fit x c=%d y c=%d", what,
                    w->n, w->c, w->h, w->w, x->c, y->c);
    if (y->h != conv_out(x->h, p->kh, p->stride_h, p->pad_h) ||
        y->w != conv_out(x->w, p->kw, p->stride_w, p->pad_w))
        return FAIL(STATUS_FORMAT, "cpu %s: output %dx%d, expected %dx%d", what, y->h, y->w,
                    conv_out(x->h, p->kh, p->stride_h, p->pad_h),
                    conv_out(x->w, p->kw, p->stride_w, p->pad_w));
    return STATUS_OK;
}

/* Samples are processed in groups of G: the im2col columns of G samples sit
 * side by side ([K, G*ohw]) so one GEMM covers the group (NielsenNet's conv2
 * is 40x500x100 per sample, far too small a GEMM alone; grouped it is
 * 40x500x3200).  G is capped so a group's columns stay under GROUP_FLOATS;
 * maps of 512 positions or more are not grouped (their GEMMs are big enough
 * and grouping would cost a copy of the output). */
#define GROUP_FLOATS (1 << 21)

struct conv_job {
    struct cpu_ctx *c;
    const struct tensor *x, *w, *dy;
    struct tensor *y, *dx, *dw;
    const struct conv_params *p;
    int K, ohw, pw, fail;
    int used[CPU_MAX_THREADS];
};

static int conv_group(const struct conv_job *j, int64_t n)
{
    if (j->ohw >= 512) return 1;    /* big maps: per-sample GEMMs are large enough, skip the copies */
    int64_t per = (int64_t)j->K * j->ohw + (int64_t)(j->y ? j->y->c : j->dy->c) * j->ohw;
    int64_t g = GROUP_FLOATS / (per > 0 ? per : 1);
    if (g < 1) g = 1;
    return (int)(g < n ? g : n);
}

/* rows [O][ohw] of sample tensors <-> a [O, G*ohw] matrix */
static void gather_rows(float *m, const struct tensor *t, int64_t n0, int G, int ohw)
{
    for (int s = 0; s < G; s++)
        for (int o = 0; o < t->c; o++)
            memcpy(m + (size_t)o * G * ohw + (size_t)s * ohw,
                   (const float *)t->data + (n0 + s) * t->sn + o * t->sc, sizeof(float) * ohw);
}

static void scatter_rows(struct tensor *t, const float *m, int64_t n0, int G, int ohw)
{
    for (int s = 0; s < G; s++)
        for (int o = 0; o < t->c; o++)
            memcpy((float *)t->data + (n0 + s) * t->sn + o * t->sc,
                   m + (size_t)o * G * ohw + (size_t)s * ohw, sizeof(float) * ohw);
}

static void conv_fwd_task(void *va, int64_t b, int64_t e, int t)
{
    struct conv_job *j = va;
    const struct tensor *x = j->x;
    struct tensor *y = j->y;
    int K = j->K, ohw = j->ohw, O = y->c;
    if (j->pw) {
        for (int64_t n = b; n < e; n++)
            cpu_gemm1(0, 0, O, ohw, K, 1.0f, j->w->data, K,
                        (const float *)x->data + n * x->sn, (int)x->sc, 0.0f,
                        (float *)y->data + n * y->sn, (int)y->sc);
        return;
    }
    int G = conv_group(j, e - b);
    float *col = cpu_scratch(j->c, t, (size_t)G * ohw * (K + O));
    if (!col) { j->fail = 1; return; }
    float *out = col + (size_t)G * ohw * K;
    for (int64_t n0 = b; n0 < e; n0 += G) {
        int g = (int)(e - n0 < G ? e - n0 : G);
        int64_t ld = (int64_t)g * ohw;
        for (int s = 0; s < g; s++)
            im2col((const float *)x->data + (n0 + s) * x->sn, x->sc, x->c, x->h, x->w, j->p, y->h,
                   y->w, col + (size_t)s * ohw, ld);
        if (g == 1) {
            cpu_gemm1(0, 0, O, ohw, K, 1.0f, j->w->data, K,
                        col, ohw, 0.0f, (float *)y->data + n0 * y->sn, (int)y->sc);
        } else {
            cpu_gemm1(0, 0, O, (int)ld, K, 1.0f, j->w->data,
                        K, col, (int)ld, 0.0f, out, (int)ld);
            scatter_rows(y, out, n0, g, ohw);
        }
    }
}

status cpu_conv2d_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                          const struct tensor *w, const struct conv_params *p)
{
    TRY(conv_check(y, x, w, p, "conv2d_forward"));
    struct conv_job j = { .c = ctx_of(be), .x = x, .w = w, .y = y, .p = p,
                          .K = x->c * p->kh * p->kw, .ohw = y->h * y->w, .pw = is_pointwise(p) };
    cpu_parallel(j.c->pool, x->n, conv_fwd_task, &j);
    if (j.fail) return FAIL(STATUS_NOMEM, "conv2d_forward: im2col buffer");
    return STATUS_OK;
}

static void conv_bwd_data_task(void *va, int64_t b, int64_t e, int t)
{
    struct conv_job *j = va;
    const struct tensor *dy = j->dy;
    struct tensor *dx = j->dx;
    int K = j->K, ohw = j->ohw, O = dy->c;
    if (j->pw) {
        for (int64_t n = b; n < e; n++)
            cpu_gemm1(1, 0, K, ohw, O, 1.0f, j->w->data, K,
                        (const float *)dy->data + n * dy->sn, (int)dy->sc, 1.0f,
                        (float *)dx->data + n * dx->sn, (int)dx->sc);
        return;
    }
    int G = conv_group(j, e - b);
    float *col = cpu_scratch(j->c, t, (size_t)G * ohw * (K + O));
    if (!col) { j->fail = 1; return; }
    float *dyt = col + (size_t)G * ohw * K;
    for (int64_t n0 = b; n0 < e; n0 += G) {
        int g = (int)(e - n0 < G ? e - n0 : G);
        int64_t ld = (int64_t)g * ohw;
        const float *dym;
        int lddy;
        if (g == 1) { dym = (const float *)dy->data + n0 * dy->sn; lddy = (int)dy->sc; }
        else { gather_rows(dyt, dy, n0, g, ohw); dym = dyt; lddy = (int)ld; }
        cpu_gemm1(1, 0, K, (int)ld, O, 1.0f, j->w->data, K,
                    dym, lddy, 0.0f, col, (int)ld);
        for (int s = 0; s < g; s++)
            col2im_add(col + (size_t)s * ohw, (float *)dx->data + (n0 + s) * dx->sn, dx->sc, dx->c,
                       dx->h, dx->w, j->p, dy->h, dy->w, ld);
    }
}

status cpu_conv2d_backward_data(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                const struct tensor *w, const struct conv_params *p)
{
    TRY(conv_check(dy, dx, w, p, "conv2d_backward_data"));
    struct conv_job j = { .c = ctx_of(be), .dx = dx, .w = w, .dy = dy, .p = p,
                          .K = dx->c * p->kh * p->kw, .ohw = dy->h * dy->w, .pw = is_pointwise(p) };
    cpu_parallel(j.c->pool, dx->n, conv_bwd_data_task, &j);
    if (j.fail) return FAIL(STATUS_NOMEM, "conv2d_backward_data: col buffer");
    return STATUS_OK;
}

/* each thread sums its samples' filter gradients into its own scratch
 * [O*K private dW | G*ohw*K columns | O*G*ohw gathered dy]; a second pass
 * adds the private sums into dw */
static void conv_bwd_filter_task(void *va, int64_t b, int64_t e, int t)
{
    struct conv_job *j = va;
    const struct tensor *x = j->x, *dy = j->dy;
    int K = j->K, ohw = j->ohw, O = dy->c;
    size_t wn = (size_t)O * K;
    int G = j->pw ? 1 : conv_group(j, e - b);
    float *acc = cpu_scratch(j->c, t, wn + (j->pw ? 0 : (size_t)G * ohw * (K + O)));
    if (!acc) { j->fail = 1; return; }
    float *col = acc + wn, *dyt = col + (size_t)G * ohw * K;
    memset(acc, 0, wn * sizeof(float));
    j->used[t] = 1;
    for (int64_t n0 = b; n0 < e; n0 += G) {
        int g = (int)(e - n0 < G ? e - n0 : G);
        int64_t ld = (int64_t)g * ohw;
        const float *bm, *dym;
        int ldb, lddy;
        if (j->pw) {
            bm = (const float *)x->data + n0 * x->sn; ldb = (int)x->sc;
        } else {
            for (int s = 0; s < g; s++)
                im2col((const float *)x->data + (n0 + s) * x->sn, x->sc, x->c, x->h, x->w, j->p,
                       dy->h, dy->w, col + (size_t)s * ohw, ld);
            bm = col; ldb = (int)ld;
        }
        if (g == 1) { dym = (const float *)dy->data + n0 * dy->sn; lddy = (int)dy->sc; }
        else { gather_rows(dyt, dy, n0, g, ohw); dym = dyt; lddy = (int)ld; }
        cpu_gemm1(0, 1, O, K, (int)ld, 1.0f, dym, lddy, bm,
                    ldb, 1.0f, acc, K);
    }
}

static void conv_reduce_task(void *va, int64_t b, int64_t e, int t)
{
    struct conv_job *j = va;
    float *d = j->dw->data;
    for (int u = 0; u < j->c->threads; u++) {
        if (!j->used[u]) continue;
        const float *a = j->c->scratch[u];
        for (int64_t i = b; i < e; i++) d[i] += a[i];
    }
}

status cpu_conv2d_backward_filter(struct backend *be, struct tensor *dw, const struct tensor *dy,
                                  const struct tensor *x, const struct conv_params *p)
{
    TRY(conv_check(dy, x, dw, p, "conv2d_backward_filter"));
    struct conv_job j = { .c = ctx_of(be), .x = x, .dw = dw, .dy = dy, .p = p,
                          .K = x->c * p->kh * p->kw, .ohw = dy->h * dy->w, .pw = is_pointwise(p) };
    cpu_parallel(j.c->pool, x->n, conv_bwd_filter_task, &j);
    if (j.fail) return FAIL(STATUS_NOMEM, "conv2d_backward_filter: scratch");
    cpu_parallel(j.c->pool, (int64_t)dy->c * j.K, conv_reduce_task, &j);
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* batch norm: one channel (train, backward) or one plane (inference) per item */

struct bn_job {
    struct tensor *y, *dx;
    const struct tensor *x, *dy;
    const float *gamma, *beta, *rmean, *rvar, *smean, *sinv;
    float *save_mean, *save_invstd, *run_mean, *run_var, *dgamma, *dbeta;
    const struct bn_params *p;
};

static void bn_train_task(void *va, int64_t cb, int64_t ce, int t)
{
    struct bn_job *j = va;
    const struct tensor *x = j->x;
    struct tensor *y = j->y;
    int hw = x->h * x->w, N = x->n;
    double cnt = (double)N * hw;
    for (int64_t c = cb; c < ce; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < N; n++) {
            const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
            for (int i = 0; i < hw; i++) s += xp[i];
        }
        double mean = s / cnt;
        for (int n = 0; n < N; n++) {
            const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
            for (int i = 0; i < hw; i++) { double d = xp[i] - mean; ss += d * d; }
        }
        double var = ss / cnt;
        float invstd = (float)(1.0 / sqrt(var + j->p->eps));
        j->save_mean[c] = (float)mean;
        j->save_invstd[c] = invstd;
        float g = j->gamma ? j->gamma[c] : 1.0f, bb = j->beta ? j->beta[c] : 0.0f;
        float a = g * invstd, b = bb - (float)mean * a;
        for (int n = 0; n < N; n++) {
            const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
            float *yp = (float *)y->data + n * y->sn + c * y->sc;
            for (int i = 0; i < hw; i++) yp[i] = xp[i] * a + b;
        }
        if (j->run_mean) {
            float m = j->p->momentum;
            double unb = cnt > 1 ? ss / (cnt - 1) : var;
            j->run_mean[c] = (1 - m) * j->run_mean[c] + m * (float)mean;
            j->run_var[c] = (1 - m) * j->run_var[c] + m * (float)unb;
        }
    }
}

status cpu_bn_train_forward(struct backend *be, struct tensor *y, float *save_mean,
                            float *save_invstd, const struct tensor *x, const float *gamma,
                            const float *beta, float *running_mean, float *running_var,
                            const struct bn_params *p)
{
    CHECK_ROWS(y, "bn_train_forward"); CHECK_ROWS(x, "bn_train_forward");
    struct bn_job j = { .y = y, .x = x, .gamma = gamma, .beta = beta, .save_mean = save_mean,
                        .save_invstd = save_invstd, .run_mean = running_mean,
                        .run_var = running_var, .p = p };
    cpu_parallel(ctx_of(be)->pool, x->c, bn_train_task, &j);
    return STATUS_OK;
}

static void bn_infer_task(void *va, int64_t qb, int64_t qe, int t)
{
    struct bn_job *j = va;
    const struct tensor *x = j->x;
    struct tensor *y = j->y;
    int hw = x->h * x->w;
    for (int64_t q = qb; q < qe; q++) {
        int n = (int)(q / x->c), c = (int)(q % x->c);
        float g = j->gamma ? j->gamma[c] : 1.0f, bb = j->beta ? j->beta[c] : 0.0f;
        float a = g / sqrtf(j->rvar[c] + j->p->eps), b = bb - j->rmean[c] * a;
        const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
        float *yp = (float *)y->data + n * y->sn + c * y->sc;
        for (int i = 0; i < hw; i++) yp[i] = xp[i] * a + b;
    }
}

status cpu_bn_infer_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                            const float *gamma, const float *beta, const float *running_mean,
                            const float *running_var, const struct bn_params *p)
{
    CHECK_ROWS(y, "bn_infer_forward"); CHECK_ROWS(x, "bn_infer_forward");
    struct bn_job j = { .y = y, .x = x, .gamma = gamma, .beta = beta, .rmean = running_mean,
                        .rvar = running_var, .p = p };
    cpu_parallel(ctx_of(be)->pool, (int64_t)x->n * x->c, bn_infer_task, &j);
    return STATUS_OK;
}

static void bn_bwd_task(void *va, int64_t cb, int64_t ce, int t)
{
    struct bn_job *j = va;
    const struct tensor *x = j->x, *dy = j->dy;
    struct tensor *dx = j->dx;
    int hw = x->h * x->w, N = x->n;
    double cnt = (double)N * hw;
    for (int64_t c = cb; c < ce; c++) {
        float mean = j->smean[c], inv = j->sinv[c];
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < N; n++) {
            const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
            const float *gp = (const float *)dy->data + n * dy->sn + c * dy->sc;
            for (int i = 0; i < hw; i++) { sdy += gp[i]; sdyx += gp[i] * (xp[i] - mean); }
        }
        float g = j->gamma ? j->gamma[c] : 1.0f;
        if (j->dbeta) j->dbeta[c] += (float)sdy;
        if (j->dgamma) j->dgamma[c] += (float)(sdyx * inv);
        if (!dx) continue;
        /* dx = g*inv * (dy - mean(dy) - xhat * mean(dy*xhat)) */
        float k = g * inv;
        float mdy = (float)(sdy / cnt), mdyx = (float)(sdyx * inv * inv / cnt);
        for (int n = 0; n < N; n++) {
            const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
            const float *gp = (const float *)dy->data + n * dy->sn + c * dy->sc;
            float *dp = (float *)dx->data + n * dx->sn + c * dx->sc;
            for (int i = 0; i < hw; i++) dp[i] += k * (gp[i] - mdy - (xp[i] - mean) * mdyx);
        }
    }
}

status cpu_bn_backward(struct backend *be, struct tensor *dx, float *dgamma, float *dbeta,
                       const struct tensor *dy, const struct tensor *x, const float *gamma,
                       const float *save_mean, const float *save_invstd, const struct bn_params *p)
{
    if (dx) CHECK_ROWS(dx, "bn_backward");
    CHECK_ROWS(dy, "bn_backward"); CHECK_ROWS(x, "bn_backward");
    struct bn_job j = { .dx = dx, .dy = dy, .x = x, .gamma = gamma, .smean = save_mean,
                        .sinv = save_invstd, .dgamma = dgamma, .dbeta = dbeta, .p = p };
    cpu_parallel(ctx_of(be)->pool, x->c, bn_bwd_task, &j);
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* pooling: one (sample, channel) plane per item */

struct pool_job {
    const struct tensor *x, *dy;
    struct tensor *y, *dx;
    const struct pool_params *p;
};

static int is_max2x2(const struct pool_params *p)
{
    return p->kind == POOL_MAX && p->kh == 2 && p->kw == 2 && p->stride_h == 2 && p->stride_w == 2 &&
           p->pad_h == 0 && p->pad_w == 0;
}

static void pool_fwd_task(void *va, int64_t qb, int64_t qe, int t)
{
    struct pool_job *j = va;
    const struct tensor *x = j->x;
    struct tensor *y = j->y;
    const struct pool_params *p = j->p;
    int H = x->h, W = x->w, OH = y->h, OW = y->w;
    for (int64_t q = qb; q < qe; q++) {
        int n = (int)(q / x->c), c = (int)(q % x->c);
        const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
        float *yp = (float *)y->data + n * y->sn + c * y->sc;
        if (is_max2x2(p)) {
            for (int oy = 0; oy < OH; oy++) {
                const float *r0 = xp + 2 * oy * W, *r1 = r0 + W;
                for (int ox = 0; ox < OW; ox++) {
                    float a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
                    float b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
                    yp[oy * OW + ox] = a > b ? a : b;
                }
            }
            continue;
        }
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
                int ys = y0 < 0 ? 0 : y0, ye = y0 + p->kh < H ? y0 + p->kh : H;
                int xs = x0 < 0 ? 0 : x0, xe = x0 + p->kw < W ? x0 + p->kw : W;
                float r;
                if (p->kind == POOL_MAX) {
                    r = -FLT_MAX;
                    for (int iy = ys; iy < ye; iy++)
                        for (int ix = xs; ix < xe; ix++) r = xp[iy * W + ix] > r ? xp[iy * W + ix] : r;
                } else {
                    float s = 0;
                    for (int iy = ys; iy < ye; iy++)
                        for (int ix = xs; ix < xe; ix++) s += xp[iy * W + ix];
                    int div = p->count_include_pad ? p->kh * p->kw : (ye - ys) * (xe - xs);
                    r = s / (float)div;
                }
                yp[oy * OW + ox] = r;
            }
    }
}

status cpu_pool_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                        const struct pool_params *p)
{
    CHECK_ROWS(y, "pool_forward"); CHECK_ROWS(x, "pool_forward");
    if (y->h != conv_out(x->h, p->kh, p->stride_h, p->pad_h) ||
        y->w != conv_out(x->w, p->kw, p->stride_w, p->pad_w) || y->c != x->c || y->n != x->n)
        return FAIL(STATUS_FORMAT, "pool_forward: output %dx%dx%d does not fit input %dx%dx%d",
                    y->c, y->h, y->w, x->c, x->h, x->w);
    struct pool_job j = { .x = x, .y = y, .p = p };
    cpu_parallel(ctx_of(be)->pool, (int64_t)x->n * x->c, pool_fwd_task, &j);
    return STATUS_OK;
}

static void pool_bwd_task(void *va, int64_t qb, int64_t qe, int t)
{
    struct pool_job *j = va;
    const struct tensor *x = j->x, *dy = j->dy;
    struct tensor *dx = j->dx;
    const struct pool_params *p = j->p;
    int H = x->h, W = x->w, OH = dy->h, OW = dy->w;
    for (int64_t q = qb; q < qe; q++) {
        int n = (int)(q / x->c), c = (int)(q % x->c);
        const float *xp = (const float *)x->data + n * x->sn + c * x->sc;
        const float *gp = (const float *)dy->data + n * dy->sn + c * dy->sc;
        float *dp = (float *)dx->data + n * dx->sn + c * dx->sc;
        if (is_max2x2(p)) {
            /* first maximum in row-major window order, as the general path */
            for (int oy = 0; oy < OH; oy++) {
                const float *r0 = xp + 2 * oy * W, *r1 = r0 + W;
                float *d0 = dp + 2 * oy * W, *d1 = d0 + W;
                for (int ox = 0; ox < OW; ox++) {
                    int k = 2 * ox;
                    float m = r0[k];
                    float *at = d0 + k;
                    if (r0[k + 1] > m) { m = r0[k + 1]; at = d0 + k + 1; }
                    if (r1[k] > m) { m = r1[k]; at = d1 + k; }
                    if (r1[k + 1] > m) { at = d1 + k + 1; }
                    *at += gp[oy * OW + ox];
                }
            }
            continue;
        }
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
                int ys = y0 < 0 ? 0 : y0, ye = y0 + p->kh < H ? y0 + p->kh : H;
                int xs = x0 < 0 ? 0 : x0, xe = x0 + p->kw < W ? x0 + p->kw : W;
                float g = gp[oy * OW + ox];
                if (p->kind == POOL_MAX) {
                    float r = -FLT_MAX;
                    int at = -1;
                    for (int iy = ys; iy < ye; iy++)
                        for (int ix = xs; ix < xe; ix++)
                            if (xp[iy * W + ix] > r) { r = xp[iy * W + ix]; at = iy * W + ix; }
                    if (at >= 0) dp[at] += g;
                } else {
                    int div = p->count_include_pad ? p->kh * p->kw : (ye - ys) * (xe - xs);
                    float v = g / (float)div;
                    for (int iy = ys; iy < ye; iy++)
                        for (int ix = xs; ix < xe; ix++) dp[iy * W + ix] += v;
                }
            }
    }
}

status cpu_pool_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                         const struct tensor *x, const struct tensor *y, const struct pool_params *p)
{
    CHECK_ROWS(dx, "pool_backward"); CHECK_ROWS(dy, "pool_backward"); CHECK_ROWS(x, "pool_backward");
    struct pool_job j = { .x = x, .dy = dy, .dx = dx, .p = p };
    cpu_parallel(ctx_of(be)->pool, (int64_t)x->n * x->c, pool_bwd_task, &j);
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* fully connected: x [N, in] with rows sn apart (each row's C,H,W dense) */

static status fc_check(const struct tensor *x, int in, const char *what)
{
    if ((int64_t)x->c * x->h * x->w != in)
        return FAIL(STATUS_FORMAT, "cpu %s: input has %d features, layer expects %d", what,
                    x->c * x->h * x->w, in);
    if (!(x->c == 1 || x->sc == (int64_t)x->h * x->w) || !cpu_row_dense(x))
        return FAIL(STATUS_UNSUPPORTED, "cpu %s: input sample not dense", what);
    return STATUS_OK;
}

status cpu_fc_forward(struct backend *be, struct tensor *y, const struct tensor *x, const float *w,
                      const float *b, int in, int out)
{
    TRY(fc_check(x, in, "fc_forward"));
    TRY(fc_check(y, out, "fc_forward"));
    struct cpu_ctx *c = ctx_of(be);
    float *yd = y->data;
    if (b) {
        for (int n = 0; n < x->n; n++) memcpy(yd + n * y->sn, b, sizeof(float) * out);
    }
    cpu_sgemm(c, 0, 1, x->n, out, in, 1.0f, x->data, (int)x->sn, w, in, b ? 1.0f : 0.0f, yd,
              (int)y->sn);
    return STATUS_OK;
}

status cpu_fc_backward(struct backend *be, struct tensor *dx, float *dw, float *db,
                       const struct tensor *dy, const struct tensor *x, const float *w, int in,
                       int out)
{
    TRY(fc_check(x, in, "fc_backward"));
    TRY(fc_check(dy, out, "fc_backward"));
    struct cpu_ctx *c = ctx_of(be);
    int N = x->n;
    const float *g = dy->data;
    if (dx) {
        TRY(fc_check(dx, in, "fc_backward"));
        cpu_sgemm(c, 0, 0, N, in, out, 1.0f, g, (int)dy->sn, w, in, 1.0f, dx->data, (int)dx->sn);
    }
    if (dw) cpu_sgemm(c, 1, 0, out, in, N, 1.0f, g, (int)dy->sn, x->data, (int)x->sn, 1.0f, dw, in);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *gr = g + n * dy->sn;
            for (int o = 0; o < out; o++) db[o] += gr[o];
        }
    }
    return STATUS_OK;
}
