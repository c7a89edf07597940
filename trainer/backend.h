/*
 * backend.h — the compute backend interface (an ops table, in the spirit of
 * ggml-backend, narrowed to what the models need).
 *
 * One `struct backend` is one execution stream on one device: the CPU backend
 * (trainer/backend/cpu/) or one GPU (trainer/backend/cuda/ + kernels/).
 * Models and the trainer call only the ops and the wrappers below; they
 * never know which backend runs.  A tower owns exactly one backend.
 * Whatever differs between backends beyond the ops (host buffers for
 * input, idle accounting, the reduction between towers) is an optional
 * slot at the end of the table: NULL means not supported, and the caller
 * uses the default the slot's comment names.
 *
 * Conventions every backend follows (the CPU backend is the reference):
 *   - All float tensors are fp32 unless the op says otherwise; tensors may be
 *     strided views (struct tensor), e.g. channel slices of a concat output.
 *   - Forward ops OVERWRITE their outputs.
 *   - Backward ops ACCUMULATE (+=) into every gradient they produce, both
 *     activation gradients (dx) and parameter gradients (dw, db, dgamma,
 *     dbeta).  An activation that feeds several branches thus gets the sum of
 *     their gradients with no extra adds.  The graph zeroes gradient buffers
 *     once per step (backend_zero).
 *   - Ops are asynchronous with respect to the host where the backend allows;
 *     backend_sync waits.  copy_d2h of a scalar (the loss) implies a sync.
 *   - Failures return a status with a message (FAIL); nothing exits.
 *   - Random ops (dropout) take (seed, stream) and use the counter-based RNG
 *     (shared/rng.h) so CPU and CUDA draw the same masks.
 *
 * Argument order follows llm.c: outputs first, then saved tensors, then
 * inputs, then parameters, then a small params struct.
 */
#ifndef DEEPER_BACKEND_H
#define DEEPER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"
#include "trainer/tensor.h"

#define BACKEND_API_VERSION 1

struct backend;

struct conv_params {
    int kh, kw;          /* kernel */
    int stride_h, stride_w;
    int pad_h, pad_w;    /* symmetric zero padding */
};

enum pool_kind { POOL_MAX = 0, POOL_AVG = 1 };

struct pool_params {
    enum pool_kind kind;
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
    int count_include_pad;   /* avg: divide by kh*kw (torchvision) or by the cells inside */
};

struct bn_params {
    float eps;           /* 0.001 for Inception v3 */
    float momentum;      /* running = (1-momentum)*running + momentum*batch; TF decay 0.9997 -> 0.0003 */
};

struct rmsprop_params {
    float lr, decay, momentum, eps;   /* TF: decay 0.9, momentum 0.9, eps 1.0 */
    float weight_decay;               /* L2 coefficient added to the gradient: g += wd * w */
    float grad_scale;                 /* multiply g by this first (1/num_towers, 1/loss_scale) */
};

struct backend_comm;   /* a backend's communicator over several of its instances */

/* One collective of a group (backend_ops.comm_run), over floats
 * [off, off + count) of bufs[i] on backend i: an in-place sum over all
 * backends (broadcast 0) or bufs[root] copied into every other (broadcast 1). */
struct backend_collective {
    int broadcast;
    int root;
    float **bufs;                     /* one per backend of the communicator */
    size_t off, count;
};

struct backend_ops {
    const char *name;                 /* "cpu", "cuda" */
    int api_version;
    enum tensor_layout preferred_layout;
    /* 1: alloc returns ordinary host memory that every backend of this kind
     * can address, and the backends share the host's cores (the CPU): towers
     * copy between each other with copy_d2d, sum gradients with axpby and
     * run one after another.  0: memory on a device, one tower per device,
     * towers run side by side from one host thread each. */
    int host_memory;

    /* memory */
    void  *(*alloc)(struct backend *be, size_t bytes);           /* NULL on failure; zeroed */
    void   (*free)(struct backend *be, void *p);
    status (*copy_h2d)(struct backend *be, void *dst, const void *src, size_t bytes);
    status (*copy_d2h)(struct backend *be, void *dst, const void *src, size_t bytes);
    status (*copy_d2d)(struct backend *be, void *dst, const void *src, size_t bytes);
    status (*zero)(struct backend *be, void *p, size_t bytes);
    status (*sync)(struct backend *be);
    void   (*destroy)(struct backend *be);

    /* input: uint8 NHWC batch in HOST memory (the backend stages it to the
     * device itself; the CPU backend reads it in place) -> float y in [-1, 1]: y = (x/255 - 0.5) * 2.  If y has 3 channels and
     * the input 1, the gray value is repeated. */
    status (*input_normalize)(struct backend *be, struct tensor *y, const uint8_t *x_nhwc,
                              int n, int h, int w, int c);

    /* convolution, no bias (BN follows, or bias_add below); w is [out, in,
     * kh, kw] dense.  y has the usual output size
     * (h + 2*pad - k) / stride + 1 per axis (floor). */
    status (*conv2d_forward)(struct backend *be, struct tensor *y, const struct tensor *x,
                             const struct tensor *w, const struct conv_params *p);
    status (*conv2d_backward_data)(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                   const struct tensor *w, const struct conv_params *p);
    status (*conv2d_backward_filter)(struct backend *be, struct tensor *dw, const struct tensor *dy,
                                     const struct tensor *x, const struct conv_params *p);

    /* batch norm over (N, H, W) per channel.  Training: normalise with the
     * batch mean and biased variance, save mean and 1/sqrt(var+eps) for
     * backward, update running stats with momentum (running_var gets the
     * unbiased variance, as PyTorch does).  Inference: running statistics. */
    status (*batchnorm_train_forward)(struct backend *be, struct tensor *y, float *save_mean,
                                      float *save_invstd, const struct tensor *x, const float *gamma,
                                      const float *beta, float *running_mean, float *running_var,
                                      const struct bn_params *p);
    status (*batchnorm_infer_forward)(struct backend *be, struct tensor *y, const struct tensor *x,
                                      const float *gamma, const float *beta, const float *running_mean,
                                      const float *running_var, const struct bn_params *p);
    status (*batchnorm_backward)(struct backend *be, struct tensor *dx, float *dgamma, float *dbeta,
                                 const struct tensor *dy, const struct tensor *x, const float *gamma,
                                 const float *save_mean, const float *save_invstd,
                                 const struct bn_params *p);

    /* per-channel bias (conv layers without BN, e.g. NielsenNet):
     * forward y[n,c,h,w] += b[c] in place; backward db[c] += sum over
     * (n,h,w) of dy. */
    status (*bias_add_forward)(struct backend *be, struct tensor *y, const float *b);
    status (*bias_add_backward)(struct backend *be, float *db, const struct tensor *dy);

    /* pooling.  Output size (h + 2*pad - k) / stride + 1 (floor, VALID-style;
     * no ceil mode).  Max pool ignores padded cells; backward routes each
     * gradient to the first maximum in row-major window order.  Avg pool
     * divides by kh*kw when count_include_pad, else by the cells inside. */
    status (*pool_forward)(struct backend *be, struct tensor *y, const struct tensor *x,
                           const struct pool_params *p);
    status (*pool_backward)(struct backend *be, struct tensor *dx, const struct tensor *dy,
                            const struct tensor *x, const struct tensor *y, const struct pool_params *p);

    /* ReLU; y may alias x.  backward uses y (> 0). */
    status (*relu_forward)(struct backend *be, struct tensor *y, const struct tensor *x);
    status (*relu_backward)(struct backend *be, struct tensor *dx, const struct tensor *dy,
                            const struct tensor *y);

    /* fully connected: x [N, in] (a tensor with c*h*w = in, flattened in C,H,W
     * order), w [out, in] row-major (torchvision), b [out]; y [N, out]. */
    status (*fc_forward)(struct backend *be, struct tensor *y, const struct tensor *x,
                         const float *w, const float *b, int in, int out);
    status (*fc_backward)(struct backend *be, struct tensor *dx, float *dw, float *db,
                          const struct tensor *dy, const struct tensor *x, const float *w,
                          int in, int out);

    /* dropout (inverted): y = x * mask / keep, mask stored as uint8 (dense,
     * element i = NCHW index within x).  The draw for element i is fixed so
     * CPU and CUDA, and 1 tower x 32 versus 2 towers x 16, agree: with
     * j = stream + i, out = rng_philox(ctr = {lo32(j/4), hi32(j/4), 0, 0},
     * key = {lo32(seed), hi32(seed)}), u = (out[j%4] >> 8) * 2^-24, and the
     * element is kept iff u < keep.  Callers pass stream = the global element
     * offset of x's first sample (tower offset * per-sample size). */
    status (*dropout_forward)(struct backend *be, struct tensor *y, uint8_t *mask,
                              const struct tensor *x, float keep, uint64_t seed, uint64_t stream);
    status (*dropout_backward)(struct backend *be, struct tensor *dx, const struct tensor *dy,
                               const uint8_t *mask, float keep);

    /* softmax cross-entropy with label smoothing, mean over the batch:
     * target = (1-s)*onehot + s/C.  Writes the (unscaled) mean loss to
     * *loss_host after a sync, and dlogits += scale * d(mean loss)/dlogits.
     * labels: int32[N] in backend memory.  logits and dlogits are [N, C]
     * (h = w = 1).  Top-k accuracy is computed by the caller from logits. */
    status (*softmax_xent)(struct backend *be, float *loss_host, struct tensor *dlogits,
                           const struct tensor *logits, const int32_t *labels, float smoothing,
                           float scale);
    /* softmax probabilities (inference); probs may alias logits. */
    status (*softmax)(struct backend *be, struct tensor *probs, const struct tensor *logits);

    /* optimizer and averaging, over n contiguous floats */
    status (*rmsprop_update)(struct backend *be, float *w, float *ms, float *mom, const float *g,
                             size_t n, const struct rmsprop_params *p);
    status (*ema_update)(struct backend *be, float *shadow, const float *w, size_t n, float decay);
    /* y = a*x + b*y over n floats (gradient averaging, accumulation) */
    status (*axpby)(struct backend *be, float *y, const float *x, size_t n, float a, float b);
    /* sum of squares of n floats, to the host (weight-decay loss, grad norms) */
    status (*sumsq)(struct backend *be, double *out_host, const float *x, size_t n);

    /* ---- optional slots (NULL: not supported; the default is named) ---- */

    /* Host memory for input batches, the kind copy_h2d and input_normalize
     * read fastest (page-locked on GPUs, so each upload is one asynchronous
     * DMA).  NULL only when the host is out of memory: a backend that cannot
     * lock memory falls back to ordinary memory itself.  Freed with
     * host_free.  Default: ordinary host memory (aligned malloc). */
    void  *(*host_alloc)(struct backend *be, size_t bytes);
    void   (*host_free)(struct backend *be, void *p);

    /* Idle accounting, for the trainer's input-wait fraction: mark stamps
     * the backend's queue after the work submitted so far; idle_since is
     * the host time (log_now) at which the device finished everything
     * before the latest mark, or 0 while it has not.  Default: the ops
     * return when their work is done, so the device is idle whenever the
     * host waits. */
    status (*mark)(struct backend *be);
    double (*idle_since)(struct backend *be);

    /* The reduction between towers: collectives over n backends of this
     * kind on distinct devices (NCCL on GPUs).  comm_new may decline by
     * setting *out to NULL and returning STATUS_OK (one device, switched
     * off).  comm_run issues the collectives in order, asynchronously on
     * every backend's own queue.  Default: the towers sum and broadcast
     * through host memory (copy_d2h, add, copy_h2d). */
    status (*comm_new)(struct backend_comm **out, struct backend **be, int n);
    status (*comm_run)(struct backend_comm *c, const struct backend_collective *ops, int nops);
    void   (*comm_free)(struct backend_comm **c);
};

struct backend {
    const struct backend_ops *ops;
    void *ctx;            /* the backend's own state */
    int device;           /* GPU ordinal; 0 for CPU */
    int threads;          /* CPU threads the backend may use */
};

/* Create backends.  `name` is "cpu", "cuda", or "auto" (CUDA when a GPU is
 * present).  backend_new_cuda returns STATUS_NO_DEVICE with a clear message
 * when there is no GPU or the build has no CUDA.  threads <= 0 means all
 * cores.  The caller frees with backend_free (NULL-safe).
 *
 * trainer/backend/registry.c holds these wrappers; in builds with CUDA
 * it calls
 *   status backend_cuda_create(struct backend **out, int device);
 *   int    backend_cuda_count(void);
 * which trainer/backend/cuda/backend_cuda.c defines.  After creation the
 * registry checks api_version and that every mandatory slot is filled; the
 * optional slots may stay NULL. */
status backend_new(struct backend **out, const char *name, int device, int threads);
status backend_new_cpu(struct backend **out, int threads);
status backend_new_cuda(struct backend **out, int device);
int    backend_cuda_device_count(void);   /* 0 without CUDA */
/* The concrete backend a name stands for: "auto" becomes "cuda" when a GPU
 * exists and "cpu" otherwise; NULL becomes "cpu"; other names are returned
 * as they are (backend_new validates them).  Static strings or `name`. */
const char *backend_name_resolve(const char *name);
/* Whether the backend `name` stands for (after backend_name_resolve) keeps
 * its memory on the host and shares the host's cores, as the CPU does: its
 * towers are --num_towers on one machine; otherwise one tower per device
 * (--num_gpus). */
int    backend_name_on_host(const char *name);
void   backend_free(struct backend **be);

#endif
