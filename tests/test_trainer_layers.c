/*
 * test_trainer_layers.c — finite-difference gradient checks for every CPU
 * backend layer, on small shapes.
 *
 * Method: the scalar L = sum(r * y) with a fixed random r, so dL/dy = r is
 * the upstream gradient given to the backward op; each input or parameter
 * element is moved by +-h and (L+ - L-)/2h is compared with the analytic
 * gradient.  L is accumulated in double.  Inputs are drawn away from kinks
 * (ReLU at 0, ties in max pooling) so the float finite difference is
 * meaningful.  Tolerance: |analytic - numeric| <= 2e-3 * max(1, |analytic|)
 * for linear layers (h = 1e-2, only rounding error) and 1e-2 for the
 * nonlinear ones (BN, softmax; h = 1e-3).  Every check prints its largest
 * error.  Convolution is also checked on channel-slice views (the concat
 * case) and against a direct reference loop.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/rng.h"
#include "tests/check_util.h"
#include "trainer/backend.h"

static struct backend *be;

static void setup(void) { cr_assert_eq(backend_new_cpu(&be, 2), STATUS_OK, "%s", status_msg()); }
static void teardown(void) { backend_free(&be); }

static float *randv(size_t n, uint64_t stream, float lo, float hi)
{
    float *v = calloc(n + 1, sizeof(float));
    struct rng r;
    rng_init(&r, 42, stream);
    for (size_t i = 0; i < n; i++) v[i] = rng_range(&r, lo, hi);
    return v;
}

/* values in [-1,1] with |v| >= 0.1 and pairwise-distinct grid (no ties/kinks) */
static float *kinkfree(size_t n, uint64_t stream)
{
    float *v = calloc(n + 1, sizeof(float));
    struct rng r;
    rng_init(&r, 7, stream);
    for (size_t i = 0; i < n; i++) v[i] = (float)(i % 2 ? 1 : -1) * (0.1f + 0.9f * (float)((i * 7919) % n) / (float)n);
    for (size_t i = n - 1; i > 0; i--) { size_t j = rng_below(&r, (uint32_t)(i + 1)); float t = v[i]; v[i] = v[j]; v[j] = t; }
    return v;
}

static double dotr(const struct tensor *y, const float *r)
{
    double s = 0;
    int64_t k = 0;
    for (int n = 0; n < y->n; n++)
        for (int c = 0; c < y->c; c++)
            for (int h = 0; h < y->h; h++)
                for (int w = 0; w < y->w; w++)
                    s += (double)((float *)y->data)[n * y->sn + c * y->sc + h * y->sh + w * y->sw] * r[k++];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* Compare grad[i] with central differences of fn over v[i] (all i); returns max error. */
static double fd_check(const char *what, float *v, const float *grad, size_t n, float h, loss_fn fn,
                       void *ctx, double tol)
{
    /* |numeric - analytic| / max(1, |analytic|): the analytic side is "want" */
    struct check_acc a = check_begin(1.0);
    for (size_t i = 0; i < n; i++) {
        float keep = v[i];
        v[i] = keep + h; double lp = fn(ctx);
        v[i] = keep - h; double lm = fn(ctx);
        v[i] = keep;
        check_add(&a, (lp - lm) / (2.0 * h), grad[i]);
    }
    return check_expect(&a, what, CHECK_REL, tol);
}

/* ---------------------------------------------------------------------- */
/* convolution */

struct conv_case {
    struct tensor x, y, w;
    struct conv_params p;
    float *r;
};

static double conv_loss(void *vc)
{
    struct conv_case *c = vc;
    cr_assert_eq(be->ops->conv2d_forward(be, &c->y, &c->x, &c->w, &c->p), STATUS_OK, "%s", status_msg());
    return dotr(&c->y, c->r);
}

/* direct reference convolution on one output element */
static double conv_ref(const struct conv_case *c, int n, int o, int oy, int ox)
{
    double s = 0;
    for (int ci = 0; ci < c->x.c; ci++)
        for (int i = 0; i < c->p.kh; i++)
            for (int j = 0; j < c->p.kw; j++) {
                int iy = oy * c->p.stride_h - c->p.pad_h + i, ix = ox * c->p.stride_w - c->p.pad_w + j;
                if (iy < 0 || iy >= c->x.h || ix < 0 || ix >= c->x.w) continue;
                s += (double)((float *)c->x.data)[n * c->x.sn + ci * c->x.sc + iy * c->x.sh + ix] *
                     ((float *)c->w.data)[((o * c->x.c + ci) * c->p.kh + i) * c->p.kw + j];
            }
    return s;
}

static void conv_run(const char *name, int N, int C, int H, int W, int O, int kh, int kw, int s,
                     int pad, int xslice, int yslice)
{
    struct conv_case c = { .p = { kh, kw, s, s, pad, pad } };
    int OH = (H + 2 * pad - kh) / s + 1, OW = (W + 2 * pad - kw) / s + 1;
    /* x (and y) may be channel slices of wider tensors: channels [1, 1+C) of C+xslice */
    int XC = C + xslice, YC = O + yslice;
    float *xb = randv((size_t)N * XC * H * W, 1, -1, 1), *wb = randv((size_t)O * C * kh * kw, 2, -0.5f, 0.5f);
    float *yb = calloc((size_t)N * YC * OH * OW, 4), *r = randv((size_t)N * O * OH * OW, 3, -1, 1);
    float *dxb = calloc((size_t)N * XC * H * W, 4), *dw = calloc((size_t)O * C * kh * kw, 4);
    struct tensor X = tensor_make(xb, DT_F32, LAYOUT_NCHW, N, XC, H, W);
    struct tensor Y = tensor_make(yb, DT_F32, LAYOUT_NCHW, N, YC, OH, OW);
    c.x = xslice ? tensor_channels(X, 1, C) : X;
    c.y = yslice ? tensor_channels(Y, yslice, O) : Y;
    c.w = tensor_make(wb, DT_F32, LAYOUT_NCHW, O, C, kh, kw);
    c.r = r;
    conv_loss(&c);
    struct check_acc fa = check_begin(1.0);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++)
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++)
                    check_add(&fa, yb[n * Y.sn + (o + yslice) * Y.sc + oy * OW + ox], conv_ref(&c, n, o, oy, ox));
    char fwd[96];
    snprintf(fwd, sizeof fwd, "%s forward vs direct loop", name);
    check_expect(&fa, fwd, CHECK_ABS, 1e-4);
    /* padding channels of a sliced output are untouched */
    if (yslice) for (int i = 0; i < OH * OW; i++) cr_expect_eq(yb[i], 0.0f);

    struct tensor dY = tensor_make(r, DT_F32, LAYOUT_NCHW, N, O, OH, OW);
    struct tensor DX = tensor_make(dxb, DT_F32, LAYOUT_NCHW, N, XC, H, W);
    struct tensor dX = xslice ? tensor_channels(DX, 1, C) : DX;
    struct tensor dW = tensor_make(dw, DT_F32, LAYOUT_NCHW, O, C, kh, kw);
    cr_assert_eq(be->ops->conv2d_backward_data(be, &dX, &dY, &c.w, &c.p), STATUS_OK, "%s", status_msg());
    cr_assert_eq(be->ops->conv2d_backward_filter(be, &dW, &dY, &c.x, &c.p), STATUS_OK, "%s", status_msg());
    char what[96];
    snprintf(what, sizeof what, "%s dx", name);
    /* dx lives in the slice; check every element of the wide buffer (outside = 0) */
    fd_check(what, xb, dxb, (size_t)N * XC * H * W, 1e-2f, conv_loss, &c, 2e-3);
    snprintf(what, sizeof what, "%s dw", name);
    fd_check(what, wb, dw, (size_t)O * C * kh * kw, 1e-2f, conv_loss, &c, 2e-3);
    free(xb); free(wb); free(yb); free(r); free(dxb); free(dw);
}

Test(layers, conv_5x5_same, .init = setup, .fini = teardown) { conv_run("conv 5x5 s1 p2", 2, 2, 6, 7, 3, 5, 5, 1, 2, 0, 0); }
Test(layers, conv_3x3_stride2_pad1, .init = setup, .fini = teardown) { conv_run("conv 3x3 s2 p1", 2, 3, 7, 6, 4, 3, 3, 2, 1, 0, 0); }
Test(layers, conv_valid_slices, .init = setup, .fini = teardown) { conv_run("conv 3x3 valid, slice views", 3, 2, 6, 6, 3, 3, 3, 1, 0, 2, 2); }
Test(layers, conv_1x1_slices, .init = setup, .fini = teardown) { conv_run("conv 1x1, slice views", 2, 3, 4, 5, 4, 1, 1, 1, 0, 2, 3); }

Test(layers, conv_1x7_asymmetric, .init = setup, .fini = teardown)
{
    /* Inception's 1x7 / 7x1 kernels with asymmetric padding */
    struct conv_case c = { .p = { 1, 7, 1, 1, 0, 3 } };
    int N = 2, C = 2, H = 5, W = 8, O = 3;
    float *xb = randv(N * C * H * W, 11, -1, 1), *wb = randv(O * C * 7, 12, -0.5f, 0.5f);
    float *yb = calloc(N * O * H * W, 4), *r = randv(N * O * H * W, 13, -1, 1);
    float *dxb = calloc(N * C * H * W, 4), *dw = calloc(O * C * 7, 4);
    c.x = tensor_make(xb, DT_F32, LAYOUT_NCHW, N, C, H, W);
    c.y = tensor_make(yb, DT_F32, LAYOUT_NCHW, N, O, H, W);
    c.w = tensor_make(wb, DT_F32, LAYOUT_NCHW, O, C, 1, 7);
    c.r = r;
    struct tensor dY = tensor_make(r, DT_F32, LAYOUT_NCHW, N, O, H, W);
    struct tensor dX = tensor_make(dxb, DT_F32, LAYOUT_NCHW, N, C, H, W);
    struct tensor dW = tensor_make(dw, DT_F32, LAYOUT_NCHW, O, C, 1, 7);
    cr_assert_eq(be->ops->conv2d_backward_data(be, &dX, &dY, &c.w, &c.p), STATUS_OK);
    cr_assert_eq(be->ops->conv2d_backward_filter(be, &dW, &dY, &c.x, &c.p), STATUS_OK);
    fd_check("conv 1x7 pad (0,3) dx", xb, dxb, N * C * H * W, 1e-2f, conv_loss, &c, 2e-3);
    fd_check("conv 1x7 pad (0,3) dw", wb, dw, O * C * 7, 1e-2f, conv_loss, &c, 2e-3);
    free(xb); free(wb); free(yb); free(r); free(dxb); free(dw);
}

/* ---------------------------------------------------------------------- */
/* generic one-input layers: y = f(x [, params]) */

struct unary_case {
    struct tensor x, y;
    float *r;
    int kind;                     /* 0 bias, 1 bn, 2 pool, 3 relu, 4 fc, 5 dropout */
    float *p1, *p2, *rm, *rv, *sm, *si;
    struct pool_params pp;
    struct bn_params bp;
    int in, out;
    uint8_t *mask;
};

static double unary_loss(void *vc)
{
    struct unary_case *c = vc;
    status st = STATUS_OK;
    switch (c->kind) {
    case 0:
        memcpy(c->y.data, c->x.data, tensor_numel(&c->x) * 4);
        st = be->ops->bias_add_forward(be, &c->y, c->p1);
        break;
    case 1: st = be->ops->batchnorm_train_forward(be, &c->y, c->sm, c->si, &c->x, c->p1, c->p2, c->rm, c->rv, &c->bp); break;
    case 2: st = be->ops->pool_forward(be, &c->y, &c->x, &c->pp); break;
    case 3: st = be->ops->relu_forward(be, &c->y, &c->x); break;
    case 4: st = be->ops->fc_forward(be, &c->y, &c->x, c->p1, c->p2, c->in, c->out); break;
    case 5: st = be->ops->dropout_forward(be, &c->y, c->mask, &c->x, 0.7f, 1234, 77); break;
    }
    cr_assert_eq(st, STATUS_OK, "%s", status_msg());
    return dotr(&c->y, c->r);
}

static void pool_run(const char *name, enum pool_kind kind, int k, int s, int pad, int cip)
{
    int N = 2, C = 3, H = 7, W = 6, OH = (H + 2 * pad - k) / s + 1, OW = (W + 2 * pad - k) / s + 1;
    struct unary_case c = { .kind = 2, .pp = { kind, k, k, s, s, pad, pad, cip } };
    float *x = kinkfree(N * C * H * W, 21), *y = calloc(N * C * OH * OW, 4), *dx = calloc(N * C * H * W, 4);
    c.r = randv(N * C * OH * OW, 22, -1, 1);
    c.x = tensor_make(x, DT_F32, LAYOUT_NCHW, N, C, H, W);
    c.y = tensor_make(y, DT_F32, LAYOUT_NCHW, N, C, OH, OW);
    unary_loss(&c);
    struct tensor dX = tensor_make(dx, DT_F32, LAYOUT_NCHW, N, C, H, W);
    struct tensor dY = tensor_make(c.r, DT_F32, LAYOUT_NCHW, N, C, OH, OW);
    cr_assert_eq(be->ops->pool_backward(be, &dX, &dY, &c.x, &c.y, &c.pp), STATUS_OK);
    fd_check(name, x, dx, N * C * H * W, kind == POOL_MAX ? 1e-3f : 1e-2f, unary_loss, &c, 2e-3);
    free(x); free(y); free(dx); free(c.r);
}

Test(layers, maxpool_3x3_s2, .init = setup, .fini = teardown) { pool_run("max pool 3x3 s2", POOL_MAX, 3, 2, 0, 0); }
Test(layers, maxpool_3x3_pad, .init = setup, .fini = teardown) { pool_run("max pool 3x3 s1 pad 1", POOL_MAX, 3, 1, 1, 0); }
Test(layers, maxpool_2x2_s2, .init = setup, .fini = teardown) { pool_run("max pool 2x2 s2 (odd input)", POOL_MAX, 2, 2, 0, 0); }
Test(layers, avgpool_include_pad, .init = setup, .fini = teardown) { pool_run("avg pool 3x3 s1 p1 count_include_pad", POOL_AVG, 3, 1, 1, 1); }
Test(layers, avgpool_exclude_pad, .init = setup, .fini = teardown) { pool_run("avg pool 3x3 s1 p1 exclude pad", POOL_AVG, 3, 1, 1, 0); }

Test(layers, avgpool_values, .init = setup, .fini = teardown)
{
    /* corner of a 3x3/1/1 average of ones: 4/9 with padding counted, 1 without */
    float x[16], y[16];
    for (int i = 0; i < 16; i++) x[i] = 1;
    struct tensor X = tensor_make(x, DT_F32, LAYOUT_NCHW, 1, 1, 4, 4), Y = tensor_make(y, DT_F32, LAYOUT_NCHW, 1, 1, 4, 4);
    struct pool_params p = { POOL_AVG, 3, 3, 1, 1, 1, 1, 1 };
    cr_assert_eq(be->ops->pool_forward(be, &Y, &X, &p), STATUS_OK);
    cr_expect_float_eq(y[0], 4.0f / 9, 1e-6);
    cr_expect_float_eq(y[1], 6.0f / 9, 1e-6);
    p.count_include_pad = 0;
    cr_assert_eq(be->ops->pool_forward(be, &Y, &X, &p), STATUS_OK);
    cr_expect_float_eq(y[0], 1.0f, 1e-6);
}

Test(layers, relu, .init = setup, .fini = teardown)
{
    int N = 2, C = 3, H = 4, W = 5, n = N * C * H * W;
    struct unary_case c = { .kind = 3 };
    float *x = kinkfree(n, 31), *y = calloc(n, 4), *dx = calloc(n, 4);
    c.r = randv(n, 32, -1, 1);
    c.x = tensor_make(x, DT_F32, LAYOUT_NCHW, N, C, H, W);
    c.y = tensor_make(y, DT_F32, LAYOUT_NCHW, N, C, H, W);
    unary_loss(&c);
    struct tensor dX = tensor_make(dx, DT_F32, LAYOUT_NCHW, N, C, H, W), dY = tensor_make(c.r, DT_F32, LAYOUT_NCHW, N, C, H, W);
    cr_assert_eq(be->ops->relu_backward(be, &dX, &dY, &c.y), STATUS_OK);
    fd_check("relu dx", x, dx, n, 1e-2f, unary_loss, &c, 2e-3);
    free(x); free(y); free(dx); free(c.r);
}

Test(layers, bias_add, .init = setup, .fini = teardown)
{
    int N = 2, C = 3, H = 4, W = 5, n = N * C * H * W;
    struct unary_case c = { .kind = 0 };
    float *x = randv(n, 41, -1, 1), *y = calloc(n, 4), *b = randv(C, 42, -1, 1), *db = calloc(C, 4);
    c.r = randv(n, 43, -1, 1); c.p1 = b;
    c.x = tensor_make(x, DT_F32, LAYOUT_NCHW, N, C, H, W);
    c.y = tensor_make(y, DT_F32, LAYOUT_NCHW, N, C, H, W);
    struct tensor dY = tensor_make(c.r, DT_F32, LAYOUT_NCHW, N, C, H, W);
    cr_assert_eq(be->ops->bias_add_backward(be, db, &dY), STATUS_OK);
    fd_check("bias_add db", b, db, C, 1e-2f, unary_loss, &c, 2e-3);
    free(x); free(y); free(b); free(db); free(c.r);
}

Test(layers, batchnorm_train, .init = setup, .fini = teardown)
{
    int N = 3, C = 2, H = 3, W = 4, n = N * C * H * W;
    struct unary_case c = { .kind = 1, .bp = { 1e-3f, 0.1f } };
    float *x = randv(n, 51, -2, 2), *y = calloc(n, 4), *dx = calloc(n, 4);
    float *gm = randv(C, 52, 0.5f, 1.5f), *bt = randv(C, 53, -1, 1), *dg = calloc(C, 4), *db = calloc(C, 4);
    float rm[2] = { 0, 0 }, rv[2] = { 1, 1 }, sm[2], si[2];
    c.r = randv(n, 54, -1, 1); c.p1 = gm; c.p2 = bt; c.rm = rm; c.rv = rv; c.sm = sm; c.si = si;
    c.x = tensor_make(x, DT_F32, LAYOUT_NCHW, N, C, H, W);
    c.y = tensor_make(y, DT_F32, LAYOUT_NCHW, N, C, H, W);
    unary_loss(&c);
    /* running stats after one update with momentum 0.1 from (0, 1): 0.1*mean, 0.9 + 0.1*unbiased var */
    double mean0 = 0, var0 = 0;
    for (int k = 0; k < N; k++) for (int i = 0; i < H * W; i++) mean0 += x[k * C * H * W + i];
    mean0 /= N * H * W;
    for (int k = 0; k < N; k++) for (int i = 0; i < H * W; i++) var0 += pow(x[k * C * H * W + i] - mean0, 2);
    cr_expect_float_eq(rm[0], (float)(0.1 * mean0), 1e-5);
    cr_expect_float_eq(rv[0], (float)(0.9 + 0.1 * var0 / (N * H * W - 1)), 1e-5);
    struct tensor dX = tensor_make(dx, DT_F32, LAYOUT_NCHW, N, C, H, W), dY = tensor_make(c.r, DT_F32, LAYOUT_NCHW, N, C, H, W);
    cr_assert_eq(be->ops->batchnorm_backward(be, &dX, dg, db, &dY, &c.x, gm, sm, si, &c.bp), STATUS_OK);
    fd_check("batchnorm train dx", x, dx, n, 1e-3f, unary_loss, &c, 1e-2);
    fd_check("batchnorm train dgamma", gm, dg, C, 1e-3f, unary_loss, &c, 1e-2);
    fd_check("batchnorm train dbeta", bt, db, C, 1e-3f, unary_loss, &c, 1e-2);
    free(x); free(y); free(dx); free(gm); free(bt); free(dg); free(db); free(c.r);
}

Test(layers, fully_connected, .init = setup, .fini = teardown)
{
    int N = 4, C = 3, H = 2, W = 2, in = C * H * W, out = 5;
    struct unary_case c = { .kind = 4, .in = in, .out = out };
    float *x = randv(N * in, 61, -1, 1), *y = calloc(N * out, 4), *dx = calloc(N * in, 4);
    float *w = randv(out * in, 62, -0.5f, 0.5f), *b = randv(out, 63, -1, 1), *dw = calloc(out * in, 4), *db = calloc(out, 4);
    c.r = randv(N * out, 64, -1, 1); c.p1 = w; c.p2 = b;
    c.x = tensor_make(x, DT_F32, LAYOUT_NCHW, N, C, H, W);
    c.y = tensor_make(y, DT_F32, LAYOUT_NCHW, N, out, 1, 1);
    struct tensor dX = tensor_make(dx, DT_F32, LAYOUT_NCHW, N, C, H, W), dY = tensor_make(c.r, DT_F32, LAYOUT_NCHW, N, out, 1, 1);
    cr_assert_eq(be->ops->fc_backward(be, &dX, dw, db, &dY, &c.x, w, in, out), STATUS_OK);
    fd_check("fc dx", x, dx, N * in, 1e-2f, unary_loss, &c, 2e-3);
    fd_check("fc dw", w, dw, out * in, 1e-2f, unary_loss, &c, 2e-3);
    fd_check("fc db", b, db, out, 1e-2f, unary_loss, &c, 2e-3);
    free(x); free(y); free(dx); free(w); free(b); free(dw); free(db); free(c.r);
}

Test(layers, dropout_fixed_mask, .init = setup, .fini = teardown)
{
    int N = 4, C = 50, n = N * C;
    struct unary_case c = { .kind = 5 };
    float *x = randv(n, 71, -1, 1), *y = calloc(n, 4), *dx = calloc(n, 4);
    c.mask = calloc(n, 1);
    c.r = randv(n, 72, -1, 1);
    c.x = tensor_make(x, DT_F32, LAYOUT_NCHW, N, C, 1, 1);
    c.y = tensor_make(y, DT_F32, LAYOUT_NCHW, N, C, 1, 1);
    unary_loss(&c);
    int kept = 0;
    for (int i = 0; i < n; i++) kept += c.mask[i];
    cr_expect(kept > 0.55 * n && kept < 0.85 * n, "kept %d of %d at keep 0.7", kept, n);
    struct tensor dX = tensor_make(dx, DT_F32, LAYOUT_NCHW, N, C, 1, 1), dY = tensor_make(c.r, DT_F32, LAYOUT_NCHW, N, C, 1, 1);
    cr_assert_eq(be->ops->dropout_backward(be, &dX, &dY, c.mask, 0.7f), STATUS_OK);
    fd_check("dropout dx (fixed mask)", x, dx, n, 1e-2f, unary_loss, &c, 2e-3);

    /* the draw depends on the global element index only: the last two samples
     * with stream offset 77 + 2*C see the same mask as samples 2..3 above */
    uint8_t *m2 = calloc(2 * C, 1);
    struct tensor x2 = tensor_samples(c.x, 2, 2), y2 = tensor_samples(c.y, 2, 2);
    cr_assert_eq(be->ops->dropout_forward(be, &y2, m2, &x2, 0.7f, 1234, 77 + 2 * C), STATUS_OK);
    cr_expect_eq(memcmp(m2, c.mask + 2 * C, 2 * C), 0, "tower-split masks differ");
    free(m2); free(x); free(y); free(dx); free(c.mask); free(c.r);
}

/* ---------------------------------------------------------------------- */
/* softmax cross-entropy with label smoothing */

struct xent_case { struct tensor z; int32_t *lab; };

static double xent_loss(void *vc)
{
    struct xent_case *c = vc;
    float l = 0;
    cr_assert_eq(be->ops->softmax_xent(be, &l, NULL, &c->z, c->lab, 0.1f, 1.0f), STATUS_OK);
    return l;
}

Test(layers, softmax_xent_smoothing, .init = setup, .fini = teardown)
{
    int N = 3, C = 7;
    float *z = randv(N * C, 81, -3, 3), *dz = calloc(N * C, 4);
    int32_t lab[3] = { 0, 4, 6 };
    struct xent_case c = { tensor_make(z, DT_F32, LAYOUT_NCHW, N, C, 1, 1), lab };
    struct tensor dZ = tensor_make(dz, DT_F32, LAYOUT_NCHW, N, C, 1, 1);
    float l = 0;
    cr_assert_eq(be->ops->softmax_xent(be, &l, &dZ, &c.z, lab, 0.1f, 1.0f), STATUS_OK);
    /* reference loss in double */
    double ref = 0;
    for (int n = 0; n < N; n++) {
        double mx = -1e30, se = 0;
        for (int k = 0; k < C; k++) mx = fmax(mx, z[n * C + k]);
        for (int k = 0; k < C; k++) se += exp(z[n * C + k] - mx);
        for (int k = 0; k < C; k++) {
            double t = (k == lab[n] ? 0.9 : 0.0) + 0.1 / C;
            ref -= t * (z[n * C + k] - mx - log(se));
        }
    }
    ref /= N;
    check_scalar("softmax xent loss vs double", l, ref, 1.0, 1e-5);
    fd_check("softmax xent (smoothing 0.1) dlogits", z, dz, N * C, 1e-3f, xent_loss, &c, 1e-2);
    free(z); free(dz);
}

/* ---------------------------------------------------------------------- */
/* optimizer ops against the formulas */

Test(layers, rmsprop_tf_semantics, .init = setup, .fini = teardown)
{
    float w[3] = { 1, -2, 0.5f }, ms[3] = { 1, 1, 1 }, mom[3] = { 0 }, g[3] = { 0.3f, -1, 2 };
    struct rmsprop_params p = { 0.1f, 0.9f, 0.9f, 1.0f, 0.01f, 0.5f };
    double W[3] = { 1, -2, 0.5 }, MS[3] = { 1, 1, 1 }, MOM[3] = { 0 };
    for (int step = 0; step < 3; step++) {
        cr_assert_eq(be->ops->rmsprop_update(be, w, ms, mom, g, 3, &p), STATUS_OK);
        for (int i = 0; i < 3; i++) {
            double gi = 0.5 * g[i] + 0.01 * W[i];
            MS[i] = 0.9 * MS[i] + 0.1 * gi * gi;
            MOM[i] = 0.9 * MOM[i] + 0.1 * gi / sqrt(MS[i] + 1.0);
            W[i] -= MOM[i];
        }
    }
    struct check_acc a = check_begin(1.0);
    for (int i = 0; i < 3; i++) check_add(&a, w[i], W[i]);
    check_expect(&a, "rmsprop x3 vs double", CHECK_ABS, 1e-6);
    float sh[2] = { 1, 2 }, v[2] = { 3, 4 };
    cr_assert_eq(be->ops->ema_update(be, sh, v, 2, 0.75f), STATUS_OK);
    cr_expect_float_eq(sh[0], 1.5f, 1e-6);
    cr_expect_float_eq(sh[1], 2.5f, 1e-6);
}
