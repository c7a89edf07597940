/*
 * optim.cu — fused per-parameter updates over n contiguous floats: TF's
 * RMSProp with momentum, the EMA of the weights, y = a*x + b*y, and a
 * deterministic sum of squares (double partials per block, then one block).
 *
 * RMSProp (TF RMSPropOptimizer, the CPU backend's order of operations):
 *     g   = grad_scale * g + weight_decay * w
 *     ms  = decay * ms + (1 - decay) * g^2
 *     mom = momentum * mom + lr * g / sqrt(ms + eps)
 *     w  -= mom
 * EMA (TF ExponentialMovingAverage): shadow -= (1 - decay) * (shadow - w).
 */
#include "kernels/common.cuh"

__global__ void rmsprop_kernel(float *w, float *ms, float *mom, const float *g, size_t n, float lr,
                               float decay, float momentum, float eps, float wd, float gs)
{
    K_GRID_LOOP(i, (long long)n) {
        float wi = w[i];
        float gi = gs * g[i] + wd * wi;
        float m = decay * ms[i] + (1.0f - decay) * gi * gi;
        float v = momentum * mom[i] + lr * gi / sqrtf(m + eps);
        ms[i] = m;
        mom[i] = v;
        w[i] = wi - v;
    }
}

extern "C" int k_rmsprop(kstream s, float *w, float *ms, float *mom, const float *g, size_t n, float lr,
                         float decay, float momentum, float eps, float weight_decay, float grad_scale)
{
    if (n == 0) return 0;
    rmsprop_kernel<<<k_blocks((long long)n), K_THREADS, 0, (cudaStream_t)s>>>(w, ms, mom, g, n, lr, decay, momentum,
                                                                              eps, weight_decay, grad_scale);
    return k_err();
}

__global__ void ema_kernel(float *shadow, const float *w, size_t n, float decay)
{
    K_GRID_LOOP(i, (long long)n) shadow[i] -= (1.0f - decay) * (shadow[i] - w[i]);
}

extern "C" int k_ema(kstream s, float *shadow, const float *w, size_t n, float decay)
{
    if (n == 0) return 0;
    ema_kernel<<<k_blocks((long long)n), K_THREADS, 0, (cudaStream_t)s>>>(shadow, w, n, decay);
    return k_err();
}

__global__ void axpby_kernel(float *y, const float *x, size_t n, float a, float b)
{
    K_GRID_LOOP(i, (long long)n) y[i] = b == 0.0f ? a * x[i] : a * x[i] + b * y[i];
}

extern "C" int k_axpby(kstream s, float *y, const float *x, size_t n, float a, float b)
{
    if (n == 0) return 0;
    axpby_kernel<<<k_blocks((long long)n), K_THREADS, 0, (cudaStream_t)s>>>(y, x, n, a, b);
    return k_err();
}

#define SUMSQ_BLOCKS 512

__global__ void sumsq_partial_kernel(double *partial, const float *x, size_t n)
{
    __shared__ double sh[32];
    double a = 0.0;
    K_GRID_LOOP(i, (long long)n) a += (double)x[i] * x[i];
    a = k_block_sum<double>(a, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = a;
}

__global__ void sumsq_final_kernel(double *out, const double *partial, int parts)
{
    __shared__ double sh[32];
    double a = 0.0;
    for (int i = threadIdx.x; i < parts; i += blockDim.x) a += partial[i];
    a = k_block_sum<double>(a, sh);
    if (threadIdx.x == 0) out[0] = a;
}

extern "C" size_t k_sumsq_partial_bytes(void) { return SUMSQ_BLOCKS * sizeof(double); }

extern "C" int k_sumsq(kstream s, double *out, const float *x, size_t n, void *partial)
{
    cudaStream_t st = (cudaStream_t)s;
    unsigned blocks = k_blocks((long long)n);
    if (blocks > SUMSQ_BLOCKS) blocks = SUMSQ_BLOCKS;
    sumsq_partial_kernel<<<blocks, K_THREADS, 0, st>>>((double *)partial, x, n);
    sumsq_final_kernel<<<1, K_THREADS, 0, st>>>(out, (const double *)partial, (int)blocks);
    return k_err();
}
