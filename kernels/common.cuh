/*
 * common.cuh — what every kernels/*.cu shares: launch geometry, logical
 * index -> strided offset for struct kt, and a device Philox4x32-10 that is
 * bit-identical to shared/rng.c (same rounds, constants, counter layout).
 *
 * Kept header-only and small so each .cu compiles fast on two cores.
 */
#ifndef DEEPER_KERNELS_COMMON_CUH
#define DEEPER_KERNELS_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/kernels.h"

#define K_THREADS 256

static inline unsigned k_blocks(long long n)
{
    long long b = (n + K_THREADS - 1) / K_THREADS;
    if (b > 65535LL * 32) b = 65535LL * 32;   /* grid-stride loops cover the rest */
    if (b < 1) b = 1;
    return (unsigned)b;
}

static inline int k_err(void) { return (int)cudaGetLastError(); }

#define K_GRID_LOOP(i, total) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (total); \
         i += (long long)gridDim.x * blockDim.x)

static inline long long kt_numel(const struct kt &t) { return (long long)t.n * t.c * t.h * t.w; }

/* (n, c, h, w) of logical (dense NCHW) index i in t's shape; 32-bit
 * division when the index fits (64-bit integer division costs ~5x more on
 * the GPU). */
__device__ __forceinline__ void kt_coords(const struct kt &t, long long i, long long *n, int *c, int *h,
                                          int *w)
{
    if (i < 0x7fffffffLL) {
        unsigned u = (unsigned)i;
        *w = (int)(u % (unsigned)t.w); u /= (unsigned)t.w;
        *h = (int)(u % (unsigned)t.h); u /= (unsigned)t.h;
        *c = (int)(u % (unsigned)t.c);
        *n = u / (unsigned)t.c;
    } else {
        *w = (int)(i % t.w); i /= t.w;
        *h = (int)(i % t.h); i /= t.h;
        *c = (int)(i % t.c);
        *n = i / t.c;
    }
}

/* offset of logical (dense NCHW) index i in t.  Dense NCHW views need no
 * arithmetic. */
__device__ __forceinline__ long long kt_off(const struct kt &t, long long i)
{
    if (t.sw == 1 && t.sh == t.w && t.sc == (long long)t.h * t.w && t.sn == t.sc * t.c) return i;
    long long n;
    int c, h, w;
    kt_coords(t, i, &n, &c, &h, &w);
    return n * t.sn + (long long)c * t.sc + (long long)h * t.sh + (long long)w * t.sw;
}

/* k = n*hw + r over the (N, H*W) cells of one channel */
__device__ __forceinline__ void k_split(long long k, int hw, long long *n, int *r)
{
    if (k < 0x7fffffffLL) { *n = (unsigned)k / (unsigned)hw; *r = (int)((unsigned)k % (unsigned)hw); }
    else { *n = k / hw; *r = (int)(k % hw); }
}

/* channel of logical index i */
__device__ __forceinline__ int kt_chan(const struct kt &t, long long i)
{
    if (i < 0x7fffffffLL) return (int)(((unsigned)i / ((unsigned)t.h * t.w)) % (unsigned)t.c);
    return (int)((i / ((long long)t.h * t.w)) % t.c);
}

/* Philox4x32-10, as shared/rng.c: ctr = {lo(counter), hi(counter), lo(stream), hi(stream)},
 * key = {lo(seed), hi(seed)}. */
__device__ __forceinline__ uint4 k_philox(uint64_t counter, uint64_t stream, uint64_t seed)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    return make_uint4(c0, c1, c2, c3);
}

/* Word i%4 of block i/4 of (seed, stream): the i-th 32-bit word that
 * rng_init(seed, stream) + rng_u32() would yield. */
__device__ __forceinline__ uint32_t k_rng_word(uint64_t seed, uint64_t stream, uint64_t i)
{
    uint4 b = k_philox(i >> 2, stream, seed);
    switch (i & 3) { case 0: return b.x; case 1: return b.y; case 2: return b.z; default: return b.w; }
}

/* rng_uniform(): 24 random bits in [0, 1) */
__device__ __forceinline__ float k_u01(uint32_t v) { return (float)(v >> 8) * (1.0f / 16777216.0f); }

__device__ __forceinline__ float k_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double k_warp_sum_d(double v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float k_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide sum for blockDim.x == K_THREADS; result valid in every thread. */
template <typename T>
__device__ __forceinline__ T k_block_sum(T v, T *sh /* [32] */)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if constexpr (sizeof(T) == 8) v = k_warp_sum_d(v); else v = k_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    T t = 0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += sh[i];
    return t;
}

#endif
