/*
 * input.cu — uint8 NHWC batch -> float tensor in [-1, 1], in the model's
 * layout: y = (x/255 - 0.5) * 2, the same float operations as the CPU
 * backend.  A 1-channel batch feeding a 3-channel tensor repeats the gray
 * value.  One thread per output element, logical (NCHW) order.
 */
#include "kernels/common.cuh"

__global__ void input_normalize_kernel(struct kt y, const uint8_t *x, int cin)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        long long j = i;
        int w = (int)(j % y.w); j /= y.w;
        int h = (int)(j % y.h); j /= y.h;
        int c = (int)(j % y.c);
        long long n = j / y.c;
        int cs = cin == 1 ? 0 : c;
        uint8_t v = x[((n * y.h + h) * y.w + w) * cin + cs];
        y.p[n * y.sn + c * y.sc + h * y.sh + w * y.sw] = ((float)v / 255.0f - 0.5f) * 2.0f;
    }
}

extern "C" int k_input_normalize(kstream s, struct kt y, const uint8_t *x, int cin)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    input_normalize_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, x, cin);
    return k_err();
}
