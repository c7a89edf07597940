/*
 * backend_cuda_dnn.c — the CUDA backend's library-backed ops: convolutions
 * through cuDNN and fully connected layers through cuBLAS.
 *
 * Convolutions: cuDNN's legacy (v7-style) API with fp32 data; TF32 tensor
 * cores allowed unless DEEPER_TF32=0.  For each (direction, shapes,
 * strides, padding) the algorithm is chosen once — measured with
 * cudnnFind*Algorithm, or by cudnnGet*_v7 heuristics when
 * DEEPER_CUDNN_FIND=0 — and cached in an open-addressing table, with the
 * algorithm's math type and workspace size.  The first step of a new model
 * is therefore slower (PyTorch's cudnn.benchmark does the same).
 *
 * Strided views: a view that is dense NCHW or NHWC goes to cuDNN as is
 * (cudnnSetTensor4dDescriptorEx carries the strides); any other view (a
 * channel slice of a concat) is packed into dense scratch first and, for
 * outputs, copied back — correct first; direct strided descriptors for slices
 * are a measured optimisation for later.  Backward ops accumulate: cuDNN's
 * beta = 1, or a += copy from scratch.
 *
 * Fully connected: row-major x [N, in] (ld = the sample stride), w [out, in],
 * y [N, out], expressed as column-major SGEMMs:
 *     y^T  = W · x^T            gemm(T, N, out, N, in)
 *     dx^T += W^T · dy^T        gemm(N, N, in, N, out, beta 1)
 *     dW^T += x^T · dy          gemm(N, T, in, out, N, beta 1)
 */
#include <stdlib.h>
#include <string.h>

#include "trainer/backend_cuda_internal.h"

enum conv_dir { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2 };

struct conv_key {
    int dir, tf32;
    int x[8], y[8], w[4], conv[6];
};

struct conv_algo_entry {
    struct conv_key key;
    int used;
    int algo;
    cudnnMathType_t math;
    size_t ws;
};

static const float ONE = 1.0f, ZERO = 0.0f;

void cuda_dnn_free(struct cuda_ctx *c)
{
    free(c->algos);
    c->algos = NULL;
    c->algos_cap = c->algos_n = 0;
}

static uint64_t key_hash(const struct conv_key *k)
{
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static struct conv_algo_entry *algo_slot(struct cuda_ctx *c, const struct conv_key *k)
{
    if (c->algos_n * 2 >= c->algos_cap) {           /* grow, keep load <= 1/2 */
        int cap = c->algos_cap ? c->algos_cap * 2 : 256;
        struct conv_algo_entry *t = calloc((size_t)cap, sizeof *t);
        if (!t) return NULL;
        for (int i = 0; i < c->algos_cap; i++) {
            if (!c->algos[i].used) continue;
            uint64_t h = key_hash(&c->algos[i].key);
            int j = (int)(h % (uint64_t)cap);
            while (t[j].used) j = (j + 1) % cap;
            t[j] = c->algos[i];
        }
        free(c->algos);
        c->algos = t;
        c->algos_cap = cap;
    }
    int j = (int)(key_hash(k) % (uint64_t)c->algos_cap);
    while (c->algos[j].used && memcmp(&c->algos[j].key, k, sizeof *k)) j = (j + 1) % c->algos_cap;
    return &c->algos[j];
}

static status set_td(cudnnTensorDescriptor_t d, const struct tensor *t, int *key)
{
    if (t->sn > 0x7fffffff || t->sc > 0x7fffffff || t->sh > 0x7fffffff || t->sw > 0x7fffffff)
        return FAIL(STATUS_UNSUPPORTED, "cudnn: tensor strides beyond 2^31");
    int v[8] = { t->n, t->c, t->h, t->w, (int)t->sn, (int)t->sc, (int)t->sh, (int)t->sw };
    memcpy(key, v, sizeof v);
    DNN(cudnnSetTensor4dDescriptorEx(d, CUDNN_DATA_FLOAT, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]),
        "tensor descriptor");
    return STATUS_OK;
}

/* Descriptors for x (td[0]), y (td[1]), w (fd) and the convolution (cd). */
static status conv_setup(struct cuda_ctx *c, struct conv_key *k, enum conv_dir dir, const struct tensor *x,
                         const struct tensor *y, const struct tensor *w, const struct conv_params *p)
{
    memset(k, 0, sizeof *k);
    k->dir = dir;
    k->tf32 = c->tf32;
    if (!tensor_is_dense(w, LAYOUT_NCHW)) return FAIL(STATUS_UNSUPPORTED, "conv: filter must be dense [out,in,kh,kw]");
    if (w->c != x->c || w->n != y->c || w->h != p->kh || w->w != p->kw)
        return FAIL(STATUS_FORMAT, "conv: filter %dx%dx%dx%d does not match x channels %d, y channels %d, kernel %dx%d",
                    w->n, w->c, w->h, w->w, x->c, y->c, p->kh, p->kw);
    int oh = (x->h + 2 * p->pad_h - p->kh) / p->stride_h + 1, ow = (x->w + 2 * p->pad_w - p->kw) / p->stride_w + 1;
    if (y->n != x->n || y->h != oh || y->w != ow)
        return FAIL(STATUS_FORMAT, "conv: output %dx%dx%dx%d, expected %dx%dx%dx%d", y->n, y->c, y->h, y->w, x->n,
                    w->n, oh, ow);
    TRY(set_td(c->td[0], x, k->x));
    TRY(set_td(c->td[1], y, k->y));
    int wv[4] = { w->n, w->c, w->h, w->w };
    memcpy(k->w, wv, sizeof wv);
    DNN(cudnnSetFilter4dDescriptor(c->fd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, wv[0], wv[1], wv[2], wv[3]),
        "filter descriptor");
    int cv[6] = { p->pad_h, p->pad_w, p->stride_h, p->stride_w, p->kh, p->kw };
    memcpy(k->conv, cv, sizeof cv);
    DNN(cudnnSetConvolution2dDescriptor(c->cd, p->pad_h, p->pad_w, p->stride_h, p->stride_w, 1, 1,
                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT), "convolution descriptor");
    DNN(cudnnSetConvolutionMathType(c->cd, c->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH), "math type");
    return STATUS_OK;
}

/* Pick (or recall) the algorithm for the descriptors conv_setup made, set its
 * math type on cd and make the workspace large enough. */
static status conv_algo(struct cuda_ctx *c, const struct conv_key *k, int *algo, void **ws, size_t *ws_bytes)
{
    struct conv_algo_entry *e = algo_slot(c, k);
    if (!e) return FAIL(STATUS_NOMEM, "conv algorithm cache");
    if (!e->used) {
        enum { MAXA = 16 };
        int got = 0, best = -1;
        int algos[MAXA]; cudnnStatus_t sts[MAXA]; size_t mem[MAXA]; cudnnMathType_t math[MAXA];
        if (k->dir == CONV_FWD) {
            cudnnConvolutionFwdAlgoPerf_t r[MAXA];
            if (c->find) DNN(cudnnFindConvolutionForwardAlgorithm(c->cudnn, c->td[0], c->fd, c->cd, c->td[1], MAXA, &got, r), "find forward algorithm");
            else DNN(cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, c->td[0], c->fd, c->cd, c->td[1], MAXA, &got, r), "forward algorithm");
            for (int i = 0; i < got; i++) { algos[i] = r[i].algo; sts[i] = r[i].status; mem[i] = r[i].memory; math[i] = r[i].mathType; }
        } else if (k->dir == CONV_BWD_DATA) {
            cudnnConvolutionBwdDataAlgoPerf_t r[MAXA];
            if (c->find) DNN(cudnnFindConvolutionBackwardDataAlgorithm(c->cudnn, c->fd, c->td[1], c->cd, c->td[0], MAXA, &got, r), "find backward-data algorithm");
            else DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(c->cudnn, c->fd, c->td[1], c->cd, c->td[0], MAXA, &got, r), "backward-data algorithm");
            for (int i = 0; i < got; i++) { algos[i] = r[i].algo; sts[i] = r[i].status; mem[i] = r[i].memory; math[i] = r[i].mathType; }
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t r[MAXA];
            if (c->find) DNN(cudnnFindConvolutionBackwardFilterAlgorithm(c->cudnn, c->td[0], c->td[1], c->cd, c->fd, MAXA, &got, r), "find backward-filter algorithm");
            else DNN(cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->cudnn, c->td[0], c->td[1], c->cd, c->fd, MAXA, &got, r), "backward-filter algorithm");
            for (int i = 0; i < got; i++) { algos[i] = r[i].algo; sts[i] = r[i].status; mem[i] = r[i].memory; math[i] = r[i].mathType; }
        }
        for (int i = 0; i < got && best < 0; i++)       /* results come fastest first */
            if (sts[i] == CUDNN_STATUS_SUCCESS && mem[i] <= c->ws_limit) best = i;
        if (best < 0)
            return FAIL(STATUS_CUDA, "cudnn: no convolution algorithm (direction %d, x %dx%dx%dx%d, w %dx%dx%dx%d) fits %zu MiB of workspace",
                        k->dir, k->x[0], k->x[1], k->x[2], k->x[3], k->w[0], k->w[1], k->w[2], k->w[3], c->ws_limit >> 20);
        e->key = *k;
        e->used = 1;
        e->algo = algos[best];
        e->math = math[best];
        e->ws = mem[best];
        c->algos_n++;
    }
    DNN(cudnnSetConvolutionMathType(c->cd, e->math), "algorithm math type");
    *algo = e->algo;
    *ws_bytes = e->ws;
    *ws = NULL;
    if (e->ws) TRY(cuda_scratch(c, SCR_WS, e->ws, ws));
    return STATUS_OK;
}

status cuda_conv2d_forward(struct backend *be, struct tensor *y, const struct tensor *x, const struct tensor *w,
                           const struct conv_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    struct tensor xd, yd;
    TRY(cuda_dense(c, SCR_A, x, 1, &xd));
    TRY(cuda_dense(c, SCR_B, y, 0, &yd));
    struct conv_key k;
    TRY(conv_setup(c, &k, CONV_FWD, &xd, &yd, w, p));
    int algo; void *ws; size_t wsb;
    TRY(conv_algo(c, &k, &algo, &ws, &wsb));
    DNN(cudnnConvolutionForward(c->cudnn, &ONE, c->td[0], xd.data, c->fd, w->data, c->cd,
                                (cudnnConvolutionFwdAlgo_t)algo, ws, wsb, &ZERO, c->td[1], yd.data), "convolution forward");
    if (yd.data != y->data) KL(k_scale_copy(c->stream, kt_of(y), kt_of(&yd), 1.0f, 0.0f), "unpack conv output");
    return STATUS_OK;
}

status cuda_conv2d_backward_data(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                 const struct tensor *w, const struct conv_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    struct tensor dyd, dxd;
    TRY(cuda_dense(c, SCR_A, dy, 1, &dyd));
    TRY(cuda_dense(c, SCR_B, dx, 0, &dxd));
    int direct = dxd.data == dx->data;
    struct conv_key k;
    TRY(conv_setup(c, &k, CONV_BWD_DATA, &dxd, &dyd, w, p));
    int algo; void *ws; size_t wsb;
    TRY(conv_algo(c, &k, &algo, &ws, &wsb));
    DNN(cudnnConvolutionBackwardData(c->cudnn, &ONE, c->fd, w->data, c->td[1], dyd.data, c->cd,
                                     (cudnnConvolutionBwdDataAlgo_t)algo, ws, wsb, direct ? &ONE : &ZERO, c->td[0],
                                     dxd.data), "convolution backward data");
    if (!direct) KL(k_scale_copy(c->stream, kt_of(dx), kt_of(&dxd), 1.0f, 1.0f), "accumulate conv dx");
    return STATUS_OK;
}

status cuda_conv2d_backward_filter(struct backend *be, struct tensor *dw, const struct tensor *dy,
                                   const struct tensor *x, const struct conv_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    struct tensor dyd, xd;
    TRY(cuda_dense(c, SCR_A, dy, 1, &dyd));
    TRY(cuda_dense(c, SCR_B, x, 1, &xd));
    struct conv_key k;
    TRY(conv_setup(c, &k, CONV_BWD_FILTER, &xd, &dyd, dw, p));
    int algo; void *ws; size_t wsb;
    TRY(conv_algo(c, &k, &algo, &ws, &wsb));
    DNN(cudnnConvolutionBackwardFilter(c->cudnn, &ONE, c->td[0], xd.data, c->td[1], dyd.data, c->cd,
                                       (cudnnConvolutionBwdFilterAlgo_t)algo, ws, wsb, &ONE, c->fd, dw->data),
        "convolution backward filter");
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* fully connected */

/* Elements of sample n at data + n*sn + k, k in CHW order? */
static int fc_rows(const struct tensor *t)
{
    if (t->h * t->w == 1) return t->sc == 1;
    return t->sw == 1 && t->sh == t->w && t->sc == (int64_t)t->h * t->w;
}

/* A row-major matrix view of t (packed into scratch `slot` if needed). */
static status fc_mat(struct cuda_ctx *c, enum cuda_scratch slot, const struct tensor *t, int load,
                     struct tensor *out)
{
    if (fc_rows(t)) { *out = *t; return STATUS_OK; }
    void *p;
    TRY(cuda_scratch(c, slot, (size_t)tensor_numel(t) * sizeof(float), &p));
    *out = tensor_make(p, DT_F32, LAYOUT_NCHW, t->n, t->c, t->h, t->w);
    if (load) KL(k_scale_copy(c->stream, kt_of(out), kt_of(t), 1.0f, 0.0f), "pack fc rows");
    return STATUS_OK;
}

static status fc_check(const struct tensor *x, const struct tensor *y, int in, int out)
{
    if ((int64_t)x->c * x->h * x->w != in || (int64_t)y->c * y->h * y->w != out || x->n != y->n)
        return FAIL(STATUS_FORMAT, "fc: x %dx%dx%dx%d / y %dx%dx%dx%d do not match in %d, out %d", x->n, x->c, x->h,
                    x->w, y->n, y->c, y->h, y->w, in, out);
    return STATUS_OK;
}

status cuda_fc_forward(struct backend *be, struct tensor *y, const struct tensor *x, const float *w,
                       const float *b, int in, int out)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(fc_check(x, y, in, out));
    TRY(cuda_use(c));
    struct tensor xm, ym;
    TRY(fc_mat(c, SCR_A, x, 1, &xm));
    TRY(fc_mat(c, SCR_B, y, 0, &ym));
    BLAS(cublasSgemm(c->cublas, CUBLAS_OP_T, CUBLAS_OP_N, out, x->n, in, &ONE, w, in, xm.data, (int)xm.sn,
                     &ZERO, ym.data, (int)ym.sn), "fc forward sgemm");
    if (b) KL(k_bias_add(c->stream, ym.data, (long long)ym.sn, b, x->n, out), "fc bias");
    if (ym.data != y->data) KL(k_scale_copy(c->stream, kt_of(y), kt_of(&ym), 1.0f, 0.0f), "unpack fc output");
    return STATUS_OK;
}

status cuda_fc_backward(struct backend *be, struct tensor *dx, float *dw, float *db, const struct tensor *dy,
                        const struct tensor *x, const float *w, int in, int out)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(fc_check(x, dy, in, out));
    TRY(cuda_use(c));
    struct tensor xm, dym;
    TRY(fc_mat(c, SCR_A, x, 1, &xm));
    TRY(fc_mat(c, SCR_B, dy, 1, &dym));
    int n = x->n;
    if (dx) {
        struct tensor dxm;
        TRY(fc_mat(c, SCR_C, dx, 0, &dxm));
        int direct = dxm.data == dx->data;
        BLAS(cublasSgemm(c->cublas, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &ONE, w, in, dym.data, (int)dym.sn,
                         direct ? &ONE : &ZERO, dxm.data, (int)dxm.sn), "fc backward-data sgemm");
        if (!direct) KL(k_scale_copy(c->stream, kt_of(dx), kt_of(&dxm), 1.0f, 1.0f), "accumulate fc dx");
    }
    if (dw)
        BLAS(cublasSgemm(c->cublas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &ONE, xm.data, (int)xm.sn, dym.data,
                         (int)dym.sn, &ONE, dw, in), "fc backward-filter sgemm");
    if (db) KL(k_bias_grad(c->stream, db, dym.data, (long long)dym.sn, n, out), "fc bias gradient");
    return STATUS_OK;
}
