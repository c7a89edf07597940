/*
 * batchnorm.cu — batch normalisation over (N, H, W) per channel on strided
 * views, training forward, inference forward and backward.
 *
 * Own kernels rather than cuDNN's so that channel-slice views (the output of
 * a branch inside a concat) work directly and the statistics follow the
 * contract in trainer/backend.h exactly: biased batch variance for
 * normalising, save_invstd = 1/sqrt(var + eps), running_var updated with the
 * unbiased variance (PyTorch), running = (1-momentum)*running + momentum*batch.
 *
 * Reductions are deterministic: grid (C, S) blocks each reduce a fixed slice
 * of the M = N*H*W cells of one channel into double partials, then one
 * thread per channel adds its S partials in order.  Sums are in double, so
 * the one-pass variance E[x^2] - E[x]^2 keeps fp32 accuracy.
 *
 * NULL pointers mean what they mean on the CPU backend: no gamma/beta
 * (1 and 0), no running statistics to update, no dgamma/dbeta/dx wanted.
 */
#include "kernels/common.cuh"

static inline int bn_slices(long long m)
{
    long long s = (m + 4095) / 4096;
    if (s > 64) s = 64;
    if (s < 1) s = 1;
    return (int)s;
}

extern "C" size_t k_bn_partial_bytes(int c, long long m)
{
    return (size_t)c * bn_slices(m) * 2 * sizeof(double) + (size_t)c * 2 * sizeof(float);
}

/* mode 0: (sum x, sum x^2); mode 1: (sum dy, sum dy*xhat) with xhat from mean/invstd */
template <int MODE>
__global__ void bn_reduce_kernel(struct kt x, struct kt dy, const float *mean, const float *invstd,
                                 double *partial, int slices)
{
    __shared__ double sh[32];
    int c = blockIdx.x, s = blockIdx.y;
    long long m = (long long)x.n * x.h * x.w;
    long long chunk = (m + slices - 1) / slices;
    long long lo = s * chunk, hi = lo + chunk < m ? lo + chunk : m;
    int hw = x.h * x.w;
    float mu = MODE ? mean[c] : 0.0f, is = MODE ? invstd[c] : 0.0f;
    double a = 0.0, b = 0.0;
    for (long long k = lo + threadIdx.x; k < hi; k += blockDim.x) {
        long long n; int r; k_split(k, hw, &n, &r); int h = r / x.w, w = r % x.w;
        float v = x.p[n * x.sn + (long long)c * x.sc + (long long)h * x.sh + (long long)w * x.sw];
        if (MODE == 0) { a += v; b += (double)v * v; }
        else {
            float d = dy.p[n * dy.sn + (long long)c * dy.sc + (long long)h * dy.sh + (long long)w * dy.sw];
            a += d; b += (double)d * ((v - mu) * is);
        }
    }
    a = k_block_sum<double>(a, sh);
    b = k_block_sum<double>(b, sh);
    if (threadIdx.x == 0) {
        partial[((long long)c * slices + s) * 2 + 0] = a;
        partial[((long long)c * slices + s) * 2 + 1] = b;
    }
}

__global__ void bn_finalize_fwd(const double *partial, int slices, int channels, long long m,
                                float *save_mean, float *save_invstd, float *rmean, float *rvar,
                                float eps, float momentum)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    double a = 0.0, b = 0.0;
    for (int s = 0; s < slices; s++) { a += partial[((long long)c * slices + s) * 2]; b += partial[((long long)c * slices + s) * 2 + 1]; }
    double mean = a / (double)m;
    double var = b / (double)m - mean * mean;
    if (var < 0.0) var = 0.0;
    save_mean[c] = (float)mean;
    save_invstd[c] = (float)(1.0 / sqrt(var + (double)eps));   /* as the CPU backend: in double */
    if (!rmean) return;
    double unbiased = m > 1 ? var * (double)m / (double)(m - 1) : var;
    rmean[c] = (1.0f - momentum) * rmean[c] + momentum * (float)mean;
    rvar[c] = (1.0f - momentum) * rvar[c] + momentum * (float)unbiased;
}

__global__ void bn_apply_kernel(struct kt y, struct kt x, const float *gamma, const float *beta,
                                const float *mean, const float *invstd)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        int c = kt_chan(y, i);
        float v = x.p[kt_off(x, i)];
        float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
        y.p[kt_off(y, i)] = g * ((v - mean[c]) * invstd[c]) + b;
    }
}

__global__ void bn_infer_kernel(struct kt y, struct kt x, const float *gamma, const float *beta,
                                const float *rmean, const float *rvar, float eps)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        int c = kt_chan(y, i);
        float v = x.p[kt_off(x, i)];
        float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
        y.p[kt_off(y, i)] = g * ((v - rmean[c]) / sqrtf(rvar[c] + eps)) + b;
    }
}

__global__ void bn_finalize_bwd(const double *partial, int slices, int channels, float *dgamma,
                                float *dbeta, float *sums)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= channels) return;
    double a = 0.0, b = 0.0;
    for (int s = 0; s < slices; s++) { a += partial[((long long)c * slices + s) * 2]; b += partial[((long long)c * slices + s) * 2 + 1]; }
    if (dbeta) dbeta[c] += (float)a;
    if (dgamma) dgamma[c] += (float)b;
    sums[2 * c] = (float)a;
    sums[2 * c + 1] = (float)b;
}

__global__ void bn_dx_kernel(struct kt dx, struct kt dy, struct kt x, const float *gamma,
                             const float *mean, const float *invstd, const float *sums, float inv_m)
{
    long long total = (long long)dx.n * dx.c * dx.h * dx.w;
    K_GRID_LOOP(i, total) {
        int c = kt_chan(dx, i);
        float is = invstd[c];
        float xhat = (x.p[kt_off(x, i)] - mean[c]) * is;
        float d = dy.p[kt_off(dy, i)];
        dx.p[kt_off(dx, i)] += (gamma ? gamma[c] : 1.0f) * is * (d - sums[2 * c] * inv_m - xhat * sums[2 * c + 1] * inv_m);
    }
}

extern "C" int k_bn_train_forward(kstream s, struct kt y, float *save_mean, float *save_invstd,
                                  struct kt x, const float *gamma, const float *beta,
                                  float *running_mean, float *running_var, float eps, float momentum,
                                  void *partial)
{
    cudaStream_t st = (cudaStream_t)s;
    long long m = (long long)x.n * x.h * x.w;
    if (m == 0 || x.c == 0) return 0;
    int slices = bn_slices(m);
    bn_reduce_kernel<0><<<dim3(x.c, slices), K_THREADS, 0, st>>>(x, x, NULL, NULL, (double *)partial, slices);
    bn_finalize_fwd<<<(x.c + 127) / 128, 128, 0, st>>>((const double *)partial, slices, x.c, m, save_mean,
                                                       save_invstd, running_mean, running_var, eps, momentum);
    bn_apply_kernel<<<k_blocks(kt_numel(y)), K_THREADS, 0, st>>>(y, x, gamma, beta, save_mean, save_invstd);
    return k_err();
}

extern "C" int k_bn_infer_forward(kstream s, struct kt y, struct kt x, const float *gamma,
                                  const float *beta, const float *running_mean,
                                  const float *running_var, float eps)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    bn_infer_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, x, gamma, beta, running_mean,
                                                                        running_var, eps);
    return k_err();
}

extern "C" int k_bn_backward(kstream s, struct kt dx, float *dgamma, float *dbeta, struct kt dy,
                             struct kt x, const float *gamma, const float *save_mean,
                             const float *save_invstd, void *partial)
{
    cudaStream_t st = (cudaStream_t)s;
    long long m = (long long)x.n * x.h * x.w;
    if (m == 0 || x.c == 0) return 0;
    int slices = bn_slices(m);
    double *part = (double *)partial;
    float *sums = (float *)(part + (size_t)x.c * slices * 2);
    bn_reduce_kernel<1><<<dim3(x.c, slices), K_THREADS, 0, st>>>(x, dy, save_mean, save_invstd, part, slices);
    bn_finalize_bwd<<<(x.c + 127) / 128, 128, 0, st>>>(part, slices, x.c, dgamma, dbeta, sums);
    if (dx.p)
        bn_dx_kernel<<<k_blocks(kt_numel(dx)), K_THREADS, 0, st>>>(dx, dy, x, gamma, save_mean, save_invstd, sums,
                                                               1.0f / (float)m);
    return k_err();
}
