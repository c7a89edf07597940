/*
 * preprocess.c — central crop, fused crop + resize + flip in fixed point,
 * eval preprocessing (see preprocess.h).
 *
 * Fixed point in preprocess_resize: column/row weights are 11-bit
 * (0..2048); the vertical pass blends two source rows into uint32
 * (<= 255*2048), the horizontal pass blends two such values with an 11-bit
 * weight and rounds ((t0*(2048-wy) + t1*wy + 2^21) >> 22, < 2^31), so the
 * result is within 0.62 of the exact float bilinear value (the test prints
 * the largest error).
 */
#include "shared/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WBITS 11
#define WONE (1 << WBITS)

struct box preprocess_crop_central(int height, int width, float fraction)
{
    int sy = (int)((height - fraction * height) / 2);
    int sx = (int)((width - fraction * width) / 2);
    return (struct box){ sy, sx, height - 2 * sy, width - 2 * sx };
}

size_t preprocess_resize_tmp_bytes(int sw, int dw, int c)
{
    /* one uint32 row of the source width + per-column offsets and weights */
    return (size_t)sw * c * sizeof(uint32_t) + 16 + (size_t)dw * 3 * sizeof(int) + 64;
}

/* Source coordinate mapping for output index i (TF1 legacy or half-pixel). */
static void map_coord(int i, int in, int out, int half, int *lo, int *hi, int *w8)
{
    float scale = (float)in / (float)out;
    float s = half ? ((float)i + 0.5f) * scale - 0.5f : (float)i * scale;
    float fl = floorf(s);
    int l = (int)fl;
    float lerp = s - fl;
    if (l < 0) { l = 0; lerp = 0; }
    if (l > in - 1) { l = in - 1; lerp = 0; }
    int h = l + 1 < in ? l + 1 : in - 1;
    *lo = l;
    *hi = h;
    *w8 = (int)lrintf(lerp * (float)WONE);
}

/* Vertical pass: t = a*w0 + b*w1 over one row (contiguous; vectorises). */
#pragma GCC push_options
#pragma GCC optimize("O3")
__attribute__((target_clones("avx2", "default")))
static void blend_rows(const uint8_t *restrict a, const uint8_t *restrict b, uint32_t w0, uint32_t w1,
                       uint32_t *restrict t, int n)
{
    for (int i = 0; i < n; i++) t[i] = a[i] * w0 + b[i] * w1;
}
/* Horizontal pass for 3 channels: one pixel = one 4-lane vector (the 4th
 * lane reads the next pixel's first value and is discarded). */
typedef uint32_t v4u32 __attribute__((vector_size(16)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));
__attribute__((target_clones("avx2", "default")))
static void hgather3(const uint32_t *restrict row, const int *restrict xo0, const int *restrict xo1,
                     const int *restrict xw, uint8_t *restrict d, int dw)
{
    const v4u32 one = { WONE, WONE, WONE, WONE };
    const v4u32 rnd = { 1u << (2 * WBITS - 1), 1u << (2 * WBITS - 1), 1u << (2 * WBITS - 1), 1u << (2 * WBITS - 1) };
#ifndef __clang__
    const v16u8 pick = { 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
#endif
    int x = 0;
    for (; x + 1 < dw; x++) {
        v4u32 a, b;
        memcpy(&a, row + xo0[x], 16);
        memcpy(&b, row + xo1[x], 16);
        uint32_t w = (uint32_t)xw[x];
        v4u32 w1 = { w, w, w, w };
        v4u32 r = (a * (one - w1) + b * w1 + rnd) >> (2 * WBITS);
#ifdef __clang__   /* clang has no __builtin_shuffle */
        v16u8 bytes = __builtin_shufflevector((v16u8)r, (v16u8)r, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
#else
        v16u8 bytes = __builtin_shuffle((v16u8)r, pick);
#endif
        memcpy(d + 3 * x, &bytes, 4);   /* the 4th byte is overwritten by the next pixel */
    }
    for (; x < dw; x++) {
        const uint32_t *a = row + xo0[x], *b = row + xo1[x];
        uint32_t w1 = (uint32_t)xw[x], w0 = WONE - w1;
        for (int k = 0; k < 3; k++) d[3 * x + k] = (uint8_t)((a[k] * w0 + b[k] * w1 + (1u << (2 * WBITS - 1))) >> (2 * WBITS));
    }
}
#pragma GCC pop_options

void preprocess_resize(const uint8_t *src, int sh, int sw, int c, size_t stride, struct box b,
                    uint8_t *dst, int dh, int dw, const struct resize_params *p, void *tmp)
{
    (void)sh; (void)sw;
    uint32_t *row = (uint32_t *)tmp;
    int *xo0 = (int *)(row + (size_t)b.w * c + 4);   /* 16 bytes of slack: hgather3 reads 4 lanes */
    int *xo1 = xo0 + dw;
    int *xw = xo1 + dw;
    const uint8_t *base = src + (size_t)b.y * stride + (size_t)b.x * c;

    if (p->method == RESIZE_NEAREST) {
        float sx = (float)b.w / dw, sy = (float)b.h / dh;
        for (int x = 0; x < dw; x++) {
            int xs = p->half_pixel ? (int)floorf((x + 0.5f) * sx) : (int)floorf(x * sx);
            if (xs > b.w - 1) xs = b.w - 1;
            xo0[p->flip ? dw - 1 - x : x] = xs * c;
        }
        for (int y = 0; y < dh; y++) {
            int ys = p->half_pixel ? (int)floorf((y + 0.5f) * sy) : (int)floorf(y * sy);
            if (ys > b.h - 1) ys = b.h - 1;
            const uint8_t *s = base + (size_t)ys * stride;
            uint8_t *d = dst + (size_t)y * dw * c;
            for (int x = 0; x < dw; x++)
                for (int k = 0; k < c; k++) d[x * c + k] = s[xo0[x] + k];
        }
        return;
    }

    for (int x = 0; x < dw; x++) {
        int lo, hi, w8;
        map_coord(x, b.w, dw, p->half_pixel, &lo, &hi, &w8);
        int dx = p->flip ? dw - 1 - x : x;
        xo0[dx] = lo * c;
        xo1[dx] = hi * c;
        xw[dx] = w8;
    }
    const uint32_t round = 1u << (2 * WBITS - 1);
    for (int y = 0; y < dh; y++) {
        int lo, hi, wy;
        map_coord(y, b.h, dh, p->half_pixel, &lo, &hi, &wy);
        /* vertical blend of the two source rows over the crop width, then a
         * horizontal gather; integer sums are exact, so the order of the two
         * passes does not change the result */
        blend_rows(base + (size_t)lo * stride, base + (size_t)hi * stride, WONE - (uint32_t)wy, (uint32_t)wy,
                   row, b.w * c);
        uint8_t *d = dst + (size_t)y * dw * c;
        if (c == 3) {
            hgather3(row, xo0, xo1, xw, d, dw);
        } else {
            for (int x = 0; x < dw; x++) {
                uint32_t w1 = (uint32_t)xw[x], w0 = WONE - w1;
                for (int k = 0; k < c; k++)
                    d[x * c + k] = (uint8_t)((row[xo0[x] + k] * w0 + row[xo1[x] + k] * w1 + round) >> (2 * WBITS));
            }
        }
    }
}

status preprocess_eval(const uint8_t *src, int h, int w, int c, float fraction,
                       const struct resize_params *rp, uint8_t *dst, int out_h, int out_w, int out_c)
{
    if (h <= 0 || w <= 0 || (c != 1 && c != 3))
        return FAIL(STATUS_FORMAT, "preprocess: image shape %dx%dx%d", h, w, c);
    if (out_c != c && !(c == 1 && out_c == 3))
        return FAIL(STATUS_FORMAT, "preprocess: image has %d channels, output wants %d", c, out_c);
    if (out_h <= 0 || out_w <= 0)
        return FAIL(STATUS_USAGE, "preprocess: output size %dx%d", out_h, out_w);
    const size_t npix = (size_t)out_h * out_w;
    struct resize_params p = *rp;
    p.flip = 0;
    status st = STATUS_OK;
    void *tmp = malloc(preprocess_resize_tmp_bytes(w, out_w, c));
    uint8_t *gray = c != out_c ? malloc(npix) : NULL;
    if (!tmp || (c != out_c && !gray)) { st = FAIL(STATUS_NOMEM, "preprocess: %zu pixels of scratch", npix); goto done; }
    uint8_t *out = gray ? gray : dst;
    preprocess_resize(src, h, w, c, (size_t)w * c, preprocess_crop_central(h, w, fraction), out, out_h, out_w,
                      &p, tmp);
    if (gray)
        for (size_t i = 0; i < npix; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = gray[i];
done:
    free(tmp);
    free(gray);
    return st;
}
