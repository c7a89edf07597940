/*
 * test_augment_distort.c — each distortion on its own: flip is exact, crops
 * stay in bounds and follow the configured area/aspect ranges, HSV round
 * trips, the eval crop is exactly central, the fixed-point resize agrees
 * with a float reference, and examples are deterministic.
 *
 * The colour ops are checked against TF's formulas written out here in
 * double precision, independently of augment/distort.c (tf_* below):
 * adjust_brightness adds delta; adjust_saturation scales S of HSV and clamps
 * it to [0, 1]; adjust_hue rotates H, keeping max and min (chroma);
 * adjust_contrast sets (x - mean_c) * f + mean_c with the per-channel
 * spatial mean; clip to [0, 1] only at the end.  HSV conversions use the
 * closed form f(n) = max - chroma * clamp(min(k, 4 - k), 0, 1),
 * k = (n + 6h) mod 6, n = 5, 3, 1 for R, G, B.  Inputs of the float ops
 * include values outside [0, 1] (brightness comes before the clip).  Each
 * comparison prints its largest error (tests/check_util.h).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/distort.h"
#include "shared/rng.h"
#include "tests/check_util.h"

/* ---- TF's colour ops, written out independently (double precision) ---- */

/* hue in [0, 1), max and chroma (max - min) of one RGB pixel */
static void tf_hue_max_chroma(const double p[3], double *h, double *mx, double *chroma)
{
    double hi = fmax(p[0], fmax(p[1], p[2])), lo = fmin(p[0], fmin(p[1], p[2])), c = hi - lo, k = 0;
    if (c > 0) {
        if (hi == p[0]) k = fmod((p[1] - p[2]) / c + 6.0, 6.0);
        else if (hi == p[1]) k = (p[2] - p[0]) / c + 2.0;
        else k = (p[0] - p[1]) / c + 4.0;
    }
    *h = k / 6.0;
    *mx = hi;
    *chroma = c;
}

static void tf_from_hue(double h, double mx, double chroma, double out[3])
{
    static const int n[3] = { 5, 3, 1 };
    for (int i = 0; i < 3; i++) {
        double k = fmod(n[i] + 6.0 * h, 6.0);
        out[i] = mx - chroma * fmax(0.0, fmin(1.0, fmin(k, 4.0 - k)));
    }
}

static void tf_saturation(double *p, size_t npix, double f)
{
    for (size_t i = 0; i < npix; i++, p += 3) {
        double h, v, c;
        tf_hue_max_chroma(p, &h, &v, &c);
        double sat = v > 0 ? c / v : 0;                 /* TF: S = 0 where V <= 0 */
        sat = fmin(1.0, fmax(0.0, sat * f));
        tf_from_hue(h, v, sat * v, p);
    }
}

static void tf_hue(double *p, size_t npix, double delta)
{
    for (size_t i = 0; i < npix; i++, p += 3) {
        double h, v, c;
        tf_hue_max_chroma(p, &h, &v, &c);
        h += delta;
        h -= floor(h);
        tf_from_hue(h, v, c, p);
    }
}

static void tf_brightness(double *p, size_t n, double delta)
{
    for (size_t i = 0; i < n; i++) p[i] += delta;
}

static void tf_contrast(double *p, size_t npix, double f)
{
    for (int k = 0; k < 3; k++) {
        double m = 0;
        for (size_t i = 0; i < npix; i++) m += p[3 * i + k];
        m /= (double)npix;
        for (size_t i = 0; i < npix; i++) p[3 * i + k] = (p[3 * i + k] - m) * f + m;
    }
}

static void tf_clip(double *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = fmin(1.0, fmax(0.0, p[i]));
}

/* random RGB floats in [lo, hi), with some grays and ties */
static void random_f32(float *f, double *d, size_t npix, float lo, float hi, uint64_t seed)
{
    struct rng r;
    rng_init(&r, seed, 5);
    for (size_t i = 0; i < npix; i++) {
        for (int k = 0; k < 3; k++) f[3 * i + k] = rng_range(&r, lo, hi);
        if (i % 13 == 0) f[3 * i + 1] = f[3 * i];
        if (i % 29 == 0) f[3 * i + 2] = f[3 * i + 1] = f[3 * i];
    }
    for (size_t i = 0; i < npix * 3; i++) d[i] = f[i];
}

static void expect_f32_vs_tf(const char *what, const float *got, const double *want, size_t n, double tol)
{
    struct check_acc a = check_begin(1.0);
    for (size_t i = 0; i < n; i++) check_add(&a, got[i], want[i]);
    check_expect(&a, what, CHECK_ABS, tol);
}

static uint8_t *random_image(int h, int w, int c, uint64_t seed)
{
    uint8_t *img = malloc((size_t)h * w * c);
    struct rng r;
    rng_init(&r, seed, 0);
    /* smooth-ish content plus noise so colour ops see varied hues */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                img[((size_t)y * w + x) * c + k] = (uint8_t)((x * (k + 1) * 3 + y * (3 - k) * 2 + (int)rng_below(&r, 60)) & 255);
    return img;
}

Test(distort, flip_is_exact)
{
    int h = 7, w = 9, c = 3;
    uint8_t *a = random_image(h, w, c, 1), *b = malloc((size_t)h * w * c);
    memcpy(b, a, (size_t)h * w * c);
    distort_flip(b, h, w, c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                cr_assert_eq(b[(y * w + x) * c + k], a[(y * w + (w - 1 - x)) * c + k]);
    distort_flip(b, h, w, c);
    cr_assert_eq(memcmp(a, b, (size_t)h * w * c), 0);
    /* flipping inside the resize equals resize then flip, bit for bit */
    int H = 50, W = 64, oh = 31, ow = 29;
    uint8_t *src = random_image(H, W, 3, 2), *d1 = malloc((size_t)oh * ow * 3), *d2 = malloc((size_t)oh * ow * 3);
    void *tmp = malloc(preprocess_resize_tmp_bytes(W, ow, 3));
    struct resize_params p = { RESIZE_BILINEAR, 0, 0 };
    struct box bx = { 3, 5, 40, 50 };
    preprocess_resize(src, H, W, 3, (size_t)W * 3, bx, d1, oh, ow, &p, tmp);
    distort_flip(d1, oh, ow, 3);
    p.flip = 1;
    preprocess_resize(src, H, W, 3, (size_t)W * 3, bx, d2, oh, ow, &p, tmp);
    cr_assert_eq(memcmp(d1, d2, (size_t)oh * ow * 3), 0);
    free(a); free(b); free(src); free(d1); free(d2); free(tmp);
}

Test(distort, crop_in_bounds_and_follows_ranges)
{
    struct crop_params p;
    crop_params_default(&p);
    int sizes[][2] = { { 375, 500 }, { 299, 299 }, { 28, 28 }, { 100, 400 }, { 640, 480 } };
    for (int s = 0; s < 5; s++) {
        int H = sizes[s][0], W = sizes[s][1];
        int small = 0, large = 0, whole = 0, n = 4000;
        double amin = 1, amax = 0, armin = 9, armax = 0;
        for (int i = 0; i < n; i++) {
            struct rng r;
            rng_init(&r, 5, rng_stream(0, (uint64_t)i, RNG_WHAT_CROP));
            struct box b = distort_crop_sample(&p, H, W, &r);
            cr_assert(b.y >= 0 && b.x >= 0 && b.h > 0 && b.w > 0 && b.y + b.h <= H && b.x + b.w <= W,
                      "%dx%d: box %d,%d %dx%d out of bounds", H, W, b.y, b.x, b.h, b.w);
            if (b.h == H && b.w == W) { whole++; continue; }
            double area = (double)b.h * b.w / ((double)H * W), ar = (double)b.w / b.h;
            /* min_object_covered 0.1 with the whole image as the object: area >= 0.1 */
            cr_assert(area >= 0.1 - 1e-9 && area <= 1.0, "%dx%d: area %.4f", H, W, area);
            /* w = lrint(h * aspect): aspect within the range up to half a pixel of rounding */
            double slack = 0.5 / b.h + 1e-6;
            cr_assert(ar >= 0.75 - slack && ar <= 1.33 + slack, "%dx%d: aspect %.4f (h %d)", H, W, ar, b.h);
            amin = fmin(amin, area); amax = fmax(amax, area);
            armin = fmin(armin, ar); armax = fmax(armax, ar);
            small += area < 0.2;
            large += area > 0.8;
        }
        cr_log_info("%dx%d: area [%.3f, %.3f], aspect [%.3f, %.3f], whole-image fallbacks %d/%d",
                    H, W, amin, amax, armin, armax, whole, n);
        if (H == 100) continue;   /* a 1:4 image can hold only small crops of these aspects */
        cr_assert_gt(small, n / 20, "%dx%d: too few small crops (%d)", H, W, small);
        cr_assert_gt(large, n / 100, "%dx%d: too few large crops (%d)", H, W, large);
        cr_assert_lt(armin, 0.8); cr_assert_gt(armax, 1.25);
    }
    /* impossible constraints -> whole image */
    struct crop_params q = p;
    q.min_object_covered = 1.1f;
    struct rng r;
    rng_init(&r, 1, 2);
    struct box b = distort_crop_sample(&q, 40, 30, &r);
    cr_assert(b.y == 0 && b.x == 0 && b.h == 40 && b.w == 30);
}

Test(distort, hsv_round_trip)
{
    struct rng r;
    rng_init(&r, 3, 4);
    struct check_acc a = check_begin(1.0);
    for (int i = 0; i < 100000; i++) {
        float rgb[3] = { rng_uniform(&r), rng_uniform(&r), rng_uniform(&r) };
        if (i % 10 == 0) rgb[1] = rgb[0];           /* ties */
        if (i % 17 == 0) rgb[2] = rgb[1] = rgb[0];  /* gray */
        float h, s, v, o[3];
        distort_rgb_to_hsv(rgb[0], rgb[1], rgb[2], &h, &s, &v);
        cr_assert(h >= 0 && h < 1 && s >= 0 && s <= 1, "h %f s %f", h, s);
        distort_hsv_to_rgb(h, s, v, &o[0], &o[1], &o[2]);
        for (int k = 0; k < 3; k++) check_add(&a, o[k], rgb[k]);
        /* saturation x1 and hue +0 are identities too */
        float px[3] = { rgb[0], rgb[1], rgb[2] };
        distort_saturation_f32(px, 1, 1.0f);
        distort_hue_f32(px, 1, 0.0f);
        for (int k = 0; k < 3; k++) check_add(&a, px[k], rgb[k]);
    }
    check_expect(&a, "hsv round trip, saturation x1, hue +0", CHECK_ABS, 1e-5);
    /* a full hue turn is the identity, half a turn maps red to cyan */
    float px[3] = { 1, 0, 0 };
    distort_hue_f32(px, 1, 0.5f);
    cr_assert(fabsf(px[0]) < 1e-6 && fabsf(px[1] - 1) < 1e-6 && fabsf(px[2] - 1) < 1e-6);
}

/* Each float colour op against TF's formula, on values inside and outside
 * [0, 1]; a factor or delta that leaves the image unchanged is not used, so
 * a no-op fails. */
Test(distort, colour_ops_match_tf_formulas)
{
    size_t npix = 3000;
    float *f = malloc(npix * 3 * sizeof *f);
    double *d = malloc(npix * 3 * sizeof *d);
    float bright[] = { 32 / 255.0f, -0.11f }, sat[] = { 0.5f, 1.37f }, hue[] = { 0.2f, -0.13f }, con[] = { 0.55f, 1.4f };
    char what[64];
    for (int t = 0; t < 2; t++) {
        random_f32(f, d, npix, -0.15f, 1.15f, 20 + t);
        distort_brightness_f32(f, npix, 3, bright[t]);
        tf_brightness(d, npix * 3, bright[t]);
        snprintf(what, sizeof what, "brightness %+.3f vs TF", bright[t]);
        expect_f32_vs_tf(what, f, d, npix * 3, 1e-6);

        random_f32(f, d, npix, -0.15f, 1.15f, 30 + t);
        distort_saturation_f32(f, npix, sat[t]);
        tf_saturation(d, npix, sat[t]);
        snprintf(what, sizeof what, "saturation x%.2f vs TF", sat[t]);
        expect_f32_vs_tf(what, f, d, npix * 3, 1e-5);

        random_f32(f, d, npix, -0.15f, 1.15f, 40 + t);
        distort_hue_f32(f, npix, hue[t]);
        tf_hue(d, npix, hue[t]);
        snprintf(what, sizeof what, "hue %+.2f vs TF", hue[t]);
        expect_f32_vs_tf(what, f, d, npix * 3, 1e-5);

        random_f32(f, d, npix, -0.15f, 1.15f, 50 + t);
        distort_contrast_f32(f, npix, 3, con[t]);
        tf_contrast(d, npix, con[t]);
        snprintf(what, sizeof what, "contrast x%.2f vs TF", con[t]);
        expect_f32_vs_tf(what, f, d, npix * 3, 1e-5);
    }
    free(f); free(d);
}

/* Contrast: the channel mean stays, every pixel moves to (x - mean) * f +
 * mean, so the spread around the mean scales by f (a no-op fails both the
 * per-pixel check and the spread ratio); in float and in the fused uint8
 * path. */
Test(distort, contrast_scales_around_channel_mean)
{
    int h = 40, w = 50;
    size_t npix = (size_t)h * w;
    uint8_t *img = random_image(h, w, 3, 9);
    float *f = malloc(npix * 3 * sizeof *f);
    double *d = malloc(npix * 3 * sizeof *d);
    for (size_t i = 0; i < npix * 3; i++) d[i] = f[i] = img[i] / 255.0f;
    double spread_b[3] = { 0 }, spread_a[3] = { 0 }, mean_b[3] = { 0 }, mean_a[3] = { 0 };
    for (size_t i = 0; i < npix; i++) for (int k = 0; k < 3; k++) mean_b[k] += d[3 * i + k] / npix;
    for (size_t i = 0; i < npix; i++) for (int k = 0; k < 3; k++) spread_b[k] += fabs(d[3 * i + k] - mean_b[k]);
    distort_contrast_f32(f, npix, 3, 1.4f);
    tf_contrast(d, npix, 1.4);
    expect_f32_vs_tf("contrast x1.4 per pixel vs TF", f, d, npix * 3, 1e-5);
    for (size_t i = 0; i < npix; i++) for (int k = 0; k < 3; k++) mean_a[k] += f[3 * i + k] / npix;
    for (size_t i = 0; i < npix; i++) for (int k = 0; k < 3; k++) spread_a[k] += fabs(f[3 * i + k] - mean_a[k]);
    for (int k = 0; k < 3; k++) {
        check_scalar("contrast x1.4 channel mean", mean_a[k], mean_b[k], 1e-3, 1e-5);
        check_scalar("contrast x1.4 spread ratio", spread_a[k] / spread_b[k], 1.4, 1e-3, 1e-4);
    }
    /* fused uint8 path, contrast only, a factor that does not clip:
     * round((x - mean) * 0.6 + mean) per pixel, within one level */
    for (size_t i = 0; i < npix * 3; i++) d[i] = img[i] / 255.0;
    tf_contrast(d, npix, 0.6f);
    tf_clip(d, npix * 3);
    struct color_draw cd = { 0, 1, 0, 0.6f, 1 };
    distort_color_apply(img, npix, &cd, f);
    struct check_acc a = check_begin(1.0);
    for (size_t i = 0; i < npix * 3; i++) check_add(&a, img[i], d[i] * 255.0);
    check_expect(&a, "fused contrast x0.6 vs TF (levels)", CHECK_ABS, 1.0);
    free(img); free(f); free(d);
}

Test(distort, eval_crop_is_exactly_central)
{
    struct box b = preprocess_crop_central(100, 80, 0.875f);
    cr_assert_eq(b.y, 6); cr_assert_eq(b.h, 88);
    cr_assert_eq(b.x, 5); cr_assert_eq(b.w, 70);
    cr_assert_eq(b.y, 100 - b.y - b.h);     /* same margin both sides */
    cr_assert_eq(b.x, 80 - b.x - b.w);
    /* eval example at the crop's own size is exactly the crop */
    int H = 64, W = 48;
    uint8_t *src = random_image(H, W, 3, 11);
    struct box cb = preprocess_crop_central(H, W, 0.875f);
    struct distort_config cfg;
    distort_config_default(&cfg, 0);
    cfg.out_h = cb.h; cfg.out_w = cb.w; cfg.eval = 1;
    struct distort_ctx *ctx;
    cr_assert_eq(distort_ctx_new(&ctx), STATUS_OK);
    uint8_t *out = malloc((size_t)cb.h * cb.w * 3);
    cr_assert_eq(distort_example(&cfg, ctx, src, H, W, 3, 0, 0, out, NULL), STATUS_OK);
    for (int y = 0; y < cb.h; y++)
        cr_assert_eq(memcmp(out + (size_t)y * cb.w * 3, src + ((size_t)(y + cb.y) * W + cb.x) * 3, (size_t)cb.w * 3), 0, "row %d", y);
    distort_ctx_free(&ctx);
    free(src); free(out);
}

/* float bilinear reference (TF1 legacy mapping) */
static float ref_bilinear(const uint8_t *s, int W, int c, struct box b, int oh, int ow, int y, int x, int k)
{
    float sy = (float)b.h / oh * y, sx = (float)b.w / ow * x;
    int y0 = (int)floorf(sy), x0 = (int)floorf(sx);
    int y1 = y0 + 1 < b.h ? y0 + 1 : b.h - 1, x1 = x0 + 1 < b.w ? x0 + 1 : b.w - 1;
    float ly = sy - y0, lx = sx - x0;
#define P(yy, xx) ((float)s[((size_t)(b.y + (yy)) * W + b.x + (xx)) * c + k])
    float top = P(y0, x0) + (P(y0, x1) - P(y0, x0)) * lx;
    float bot = P(y1, x0) + (P(y1, x1) - P(y1, x0)) * lx;
#undef P
    return top + (bot - top) * ly;
}

Test(distort, resize_matches_float_reference)
{
    int H = 120, W = 90;
    uint8_t *src = random_image(H, W, 3, 12);
    int shapes[][2] = { { 299, 299 }, { 37, 41 }, { 120, 90 }, { 8, 8 } };
    struct box boxes[] = { { 0, 0, 120, 90 }, { 10, 7, 50, 33 }, { 119, 89, 1, 1 } };
    struct check_acc a = check_begin(1.0);
    for (int s = 0; s < 4; s++)
        for (int bi = 0; bi < 3; bi++) {
            int oh = shapes[s][0], ow = shapes[s][1];
            uint8_t *d = malloc((size_t)oh * ow * 3);
            void *tmp = malloc(preprocess_resize_tmp_bytes(W, ow, 3));
            struct resize_params p = { RESIZE_BILINEAR, 0, 0 };
            preprocess_resize(src, H, W, 3, (size_t)W * 3, boxes[bi], d, oh, ow, &p, tmp);
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++)
                    for (int k = 0; k < 3; k++)
                        check_add(&a, d[((size_t)y * ow + x) * 3 + k], ref_bilinear(src, W, 3, boxes[bi], oh, ow, y, x, k));
            free(d); free(tmp);
        }
    check_expect(&a, "resize vs float bilinear (levels)", CHECK_ABS, 1.0);
    free(src);
}

Test(distort, fused_colour_matches_tf_op_chain)
{
    int h = 60, w = 70;
    size_t npix = (size_t)h * w;
    uint8_t *img = random_image(h, w, 3, 13), *fused = malloc(npix * 3);
    double *ref = malloc(npix * 3 * sizeof *ref);
    float *scratch = malloc(npix * 3 * sizeof *scratch);
    struct color_params cp;
    color_params_default(&cp);
    double worst_all = 0;
    for (int trial = 0; trial < 40; trial++) {
        struct rng r;
        rng_init(&r, 77, (uint64_t)trial);
        struct color_draw d;
        distort_color_sample(&cp, &r, &d);
        cr_assert(fabsf(d.brightness) <= 32 / 255.0f && d.saturation >= 0.5f && d.saturation < 1.5f &&
                  fabsf(d.hue) <= 0.2f && d.contrast >= 0.5f && d.contrast < 1.5f);
        for (size_t i = 0; i < npix * 3; i++) ref[i] = img[i] / 255.0;
        tf_brightness(ref, npix * 3, d.brightness);
        if (d.ordering == 0) {
            tf_saturation(ref, npix, d.saturation);
            tf_hue(ref, npix, d.hue);
            tf_contrast(ref, npix, d.contrast);
        } else {
            tf_contrast(ref, npix, d.contrast);
            tf_saturation(ref, npix, d.saturation);
            tf_hue(ref, npix, d.hue);
        }
        tf_clip(ref, npix * 3);
        memcpy(fused, img, npix * 3);
        distort_color_apply(fused, npix, &d, scratch);
        struct check_acc a = check_begin(1.0);
        for (size_t i = 0; i < npix * 3; i++) check_add(&a, fused[i], ref[i] * 255.0);
        char what[96];
        snprintf(what, sizeof what, "fused colour trial %d ordering %d (levels)", trial, d.ordering);
        double e = check_err(&a, CHECK_ABS);
        if (!(e <= 1.0)) check_expect(&a, what, CHECK_ABS, 1.0);
        if (!(e <= worst_all)) worst_all = e;
        /* the draw changes the image (so a no-op colour path fails) */
        cr_assert(memcmp(fused, img, npix * 3) != 0, "trial %d: colour draw left the image unchanged", trial);
    }
    printf("largest error %-34s %.3f levels (of 255, 40 draws; tol 1)\n", "fused colour vs TF formulas", worst_all);
    cr_expect(worst_all <= 1.0, "fused colour vs TF formulas: %.3f levels", worst_all);
    free(img); free(fused); free(ref); free(scratch);
}

Test(distort, examples_are_deterministic_and_gray_expands)
{
    int H = 80, W = 100;
    uint8_t *src = random_image(H, W, 3, 14), *g = random_image(H, W, 1, 15);
    struct distort_config cfg;
    distort_config_default(&cfg, 32);
    cfg.seed = 99;
    struct distort_ctx *ctx;
    cr_assert_eq(distort_ctx_new(&ctx), STATUS_OK);
    uint8_t a[32 * 32 * 3], b[32 * 32 * 3];
    struct distort_info ia, ib;
    cr_assert_eq(distort_example(&cfg, ctx, src, H, W, 3, 2, 1234, a, &ia), STATUS_OK);
    cr_assert_eq(distort_example(&cfg, ctx, src, H, W, 3, 2, 1234, b, &ib), STATUS_OK);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
    int differ = 0;
    for (uint64_t id = 0; id < 20; id++) {
        cr_assert_eq(distort_example(&cfg, ctx, src, H, W, 3, 2, id, b, &ib), STATUS_OK);
        differ += memcmp(a, b, sizeof a) != 0;
    }
    cr_assert_geq(differ, 19);
    /* gray -> 3 channels: all channels equal, no colour ops */
    cr_assert_eq(distort_example(&cfg, ctx, g, H, W, 1, 0, 5, a, &ia), STATUS_OK);
    for (int i = 0; i < 32 * 32; i++) cr_assert(a[3 * i] == a[3 * i + 1] && a[3 * i] == a[3 * i + 2]);
    cr_assert_eq(ia.colored, 0);
    /* flips happen about half the time */
    int flips = 0;
    for (uint64_t id = 0; id < 1000; id++) {
        cr_assert_eq(distort_example(&cfg, ctx, src, H, W, 3, 0, id, b, &ib), STATUS_OK);
        flips += ib.flipped;
    }
    cr_assert(flips > 430 && flips < 570, "flips %d of 1000", flips);
    distort_ctx_free(&ctx);
    free(src); free(g);
}
