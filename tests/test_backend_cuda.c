/*
 * test_backend_cuda.c — the CUDA backend against the CPU backend, op by op.
 *
 * Every op runs on both backends from the same random inputs (strided
 * channel-slice views where the op takes tensors, gradient buffers prefilled
 * so accumulation is checked), and the results are compared by normalised
 * error  max|gpu - cpu| / max|cpu|, printed per op as "largest error".
 * Thresholds are per op: 1e-5 for element-wise work, 1e-4 for reductions and
 * GEMM/convolutions in exact fp32 (DEEPER_TF32=0), 1e-2 with TF32.  Dropout
 * masks must be identical bit for bit (shared Philox draw).
 *
 * Then whole models (NielsenNet, and Inception v3 at 75x75 when it is
 * registered): one training forward/backward on both backends, loss and every
 * parameter's gradient compared; and with two GPUs, NCCL towers 2 x 8 against
 * one GPU x 16 after three updates.
 *
 * Convolutions run twice: with channel-slice views handed to cuDNN as
 * strided descriptors (the default) and through packed copies
 * (DEEPER_CUDNN_STRIDED=0); each prints how many calls took which path.
 * The input test uploads from pinned memory through both staging buffers
 * and overwrites the host buffer as soon as the call returns.
 *
 * Without a GPU (CI) the op tests skip with the reason, and the refusal
 * tests check that asking for CUDA fails cleanly with STATUS_NO_DEVICE.
 * A skip needs a checked reason: cudaGetDeviceCount said cudaErrorNoDevice
 * (or found 0 devices), or cudaErrorInsufficientDriver on a machine with no
 * NVIDIA driver at all (libcuda.so.1 does not load).  Any other CUDA error
 * (a driver too old for the runtime, a broken installation) fails the
 * test with the runtime's error string.  Under DEEPER_REQUIRE_GPU=1 (set by
 * scripts/run-tests --gpu) a missing GPU is a failure, not a skip.
 * In a build without CUDA (NO_CUDA=1) only the refusal test runs.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/rng.h"
#include "trainer/backend.h"
#include "trainer/graph.h"
#include "tests/check_util.h"
#include "trainer/model.h"
#ifdef DEEPER_HAVE_CUDA
#include <cuda_runtime_api.h>
#include "trainer/backend/cuda/backend_cuda.h"
#endif

Test(backend_cuda, refuses_cleanly_without_gpu)
{
    if (backend_cuda_device_count() > 0) {
        struct backend *be = NULL;
        cr_assert_eq(backend_new_cuda(&be, 1000), STATUS_NO_DEVICE, "GPU 1000 should not exist");
        cr_assert_null(be);
        return;
    }
    struct backend *be = (struct backend *)1;
    status st = backend_new_cuda(&be, 0);
    cr_assert_eq(st, STATUS_NO_DEVICE, "backend_new_cuda: %d %s", st, status_msg());
    cr_assert_null(be);
    cr_assert(strlen(status_msg()) > 0);
    printf("refusal message: %s\n", status_msg());
    st = backend_new(&be, "auto", 0, 1);
    cr_assert_eq(st, STATUS_OK, "auto without GPU must give the CPU: %s", status_msg());
    cr_assert_str_eq(be->ops->name, "cpu");
    backend_free(&be);
#ifdef DEEPER_HAVE_CUDA
    st = backend_cuda_create(&be, 0);
    cr_assert_eq(st, STATUS_NO_DEVICE);
    cr_assert(strstr(status_msg(), "no CUDA device") != NULL, "message: %s", status_msg());
#endif
}

/* The probe scripts/run-tests --gpu runs first: under DEEPER_REQUIRE_GPU=1
 * it fails, with the reason on one line, unless a GPU is usable here. */
static int require_gpu(void)
{
    const char *r = getenv("DEEPER_REQUIRE_GPU");
    return r && strcmp(r, "1") == 0;
}

#ifndef DEEPER_HAVE_CUDA
#define NO_CUDA_WHY "built without CUDA (NO_CUDA=1, or nvcc/cuDNN not found at build time)"
Test(backend_cuda, ops_against_cpu)
{
    if (require_gpu()) cr_assert_fail("DEEPER_REQUIRE_GPU=1 but " NO_CUDA_WHY);
    cr_skip(NO_CUDA_WHY);
}

Test(backend_cuda, device_present)
{
    if (require_gpu()) cr_assert_fail("DEEPER_REQUIRE_GPU=1 but " NO_CUDA_WHY);
    cr_skip(NO_CUDA_WHY);
}
#else

static struct backend *cpu, *gpu;

/* The number of GPUs, or a skip for a checked reason (see the header), or
 * a failure.  `want` GPUs are needed; with fewer (but at least one) the
 * test skips saying so. */
static int gpus_or_skip(int want)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    const char *why = NULL;
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        why = "no CUDA device (cudaErrorNoDevice: the driver sees no GPU)";
    } else if (e == cudaErrorInsufficientDriver) {
        void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (drv) {
            dlclose(drv);
            cr_assert_fail("cudaGetDeviceCount: %s (cudaErrorInsufficientDriver with an NVIDIA driver "
                           "installed: the driver is older than this CUDA runtime)", cudaGetErrorString(e));
        }
        why = "no NVIDIA driver (cudaErrorInsufficientDriver and libcuda.so.1 does not load)";
    } else if (e != cudaSuccess) {
        cr_assert_fail("cudaGetDeviceCount failed: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    (void)cudaGetLastError();
    if (why) {
        if (require_gpu()) cr_assert_fail("DEEPER_REQUIRE_GPU=1 but %s", why);
        cr_skip("%s", why);
    }
    if (n < want) cr_skip("needs %d GPUs, %d present", want, n);
    return n;
}

Test(backend_cuda, device_present)
{
    int n = gpus_or_skip(1);
    char d[256];
    for (int i = 0; i < n; i++)
        if (backend_cuda_describe(i, d, sizeof d) == STATUS_OK) printf("GPU %d: %s\n", i, d);
    cr_assert_gt(n, 0);
}

static void need_gpu(int tf32)
{
    gpus_or_skip(1);
    setenv("DEEPER_TF32", tf32 ? "1" : "0", 1);
    cr_assert_eq(backend_new_cpu(&cpu, 2), STATUS_OK, "%s", status_msg());
    cr_assert_eq(backend_new_cuda(&gpu, 0), STATUS_OK, "%s", status_msg());
    char d[256];
    if (backend_cuda_describe(0, d, sizeof d) == STATUS_OK) printf("GPU: %s (TF32 %s)\n", d, tf32 ? "on" : "off");
}

static void done(void)
{
    backend_free(&cpu);
    backend_free(&gpu);
}

/* a buffer on both backends with the same contents */
struct pb { size_t n; float *h, *c, *g; };

static struct pb pb_new(size_t n, float lo, float hi, uint64_t seed)
{
    struct pb b = { n, malloc(n * sizeof(float)), cpu->ops->alloc(cpu, n * 4), gpu->ops->alloc(gpu, n * 4) };
    cr_assert(b.h && b.c && b.g);
    struct rng r;
    rng_init(&r, seed, 77);
    for (size_t i = 0; i < n; i++) b.h[i] = rng_range(&r, lo, hi);
    cr_assert_eq(cpu->ops->copy_h2d(cpu, b.c, b.h, n * 4), STATUS_OK);
    cr_assert_eq(gpu->ops->copy_h2d(gpu, b.g, b.h, n * 4), STATUS_OK, "%s", status_msg());
    return b;
}

static void pb_free(struct pb *b)
{
    free(b->h);
    cpu->ops->free(cpu, b->c);
    gpu->ops->free(gpu, b->g);
}

static double pb_cmp(struct pb *b, const char *what, double tol)
{
    float *gh = malloc(b->n * 4), *ch = malloc(b->n * 4);
    cr_assert_eq(gpu->ops->copy_d2h(gpu, gh, b->g, b->n * 4), STATUS_OK, "%s: %s", what, status_msg());
    cr_assert_eq(cpu->ops->copy_d2h(cpu, ch, b->c, b->n * 4), STATUS_OK);
    /* normalised error max|gpu - cpu| / max|cpu|; NaN or Inf on either side fails */
    struct check_acc a = check_begin(1e-6);
    for (size_t i = 0; i < b->n; i++) check_add(&a, gh[i], ch[i]);
    double err = check_expect(&a, what, CHECK_NORM, tol);
    free(gh);
    free(ch);
    return err;
}

/* channels [c0, c0+c) of an NCHW [n, ctot, h, w] buffer, on one side */
static struct tensor view(float *p, int n, int ctot, int c0, int c, int h, int w)
{
    return tensor_channels(tensor_make(p, DT_F32, LAYOUT_NCHW, n, ctot, h, w), c0, c);
}

#define BOTH(call_c, call_g) do { \
        cr_assert_eq((call_c), STATUS_OK, "cpu: %s", status_msg()); \
        cr_assert_eq((call_g), STATUS_OK, "gpu: %s", status_msg()); \
    } while (0)

static void conv_case(int n, int cin, int cout, int h, int w, struct conv_params p, double tol, const char *name)
{
    int oh = (h + 2 * p.pad_h - p.kh) / p.stride_h + 1, ow = (w + 2 * p.pad_w - p.kw) / p.stride_w + 1;
    int xt = cin + 3, yt = cout + 4;                    /* wider buffers: views are channel slices */
    struct pb x = pb_new((size_t)n * xt * h * w, -1, 1, 1), y = pb_new((size_t)n * yt * oh * ow, -1, 1, 2);
    struct pb wt = pb_new((size_t)cout * cin * p.kh * p.kw, -0.5f, 0.5f, 3);
    struct pb dx = pb_new(x.n, -1, 1, 4), dw = pb_new(wt.n, -1, 1, 5);
    struct tensor xc = view(x.c, n, xt, 2, cin, h, w), xg = view(x.g, n, xt, 2, cin, h, w);
    struct tensor yc = view(y.c, n, yt, 1, cout, oh, ow), yg = view(y.g, n, yt, 1, cout, oh, ow);
    struct tensor wc = tensor_make(wt.c, DT_F32, LAYOUT_NCHW, cout, cin, p.kh, p.kw);
    struct tensor wg = tensor_make(wt.g, DT_F32, LAYOUT_NCHW, cout, cin, p.kh, p.kw);
    struct tensor dxc = view(dx.c, n, xt, 2, cin, h, w), dxg = view(dx.g, n, xt, 2, cin, h, w);
    struct tensor dwc = tensor_make(dw.c, DT_F32, LAYOUT_NCHW, cout, cin, p.kh, p.kw);
    struct tensor dwg = tensor_make(dw.g, DT_F32, LAYOUT_NCHW, cout, cin, p.kh, p.kw);
    char what[64];
    BOTH(cpu->ops->conv2d_forward(cpu, &yc, &xc, &wc, &p), gpu->ops->conv2d_forward(gpu, &yg, &xg, &wg, &p));
    snprintf(what, sizeof what, "conv fwd %s", name); pb_cmp(&y, what, tol);
    /* dy = y (now identical on both sides) */
    BOTH(cpu->ops->conv2d_backward_data(cpu, &dxc, &yc, &wc, &p), gpu->ops->conv2d_backward_data(gpu, &dxg, &yg, &wg, &p));
    snprintf(what, sizeof what, "conv bwd data %s", name); pb_cmp(&dx, what, tol);
    BOTH(cpu->ops->conv2d_backward_filter(cpu, &dwc, &yc, &xc, &p), gpu->ops->conv2d_backward_filter(gpu, &dwg, &yg, &xg, &p));
    snprintf(what, sizeof what, "conv bwd filter %s", name); pb_cmp(&dw, what, tol);
    pb_free(&x); pb_free(&y); pb_free(&wt); pb_free(&dx); pb_free(&dw);
}

static void conv_counts(const char *what)
{
    long long direct, packed;
    int shapes;
    backend_cuda_conv_stats(gpu, &direct, &packed, &shapes);
    printf("%s: %lld convolution calls on the views as given, %lld through packed copies, "
           "%d shapes cuDNN refused as strided views\n", what, direct, packed, shapes);
}

static void conv_cases(const char *tag, double tol)
{
    char name[64];
    snprintf(name, sizeof name, "%s 3x3 s1 p1", tag);
    conv_case(2, 5, 6, 9, 8, (struct conv_params){ 3, 3, 1, 1, 1, 1 }, tol, name);
    snprintf(name, sizeof name, "%s 3x3 s2 p0", tag);
    conv_case(3, 4, 7, 11, 10, (struct conv_params){ 3, 3, 2, 2, 0, 0 }, tol, name);
    snprintf(name, sizeof name, "%s 1x7 p(0,3)", tag);
    conv_case(2, 6, 5, 7, 9, (struct conv_params){ 1, 7, 1, 1, 0, 3 }, tol, name);
    snprintf(name, sizeof name, "%s 1x1", tag);
    conv_case(2, 8, 4, 6, 6, (struct conv_params){ 1, 1, 1, 1, 0, 0 }, tol, name);
}

/* The default: channel-slice views straight into cuDNN as strided
 * descriptors (a shape cuDNN refuses falls back to packed copies; the
 * counts say which happened), each result against the CPU. */
Test(backend_cuda, conv_fp32)
{
    need_gpu(0);
    conv_cases("strided", 1e-4);
    conv_counts("conv_fp32");
    /* dense views (a whole tensor) never need copies */
    long long d0, p0, d1, p1;
    int sh;
    backend_cuda_conv_stats(gpu, &d0, &p0, &sh);
    struct conv_params p = { 3, 3, 1, 1, 1, 1 };
    struct pb x = pb_new(2 * 5 * 9 * 9, -1, 1, 1), y = pb_new(2 * 4 * 9 * 9, 0, 0, 2), w = pb_new(4 * 5 * 9, -1, 1, 3);
    struct tensor xg = view(x.g, 2, 5, 0, 5, 9, 9), yg = view(y.g, 2, 4, 0, 4, 9, 9);
    struct tensor wg = tensor_make(w.g, DT_F32, LAYOUT_NCHW, 4, 5, 3, 3);
    cr_assert_eq(gpu->ops->conv2d_forward(gpu, &yg, &xg, &wg, &p), STATUS_OK, "%s", status_msg());
    backend_cuda_conv_stats(gpu, &d1, &p1, &sh);
    cr_expect(d1 == d0 + 1 && p1 == p0, "a dense convolution went through packed copies");
    pb_free(&x); pb_free(&y); pb_free(&w);
    done();
}

/* DEEPER_CUDNN_STRIDED=0: every channel-slice view packed into dense scratch
 * (the fallback path), the same cases. */
Test(backend_cuda, conv_packed_fallback)
{
    setenv("DEEPER_CUDNN_STRIDED", "0", 1);
    need_gpu(0);
    unsetenv("DEEPER_CUDNN_STRIDED");
    conv_cases("packed", 1e-4);
    conv_counts("conv_packed_fallback");
    long long direct, packed;
    int shapes;
    backend_cuda_conv_stats(gpu, &direct, &packed, &shapes);
    cr_expect(packed > 0, "DEEPER_CUDNN_STRIDED=0 packed nothing");
    done();
}

Test(backend_cuda, conv_tf32)
{
    need_gpu(1);
    conv_case(4, 32, 48, 17, 17, (struct conv_params){ 3, 3, 1, 1, 1, 1 }, 1e-2, "tf32 3x3");
    done();
}

Test(backend_cuda, batchnorm)
{
    need_gpu(0);
    int n = 3, c = 5, h = 7, w = 6, ct = 9;
    struct pb x = pb_new((size_t)n * ct * h * w, -2, 3, 11), y = pb_new(x.n, 0, 0, 12), dx = pb_new(x.n, -1, 1, 13);
    struct pb g = pb_new(c, 0.5f, 1.5f, 14), b = pb_new(c, -0.5f, 0.5f, 15);
    struct pb rm = pb_new(c, -0.1f, 0.1f, 16), rv = pb_new(c, 0.5f, 2.0f, 17);
    struct pb sm = pb_new(c, 0, 0, 18), si = pb_new(c, 0, 0, 19), dg = pb_new(c, -1, 1, 20), db = pb_new(c, -1, 1, 21);
    struct tensor xc = view(x.c, n, ct, 3, c, h, w), xg = view(x.g, n, ct, 3, c, h, w);
    struct tensor yc = view(y.c, n, ct, 1, c, h, w), yg = view(y.g, n, ct, 1, c, h, w);
    struct tensor dxc = view(dx.c, n, ct, 0, c, h, w), dxg = view(dx.g, n, ct, 0, c, h, w);
    struct bn_params p = { 0.001f, 0.1f };
    BOTH(cpu->ops->batchnorm_train_forward(cpu, &yc, sm.c, si.c, &xc, g.c, b.c, rm.c, rv.c, &p),
         gpu->ops->batchnorm_train_forward(gpu, &yg, sm.g, si.g, &xg, g.g, b.g, rm.g, rv.g, &p));
    pb_cmp(&y, "bn train y", 1e-5);
    pb_cmp(&sm, "bn save_mean", 1e-5);
    pb_cmp(&si, "bn save_invstd", 1e-5);
    pb_cmp(&rm, "bn running_mean", 1e-5);
    pb_cmp(&rv, "bn running_var", 1e-5);
    /* dy = x slice 0 of y's buffer: any values; use y itself */
    BOTH(cpu->ops->batchnorm_backward(cpu, &dxc, dg.c, db.c, &yc, &xc, g.c, sm.c, si.c, &p),
         gpu->ops->batchnorm_backward(gpu, &dxg, dg.g, db.g, &yg, &xg, g.g, sm.g, si.g, &p));
    pb_cmp(&dx, "bn bwd dx", 1e-4);
    pb_cmp(&dg, "bn bwd dgamma", 1e-4);
    pb_cmp(&db, "bn bwd dbeta", 1e-4);
    BOTH(cpu->ops->batchnorm_infer_forward(cpu, &yc, &xc, g.c, b.c, rm.c, rv.c, &p),
         gpu->ops->batchnorm_infer_forward(gpu, &yg, &xg, g.g, b.g, rm.g, rv.g, &p));
    pb_cmp(&y, "bn infer y", 1e-5);
    /* NULL gamma/beta (1 and 0), no running statistics, no dgamma/dx: as on the CPU */
    BOTH(cpu->ops->batchnorm_train_forward(cpu, &yc, sm.c, si.c, &xc, NULL, NULL, NULL, NULL, &p),
         gpu->ops->batchnorm_train_forward(gpu, &yg, sm.g, si.g, &xg, NULL, NULL, NULL, NULL, &p));
    pb_cmp(&y, "bn train y (no affine)", 1e-5);
    pb_cmp(&rv, "bn running_var untouched", 1e-5);
    BOTH(cpu->ops->batchnorm_backward(cpu, NULL, NULL, db.c, &yc, &xc, NULL, sm.c, si.c, &p),
         gpu->ops->batchnorm_backward(gpu, NULL, NULL, db.g, &yg, &xg, NULL, sm.g, si.g, &p));
    pb_cmp(&db, "bn bwd dbeta (no dx)", 1e-4);
    struct pb *all[] = { &x, &y, &dx, &g, &b, &rm, &rv, &sm, &si, &dg, &db };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pb_free(all[i]);
    done();
}

static void pool_case(struct pool_params p, const char *name)
{
    int n = 2, c = 3, ct = 5, h = 9, w = 8;
    int oh = (h + 2 * p.pad_h - p.kh) / p.stride_h + 1, ow = (w + 2 * p.pad_w - p.kw) / p.stride_w + 1;
    struct pb x = pb_new((size_t)n * ct * h * w, -1, 1, 31), y = pb_new((size_t)n * ct * oh * ow, 0, 0, 32);
    struct pb dy = pb_new(y.n, -1, 1, 33), dx = pb_new(x.n, -1, 1, 34);
    struct tensor xc = view(x.c, n, ct, 1, c, h, w), xg = view(x.g, n, ct, 1, c, h, w);
    struct tensor yc = view(y.c, n, ct, 2, c, oh, ow), yg = view(y.g, n, ct, 2, c, oh, ow);
    struct tensor dyc = view(dy.c, n, ct, 2, c, oh, ow), dyg = view(dy.g, n, ct, 2, c, oh, ow);
    struct tensor dxc = view(dx.c, n, ct, 1, c, h, w), dxg = view(dx.g, n, ct, 1, c, h, w);
    char what[64];
    BOTH(cpu->ops->pool_forward(cpu, &yc, &xc, &p), gpu->ops->pool_forward(gpu, &yg, &xg, &p));
    snprintf(what, sizeof what, "pool fwd %s", name); pb_cmp(&y, what, 1e-6);
    BOTH(cpu->ops->pool_backward(cpu, &dxc, &dyc, &xc, &yc, &p), gpu->ops->pool_backward(gpu, &dxg, &dyg, &xg, &yg, &p));
    snprintf(what, sizeof what, "pool bwd %s", name); pb_cmp(&dx, what, 1e-5);
    pb_free(&x); pb_free(&y); pb_free(&dy); pb_free(&dx);
}

Test(backend_cuda, pooling)
{
    need_gpu(0);
    pool_case((struct pool_params){ POOL_MAX, 3, 3, 2, 2, 0, 0, 0 }, "max 3x3 s2");
    pool_case((struct pool_params){ POOL_MAX, 3, 3, 1, 1, 1, 1, 0 }, "max 3x3 s1 p1");
    pool_case((struct pool_params){ POOL_AVG, 3, 3, 1, 1, 1, 1, 1 }, "avg incl-pad");
    pool_case((struct pool_params){ POOL_AVG, 3, 3, 1, 1, 1, 1, 0 }, "avg excl-pad");
    pool_case((struct pool_params){ POOL_AVG, 5, 5, 3, 3, 0, 0, 1 }, "avg 5x5 s3");
    done();
}

Test(backend_cuda, relu_bias_dropout)
{
    need_gpu(0);
    int n = 2, c = 4, ct = 7, h = 5, w = 6;
    struct pb x = pb_new((size_t)n * ct * h * w, -1, 1, 41), y = pb_new(x.n, 0, 0, 42), dx = pb_new(x.n, -1, 1, 43);
    struct pb b = pb_new(c, -1, 1, 44), db = pb_new(c, -1, 1, 45);
    struct tensor xc = view(x.c, n, ct, 2, c, h, w), xg = view(x.g, n, ct, 2, c, h, w);
    struct tensor yc = view(y.c, n, ct, 3, c, h, w), yg = view(y.g, n, ct, 3, c, h, w);
    struct tensor dxc = view(dx.c, n, ct, 0, c, h, w), dxg = view(dx.g, n, ct, 0, c, h, w);
    BOTH(cpu->ops->relu_forward(cpu, &yc, &xc), gpu->ops->relu_forward(gpu, &yg, &xg));
    pb_cmp(&y, "relu fwd", 1e-7);
    {   /* a NaN passes through ReLU on both backends (divergence must reach the loss) */
        float nan = NAN, got = 0;
        cr_assert_eq(gpu->ops->copy_h2d(gpu, x.g, &nan, 4), STATUS_OK);
        struct tensor one = tensor_make(x.g, DT_F32, LAYOUT_NCHW, 1, 1, 1, 1), oy = tensor_make(y.g, DT_F32, LAYOUT_NCHW, 1, 1, 1, 1);
        cr_assert_eq(gpu->ops->relu_forward(gpu, &oy, &one), STATUS_OK);
        cr_assert_eq(gpu->ops->copy_d2h(gpu, &got, y.g, 4), STATUS_OK);
        cr_expect(isnan(got), "relu(NaN) = %g on the GPU", (double)got);
        /* element 0 lies outside the views: put back what both sides hold there */
        cr_assert_eq(gpu->ops->copy_h2d(gpu, x.g, x.h, 4), STATUS_OK);
        cr_assert_eq(gpu->ops->copy_h2d(gpu, y.g, y.h, 4), STATUS_OK);
    }
    BOTH(cpu->ops->relu_backward(cpu, &dxc, &xc, &yc), gpu->ops->relu_backward(gpu, &dxg, &xg, &yg));
    pb_cmp(&dx, "relu bwd", 1e-7);
    BOTH(cpu->ops->bias_add_forward(cpu, &yc, b.c), gpu->ops->bias_add_forward(gpu, &yg, b.g));
    pb_cmp(&y, "bias_add fwd", 1e-7);
    BOTH(cpu->ops->bias_add_backward(cpu, db.c, &xc), gpu->ops->bias_add_backward(gpu, db.g, &xg));
    pb_cmp(&db, "bias_add bwd", 1e-5);
    /* dropout: masks must match exactly */
    size_t m = (size_t)n * c * h * w;
    uint8_t *mc = cpu->ops->alloc(cpu, m), *mg = gpu->ops->alloc(gpu, m);
    BOTH(cpu->ops->dropout_forward(cpu, &yc, mc, &xc, 0.8f, 1234, 5678),
         gpu->ops->dropout_forward(gpu, &yg, mg, &xg, 0.8f, 1234, 5678));
    uint8_t *hm = malloc(m);
    cr_assert_eq(gpu->ops->copy_d2h(gpu, hm, mg, m), STATUS_OK);
    size_t diff = 0, kept = 0;
    for (size_t i = 0; i < m; i++) { diff += hm[i] != mc[i]; kept += mc[i]; }
    printf("dropout: %zu of %zu kept, %zu mask differences\n", kept, m, diff);
    cr_expect_eq(diff, 0, "dropout masks differ in %zu places", diff);
    pb_cmp(&y, "dropout fwd", 1e-7);
    BOTH(cpu->ops->dropout_backward(cpu, &dxc, &xc, mc, 0.8f), gpu->ops->dropout_backward(gpu, &dxg, &xg, mg, 0.8f));
    pb_cmp(&dx, "dropout bwd", 1e-7);
    free(hm);
    cpu->ops->free(cpu, mc);
    gpu->ops->free(gpu, mg);
    pb_free(&x); pb_free(&y); pb_free(&dx); pb_free(&b); pb_free(&db);
    done();
}

static void fc_case(int n, int c, int ct, int h, int w, int out, const char *name)
{
    int in = c * h * w;
    struct pb x = pb_new((size_t)n * ct * h * w, -1, 1, 51), y = pb_new((size_t)n * out, 0, 0, 52);
    struct pb wt = pb_new((size_t)out * in, -0.3f, 0.3f, 53), b = pb_new(out, -1, 1, 54);
    struct pb dx = pb_new(x.n, -1, 1, 55), dw = pb_new(wt.n, -1, 1, 56), db = pb_new(out, -1, 1, 57);
    int c0 = ct - c;
    struct tensor xc = view(x.c, n, ct, c0, c, h, w), xg = view(x.g, n, ct, c0, c, h, w);
    struct tensor yc = view(y.c, n, out, 0, out, 1, 1), yg = view(y.g, n, out, 0, out, 1, 1);
    struct tensor dxc = view(dx.c, n, ct, c0, c, h, w), dxg = view(dx.g, n, ct, c0, c, h, w);
    char what[64];
    BOTH(cpu->ops->fc_forward(cpu, &yc, &xc, wt.c, b.c, in, out), gpu->ops->fc_forward(gpu, &yg, &xg, wt.g, b.g, in, out));
    snprintf(what, sizeof what, "fc fwd %s", name); pb_cmp(&y, what, 1e-4);
    BOTH(cpu->ops->fc_backward(cpu, &dxc, dw.c, db.c, &yc, &xc, wt.c, in, out),
         gpu->ops->fc_backward(gpu, &dxg, dw.g, db.g, &yg, &xg, wt.g, in, out));
    snprintf(what, sizeof what, "fc bwd dx %s", name); pb_cmp(&dx, what, 1e-4);
    snprintf(what, sizeof what, "fc bwd dw %s", name); pb_cmp(&dw, what, 1e-4);
    snprintf(what, sizeof what, "fc bwd db %s", name); pb_cmp(&db, what, 1e-4);
    pb_free(&x); pb_free(&y); pb_free(&wt); pb_free(&b); pb_free(&dx); pb_free(&dw); pb_free(&db);
}

Test(backend_cuda, fully_connected)
{
    need_gpu(0);
    fc_case(5, 4, 4, 2, 3, 7, "dense CHW");
    fc_case(6, 9, 13, 1, 1, 11, "channel slice");
    done();
}

Test(backend_cuda, softmax_xent)
{
    need_gpu(0);
    int n = 7, c = 13;
    struct pb z = pb_new((size_t)n * c, -4, 4, 61), dz = pb_new(z.n, -1, 1, 62), p = pb_new(z.n, 0, 0, 63);
    int32_t lab[7] = { 0, 12, 5, 5, 3, 7, 1 };
    int32_t *lc = cpu->ops->alloc(cpu, sizeof lab), *lg = gpu->ops->alloc(gpu, sizeof lab);
    cr_assert_eq(cpu->ops->copy_h2d(cpu, lc, lab, sizeof lab), STATUS_OK);
    cr_assert_eq(gpu->ops->copy_h2d(gpu, lg, lab, sizeof lab), STATUS_OK);
    struct tensor zc = view(z.c, n, c, 0, c, 1, 1), zg = view(z.g, n, c, 0, c, 1, 1);
    struct tensor dzc = view(dz.c, n, c, 0, c, 1, 1), dzg = view(dz.g, n, c, 0, c, 1, 1);
    struct tensor pc = view(p.c, n, c, 0, c, 1, 1), pg = view(p.g, n, c, 0, c, 1, 1);
    float loss_c = 0, loss_g = 0;
    BOTH(cpu->ops->softmax_xent(cpu, &loss_c, &dzc, &zc, lc, 0.1f, 0.5f),
         gpu->ops->softmax_xent(gpu, &loss_g, &dzg, &zg, lg, 0.1f, 0.5f));
    check_scalar("xent loss", loss_g, loss_c, 1e-12, 1e-5);
    pb_cmp(&dz, "xent dlogits", 1e-5);
    BOTH(cpu->ops->softmax(cpu, &pc, &zc), gpu->ops->softmax(gpu, &pg, &zg));
    pb_cmp(&p, "softmax", 1e-5);
    /* a bad label is reported, not silently averaged */
    int32_t badl[7] = { 0, 13, 5, 5, 3, 7, 1 };
    cr_assert_eq(gpu->ops->copy_h2d(gpu, lg, badl, sizeof badl), STATUS_OK);
    cr_expect_eq(gpu->ops->softmax_xent(gpu, &loss_g, NULL, &zg, lg, 0.1f, 1.0f), STATUS_FORMAT);
    cpu->ops->free(cpu, lc);
    gpu->ops->free(gpu, lg);
    pb_free(&z); pb_free(&dz); pb_free(&p);
    done();
}

Test(backend_cuda, optimizer_and_reductions)
{
    need_gpu(0);
    size_t n = 100003;
    struct pb w = pb_new(n, -1, 1, 71), ms = pb_new(n, 0.5f, 1.5f, 72), mom = pb_new(n, -0.1f, 0.1f, 73);
    struct pb g = pb_new(n, -1, 1, 74), sh = pb_new(n, -1, 1, 75);
    struct rmsprop_params rp = { 0.01f, 0.9f, 0.9f, 1.0f, 4e-5f, 0.5f };
    BOTH(cpu->ops->rmsprop_update(cpu, w.c, ms.c, mom.c, g.c, n, &rp), gpu->ops->rmsprop_update(gpu, w.g, ms.g, mom.g, g.g, n, &rp));
    pb_cmp(&w, "rmsprop w", 1e-6);
    pb_cmp(&ms, "rmsprop ms", 1e-6);
    pb_cmp(&mom, "rmsprop mom", 1e-6);
    BOTH(cpu->ops->ema_update(cpu, sh.c, w.c, n, 0.999f), gpu->ops->ema_update(gpu, sh.g, w.g, n, 0.999f));
    pb_cmp(&sh, "ema", 1e-6);
    BOTH(cpu->ops->axpby(cpu, g.c, w.c, n, 0.25f, -2.0f), gpu->ops->axpby(gpu, g.g, w.g, n, 0.25f, -2.0f));
    pb_cmp(&g, "axpby", 1e-6);
    double sc = 0, sg = 0;
    BOTH(cpu->ops->sumsq(cpu, &sc, g.c, n), gpu->ops->sumsq(gpu, &sg, g.g, n));
    check_scalar("sumsq", sg, sc, 1e-12, 1e-9);
    pb_free(&w); pb_free(&ms); pb_free(&mom); pb_free(&g); pb_free(&sh);
    done();
}

Test(backend_cuda, input_normalize)
{
    need_gpu(0);
    int n = 3, h = 5, w = 4;
    uint8_t px[3 * 5 * 4 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37 + 11);
    struct pb y = pb_new((size_t)n * 3 * h * w, 0, 0, 81);
    struct tensor yc = tensor_make(y.c, DT_F32, LAYOUT_NCHW, n, 3, h, w), yg = tensor_make(y.g, DT_F32, LAYOUT_NCHW, n, 3, h, w);
    BOTH(cpu->ops->input_normalize(cpu, &yc, px, n, h, w, 3), gpu->ops->input_normalize(gpu, &yg, px, n, h, w, 3));
    pb_cmp(&y, "input rgb", 0);          /* bit-identical */
    BOTH(cpu->ops->input_normalize(cpu, &yc, px, n, h, w, 1), gpu->ops->input_normalize(gpu, &yg, px, n, h, w, 1));
    pb_cmp(&y, "input gray->rgb", 0);
    pb_free(&y);
    done();
}

/* The input path: batches from pinned memory (as the trainer's feed hands
 * them out) go up on the upload stream into two staging buffers used in
 * turn; the host buffer may be overwritten as soon as the call returns. */
Test(backend_cuda, input_pinned_double_buffered)
{
    need_gpu(0);
    int n = 4, h = 33, w = 31, c = 3;
    size_t bytes = (size_t)n * h * w * c;
    uint8_t *pin = backend_cuda_host_alloc(bytes);
    cr_assert_not_null(pin);
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) { a[i] = (uint8_t)(i * 7 + 3); b[i] = (uint8_t)(i * 13 + 1); }
    struct pb y[3];
    struct tensor yc[3], yg[3];
    for (int k = 0; k < 3; k++) {
        y[k] = pb_new((size_t)n * c * h * w, 0, 0, 90 + k);
        yc[k] = tensor_make(y[k].c, DT_F32, LAYOUT_NCHW, n, c, h, w);
        yg[k] = tensor_make(y[k].g, DT_F32, LAYOUT_NCHW, n, c, h, w);
    }
    const uint8_t *src[3] = { a, b, a };
    for (int k = 0; k < 3; k++) {
        memcpy(pin, src[k], bytes);
        cr_assert_eq(gpu->ops->input_normalize(gpu, &yg[k], pin, n, h, w, c), STATUS_OK, "%s", status_msg());
        memset(pin, 0xff, bytes);       /* reused at once, as the dispatcher does */
        cr_assert_eq(cpu->ops->input_normalize(cpu, &yc[k], src[k], n, h, w, c), STATUS_OK);
    }
    pb_cmp(&y[0], "input pinned batch 1", 0);
    pb_cmp(&y[1], "input pinned batch 2", 0);
    pb_cmp(&y[2], "input pinned batch 3", 0);
    /* pageable memory works the same way */
    cr_assert_eq(gpu->ops->input_normalize(gpu, &yg[0], b, n, h, w, c), STATUS_OK, "%s", status_msg());
    cr_assert_eq(cpu->ops->input_normalize(cpu, &yc[0], b, n, h, w, c), STATUS_OK);
    pb_cmp(&y[0], "input pageable", 0);
    /* idle stamps: after a sync the GPU has reached the mark */
    double before = log_now();
    cr_assert_eq(backend_cuda_mark(gpu), STATUS_OK, "%s", status_msg());
    cr_assert_eq(gpu->ops->sync(gpu), STATUS_OK);
    double idle = backend_cuda_idle_since(gpu);
    printf("idle stamp %.6f s after the mark was queued\n", idle - before);
    cr_expect(idle >= before && idle <= log_now(), "idle stamp %f outside [%f, now]", idle, before);
    for (int k = 0; k < 3; k++) pb_free(&y[k]);
    backend_cuda_host_free(pin);
    free(a); free(b);
    done();
}

/* A whole model: one training forward + backward on CPU and GPU from the same
 * seed (same initial weights, same dropout masks, same batch); the losses and
 * every parameter's gradient must agree (normalised per parameter). */
static void model_case(const char *name, int size, int ch, int classes, int batch, double tol)
{
    if (!model_find(name)) { printf("model %s not registered in this build: skipped\n", name); return; }
    struct model_options o = model_options_default();
    o.model = name; o.image_size = size; o.channels = ch; o.classes = classes; o.batch_size = batch;
    o.training = 1; o.seed = 5; o.threads = 2;
    struct tower_set *ts[2] = { NULL, NULL };
    const char *dev[2] = { "cpu", "cuda" };
    size_t img = (size_t)size * size * ch;
    uint8_t *px = malloc(batch * img);
    int32_t *lab = malloc(batch * sizeof *lab);
    struct rng r;
    rng_init(&r, 9, 9);
    for (size_t i = 0; i < batch * img; i++) px[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < batch; i++) lab[i] = (int32_t)rng_below(&r, (uint32_t)classes);
    float loss[2];
    float *grad[2];
    size_t nt = 0;
    for (int k = 0; k < 2; k++) {
        o.backend = dev[k];
        cr_assert_eq(model_towers_new(&ts[k], &o), STATUS_OK, "%s on %s: %s", name, dev[k], status_msg());
        struct graph *g = ts[k]->g[0];
        cr_assert_eq(graph_set_input(g, px, batch, size, size, ch, lab), STATUS_OK, "%s", status_msg());
        cr_assert_eq(graph_forward(g, 1, 1234, 0), STATUS_OK, "%s forward on %s: %s", name, dev[k], status_msg());
        cr_assert_eq(graph_loss_forward(g, &loss[k], 1.0f), STATUS_OK, "%s", status_msg());
        cr_assert_eq(graph_backward(g), STATUS_OK, "%s backward on %s: %s", name, dev[k], status_msg());
        nt = graph_trainable_numel(g);
        grad[k] = malloc(nt * 4 + 4);
        struct backend *be = graph_backend(g);
        cr_assert_eq(be->ops->copy_d2h(be, grad[k], graph_arena(g, SLOT_GRAD), nt * 4), STATUS_OK, "%s", status_msg());
    }
    char what[160];
    snprintf(what, sizeof what, "%s loss", name);
    check_scalar(what, loss[1], loss[0], 1e-12, tol);
    struct graph *g = ts[0]->g[0];
    for (int i = 0; i < graph_num_params(g); i++) {
        const struct graph_param *p = graph_param(g, i);
        if (p->offset + p->numel > nt) continue;      /* not trainable (BN running stats) */
        snprintf(what, sizeof what, "%s grad %s", name, p->name);
        check_f32(what, grad[1] + p->offset, grad[0] + p->offset, p->numel, CHECK_NORM, tol);
    }
    for (int k = 0; k < 2; k++) { free(grad[k]); model_towers_free(&ts[k]); }
    free(px);
    free(lab);
}

Test(backend_cuda, models_match_cpu)
{
    gpus_or_skip(1);
    setenv("DEEPER_TF32", "0", 1);
    model_case("nielsennet", 28, 1, 10, 8, 1e-3);
    model_case("inception_v3", 75, 3, 10, 4, 1e-2);
}

/* Whole training steps (input upload from pinned memory, forward, loss,
 * backward, RMSProp, EMA) on one GPU against the CPU: NielsenNet, three
 * steps from the same seed and batches, then every weight, BN statistic and
 * EMA shadow compared. */
Test(backend_cuda, training_steps_match_cpu)
{
    gpus_or_skip(1);
    setenv("DEEPER_TF32", "0", 1);
    struct model_options o = model_options_default();
    o.model = "nielsennet"; o.image_size = 28; o.channels = 1; o.classes = 10; o.batch_size = 16;
    o.training = 1; o.seed = 7; o.threads = 2;
    uint8_t *px = backend_cuda_host_alloc(3 * 16 * 784);
    cr_assert_not_null(px);
    int32_t lab[3 * 16];
    struct rng r;
    rng_init(&r, 6, 6);
    for (size_t i = 0; i < 3 * 16 * 784; i++) px[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < 3 * 16; i++) lab[i] = (int32_t)rng_below(&r, 10);
    const char *dev[2] = { "cpu", "cuda" };
    float *w[2], *ema[2];
    size_t nw = 0;
    float loss[2];
    for (int k = 0; k < 2; k++) {
        struct tower_set *ts = NULL;
        o.backend = dev[k];
        cr_assert_eq(model_towers_new(&ts, &o), STATUS_OK, "%s: %s", dev[k], status_msg());
        struct tower_step_result res;
        for (int s = 0; s < 3; s++)
            cr_assert_eq(model_step_train(ts, px + (size_t)s * 16 * 784, 1, lab + s * 16, 16, &res), STATUS_OK,
                         "%s step %d: %s", dev[k], s, status_msg());
        loss[k] = res.loss;
        struct graph *g = ts->g[0];
        struct backend *be = graph_backend(g);
        nw = graph_weights_numel(g);
        w[k] = malloc(nw * 4);
        ema[k] = malloc(nw * 4);
        cr_assert_eq(be->ops->copy_d2h(be, w[k], graph_arena(g, SLOT_W), nw * 4), STATUS_OK, "%s", status_msg());
        cr_assert_eq(be->ops->copy_d2h(be, ema[k], graph_arena(g, SLOT_EMA), nw * 4), STATUS_OK, "%s", status_msg());
        model_towers_free(&ts);
    }
    check_f32("training steps weights", w[1], w[0], nw, CHECK_NORM, 1e-4);
    check_f32("training steps EMA", ema[1], ema[0], nw, CHECK_NORM, 1e-4);
    check_scalar("training steps loss", loss[1], loss[0], 1e-12, 1e-4);
    for (int k = 0; k < 2; k++) { free(w[k]); free(ema[k]); }
    backend_cuda_host_free(px);
}

/* NCCL towers: 2 GPUs x 8 must update like 1 GPU x 16 (same seed, same batch;
 * dropout masks keyed by the global sample offset).  Needs two GPUs. */
Test(backend_cuda, two_gpu_towers_match_one)
{
    gpus_or_skip(2);
    setenv("DEEPER_TF32", "0", 1);
    struct model_options o = model_options_default();
    o.model = "nielsennet"; o.image_size = 28; o.channels = 1; o.classes = 10; o.batch_size = 16;
    o.training = 1; o.seed = 3; o.backend = "cuda";
    uint8_t px[16 * 784];
    int32_t lab[16];
    struct rng r;
    rng_init(&r, 4, 4);
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < 16; i++) lab[i] = (int32_t)rng_below(&r, 10);
    float *w[2];
    size_t nt = 0;
    for (int k = 0; k < 2; k++) {
        struct tower_set *ts = NULL;
        o.num_towers = k + 1;
        cr_assert_eq(model_towers_new(&ts, &o), STATUS_OK, "%s", status_msg());
        struct tower_step_result res;
        for (int s = 0; s < 3; s++)
            cr_assert_eq(model_step_train(ts, px, 1, lab, 16, &res), STATUS_OK, "%s", status_msg());
        struct graph *g = ts->g[0];
        nt = graph_trainable_numel(g);
        w[k] = malloc(nt * 4);
        struct backend *be = graph_backend(g);
        cr_assert_eq(be->ops->copy_d2h(be, w[k], graph_arena(g, SLOT_W), nt * 4), STATUS_OK);
        if (k == 1) {           /* the broadcast left both GPUs with the same weights */
            size_t nw = graph_weights_numel(g);
            float *a0 = malloc(nw * 4), *a1 = malloc(nw * 4);
            cr_assert_eq(be->ops->copy_d2h(be, a0, graph_arena(g, SLOT_W), nw * 4), STATUS_OK);
            struct backend *b1 = graph_backend(ts->g[1]);
            cr_assert_eq(b1->ops->copy_d2h(b1, a1, graph_arena(ts->g[1], SLOT_W), nw * 4), STATUS_OK);
            cr_expect(memcmp(a0, a1, nw * 4) == 0, "towers hold different weights after the broadcast");
            free(a0); free(a1);
        }
        model_towers_free(&ts);
    }
    check_f32("2 GPU towers vs 1 (3 steps)", w[1], w[0], nt, CHECK_NORM, 1e-4);
    free(w[0]); free(w[1]);
}

#endif
