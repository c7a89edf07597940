/*
 * xent.cu — softmax cross-entropy with label smoothing (one block per row)
 * and its mean over the batch, plus plain softmax for inference.
 *
 * Row n: target = (1-s)*onehot(label) + s/C; loss_n = logsumexp(z) - sum_c
 * target_c z_c; dlogits += scale/N * (softmax(z) - target).  The mean is
 * reduced by a single block in a fixed order (deterministic).  A label
 * outside [0, C) makes that row's loss NaN so the trainer notices.
 */
#include "kernels/common.cuh"

/* max of z[0..c) over the block; valid in every thread.  sh is reused by
 * the block sums after it (k_block_sum syncs before writing it). */
__device__ __forceinline__ float row_max(const float *z, int c, float *sh /* [32] */)
{
    float mx = -INFINITY;
    for (int k = threadIdx.x; k < c; k += blockDim.x) mx = fmaxf(mx, z[k]);
    mx = k_warp_max(mx);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) mx = fmaxf(mx, sh[i]);
    return mx;
}

__global__ void xent_rows_kernel(float *loss_rows, float *dlogits, long long ld_d, const float *logits,
                                 long long ld, const int32_t *labels, int c, float smoothing,
                                 float gscale)
{
    __shared__ float sh[32];
    int n = blockIdx.x;
    const float *z = logits + (long long)n * ld;
    float mx = row_max(z, c, sh);
    float se = 0.0f, sz = 0.0f;
    for (int k = threadIdx.x; k < c; k += blockDim.x) { se += expf(z[k] - mx); sz += z[k]; }
    se = k_block_sum<float>(se, sh);
    sz = k_block_sum<float>(sz, sh);
    int lab = labels[n];
    int ok = lab >= 0 && lab < c;
    float lse = logf(se) + mx;
    float off = smoothing / (float)c;
    if (threadIdx.x == 0) {
        float zl = ok ? z[lab] : 0.0f;
        loss_rows[n] = ok ? lse - (off * sz + (1.0f - smoothing) * zl) : NAN;
    }
    if (dlogits) {
        float *d = dlogits + (long long)n * ld_d;
        for (int k = threadIdx.x; k < c; k += blockDim.x) {
            float t = off + (k == lab ? 1.0f - smoothing : 0.0f);
            d[k] += gscale * (expf(z[k] - lse) - t);
        }
    }
}

__global__ void mean_kernel(float *out, const float *v, int n)
{
    __shared__ double sh[32];
    double a = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) a += v[i];
    a = k_block_sum<double>(a, sh);
    if (threadIdx.x == 0) out[0] = (float)(a / (double)n);
}

extern "C" int k_softmax_xent(kstream s, float *loss_rows, float *loss_mean, float *dlogits, long long ld_d,
                              const float *logits, long long ld, const int32_t *labels, int n, int c,
                              float smoothing, float scale)
{
    cudaStream_t st = (cudaStream_t)s;
    if (n == 0) return 0;
    int threads = c <= 128 ? 64 : K_THREADS;
    xent_rows_kernel<<<n, threads, 0, st>>>(loss_rows, dlogits, ld_d, logits, ld, labels, c, smoothing,
                                            scale / (float)n);
    mean_kernel<<<1, K_THREADS, 0, st>>>(loss_mean, loss_rows, n);
    return k_err();
}

__global__ void softmax_kernel(float *probs, long long ld_p, const float *logits, long long ld, int c)
{
    __shared__ float sh[32];
    int n = blockIdx.x;
    const float *z = logits + (long long)n * ld;
    float *p = probs + (long long)n * ld_p;
    float mx = row_max(z, c, sh);
    float se = 0.0f;
    for (int k = threadIdx.x; k < c; k += blockDim.x) se += expf(z[k] - mx);
    se = k_block_sum<float>(se, sh);     /* its first barrier orders the reads of z before p writes */
    for (int k = threadIdx.x; k < c; k += blockDim.x) p[k] = expf(z[k] - mx) / se;
}

extern "C" int k_softmax(kstream s, float *probs, long long ld_p, const float *logits, long long ld, int n, int c)
{
    if (n == 0) return 0;
    int threads = c <= 128 ? 64 : K_THREADS;
    softmax_kernel<<<n, threads, 0, (cudaStream_t)s>>>(probs, ld_p, logits, ld, c);
    return k_err();
}
