/*
 * input.cu — uint8 NHWC batch -> float tensor in [-1, 1], in the model's
 * layout: y = (x * (1/255) - 0.5) * 2, the same float operations as the
 * CPU backend (bit-identical results).  A 1-channel batch feeding a
 * 3-channel tensor repeats the gray value.  One thread per output element,
 * logical (NCHW) order.
 */
#include "kernels/common.cuh"

__global__ void input_normalize_kernel(struct kt y, const uint8_t *x, int cin)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        long long n;
        int c, h, w;
        kt_coords(y, i, &n, &c, &h, &w);
        uint8_t v = x[((n * y.h + h) * y.w + w) * cin + (cin == 1 ? 0 : c)];
        /* exactly the CPU backend's float operations: x * (1/255), not x / 255,
         * and no fused multiply-add (the _rn intrinsics are never contracted) */
        y.p[n * y.sn + (long long)c * y.sc + (long long)h * y.sh + (long long)w * y.sw] =
            __fadd_rn(__fmul_rn((float)v, 1.0f / 255.0f), -0.5f) * 2.0f;
    }
}

extern "C" int k_input_normalize(kstream s, struct kt y, const uint8_t *x, int cin)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    input_normalize_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, x, cin);
    return k_err();
}
