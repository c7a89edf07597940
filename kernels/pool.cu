/*
 * pool.cu — max and average pooling over strided views, forward and
 * backward (backward accumulates into dx).
 *
 * Semantics match the CPU backend and PyTorch: padded cells never win a max;
 * average pooling divides by kh*kw when count_include_pad (torchvision's
 * Inception v3) or by the number of cells inside the input otherwise.  A max
 * window's winner is its first maximum in row-major scan order; max backward
 * routes dy there (atomicAdd, since stride < kernel windows overlap).  Avg
 * backward gathers per input cell, so it is deterministic.
 */
#include "kernels/common.cuh"

struct pool_geom { int kh, kw, sh, sw, ph, pw, incl; };

/* The window of output cell (oh, ow) over the plane xp of x: the max (kind
 * 0; its first winner in row-major order at (*bh, *bw), -1 when the window
 * covers no input cell) or the sum (kind 1); *cnt = input cells inside. */
__device__ __forceinline__ float pool_window(const struct kt &x, const float *xp, int oh, int ow,
                                             const struct pool_geom &g, int kind, int *cnt, int *bh,
                                             int *bw)
{
    int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    float acc = kind == 0 ? -INFINITY : 0.0f;
    int k = 0;
    *bh = *bw = -1;
    for (int a = 0; a < g.kh; a++) {
        int ih = h0 + a;
        if (ih < 0 || ih >= x.h) continue;
        for (int b = 0; b < g.kw; b++) {
            int iw = w0 + b;
            if (iw < 0 || iw >= x.w) continue;
            float v = xp[(long long)ih * x.sh + (long long)iw * x.sw];
            if (kind != 0) acc += v;
            else if (v > acc || k == 0) { acc = v; *bh = ih; *bw = iw; }
            k++;
        }
    }
    *cnt = k;
    return acc;
}

__global__ void pool_forward_kernel(struct kt y, struct kt x, int kind, struct pool_geom g)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        long long n;
        int c, oh, ow, cnt, bh, bw;
        kt_coords(y, i, &n, &c, &oh, &ow);
        float acc = pool_window(x, x.p + n * x.sn + (long long)c * x.sc, oh, ow, g, kind, &cnt, &bh, &bw);
        float out;
        if (kind == 0) out = cnt ? acc : 0.0f;
        else out = acc / (float)(g.incl ? g.kh * g.kw : (cnt ? cnt : 1));
        y.p[n * y.sn + (long long)c * y.sc + (long long)oh * y.sh + (long long)ow * y.sw] = out;
    }
}

extern "C" int k_pool_forward(kstream s, struct kt y, struct kt x, int kind, int kh, int kw, int sh,
                              int sw, int ph, int pw, int count_include_pad)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    struct pool_geom g = { kh, kw, sh, sw, ph, pw, count_include_pad };
    pool_forward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, x, kind, g);
    return k_err();
}

/* max: one thread per output cell, find the winner again, scatter dy */
__global__ void maxpool_backward_kernel(struct kt dx, struct kt dy, struct kt x, struct pool_geom g)
{
    long long total = (long long)dy.n * dy.c * dy.h * dy.w;
    K_GRID_LOOP(i, total) {
        long long n;
        int c, oh, ow, cnt, bh, bw;
        kt_coords(dy, i, &n, &c, &oh, &ow);
        pool_window(x, x.p + n * x.sn + (long long)c * x.sc, oh, ow, g, 0, &cnt, &bh, &bw);
        if (bh < 0) continue;
        float d = dy.p[n * dy.sn + (long long)c * dy.sc + (long long)oh * dy.sh + (long long)ow * dy.sw];
        atomicAdd(dx.p + n * dx.sn + (long long)c * dx.sc + (long long)bh * dx.sh + (long long)bw * dx.sw, d);
    }
}

/* avg: one thread per input cell, gather from every window covering it */
__global__ void avgpool_backward_kernel(struct kt dx, struct kt dy, struct pool_geom g)
{
    long long total = (long long)dx.n * dx.c * dx.h * dx.w;
    K_GRID_LOOP(i, total) {
        long long n;
        int c, ih, iw;
        kt_coords(dx, i, &n, &c, &ih, &iw);
        /* outputs oh with oh*sh - ph <= ih <= oh*sh - ph + kh - 1 */
        int ohlo = ih + g.ph - g.kh + 1; ohlo = ohlo <= 0 ? 0 : (ohlo + g.sh - 1) / g.sh;
        int ohhi = (ih + g.ph) / g.sh; if (ohhi > dy.h - 1) ohhi = dy.h - 1;
        int owlo = iw + g.pw - g.kw + 1; owlo = owlo <= 0 ? 0 : (owlo + g.sw - 1) / g.sw;
        int owhi = (iw + g.pw) / g.sw; if (owhi > dy.w - 1) owhi = dy.w - 1;
        const float *dyp = dy.p + n * dy.sn + (long long)c * dy.sc;
        float acc = 0.0f;
        for (int oh = ohlo; oh <= ohhi; oh++) {
            int h0 = oh * g.sh - g.ph;
            int hin = min(h0 + g.kh, dx.h) - max(h0, 0);
            for (int ow = owlo; ow <= owhi; ow++) {
                int cnt;
                if (g.incl) cnt = g.kh * g.kw;
                else {
                    int w0 = ow * g.sw - g.pw;
                    cnt = hin * (min(w0 + g.kw, dx.w) - max(w0, 0));
                }
                acc += dyp[(long long)oh * dy.sh + (long long)ow * dy.sw] / (float)cnt;
            }
        }
        dx.p[n * dx.sn + (long long)c * dx.sc + (long long)ih * dx.sh + (long long)iw * dx.sw] += acc;
    }
}

extern "C" int k_pool_backward(kstream s, struct kt dx, struct kt dy, struct kt x, int kind, int kh,
                               int kw, int sh, int sw, int ph, int pw, int count_include_pad)
{
    struct pool_geom g = { kh, kw, sh, sw, ph, pw, count_include_pad };
    if (kind == 0) {
        long long total = kt_numel(dy);
        if (total == 0) return 0;
        maxpool_backward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(dx, dy, x, g);
    } else {
        long long total = kt_numel(dx);
        if (total == 0) return 0;
        avgpool_backward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(dx, dy, g);
    }
    return k_err();
}
