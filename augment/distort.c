/*
 * distort.c — Inception distortions: TF's crop sampler, fused crop+resize+flip
 * in fixed point, fused colour ops, float reference ops (see distort.h).
 *
 * Fixed point in distort_resize: column/row weights are 11-bit (0..2048);
 * the vertical pass blends two source rows into uint32 (<= 255*2048), the
 * horizontal pass blends two such values with an 11-bit weight and rounds
 * ((t0*(2048-wy) + t1*wy + 2^21) >> 22, < 2^31), so the result is within
 * 0.62 of the exact float bilinear value (the test prints the largest error).
 */
#include "augment/distort.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WBITS 11
#define WONE (1 << WBITS)

/* ========================================================================= */
/* crop                                                                      */

void crop_params_default(struct crop_params *p)
{
    p->min_object_covered = 0.1f;
    p->aspect_lo = 0.75f;
    p->aspect_hi = 1.33f;
    p->area_lo = 0.05f;
    p->area_hi = 1.0f;
    p->max_attempts = 100;
}

/* GenerateRandomCrop from TF's sample_distorted_bounding_box_op.cc. */
static int generate_random_crop(int W, int H, float min_rel, float max_rel, float ar,
                                struct rng *r, struct box *out)
{
    if (max_rel <= 0.0f || ar <= 0.0f || W <= 0 || H <= 0 || min_rel > max_rel) return 0;
    const float min_area = min_rel * W * H;
    const float max_area = max_rel * W * H;
    int height = (int)lrintf(sqrtf(min_area / ar));
    int max_height = (int)lrintf(sqrtf(max_area / ar));
    if (lrintf(max_height * ar) > W) {
        const float eps = 0.0000001f;
        max_height = (int)((W + 0.5 - eps) / ar);
        if (lrintf(max_height * ar) > W) max_height -= 1;
    }
    if (max_height > H) max_height = H;
    if (height >= max_height) height = max_height;
    if (height < max_height) height += (int)rng_below(r, (uint32_t)(max_height - height + 1));
    int width = (int)lrintf(height * ar);
    float area = (float)(width * height);
    if (area < min_area) {
        height += 1;
        width = (int)lrintf(height * ar);
        area = (float)(width * height);
    }
    if (area < min_area) {
        height += 1;
        width = (int)lrintf(height * ar);
        area = (float)(width * height);
    }
    if (area < min_area || area > max_area || width > W || height > H || width <= 0 || height <= 0) return 0;
    int y = 0, x = 0;
    if (height < H) y = (int)rng_below(r, (uint32_t)(H - height));
    if (width < W) x = (int)rng_below(r, (uint32_t)(W - width));
    *out = (struct box){ y, x, height, width };
    return 1;
}

struct box distort_crop_sample(const struct crop_params *p, int height, int width, struct rng *r)
{
    struct box whole = { 0, 0, height, width };
    const float object_area = (float)height * (float)width;   /* the whole-image box */
    for (int i = 0; i < p->max_attempts; i++) {
        float ar = rng_uniform(r) * (p->aspect_hi - p->aspect_lo) + p->aspect_lo;
        struct box b;
        if (!generate_random_crop(width, height, p->area_lo, p->area_hi, ar, r, &b)) continue;
        /* intersection with the whole image is the crop itself */
        float covered = (float)(b.h * b.w) / object_area;
        if (covered >= p->min_object_covered) return b;
    }
    return whole;
}

struct box distort_crop_central(int height, int width, float fraction)
{
    int sy = (int)((height - fraction * height) / 2);
    int sx = (int)((width - fraction * width) / 2);
    return (struct box){ sy, sx, height - 2 * sy, width - 2 * sx };
}

/* ========================================================================= */
/* resize + flip                                                              */

size_t distort_resize_tmp_bytes(int sw, int dw, int c)
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
#ifdef __clang__   /* the fuzz build (tests/fuzz) compiles with clang */
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

void distort_resize(const uint8_t *src, int sh, int sw, int c, size_t stride, struct box b,
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

void distort_flip(uint8_t *img, int h, int w, int c)
{
    for (int y = 0; y < h; y++) {
        uint8_t *row = img + (size_t)y * w * c;
        for (int a = 0, b = w - 1; a < b; a++, b--)
            for (int k = 0; k < c; k++) {
                uint8_t t = row[a * c + k];
                row[a * c + k] = row[b * c + k];
                row[b * c + k] = t;
            }
    }
}

/* ========================================================================= */
/* colour: float reference ops (TF kernels)                                   */

void color_params_default(struct color_params *p)
{
    p->brightness = 32.0f / 255.0f;
    p->sat_lo = 0.5f; p->sat_hi = 1.5f;
    p->hue = 0.2f;
    p->con_lo = 0.5f; p->con_hi = 1.5f;
    p->ordering = -1;
}

void distort_color_sample(const struct color_params *p, struct rng *r, struct color_draw *d)
{
    d->ordering = p->ordering >= 0 ? p->ordering : (int)(rng_u32(r) & 1);
    d->brightness = rng_range(r, -p->brightness, p->brightness);
    d->saturation = rng_range(r, p->sat_lo, p->sat_hi);
    d->hue = rng_range(r, -p->hue, p->hue);
    d->contrast = rng_range(r, p->con_lo, p->con_hi);
}

void distort_brightness_f32(float *img, size_t npix, int c, float delta)
{
    for (size_t i = 0; i < npix * (size_t)c; i++) img[i] += delta;
}

void distort_contrast_f32(float *img, size_t npix, int c, float factor)
{
    for (int k = 0; k < c; k++) {
        double sum = 0;
        for (size_t i = 0; i < npix; i++) sum += img[i * c + k];
        float mean = (float)(sum / (double)npix);
        for (size_t i = 0; i < npix; i++) img[i * c + k] = (img[i * c + k] - mean) * factor + mean;
    }
}

void distort_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    float vv = fmaxf(r, fmaxf(g, b));
    float range = vv - fminf(r, fminf(g, b));
    *s = vv > 0 ? range / vv : 0;
    float norm = 1.0f / (6.0f * range);
    float hh;
    if (r == vv) hh = norm * (g - b);
    else if (g == vv) hh = norm * (b - r) + 2.0f / 6.0f;
    else hh = norm * (r - g) + 4.0f / 6.0f;
    if (range <= 0.0f) hh = 0;
    if (hh < 0.0f) hh += 1;
    *h = hh;
    *v = vv;
}

void distort_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
    float c = s * v, m = v - c, dh = h * 6;
    int cat = (int)dh;
    float fm = dh;
    while (fm <= 0) fm += 2.0f;
    while (fm >= 2.0f) fm -= 2.0f;
    float x = c * (1 - fabsf(fm - 1));
    float rr, gg, bb;
    switch (cat) {
    case 0: rr = c; gg = x; bb = 0; break;
    case 1: rr = x; gg = c; bb = 0; break;
    case 2: rr = 0; gg = c; bb = x; break;
    case 3: rr = 0; gg = x; bb = c; break;
    case 4: rr = x; gg = 0; bb = c; break;
    case 5: rr = c; gg = 0; bb = x; break;
    default: rr = gg = bb = 0;
    }
    *r = rr + m; *g = gg + m; *b = bb + m;
}

void distort_saturation_f32(float *img, size_t npix, float factor)
{
    for (size_t i = 0; i < npix; i++) {
        float h, s, v;
        distort_rgb_to_hsv(img[3 * i], img[3 * i + 1], img[3 * i + 2], &h, &s, &v);
        s = fminf(1.0f, fmaxf(0.0f, s * factor));
        distort_hsv_to_rgb(h, s, v, &img[3 * i], &img[3 * i + 1], &img[3 * i + 2]);
    }
}

/* TF's adjust_hue kernel works on (h in [0,6), v_min, v_max). */
static void rgb_to_hv_range(float r, float g, float b, float *h, float *vmin, float *vmax)
{
    float vmid;
    int cat;
    if (r < g) {
        if (b < r) { *vmax = g; vmid = r; *vmin = b; cat = 1; }
        else if (b > g) { *vmax = b; vmid = g; *vmin = r; cat = 3; }
        else { *vmax = g; vmid = b; *vmin = r; cat = 2; }
    } else {
        if (b < g) { *vmax = r; vmid = g; *vmin = b; cat = 0; }
        else if (b > r) { *vmax = b; vmid = r; *vmin = g; cat = 4; }
        else { *vmax = r; vmid = b; *vmin = g; cat = 5; }
    }
    if (*vmax == *vmin) { *h = 0; return; }
    float ratio = (vmid - *vmin) / (*vmax - *vmin);
    *h = (float)cat + ((cat & 1) == 0 ? ratio : 1 - ratio);
}

static void hv_range_to_rgb(float h, float vmin, float vmax, float *r, float *g, float *b)
{
    int cat = (int)h;
    float ratio = h - (float)cat;
    if (cat & 1) ratio = 1 - ratio;
    float vmid = vmin + ratio * (vmax - vmin);
    switch (cat) {
    case 0: *r = vmax; *g = vmid; *b = vmin; break;
    case 1: *r = vmid; *g = vmax; *b = vmin; break;
    case 2: *r = vmin; *g = vmax; *b = vmid; break;
    case 3: *r = vmin; *g = vmid; *b = vmax; break;
    case 4: *r = vmid; *g = vmin; *b = vmax; break;
    default: *r = vmax; *g = vmin; *b = vmid; break;
    }
}

void distort_hue_f32(float *img, size_t npix, float delta)
{
    for (size_t i = 0; i < npix; i++) {
        float h, vmin, vmax;
        rgb_to_hv_range(img[3 * i], img[3 * i + 1], img[3 * i + 2], &h, &vmin, &vmax);
        h += delta * 6.0f;
        while (h < 0) h += 6.0f;
        while (h >= 6.0f) h -= 6.0f;
        hv_range_to_rgb(h, vmin, vmax, &img[3 * i], &img[3 * i + 1], &img[3 * i + 2]);
    }
}

void distort_clip_f32(float *img, size_t n)
{
    for (size_t i = 0; i < n; i++) img[i] = fminf(1.0f, fmaxf(0.0f, img[i]));
}

/* ========================================================================= */
/* colour: fused uint8 path                                                    */

/* Saturation (factor fs) then hue (dh6 = delta*6) in one HSV round trip, on
 * a block of pixels held as three float arrays (structure of arrays, so the
 * loop is branch-free and vectorises).  Equal to TF's two kernels in
 * sequence: saturation keeps V and H and sets the chroma to
 * V * clamp(S * fs, 0, 1); hue rotates H; the pixel is rebuilt with the
 * standard k = (n + H) mod 6 formula.  V <= 0 gives S = 0 (gray), as in TF. */
#define SEL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SEL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define COLOR_BLOCK 256

#pragma GCC push_options
#pragma GCC optimize("O3", "no-trapping-math")
__attribute__((target_clones("avx2", "default")))
static void sat_hue_block(float *restrict R, float *restrict G, float *restrict B, int n, float fs, float dh6)
{
    for (int i = 0; i < n; i++) {
        float r = R[i], g = G[i], b = B[i];
        float vmax = SEL_MAX(r, SEL_MAX(g, b)), vmin = SEL_MIN(r, SEL_MIN(g, b));
        float range = vmax - vmin;
        float safe_range = range > 0.0f ? range : 1.0f, safe_vmax = vmax > 0.0f ? vmax : 1.0f;
        float inv = 1.0f / safe_range;
        inv = range > 0.0f ? inv : 0.0f;
        float hr = (g - b) * inv, hg = 2.0f + (b - r) * inv, hb = 4.0f + (r - g) * inv;
        float h = r == vmax ? hr : (g == vmax ? hg : hb);
        float s = range / safe_vmax;
        s = vmax > 0.0f ? s : 0.0f;
        s = SEL_MIN(1.0f, SEL_MAX(0.0f, s * fs));
        float c = s * vmax;
        h += dh6;
        h = h < 0.0f ? h + 6.0f : h;
        h = h < 0.0f ? h + 6.0f : h;
        h = h >= 6.0f ? h - 6.0f : h;
        float kr = 5.0f + h, kg = 3.0f + h, kb = 1.0f + h;
        kr = kr >= 6.0f ? kr - 6.0f : kr;
        kg = kg >= 6.0f ? kg - 6.0f : kg;
        kb = kb >= 6.0f ? kb - 6.0f : kb;
        float tr = SEL_MIN(kr, 4.0f - kr), tg = SEL_MIN(kg, 4.0f - kg), tb = SEL_MIN(kb, 4.0f - kb);
        R[i] = vmax - c * SEL_MAX(0.0f, SEL_MIN(tr, 1.0f));
        G[i] = vmax - c * SEL_MAX(0.0f, SEL_MIN(tg, 1.0f));
        B[i] = vmax - c * SEL_MAX(0.0f, SEL_MIN(tb, 1.0f));
    }
}

/* out = clip((v - mean) * f + mean) rounded to uint8, interleaving back to
 * RGB.  Planar quantisation first (vectorises), then a plain interleave. */
__attribute__((target_clones("avx2", "default")))
static void affine_quant_block(const float *restrict R, const float *restrict G, const float *restrict B, int n,
                               const float m[3], float f, uint8_t *restrict out)
{
    uint8_t q[3][COLOR_BLOCK];
    const float *src[3] = { R, G, B };
    for (int k = 0; k < 3; k++) {
        const float *restrict v = src[k];
        uint8_t *restrict qk = q[k];
        const float mk = m[k];
        for (int i = 0; i < n; i++) {
            float x = ((v[i] - mk) * f + mk) * 255.0f + 0.5f;
            x = x < 0.0f ? 0.0f : (x > 255.0f ? 255.0f : x);
            qk[i] = (uint8_t)(int)x;
        }
    }
    for (int i = 0; i < n; i++) {
        out[3 * i] = q[0][i];
        out[3 * i + 1] = q[1][i];
        out[3 * i + 2] = q[2][i];
    }
}
/* R = p[3i]*a0 + b0 (and G, B): uint8 RGB to planar float with a per-channel
 * affine map (brightness, and contrast in ordering 1). */
__attribute__((target_clones("avx2", "default")))
static void load_block(const uint8_t *restrict p, int n, const float a[3], const float b[3],
                       float *restrict R, float *restrict G, float *restrict B)
{
    const float a0 = a[0], a1 = a[1], a2 = a[2], b0 = b[0], b1 = b[1], b2 = b[2];
    for (int i = 0; i < n; i++) {
        R[i] = (float)p[3 * i] * a0 + b0;
        G[i] = (float)p[3 * i + 1] * a1 + b1;
        B[i] = (float)p[3 * i + 2] * a2 + b2;
    }
}

/* Per-channel sums of a planar block, with 8 fixed partial sums per channel
 * (a fixed association order, so the result is the same on every machine). */
__attribute__((target_clones("avx2", "default")))
static void sum_block(const float *restrict R, const float *restrict G, const float *restrict B, int n, double out[3])
{
    float acc[3][8] = { { 0 } };
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) { acc[0][j] += R[i + j]; acc[1][j] += G[i + j]; acc[2][j] += B[i + j]; }
    for (; i < n; i++) { acc[0][0] += R[i]; acc[1][0] += G[i]; acc[2][0] += B[i]; }
    for (int k = 0; k < 3; k++) {
        double t = 0;
        for (int j = 0; j < 8; j++) t += acc[k][j];
        out[k] += t;
    }
}

/* Per-channel sums of an interleaved uint8 RGB image. */
__attribute__((target_clones("avx2", "default")))
static void sum_u8_rgb(const uint8_t *restrict p, size_t npix, uint64_t out[3])
{
    uint64_t s0 = 0, s1 = 0, s2 = 0;
    for (size_t i0 = 0; i0 < npix; i0 += 4096) {
        size_t n = npix - i0 < 4096 ? npix - i0 : 4096;
        uint32_t a0 = 0, a1 = 0, a2 = 0;     /* 4096 * 255 fits */
        const uint8_t *q = p + 3 * i0;
        for (size_t i = 0; i < n; i++) { a0 += q[3 * i]; a1 += q[3 * i + 1]; a2 += q[3 * i + 2]; }
        s0 += a0; s1 += a1; s2 += a2;
    }
    out[0] = s0; out[1] = s1; out[2] = s2;
}
#pragma GCC pop_options

void distort_color_apply(uint8_t *img, size_t npix, const struct color_draw *d, float *scratch)
{
    float R[COLOR_BLOCK], G[COLOR_BLOCK], B[COLOR_BLOCK];
    const float fs = d->saturation, dh6 = d->hue * 6.0f, fc = d->contrast;
    if (d->ordering == 1) {
        /* brightness then contrast is a per-channel affine map of the uint8
         * value (the mean after brightness is mean(x)/255 + delta); then
         * saturation and hue; contrast is already done, so the final affine
         * step is the identity. */
        uint64_t sum[3];
        sum_u8_rgb(img, npix, sum);
        float a[3], b[3];
        for (int k = 0; k < 3; k++) {
            float m = (float)((double)sum[k] / (double)npix / 255.0) + d->brightness;
            a[k] = fc / 255.0f;
            b[k] = (d->brightness - m) * fc + m;
        }
        const float zero[3] = { 0, 0, 0 };
        for (size_t i0 = 0; i0 < npix; i0 += COLOR_BLOCK) {
            int n = npix - i0 < COLOR_BLOCK ? (int)(npix - i0) : COLOR_BLOCK;
            uint8_t *p = img + 3 * i0;
            load_block(p, n, a, b, R, G, B);
            sat_hue_block(R, G, B, n, fs, dh6);
            affine_quant_block(R, G, B, n, zero, 1.0f, p);
        }
        return;
    }
    /* ordering 0: brightness, saturation, hue, then contrast on the result
     * (needs the means of the saturated/hue-shifted image: two passes). */
    const float a[3] = { 1.0f / 255.0f, 1.0f / 255.0f, 1.0f / 255.0f };
    const float b[3] = { d->brightness, d->brightness, d->brightness };
    double sum[3] = { 0, 0, 0 };
    for (size_t i0 = 0; i0 < npix; i0 += COLOR_BLOCK) {
        int n = npix - i0 < COLOR_BLOCK ? (int)(npix - i0) : COLOR_BLOCK;
        const uint8_t *p = img + 3 * i0;
        float *sR = scratch + 3 * i0, *sG = sR + n, *sB = sG + n;   /* planar per block */
        load_block(p, n, a, b, sR, sG, sB);
        sat_hue_block(sR, sG, sB, n, fs, dh6);
        sum_block(sR, sG, sB, n, sum);
    }
    float m[3];
    for (int k = 0; k < 3; k++) m[k] = (float)(sum[k] / (double)npix);
    for (size_t i0 = 0; i0 < npix; i0 += COLOR_BLOCK) {
        int n = npix - i0 < COLOR_BLOCK ? (int)(npix - i0) : COLOR_BLOCK;
        float *sR = scratch + 3 * i0, *sG = sR + n, *sB = sG + n;
        affine_quant_block(sR, sG, sB, n, m, fc, img + 3 * i0);
    }
}

/* ========================================================================= */
/* per-example pipeline                                                        */

void distort_config_default(struct distort_config *cfg, int out_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->out_h = cfg->out_w = out_size;
    cfg->out_c = 3;
    cfg->central_fraction = 0.875f;
    cfg->crop = cfg->flip = cfg->color = 1;
    crop_params_default(&cfg->crop_p);
    color_params_default(&cfg->color_p);
    cfg->resize_p.method = RESIZE_BILINEAR;
}

struct distort_ctx {
    void *tmp;
    size_t tmp_bytes;
    float *scratch;
    size_t scratch_n;
    uint8_t *gray;
    size_t gray_bytes;
};

status distort_ctx_new(struct distort_ctx **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? STATUS_OK : FAIL(STATUS_NOMEM, "distort: context");
}

void distort_ctx_free(struct distort_ctx **ctx)
{
    if (!ctx || !*ctx) return;
    free((*ctx)->tmp);
    free((*ctx)->scratch);
    free((*ctx)->gray);
    free(*ctx);
    *ctx = NULL;
}

static status grow(void **p, size_t *have, size_t want)
{
    if (*have >= want) return STATUS_OK;
    void *n = realloc(*p, want);
    if (!n) return FAIL(STATUS_NOMEM, "distort: %zu bytes of scratch", want);
    *p = n;
    *have = want;
    return STATUS_OK;
}

void distort_plan(const struct distort_config *cfg, int h, int w, int c, uint64_t epoch, uint64_t id,
                  struct distort_info *info)
{
    memset(info, 0, sizeof *info);
    struct rng r;
    if (cfg->eval) {
        info->crop = distort_crop_central(h, w, cfg->central_fraction);
    } else if (cfg->crop) {
        rng_init(&r, cfg->seed, rng_stream(epoch, id, RNG_WHAT_CROP));
        info->crop = distort_crop_sample(&cfg->crop_p, h, w, &r);
    } else {
        info->crop = (struct box){ 0, 0, h, w };
    }
    if (!cfg->eval && cfg->flip) {
        rng_init(&r, cfg->seed, rng_stream(epoch, id, RNG_WHAT_FLIP));
        info->flipped = (int)(rng_u32(&r) >> 31);
    }
    if (!cfg->eval && cfg->color && c == 3) {
        rng_init(&r, cfg->seed, rng_stream(epoch, id, RNG_WHAT_COLOR));
        distort_color_sample(&cfg->color_p, &r, &info->color);
        info->colored = 1;
    }
}

struct box distort_box_scale(struct box b, int h, int w, int sh, int sw)
{
    if (sh == h && sw == w) return b;
    struct box o;
    o.y = (int)((int64_t)b.y * sh / h);
    o.x = (int)((int64_t)b.x * sw / w);
    int y1 = (int)(((int64_t)(b.y + b.h) * sh + h - 1) / h);
    int x1 = (int)(((int64_t)(b.x + b.w) * sw + w - 1) / w);
    if (y1 > sh) y1 = sh;
    if (x1 > sw) x1 = sw;
    o.h = y1 - o.y > 0 ? y1 - o.y : 1;
    o.w = x1 - o.x > 0 ? x1 - o.x : 1;
    if (o.y + o.h > sh) o.y = sh - o.h;
    if (o.x + o.w > sw) o.x = sw - o.w;
    return o;
}

status distort_apply(const struct distort_config *cfg, struct distort_ctx *ctx, const struct distort_info *info,
                     const uint8_t *src, int h, int w, int c, uint8_t *dst)
{
    if (h <= 0 || w <= 0 || (c != 1 && c != 3))
        return FAIL(STATUS_FORMAT, "distort: image shape %dx%dx%d", h, w, c);
    if (cfg->out_c != c && !(c == 1 && cfg->out_c == 3))
        return FAIL(STATUS_FORMAT, "distort: image has %d channels, output wants %d", c, cfg->out_c);
    const struct box b = info->crop;
    if (b.y < 0 || b.x < 0 || b.h <= 0 || b.w <= 0 || b.y + b.h > h || b.x + b.w > w)
        return FAIL(STATUS_FORMAT, "distort: crop %d,%d %dx%d outside a %dx%d image", b.y, b.x, b.h, b.w, h, w);
    const int oh = cfg->out_h, ow = cfg->out_w;
    const size_t npix = (size_t)oh * ow;
    struct resize_params rp = cfg->resize_p;
    rp.flip = info->flipped;
    TRY(grow(&ctx->tmp, &ctx->tmp_bytes, distort_resize_tmp_bytes(w, ow, c)));
    uint8_t *out = dst;
    if (c == 1 && cfg->out_c == 3) {
        TRY(grow((void **)&ctx->gray, &ctx->gray_bytes, npix));
        out = ctx->gray;
    }
    distort_resize(src, h, w, c, (size_t)w * c, b, out, oh, ow, &rp, ctx->tmp);
    if (out != dst)
        for (size_t i = 0; i < npix; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = out[i];
    if (info->colored && c == 3) {
        if (info->color.ordering == 0) {
            size_t have = ctx->scratch_n * sizeof(float);
            TRY(grow((void **)&ctx->scratch, &have, npix * 3 * sizeof(float)));
            ctx->scratch_n = have / sizeof(float);
        }
        distort_color_apply(dst, npix, &info->color, ctx->scratch);
    }
    return STATUS_OK;
}

status distort_example(const struct distort_config *cfg, struct distort_ctx *ctx,
                       const uint8_t *src, int h, int w, int c, uint64_t epoch, uint64_t id,
                       uint8_t *dst, struct distort_info *info)
{
    struct distort_info local;
    if (!info) info = &local;
    distort_plan(cfg, h, w, c, epoch, id, info);
    status st = distort_apply(cfg, ctx, info, src, h, w, c, dst);
    if (st != STATUS_OK)
        return FAIL(st, "example %llu: %s", (unsigned long long)id, status_msg());
    return STATUS_OK;
}
