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
 * Strided views (concat without copies): every view goes to cuDNN as it
 * is, with cudnnSetTensor4dDescriptorEx carrying the parent's strides, so a
 * branch of an Inception block reads and writes its channel slice of the
 * block's output directly.  Should cuDNN have no algorithm for such a
 * descriptor (its search fails, or the call answers NOT_SUPPORTED /
 * BAD_PARAM), that shape is remembered in the algorithm cache and from then
 * on goes through dense scratch copies (packed in, and for outputs copied
 * back); backend_cuda_conv_stats counts both paths.  DEEPER_CUDNN_STRIDED=0
 * packs every non-dense view (to compare).  Backward ops accumulate:
 * cuDNN's beta = 1, or a += copy from scratch.
 *
 * Fully connected: row-major x [N, in] (ld = the sample stride), w [out, in],
 * y [N, out], expressed as column-major SGEMMs:
 *     y^T  = W · x^T            gemm(T, N, out, N, in)
 *     dx^T += W^T · dy^T        gemm(N, N, in, N, out, beta 1)
 *     dW^T += x^T · dy          gemm(N, T, in, out, N, beta 1)
 */
#include <stdlib.h>
#include <string.h>

#include "trainer/backend/cuda/backend_cuda_internal.h"

enum conv_dir { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2 };

struct conv_key {
    int dir, tf32;
    int x[8], y[8], w[4], conv[6];
};

struct conv_algo_entry {
    struct conv_key key;
    int used;
    int pack;          /* 1: cuDNN rejects these (strided) views: pack them */
    int algo;
    cudnnMathType_t math;
    size_t ws;
};

static const float ONE = 1.0f, ZERO = 0.0f;

void cuda_dnn_clear(struct cuda_ctx *c)
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

/* Pick (or recall) the algorithm for the descriptors conv_setup made.  When
 * cuDNN has no algorithm for them and `may_pack` (the views are not dense),
 * the entry is marked `pack` instead of failing: the caller packs. */
static status conv_algo(struct cuda_ctx *c, const struct conv_key *k, int may_pack, struct conv_algo_entry **out)
{
    struct conv_algo_entry *e = algo_slot(c, k);
    if (!e) return FAIL(STATUS_NOMEM, "conv algorithm cache");
    *out = e;
    if (e->used) return STATUS_OK;
    enum { MAXA = 16 };
    int got = 0, best = -1;
    int algos[MAXA]; cudnnStatus_t sts[MAXA]; size_t mem[MAXA]; cudnnMathType_t math[MAXA];
    cudnnStatus_t fs;
    /* measure on an idle GPU: the queued work of this stream would skew the timings */
    if (c->find) CU(cudaStreamSynchronize(c->stream), "sync before the algorithm search");
    if (k->dir == CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t r[MAXA];
        fs = c->find ? cudnnFindConvolutionForwardAlgorithm(c->cudnn, c->td[0], c->fd, c->cd, c->td[1], MAXA, &got, r)
                     : cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, c->td[0], c->fd, c->cd, c->td[1], MAXA, &got, r);
        for (int i = 0; fs == CUDNN_STATUS_SUCCESS && i < got; i++) { algos[i] = r[i].algo; sts[i] = r[i].status; mem[i] = r[i].memory; math[i] = r[i].mathType; }
    } else if (k->dir == CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[MAXA];
        fs = c->find ? cudnnFindConvolutionBackwardDataAlgorithm(c->cudnn, c->fd, c->td[1], c->cd, c->td[0], MAXA, &got, r)
                     : cudnnGetConvolutionBackwardDataAlgorithm_v7(c->cudnn, c->fd, c->td[1], c->cd, c->td[0], MAXA, &got, r);
        for (int i = 0; fs == CUDNN_STATUS_SUCCESS && i < got; i++) { algos[i] = r[i].algo; sts[i] = r[i].status; mem[i] = r[i].memory; math[i] = r[i].mathType; }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[MAXA];
        fs = c->find ? cudnnFindConvolutionBackwardFilterAlgorithm(c->cudnn, c->td[0], c->td[1], c->cd, c->fd, MAXA, &got, r)
                     : cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->cudnn, c->td[0], c->td[1], c->cd, c->fd, MAXA, &got, r);
        for (int i = 0; fs == CUDNN_STATUS_SUCCESS && i < got; i++) { algos[i] = r[i].algo; sts[i] = r[i].status; mem[i] = r[i].memory; math[i] = r[i].mathType; }
    }
    if (fs != CUDNN_STATUS_SUCCESS) {
        got = 0;
        if (!may_pack) return cuda_fail_dnn(fs, c->find ? "convolution algorithm search" : "convolution heuristics", __FILE__, __LINE__);
    }
    for (int i = 0; i < got && best < 0; i++)       /* results come fastest first */
        if (sts[i] == CUDNN_STATUS_SUCCESS && mem[i] <= c->ws_limit) best = i;
    if (best < 0 && !may_pack)
        return FAIL(STATUS_CUDA, "cudnn: no convolution algorithm (direction %d, x %dx%dx%dx%d, w %dx%dx%dx%d) fits %zu MiB of workspace",
                    k->dir, k->x[0], k->x[1], k->x[2], k->x[3], k->w[0], k->w[1], k->w[2], k->w[3], c->ws_limit >> 20);
    e->key = *k;
    e->used = 1;
    e->pack = best < 0;
    c->conv_pack_shapes += e->pack;
    if (best >= 0) { e->algo = algos[best]; e->math = math[best]; e->ws = mem[best]; }
    c->algos_n++;
    return STATUS_OK;
}

/* One cuDNN call in direction `dir` on the descriptors conv_setup made, with
 * entry e's algorithm; beta 0 overwrites the output, 1 accumulates. */
static cudnnStatus_t conv_exec(struct cuda_ctx *c, const struct conv_algo_entry *e, void *x, void *y, void *w,
                               float beta, status *st)
{
    void *ws = NULL;
    *st = STATUS_OK;
    if (e->ws && (*st = cuda_scratch(c, SCR_WS, e->ws, &ws)) != STATUS_OK) return CUDNN_STATUS_ALLOC_FAILED;
    cudnnStatus_t s = cudnnSetConvolutionMathType(c->cd, e->math);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    switch ((enum conv_dir)e->key.dir) {
    case CONV_FWD:
        return cudnnConvolutionForward(c->cudnn, &ONE, c->td[0], x, c->fd, w, c->cd, (cudnnConvolutionFwdAlgo_t)e->algo,
                                       ws, e->ws, &beta, c->td[1], y);
    case CONV_BWD_DATA:
        return cudnnConvolutionBackwardData(c->cudnn, &ONE, c->fd, w, c->td[1], y, c->cd,
                                            (cudnnConvolutionBwdDataAlgo_t)e->algo, ws, e->ws, &beta, c->td[0], x);
    case CONV_BWD_FILTER:
        return cudnnConvolutionBackwardFilter(c->cudnn, &ONE, c->td[0], x, c->td[1], y, c->cd,
                                              (cudnnConvolutionBwdFilterAlgo_t)e->algo, ws, e->ws, &beta, c->fd, w);
    }
    return CUDNN_STATUS_BAD_PARAM;
}

static const char *dir_name[3] = { "convolution forward", "convolution backward data", "convolution backward filter" };

/* The three directions share one path.  x / y / w are (input, output,
 * filter) for CONV_FWD, (dx, dy, w) for CONV_BWD_DATA and (x, dy, dw) for
 * CONV_BWD_FILTER; the output is y, x and w respectively: overwritten
 * forward, accumulated backward (beta = 1).  Views go to cuDNN as they are
 * (strided descriptors); a shape whose views cuDNN rejects is remembered and
 * goes through dense scratch copies from then on. */
static status conv_run(struct backend *be, enum conv_dir dir, const struct tensor *x, const struct tensor *y,
                       const struct tensor *w, const struct conv_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    int dense = (tensor_is_dense(x, LAYOUT_NCHW) || tensor_is_dense(x, LAYOUT_NHWC)) &&
                (tensor_is_dense(y, LAYOUT_NCHW) || tensor_is_dense(y, LAYOUT_NHWC));
    float beta = dir == CONV_FWD ? 0.0f : 1.0f;
    struct conv_key k;
    struct conv_algo_entry *e;
    status st;
    cudnnStatus_t s;
    if (dense || c->strided_dnn) {
        TRY(conv_setup(c, &k, dir, x, y, w, p));
        TRY(conv_algo(c, &k, !dense, &e));
        if (!e->pack) {
            s = conv_exec(c, e, x->data, y->data, w->data, beta, &st);
            if (st != STATUS_OK) return st;
            if (s == CUDNN_STATUS_SUCCESS) { c->conv_direct++; return STATUS_OK; }
            if (dense || (s != CUDNN_STATUS_NOT_SUPPORTED && s != CUDNN_STATUS_BAD_PARAM))
                return cuda_fail_dnn(s, dir_name[dir], __FILE__, __LINE__);
            e->pack = 1;             /* cuDNN took these views in its search but not in the call */
            c->conv_pack_shapes++;
        }
    }
    /* dense scratch copies: inputs loaded, outputs written back */
    struct tensor xd, yd;
    TRY(cuda_dense(c, SCR_A, x, dir != CONV_BWD_DATA, &xd));
    TRY(cuda_dense(c, SCR_B, y, dir != CONV_FWD, &yd));
    TRY(conv_setup(c, &k, dir, &xd, &yd, w, p));
    TRY(conv_algo(c, &k, 0, &e));
    /* the output: y forward, dx backward-data; dw (backward-filter) is always dense */
    int direct = dir == CONV_FWD ? yd.data == y->data : dir == CONV_BWD_DATA ? xd.data == x->data : 1;
    s = conv_exec(c, e, xd.data, yd.data, w->data, direct ? beta : 0.0f, &st);
    if (st != STATUS_OK) return st;
    if (s != CUDNN_STATUS_SUCCESS) return cuda_fail_dnn(s, dir_name[dir], __FILE__, __LINE__);
    if (!direct) {
        const struct tensor *o = dir == CONV_FWD ? y : x, *od = dir == CONV_FWD ? &yd : &xd;
        KL(k_scale_copy(c->stream, kt_of(o), kt_of(od), 1.0f, beta), "unpack convolution output");
    }
    c->conv_packed++;
    return STATUS_OK;
}

status cuda_conv2d_forward(struct backend *be, struct tensor *y, const struct tensor *x, const struct tensor *w,
                           const struct conv_params *p)
{
    return conv_run(be, CONV_FWD, x, y, w, p);
}

status cuda_conv2d_backward_data(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                 const struct tensor *w, const struct conv_params *p)
{
    return conv_run(be, CONV_BWD_DATA, dx, dy, w, p);
}

status cuda_conv2d_backward_filter(struct backend *be, struct tensor *dw, const struct tensor *dy,
                                   const struct tensor *x, const struct conv_params *p)
{
    return conv_run(be, CONV_BWD_FILTER, x, dy, dw, p);
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
