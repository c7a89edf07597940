/*
 * dropout.cu — inverted dropout with masks drawn from Philox (shared/rng.h)
 * exactly as trainer/backend.h fixes it, so CPU and CUDA masks are equal:
 * for the element with logical (dense NCHW) index i, j = stream + i,
 * out = philox(ctr = {lo32(j/4), hi32(j/4), 0, 0}, key = seed), u =
 * (out[j%4] >> 8) * 2^-24, kept iff u < keep.  mask[i] holds 1 if kept.
 */
#include "kernels/common.cuh"

__global__ void dropout_forward_kernel(struct kt y, uint8_t *mask, struct kt x, float keep,
                                       uint64_t seed, uint64_t stream)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    float inv = 1.0f / keep;
    K_GRID_LOOP(i, total) {
        uint8_t m = k_u01(k_rng_word(seed, 0, stream + (uint64_t)i)) < keep;
        mask[i] = m;
        y.p[kt_off(y, i)] = m ? x.p[kt_off(x, i)] * inv : 0.0f;
    }
}

extern "C" int k_dropout_forward(kstream s, struct kt y, uint8_t *mask, struct kt x, float keep,
                                 uint64_t seed, uint64_t stream)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    dropout_forward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, mask, x, keep, seed, stream);
    return k_err();
}

__global__ void dropout_backward_kernel(struct kt dx, struct kt dy, const uint8_t *mask, float keep)
{
    long long total = (long long)dx.n * dx.c * dx.h * dx.w;
    float inv = 1.0f / keep;
    K_GRID_LOOP(i, total) {
        if (mask[i]) dx.p[kt_off(dx, i)] += dy.p[kt_off(dy, i)] * inv;
    }
}

extern "C" int k_dropout_backward(kstream s, struct kt dx, struct kt dy, const uint8_t *mask, float keep)
{
    long long total = kt_numel(dx);
    if (total == 0) return 0;
    dropout_backward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(dx, dy, mask, keep);
    return k_err();
}
