/*
 * backend_cuda.c — the CUDA backend: one GPU, one stream, cuDNN and cuBLAS
 * handles bound to it, growable device scratch, and the ops table.
 *
 * Convolutions (cuDNN) and fully connected layers (cuBLAS) live in
 * backend_cuda_dnn.c; everything else launches the small kernels in the
 * kernels/ .cu files through kernels/kernels.h.  All compute is enqueued on
 * the backend's stream and is asynchronous; only copy_d2h, softmax_xent (the
 * loss) and sumsq (host results) wait.  Input batches go up on a second
 * stream (cu_input_normalize) so the upload overlaps queued compute.  Every
 * op first makes the backend's GPU current, so one host thread may drive
 * several backends (towers).
 *
 * Tensors may be any strided view (struct tensor); the kernels index with
 * the strides, and cuDNN gets them as strided descriptors.  Backward ops
 * accumulate, as trainer/backend.h says.  The layout is NCHW fp32 (what the
 * CPU backend uses, so the two compare view for view).
 *
 * Environment: DEEPER_TF32=0 forbids TF32 tensor-core math in cuDNN and
 * cuBLAS (exact fp32, for tests); DEEPER_CUDNN_FIND=0 picks convolution
 * algorithms by cuDNN's heuristics instead of measuring them once per shape;
 * DEEPER_CUDNN_WS_MB caps a convolution's workspace (default 1024);
 * DEEPER_CUDNN_STRIDED=0 packs channel-slice views into dense scratch
 * before cuDNN instead of handing them over as strided descriptors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "trainer/backend/cuda/backend_cuda.h"
#include "trainer/backend/cuda/backend_cuda_internal.h"

status cuda_fail_rt(cudaError_t e, const char *what, const char *file, int line)
{
    return status_fail(STATUS_CUDA, file, line, "cuda: %s: %s", what, cudaGetErrorString(e));
}

status cuda_fail_dnn(cudnnStatus_t e, const char *what, const char *file, int line)
{
    return status_fail(STATUS_CUDA, file, line, "cudnn: %s: %s", what, cudnnGetErrorString(e));
}

status cuda_fail_blas(cublasStatus_t e, const char *what, const char *file, int line)
{
    return status_fail(STATUS_CUDA, file, line, "cublas: %s: %s", what, cublasGetStatusString(e));
}

status cuda_use(struct cuda_ctx *c)
{
    CU(cudaSetDevice(c->device), "cudaSetDevice");
    return STATUS_OK;
}

status cuda_scratch(struct cuda_ctx *c, enum cuda_scratch slot, size_t bytes, void **out)
{
    if (bytes == 0) bytes = 1;
    if (c->scr_bytes[slot] < bytes) {
        size_t want = bytes + bytes / 4;          /* room to grow a little */
        if (c->scr[slot]) {
            CU(cudaStreamSynchronize(c->stream), "sync before growing scratch");
            cudaFree(c->scr[slot]);
            c->scr[slot] = NULL;
            c->scr_bytes[slot] = 0;
        }
        CU(cudaMalloc(&c->scr[slot], want), "scratch allocation");
        c->scr_bytes[slot] = want;
    }
    *out = c->scr[slot];
    return STATUS_OK;
}

status cuda_dense(struct cuda_ctx *c, enum cuda_scratch slot, const struct tensor *t, int load,
                  struct tensor *out)
{
    if (tensor_is_dense(t, LAYOUT_NCHW) || tensor_is_dense(t, LAYOUT_NHWC)) {
        *out = *t;
        return STATUS_OK;
    }
    void *p;
    TRY(cuda_scratch(c, slot, (size_t)tensor_numel(t) * sizeof(float), &p));
    *out = tensor_make(p, DT_F32, LAYOUT_NCHW, t->n, t->c, t->h, t->w);
    if (load) KL(k_scale_copy(c->stream, kt_of(out), kt_of(t), 1.0f, 0.0f), "pack view");
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* devices */

static const char *why_none = "no CUDA-capable device is detected";

int backend_cuda_count(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (e == cudaErrorInsufficientDriver)
            why_none = "no NVIDIA driver, or one too old for this CUDA runtime "
                       "(\"CUDA driver version is insufficient for CUDA runtime version\")";
        else
            why_none = cudaGetErrorString(e);
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

const char *backend_cuda_why_none(void) { return why_none; }

status backend_cuda_describe(int device, char *buf, size_t n)
{
    struct cudaDeviceProp pr;
    CU(cudaGetDeviceProperties(&pr, device), "cudaGetDeviceProperties");
    snprintf(buf, n, "%s, %d SMs, %.1f GiB, cc %d.%d, cuDNN %zu", pr.name, pr.multiProcessorCount,
             (double)pr.totalGlobalMem / (1024.0 * 1024 * 1024), pr.major, pr.minor, cudnnGetVersion());
    return STATUS_OK;
}

void *backend_cuda_stream(struct backend *be) { return cuda_ctx_of(be)->stream; }

void *backend_cuda_host_alloc(size_t n)
{
    void *p = NULL;
    /* portable: pinned for every GPU's context, not only the current one (towers) */
    if (cudaHostAlloc(&p, n ? n : 1, cudaHostAllocPortable) != cudaSuccess) { (void)cudaGetLastError(); return NULL; }
    return p;
}

void backend_cuda_host_free(void *p) { if (p) cudaFreeHost(p); }

/* The host_alloc slot: the trainer's batch buffers in pinned memory, so
 * each upload is one asynchronous DMA.  Where the machine refuses to pin (a
 * sandbox, a memory lock limit) the buffers fall back to ordinary memory
 * with one warning: uploads are then staged by the driver, slower but
 * correct.  A 64-byte header (keeping the 64-byte alignment) records which
 * it was. */
static void *cu_host_alloc(struct backend *be, size_t size)
{
    static int warned;
    (void)be;
    unsigned char *p = backend_cuda_host_alloc(size + 64);
    int pinned = p != NULL;
    if (!p) {
        if (!warned++) log_warn("pinned host memory unavailable; batches go to the GPU from pageable memory");
        p = aligned_alloc(64, (size + 64 + 63) & ~(size_t)63);
        if (!p) return NULL;
    }
    p[0] = (unsigned char)pinned;
    return p + 64;
}

static void cu_host_free(struct backend *be, void *ptr)
{
    (void)be;
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - 64;
    if (p[0]) backend_cuda_host_free(p);
    else free(p);
}

/* Runs on CUDA's callback thread when the stream reaches the mark (no CUDA
 * calls allowed there). */
static void CUDART_CB idle_stamp(void *arg)
{
    struct cuda_ctx *c = arg;
    atomic_store_explicit(&c->idle_at, log_now(), memory_order_relaxed);
    atomic_fetch_add_explicit(&c->idle_reached, 1u, memory_order_release);
}

status backend_cuda_mark(struct backend *be)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    CU(cudaLaunchHostFunc(c->stream, idle_stamp, c), "idle mark");
    c->idle_marked++;
    return STATUS_OK;
}

double backend_cuda_idle_since(struct backend *be)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (atomic_load_explicit(&c->idle_reached, memory_order_acquire) != c->idle_marked) return 0;
    return atomic_load_explicit(&c->idle_at, memory_order_relaxed);
}

void backend_cuda_conv_stats(struct backend *be, long long *direct, long long *packed, int *packed_shapes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    *direct = c->conv_direct;
    *packed = c->conv_packed;
    *packed_shapes = c->conv_pack_shapes;
}

/* ---------------------------------------------------------------------- */
/* memory */

static void *cu_alloc(struct backend *be, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    void *p = NULL;
    if (cuda_use(c) != STATUS_OK) return NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) { (void)cudaGetLastError(); return NULL; }
    if (cudaMemsetAsync(p, 0, bytes, c->stream) != cudaSuccess) { cudaFree(p); return NULL; }
    return p;
}

static void cu_free(struct backend *be, void *p)
{
    if (!p) return;
    struct cuda_ctx *c = cuda_ctx_of(be);
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
    cudaFree(p);
}

static status cu_copy_h2d(struct backend *be, void *dst, const void *src, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream), "copy host to device");
    return STATUS_OK;
}

static status cu_copy_d2h(struct backend *be, void *dst, const void *src, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream), "copy device to host");
    CU(cudaStreamSynchronize(c->stream), "copy device to host (sync)");
    return STATUS_OK;
}

static status cu_copy_d2d(struct backend *be, void *dst, const void *src, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy device to device");
    return STATUS_OK;
}

static status cu_zero(struct backend *be, void *p, size_t bytes)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    CU(cudaMemsetAsync(p, 0, bytes, c->stream), "zero");
    return STATUS_OK;
}

static status cu_sync(struct backend *be)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    CU(cudaStreamSynchronize(c->stream), "sync");
    return STATUS_OK;
}

static void cu_destroy(struct backend *be)
{
    if (!be) return;
    struct cuda_ctx *c = be->ctx;
    if (c) {
        cudaSetDevice(c->device);
        if (c->stream) cudaStreamSynchronize(c->stream);
        if (c->up_stream) cudaStreamSynchronize(c->up_stream);
        cuda_dnn_clear(c);
        for (int i = 0; i < 2; i++) {
            if (c->up_buf[i]) cudaFree(c->up_buf[i]);
            if (c->up_done[i]) cudaEventDestroy(c->up_done[i]);
            if (c->up_free[i]) cudaEventDestroy(c->up_free[i]);
        }
        for (int i = 0; i < SCR_COUNT; i++) if (c->scr[i]) cudaFree(c->scr[i]);
        if (c->loss_rows) cudaFree(c->loss_rows);
        if (c->loss_mean) cudaFree(c->loss_mean);
        if (c->sumsq_out) cudaFree(c->sumsq_out);
        for (int i = 0; i < 3; i++) if (c->td[i]) cudnnDestroyTensorDescriptor(c->td[i]);
        if (c->fd) cudnnDestroyFilterDescriptor(c->fd);
        if (c->cd) cudnnDestroyConvolutionDescriptor(c->cd);
        if (c->cublas) cublasDestroy(c->cublas);
        if (c->cudnn) cudnnDestroy(c->cudnn);
        if (c->up_stream) cudaStreamDestroy(c->up_stream);
        if (c->stream) cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

/* ---------------------------------------------------------------------- */
/* element-wise, input, dropout, pooling, batch norm */

/* The batch goes up on the upload stream into staging buffer i (two, used
 * in turn), and the compute stream waits for that upload only: an upload
 * overlaps whatever compute is still queued (the previous step's backward
 * pass and update).  The host waits for the copy itself (not for compute)
 * before returning, so the caller may reuse x at once, as the contract
 * says; from pinned memory (backend_cuda_host_alloc) the copy is one DMA at
 * full bus speed, from pageable memory the driver stages it. */
static status cu_input_normalize(struct backend *be, struct tensor *y, const uint8_t *x, int n, int h,
                                 int w, int cin)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (y->h != h || y->w != w || n > y->n)
        return FAIL(STATUS_FORMAT, "input_normalize: batch %dx%dx%d does not fit input %dx%dx%d", n, h, w,
                    y->n, y->h, y->w);
    if (!(y->c == cin || (cin == 1 && y->c == 3)))
        return FAIL(STATUS_FORMAT, "input_normalize: %d-channel images for a %d-channel model", cin, y->c);
    TRY(cuda_use(c));
    size_t bytes = (size_t)n * h * w * cin;
    int i = c->up_next;
    c->up_next ^= 1;
    if (c->up_bytes[i] < bytes) {
        CU(cudaEventSynchronize(c->up_free[i]), "input staging (wait for the last use)");
        if (c->up_buf[i]) cudaFree(c->up_buf[i]);
        c->up_buf[i] = NULL;
        c->up_bytes[i] = 0;
        CU(cudaMalloc(&c->up_buf[i], bytes), "input staging buffer");
        c->up_bytes[i] = bytes;
    }
    CU(cudaStreamWaitEvent(c->up_stream, c->up_free[i], 0), "input upload (wait for the buffer)");
    CU(cudaMemcpyAsync(c->up_buf[i], x, bytes, cudaMemcpyHostToDevice, c->up_stream), "input upload");
    CU(cudaEventRecord(c->up_done[i], c->up_stream), "input upload (event)");
    CU(cudaStreamWaitEvent(c->stream, c->up_done[i], 0), "input upload (compute waits)");
    struct tensor yv = tensor_samples(*y, 0, n);
    KL(k_input_normalize(c->stream, kt_of(&yv), c->up_buf[i], cin), "input_normalize kernel");
    CU(cudaEventRecord(c->up_free[i], c->stream), "input staging (event)");
    CU(cudaEventSynchronize(c->up_done[i]), "input upload (host waits for the copy)");
    return STATUS_OK;
}

static status cu_bias_add_forward(struct backend *be, struct tensor *y, const float *b)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_bias4_forward(c->stream, kt_of(y), b), "bias_add kernel");
    return STATUS_OK;
}

static status cu_bias_add_backward(struct backend *be, float *db, const struct tensor *dy)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_bias4_backward(c->stream, db, kt_of(dy)), "bias_add_backward kernel");
    return STATUS_OK;
}

static status cu_relu_forward(struct backend *be, struct tensor *y, const struct tensor *x)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_relu_forward(c->stream, kt_of(y), kt_of(x)), "relu kernel");
    return STATUS_OK;
}

static status cu_relu_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                               const struct tensor *y)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_relu_backward(c->stream, kt_of(dx), kt_of(dy), kt_of(y)), "relu_backward kernel");
    return STATUS_OK;
}

static status cu_dropout_forward(struct backend *be, struct tensor *y, uint8_t *mask,
                                 const struct tensor *x, float keep, uint64_t seed, uint64_t stream)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (!(keep > 0.0f && keep <= 1.0f)) return FAIL(STATUS_USAGE, "dropout: keep %g outside (0, 1]", keep);
    TRY(cuda_use(c));
    KL(k_dropout_forward(c->stream, kt_of(y), mask, kt_of(x), keep, seed, stream), "dropout kernel");
    return STATUS_OK;
}

static status cu_dropout_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                  const uint8_t *mask, float keep)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_dropout_backward(c->stream, kt_of(dx), kt_of(dy), mask, keep), "dropout_backward kernel");
    return STATUS_OK;
}

static status pool_check(const struct tensor *y, const struct tensor *x, const struct pool_params *p)
{
    int oh = (x->h + 2 * p->pad_h - p->kh) / p->stride_h + 1;
    int ow = (x->w + 2 * p->pad_w - p->kw) / p->stride_w + 1;
    if (y->n != x->n || y->c != x->c || y->h != oh || y->w != ow)
        return FAIL(STATUS_FORMAT, "pool: output %dx%dx%dx%d, expected %dx%dx%dx%d", y->n, y->c, y->h, y->w,
                    x->n, x->c, oh, ow);
    return STATUS_OK;
}

static status cu_pool_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                              const struct pool_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(pool_check(y, x, p));
    TRY(cuda_use(c));
    KL(k_pool_forward(c->stream, kt_of(y), kt_of(x), p->kind == POOL_MAX ? 0 : 1, p->kh, p->kw, p->stride_h,
                      p->stride_w, p->pad_h, p->pad_w, p->count_include_pad), "pool kernel");
    return STATUS_OK;
}

static status cu_pool_backward(struct backend *be, struct tensor *dx, const struct tensor *dy,
                               const struct tensor *x, const struct tensor *y, const struct pool_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(pool_check(dy, x, p));
    TRY(cuda_use(c));
    KL(k_pool_backward(c->stream, kt_of(dx), kt_of(dy), kt_of(x), p->kind == POOL_MAX ? 0 : 1, p->kh, p->kw,
                       p->stride_h, p->stride_w, p->pad_h, p->pad_w, p->count_include_pad),
       "pool_backward kernel");
    return STATUS_OK;
}

static status cu_bn_train_forward(struct backend *be, struct tensor *y, float *save_mean, float *save_invstd,
                                  const struct tensor *x, const float *gamma, const float *beta,
                                  float *running_mean, float *running_var, const struct bn_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    void *part;
    TRY(cuda_scratch(c, SCR_PART, k_bn_partial_bytes(x->c, (long long)x->n * x->h * x->w), &part));
    KL(k_bn_train_forward(c->stream, kt_of(y), save_mean, save_invstd, kt_of(x), gamma, beta, running_mean,
                          running_var, p->eps, p->momentum, part), "batchnorm kernel");
    return STATUS_OK;
}

static status cu_bn_infer_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                                  const float *gamma, const float *beta, const float *running_mean,
                                  const float *running_var, const struct bn_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_bn_infer_forward(c->stream, kt_of(y), kt_of(x), gamma, beta, running_mean, running_var, p->eps),
       "batchnorm inference kernel");
    return STATUS_OK;
}

static status cu_bn_backward(struct backend *be, struct tensor *dx, float *dgamma, float *dbeta,
                             const struct tensor *dy, const struct tensor *x, const float *gamma,
                             const float *save_mean, const float *save_invstd, const struct bn_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    void *part;
    TRY(cuda_scratch(c, SCR_PART, k_bn_partial_bytes(x->c, (long long)x->n * x->h * x->w), &part));
    struct kt none = { 0 };
    KL(k_bn_backward(c->stream, dx ? kt_of(dx) : none, dgamma, dbeta, kt_of(dy), kt_of(x), gamma, save_mean, save_invstd,
                     part), "batchnorm backward kernel");
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* loss, optimizer */

static status cu_softmax_xent(struct backend *be, float *loss_host, struct tensor *dlogits,
                              const struct tensor *logits, const int32_t *labels, float smoothing, float scale)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    int n = logits->n, nc = logits->c;
    if (logits->h * logits->w != 1 || logits->sc != 1 || (dlogits && (dlogits->sc != 1 || dlogits->n != n)))
        return FAIL(STATUS_UNSUPPORTED, "softmax_xent: logits must be [N, C] dense rows");
    TRY(cuda_use(c));
    if (c->loss_rows_n < n) {
        if (c->loss_rows) { cudaStreamSynchronize(c->stream); cudaFree(c->loss_rows); c->loss_rows = NULL; }
        c->loss_rows_n = 0;
        CU(cudaMalloc((void **)&c->loss_rows, (size_t)n * sizeof(float)), "loss buffer");
        c->loss_rows_n = n;
    }
    KL(k_softmax_xent(c->stream, c->loss_rows, c->loss_mean, dlogits ? (float *)dlogits->data : NULL,
                      dlogits ? (long long)dlogits->sn : 0, logits->data, (long long)logits->sn, labels, n, nc,
                      smoothing, scale), "softmax_xent kernel");
    CU(cudaMemcpyAsync(loss_host, c->loss_mean, sizeof(float), cudaMemcpyDeviceToHost, c->stream), "loss copy");
    CU(cudaStreamSynchronize(c->stream), "loss sync");
    if (*loss_host != *loss_host) {        /* NaN: a bad label, or diverged logits */
        int32_t *lab = malloc((size_t)n * sizeof *lab);
        if (!lab) return FAIL(STATUS_NOMEM, "softmax_xent: label check");
        cudaError_t e = cudaMemcpy(lab, labels, (size_t)n * sizeof *lab, cudaMemcpyDeviceToHost);
        for (int i = 0; e == cudaSuccess && i < n; i++)
            if (lab[i] < 0 || lab[i] >= nc) {
                int bad = lab[i];
                free(lab);
                return FAIL(STATUS_FORMAT, "softmax_xent: label %d of sample %d outside [0, %d)", bad, i, nc);
            }
        free(lab);
    }
    return STATUS_OK;
}

static status cu_softmax(struct backend *be, struct tensor *probs, const struct tensor *logits)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    if (logits->h * logits->w != 1 || logits->sc != 1 || probs->sc != 1)
        return FAIL(STATUS_UNSUPPORTED, "softmax: logits must be [N, C] dense rows");
    TRY(cuda_use(c));
    KL(k_softmax(c->stream, probs->data, (long long)probs->sn, logits->data, (long long)logits->sn, logits->n,
                 logits->c), "softmax kernel");
    return STATUS_OK;
}

static status cu_rmsprop_update(struct backend *be, float *w, float *ms, float *mom, const float *g, size_t n,
                                const struct rmsprop_params *p)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_rmsprop(c->stream, w, ms, mom, g, n, p->lr, p->decay, p->momentum, p->eps, p->weight_decay,
                 p->grad_scale), "rmsprop kernel");
    return STATUS_OK;
}

static status cu_ema_update(struct backend *be, float *shadow, const float *w, size_t n, float decay)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_ema(c->stream, shadow, w, n, decay), "ema kernel");
    return STATUS_OK;
}

static status cu_axpby(struct backend *be, float *y, const float *x, size_t n, float a, float b)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    KL(k_axpby(c->stream, y, x, n, a, b), "axpby kernel");
    return STATUS_OK;
}

static status cu_sumsq(struct backend *be, double *out_host, const float *x, size_t n)
{
    struct cuda_ctx *c = cuda_ctx_of(be);
    TRY(cuda_use(c));
    void *part;
    TRY(cuda_scratch(c, SCR_PART, k_sumsq_partial_bytes(), &part));
    KL(k_sumsq(c->stream, c->sumsq_out, x, n, part), "sumsq kernel");
    CU(cudaMemcpyAsync(out_host, c->sumsq_out, sizeof(double), cudaMemcpyDeviceToHost, c->stream), "sumsq copy");
    CU(cudaStreamSynchronize(c->stream), "sumsq sync");
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */

static const struct backend_ops cuda_ops = {
    .name = "cuda",
    .api_version = BACKEND_API_VERSION,
    .preferred_layout = LAYOUT_NCHW,
    .alloc = cu_alloc,
    .free = cu_free,
    .copy_h2d = cu_copy_h2d,
    .copy_d2h = cu_copy_d2h,
    .copy_d2d = cu_copy_d2d,
    .zero = cu_zero,
    .sync = cu_sync,
    .destroy = cu_destroy,
    .input_normalize = cu_input_normalize,
    .conv2d_forward = cuda_conv2d_forward,
    .conv2d_backward_data = cuda_conv2d_backward_data,
    .conv2d_backward_filter = cuda_conv2d_backward_filter,
    .batchnorm_train_forward = cu_bn_train_forward,
    .batchnorm_infer_forward = cu_bn_infer_forward,
    .batchnorm_backward = cu_bn_backward,
    .bias_add_forward = cu_bias_add_forward,
    .bias_add_backward = cu_bias_add_backward,
    .pool_forward = cu_pool_forward,
    .pool_backward = cu_pool_backward,
    .relu_forward = cu_relu_forward,
    .relu_backward = cu_relu_backward,
    .fc_forward = cuda_fc_forward,
    .fc_backward = cuda_fc_backward,
    .dropout_forward = cu_dropout_forward,
    .dropout_backward = cu_dropout_backward,
    .softmax_xent = cu_softmax_xent,
    .softmax = cu_softmax,
    .rmsprop_update = cu_rmsprop_update,
    .ema_update = cu_ema_update,
    .axpby = cu_axpby,
    .sumsq = cu_sumsq,
    .host_alloc = cu_host_alloc,
    .host_free = cu_host_free,
    .mark = backend_cuda_mark,
    .idle_since = backend_cuda_idle_since,
    .comm_new = cuda_comm_new,
    .comm_run = cuda_comm_run,
    .comm_free = cuda_comm_free,
};

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

status backend_cuda_create(struct backend **out, int device)
{
    *out = NULL;
    int count = backend_cuda_count();
    if (count <= 0) return FAIL(STATUS_NO_DEVICE, "no CUDA device: %s", why_none);
    if (device < 0 || device >= count)
        return FAIL(STATUS_NO_DEVICE, "GPU %d requested, %d present", device, count);
    struct backend *be = calloc(1, sizeof *be);
    struct cuda_ctx *c = calloc(1, sizeof *c);
    status st = STATUS_OK;
    if (!be || !c) { free(be); free(c); return FAIL(STATUS_NOMEM, "cuda backend"); }
    be->ops = &cuda_ops;
    be->ctx = c;
    be->device = device;
    be->threads = 1;
    c->device = device;
    c->tf32 = env_int("DEEPER_TF32", 1) != 0;
    c->find = env_int("DEEPER_CUDNN_FIND", 1) != 0;
    c->ws_limit = (size_t)env_int("DEEPER_CUDNN_WS_MB", 1024) << 20;
    c->strided_dnn = env_int("DEEPER_CUDNN_STRIDED", 1) != 0;
    {
        cudaError_t e = cudaSetDevice(device);
        if (e != cudaSuccess) { st = cuda_fail_rt(e, "cudaSetDevice", __FILE__, __LINE__); goto fail; }
        e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
        if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->up_stream, cudaStreamNonBlocking);
        for (int i = 0; i < 2 && e == cudaSuccess; i++) {
            e = cudaEventCreateWithFlags(&c->up_done[i], cudaEventDisableTiming);
            if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->up_free[i], cudaEventDisableTiming);
        }
        if (e != cudaSuccess) { st = cuda_fail_rt(e, "streams and events", __FILE__, __LINE__); goto fail; }
        e = cudaMalloc((void **)&c->loss_mean, sizeof(float));
        if (e == cudaSuccess) e = cudaMalloc((void **)&c->sumsq_out, sizeof(double));
        if (e != cudaSuccess) { st = cuda_fail_rt(e, "small buffers", __FILE__, __LINE__); goto fail; }
    }
    {
        cudnnStatus_t d = cudnnCreate(&c->cudnn);
        if (d == CUDNN_STATUS_SUCCESS) d = cudnnSetStream(c->cudnn, c->stream);
        for (int i = 0; i < 3 && d == CUDNN_STATUS_SUCCESS; i++) d = cudnnCreateTensorDescriptor(&c->td[i]);
        if (d == CUDNN_STATUS_SUCCESS) d = cudnnCreateFilterDescriptor(&c->fd);
        if (d == CUDNN_STATUS_SUCCESS) d = cudnnCreateConvolutionDescriptor(&c->cd);
        if (d != CUDNN_STATUS_SUCCESS) { st = cuda_fail_dnn(d, "cudnn init", __FILE__, __LINE__); goto fail; }
    }
    {
        cublasStatus_t b = cublasCreate(&c->cublas);
        if (b == CUBLAS_STATUS_SUCCESS) b = cublasSetStream(c->cublas, c->stream);
        if (b == CUBLAS_STATUS_SUCCESS)
            b = cublasSetMathMode(c->cublas, c->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
        if (b != CUBLAS_STATUS_SUCCESS) { st = cuda_fail_blas(b, "cublas init", __FILE__, __LINE__); goto fail; }
    }
    *out = be;
    return STATUS_OK;
fail:
    cu_destroy(be);
    return st;
}
