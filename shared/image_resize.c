/*
 * image_resize.c — resize a uint8 HWC view (bilinear as TF, half-pixel
 * bilinear, nearest, area).  See image.h for the coordinate conventions.
 *
 * Bilinear precomputes, per output column, the two source offsets and the
 * weight, and per output row the two source rows and the weight; the inner
 * loop is then two lerps per channel in float, exactly TF's order:
 *     top = tl + (tr - tl) * xl;  bottom = bl + (br - bl) * xl;
 *     out = top + (bottom - top) * yl
 * rounded to nearest.  Area is separable: each output pixel is the average of
 * the source box [o*s, (o+1)*s) along each axis, partial pixels weighted by
 * their covered fraction (TF resize_area).
 */
#include "shared/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void image_size_short_side(int h, int w, int short_side, int *out_h, int *out_w)
{
    int s = h < w ? h : w;
    if (short_side <= 0 || s <= short_side) { *out_h = h; *out_w = w; return; }
    double f = (double)short_side / s;
    int nh = h < w ? short_side : (int)lround(h * f);
    int nw = h < w ? (int)lround(w * f) : short_side;
    *out_h = nh < 1 ? 1 : nh;
    *out_w = nw < 1 ? 1 : nw;
}

static inline uint8_t to_u8(float v)
{
    if (v <= 0.f) return 0;
    if (v >= 255.f) return 255;
    return (uint8_t)(v + 0.5f);
}

struct lerp { int lo, hi; float w; };

/* Source coordinates for n outputs over `in` inputs. */
static void image_lerp_table(struct lerp *t, int n, int in, int half)
{
    float scale = (float)in / (float)n;
    for (int i = 0; i < n; i++) {
        float src = half ? ((float)i + 0.5f) * scale - 0.5f : (float)i * scale;
        float fl = floorf(src);
        int lo = (int)fl;
        int hi = lo + 1;
        float w = src - fl;
        if (lo < 0) lo = 0;
        if (hi < 0) hi = 0;
        if (lo > in - 1) lo = in - 1;
        if (hi > in - 1) hi = in - 1;
        t[i].lo = lo;
        t[i].hi = hi;
        t[i].w = w;
    }
}

static status image_resize_bilinear(const struct image_view *s, uint8_t *dst, int dh, int dw, size_t ds, int half)
{
    const int c = s->channels;
    struct lerp *xt = malloc((size_t)dw * sizeof *xt), *yt = malloc((size_t)dh * sizeof *yt);
    if (!xt || !yt) { free(xt); free(yt); return FAIL(STATUS_NOMEM, "resize: out of memory"); }
    image_lerp_table(xt, dw, s->width, half);
    image_lerp_table(yt, dh, s->height, half);
    for (int y = 0; y < dh; y++) {
        const uint8_t *r0 = s->data + (size_t)yt[y].lo * s->stride;
        const uint8_t *r1 = s->data + (size_t)yt[y].hi * s->stride;
        const float yl = yt[y].w;
        uint8_t *o = dst + (size_t)y * ds;
        for (int x = 0; x < dw; x++) {
            const int a = xt[x].lo * c, b = xt[x].hi * c;
            const float xl = xt[x].w;
            for (int k = 0; k < c; k++) {
                float tl = r0[a + k], tr = r0[b + k], bl = r1[a + k], br = r1[b + k];
                float top = tl + (tr - tl) * xl;
                float bot = bl + (br - bl) * xl;
                o[x * c + k] = to_u8(top + (bot - top) * yl);
            }
        }
    }
    free(xt);
    free(yt);
    return STATUS_OK;
}

static status image_resize_nearest(const struct image_view *s, uint8_t *dst, int dh, int dw, size_t ds)
{
    const int c = s->channels;
    int *xs = malloc((size_t)dw * sizeof *xs);
    if (!xs) return FAIL(STATUS_NOMEM, "resize: out of memory");
    float sx = (float)s->width / dw, sy = (float)s->height / dh;
    for (int x = 0; x < dw; x++) {
        int v = (int)floorf(x * sx);
        xs[x] = (v > s->width - 1 ? s->width - 1 : v) * c;
    }
    for (int y = 0; y < dh; y++) {
        int v = (int)floorf(y * sy);
        const uint8_t *r = s->data + (size_t)(v > s->height - 1 ? s->height - 1 : v) * s->stride;
        uint8_t *o = dst + (size_t)y * ds;
        for (int x = 0; x < dw; x++) memcpy(o + x * c, r + xs[x], (size_t)c);
    }
    free(xs);
    return STATUS_OK;
}

/* Area weights along one axis: output i covers [i*s, (i+1)*s). Entries are
 * (source index, weight) pairs, `first[i]..first[i+1]` for output i; weights
 * are already divided by s so they sum to 1. */
struct area_axis { int *first; int *idx; float *w; };

static status image_area_axis(struct area_axis *a, int n, int in)
{
    double s = (double)in / n;
    int per = (int)ceil(s) + 2;
    a->first = malloc(((size_t)n + 1) * sizeof *a->first);
    a->idx = malloc((size_t)n * (size_t)per * sizeof *a->idx);
    a->w = malloc((size_t)n * (size_t)per * sizeof *a->w);
    if (!a->first || !a->idx || !a->w) return FAIL(STATUS_NOMEM, "resize: out of memory");
    int k = 0;
    for (int i = 0; i < n; i++) {
        double lo = i * s, hi = (i + 1) * s;
        a->first[i] = k;
        for (int j = (int)floor(lo); j < (int)ceil(hi) && j < in; j++) {
            double l = j > lo ? j : lo, h = j + 1 < hi ? j + 1 : hi;
            if (h > l) { a->idx[k] = j; a->w[k] = (float)((h - l) / s); k++; }
        }
    }
    a->first[n] = k;
    return STATUS_OK;
}

static void image_area_axis_free(struct area_axis *a) { free(a->first); free(a->idx); free(a->w); }

static status image_resize_area(const struct image_view *s, uint8_t *dst, int dh, int dw, size_t ds)
{
    const int c = s->channels;
    struct area_axis ax = { 0 }, ay = { 0 };
    float *row = NULL, *acc = NULL;
    status st = image_area_axis(&ax, dw, s->width);
    if (st == STATUS_OK) st = image_area_axis(&ay, dh, s->height);
    if (st == STATUS_OK) {
        row = malloc((size_t)dw * (size_t)c * sizeof *row);
        acc = malloc((size_t)dw * (size_t)c * sizeof *acc);
        if (!row || !acc) st = FAIL(STATUS_NOMEM, "resize: out of memory");
    }
    if (st != STATUS_OK) goto done;
    for (int y = 0; y < dh; y++) {
        memset(acc, 0, (size_t)dw * (size_t)c * sizeof *acc);
        for (int e = ay.first[y]; e < ay.first[y + 1]; e++) {
            const uint8_t *r = s->data + (size_t)ay.idx[e] * s->stride;
            /* horizontal pass of source row ay.idx[e] */
            for (int x = 0; x < dw; x++) {
                for (int k = 0; k < c; k++) row[x * c + k] = 0.f;
                for (int f = ax.first[x]; f < ax.first[x + 1]; f++) {
                    const uint8_t *p = r + ax.idx[f] * c;
                    for (int k = 0; k < c; k++) row[x * c + k] += ax.w[f] * p[k];
                }
            }
            const float wy = ay.w[e];
            for (int i = 0; i < dw * c; i++) acc[i] += wy * row[i];
        }
        uint8_t *o = dst + (size_t)y * ds;
        for (int i = 0; i < dw * c; i++) o[i] = to_u8(acc[i]);
    }
done:
    free(row);
    free(acc);
    image_area_axis_free(&ax);
    image_area_axis_free(&ay);
    return st;
}

status image_resize(const struct image_view *src, uint8_t *dst, int dst_h, int dst_w, size_t dst_stride,
                    enum image_resize_method method)
{
    if (src->height <= 0 || src->width <= 0 || dst_h <= 0 || dst_w <= 0)
        return FAIL(STATUS_USAGE, "resize: empty size (%dx%d -> %dx%d)", src->height, src->width, dst_h, dst_w);
    if (src->channels < 1 || src->channels > 4)
        return FAIL(STATUS_USAGE, "resize: channels %d (expected 1..4)", src->channels);
    size_t ds = dst_stride ? dst_stride : (size_t)dst_w * (size_t)src->channels;
    switch (method) {
    case IMAGE_RESIZE_BILINEAR: return image_resize_bilinear(src, dst, dst_h, dst_w, ds, 0);
    case IMAGE_RESIZE_BILINEAR_HALF: return image_resize_bilinear(src, dst, dst_h, dst_w, ds, 1);
    case IMAGE_RESIZE_NEAREST: return image_resize_nearest(src, dst, dst_h, dst_w, ds);
    case IMAGE_RESIZE_AREA: return image_resize_area(src, dst, dst_h, dst_w, ds);
    }
    return FAIL(STATUS_USAGE, "resize: unknown method %d", (int)method);
}
