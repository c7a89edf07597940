/*
 * kernels.h — the C entry points of the CUDA kernels (the .cu files beside it).
 *
 * trainer/backend/cuda/backend_cuda.c (plain C11) calls these launchers; each .cu file
 * holds one op family (ggml style) and defines its launchers extern "C".
 * A launcher enqueues its kernel(s) on the given stream and returns the
 * cudaError_t of the launch as an int (0 = success); it never synchronises.
 *
 * Tensors cross this boundary as `struct kt`: a device pointer, a logical
 * N, C, H, W shape and element strides, exactly like struct tensor
 * (trainer/tensor.h), so every kernel accepts strided views (channel slices
 * of a concat output) in NCHW or NHWC.  Element (n, c, h, w) lives at
 * p[n*sn + c*sc + h*sh + w*sw].  A "logical index" is the dense NCHW index
 * ((n*C + c)*H + h)*W + w; it names an element independently of layout
 * (dropout masks and RNG counters use it, so CPU and GPU agree).
 *
 * Gradient kernels ACCUMULATE (dx += ...), as the backend contract says.
 */
#ifndef DEEPER_KERNELS_H
#define DEEPER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kt {
    float *p;
    int n, c, h, w;
    long long sn, sc, sh, sw;
};

/* The stream is a cudaStream_t passed as void* so this header needs no CUDA. */
typedef void *kstream;

/* input.cu: y = (x/255 - 0.5)*2 from uint8 NHWC (cin 1 or 3; gray repeated
 * when y.c == 3 and cin == 1). x is device memory. */
int k_input_normalize(kstream s, struct kt y, const uint8_t *x, int cin);

/* eltwise.cu */
/* y = a*x + b*y over two same-shape strided views (b == 0: y = a*x). */
int k_scale_copy(kstream s, struct kt y, struct kt x, float a, float b);
int k_relu_forward(kstream s, struct kt y, struct kt x);
int k_relu_backward(kstream s, struct kt dx, struct kt dy, struct kt y);
/* per-channel bias on a 4-D view: y[n,c,h,w] += b[c]; db[c] += sum dy */
int k_bias4_forward(kstream s, struct kt y, const float *b);
int k_bias4_backward(kstream s, float *db, struct kt dy);
/* y[n, o] += b[o] for an [N, out] matrix with row stride ld. */
int k_bias_add(kstream s, float *y, long long ld, const float *b, int n, int out);
/* db[o] += sum_n dy[n*ld + o] */
int k_bias_grad(kstream s, float *db, const float *dy, long long ld, int n, int out);

/* dropout.cu: mask[i] = u(seed, j = stream + i) < keep over logical index
 * i (trainer/backend.h gives the exact draw); y = x*mask/keep.
 * backward: dx += dy*mask/keep. */
int k_dropout_forward(kstream s, struct kt y, uint8_t *mask, struct kt x, float keep,
                      uint64_t seed, uint64_t stream);
int k_dropout_backward(kstream s, struct kt dx, struct kt dy, const uint8_t *mask, float keep);

/* pool.cu (kind 0 max, 1 avg) */
int k_pool_forward(kstream s, struct kt y, struct kt x, int kind, int kh, int kw, int sh, int sw,
                   int ph, int pw, int count_include_pad);
int k_pool_backward(kstream s, struct kt dx, struct kt dy, struct kt x, int kind, int kh, int kw,
                    int sh, int sw, int ph, int pw, int count_include_pad);

/* batchnorm.cu.  `partial` is device scratch of at least
 * k_bn_partial_bytes(C, M) bytes (M = N*H*W). */
size_t k_bn_partial_bytes(int c, long long m);
int k_bn_train_forward(kstream s, struct kt y, float *save_mean, float *save_invstd, struct kt x,
                       const float *gamma, const float *beta, float *running_mean,
                       float *running_var, float eps, float momentum, void *partial);
int k_bn_infer_forward(kstream s, struct kt y, struct kt x, const float *gamma, const float *beta,
                       const float *running_mean, const float *running_var, float eps);
int k_bn_backward(kstream s, struct kt dx, float *dgamma, float *dbeta, struct kt dy, struct kt x,
                  const float *gamma, const float *save_mean, const float *save_invstd,
                  void *partial);

/* xent.cu: logits/dlogits are [N, C] with row stride ld (h = w = 1).
 * loss_rows: device float[N] scratch; loss_sum: device float[1] (the mean). */
int k_softmax_xent(kstream s, float *loss_rows, float *loss_mean, float *dlogits, long long ld_d,
                   const float *logits, long long ld, const int32_t *labels, int n, int c,
                   float smoothing, float scale);
int k_softmax(kstream s, float *probs, long long ld_p, const float *logits, long long ld, int n,
              int c);

/* optim.cu (n contiguous floats) */
int k_rmsprop(kstream s, float *w, float *ms, float *mom, const float *g, size_t n, float lr,
              float decay, float momentum, float eps, float weight_decay, float grad_scale);
int k_ema(kstream s, float *shadow, const float *w, size_t n, float decay);
int k_axpby(kstream s, float *y, const float *x, size_t n, float a, float b);
/* out: device double[1]; partial: device scratch of k_sumsq_partial_bytes() */
size_t k_sumsq_partial_bytes(void);
int k_sumsq(kstream s, double *out, const float *x, size_t n, void *partial);

#ifdef __cplusplus
}
#endif

#endif
