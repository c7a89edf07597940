/*
 * test_image_resize.c — resize against naive double-precision references
 * written from TF's definitions (resize_bilinear align_corners=False, the
 * half-pixel variant, nearest, area), on views with strides and crops; plus
 * the JPEG/PNG encoders and the gray/RGB conversions.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/image.h"
#include "tests/check_util.h"

static double px(const struct image_view *v, int y, int x, int k)
{
    return v->data[(size_t)y * v->stride + (size_t)x * v->channels + k];
}

static double ref_bilinear(const struct image_view *v, int oh, int ow, int y, int x, int k, int half)
{
    double sy = (double)v->height / oh, sx = (double)v->width / ow;
    double iy = half ? (y + 0.5) * sy - 0.5 : y * sy, ix = half ? (x + 0.5) * sx - 0.5 : x * sx;
    double fy = floor(iy), fx = floor(ix);
    int y0 = (int)fy, x0 = (int)fx, y1 = y0 + 1, x1 = x0 + 1;
    double ly = iy - fy, lx = ix - fx;
#define CL(a, n) ((a) < 0 ? 0 : (a) > (n) - 1 ? (n) - 1 : (a))
    y0 = CL(y0, v->height); y1 = CL(y1, v->height); x0 = CL(x0, v->width); x1 = CL(x1, v->width);
    double top = px(v, y0, x0, k) + (px(v, y0, x1, k) - px(v, y0, x0, k)) * lx;
    double bot = px(v, y1, x0, k) + (px(v, y1, x1, k) - px(v, y1, x0, k)) * lx;
    return top + (bot - top) * ly;
}

static double ref_area(const struct image_view *v, int oh, int ow, int y, int x, int k)
{
    double sy = (double)v->height / oh, sx = (double)v->width / ow, sum = 0;
    for (int j = 0; j < v->height; j++) {
        double cy = fmin(j + 1, (y + 1) * sy) - fmax(j, y * sy);
        if (cy <= 0) continue;
        for (int i = 0; i < v->width; i++) {
            double cx = fmin(i + 1, (x + 1) * sx) - fmax(i, x * sx);
            if (cx > 0) sum += cy * cx * px(v, j, i, k);
        }
    }
    return sum / (sy * sx);
}

static uint8_t *noise(int h, int w, int c, unsigned seed)
{
    uint8_t *p = malloc((size_t)h * w * c);
    for (size_t i = 0; i < (size_t)h * w * c; i++) { seed = seed * 1103515245u + 12345u; p[i] = (uint8_t)(seed >> 16); }
    return p;
}

static void check(enum image_resize_method m, int sh, int sw, int c, int oh, int ow, int crop)
{
    uint8_t *src = noise(sh, sw, c, (unsigned)(sh * 31 + ow));
    struct image_view v = image_view_of(src, sh, sw, c);
    if (crop) v = image_view_crop(v, 1, 2, sh - 2, sw - 3);
    size_t stride = (size_t)ow * c + 5;     /* padded destination rows */
    uint8_t *dst = malloc(stride * oh);
    cr_assert_eq(image_resize(&v, dst, oh, ow, stride, m), STATUS_OK, "%s", status_msg());
    struct check_acc a = check_begin(1.0);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            for (int k = 0; k < c; k++) {
                double want;
                if (m == IMAGE_RESIZE_AREA) want = ref_area(&v, oh, ow, y, x, k);
                else if (m == IMAGE_RESIZE_NEAREST) {
                    int yy = (int)floor(y * ((double)v.height / oh)), xx = (int)floor(x * ((double)v.width / ow));
                    want = px(&v, yy < v.height ? yy : v.height - 1, xx < v.width ? xx : v.width - 1, k);
                } else want = ref_bilinear(&v, oh, ow, y, x, k, m == IMAGE_RESIZE_BILINEAR_HALF);
                check_add(&a, dst[(size_t)y * stride + (size_t)x * c + k], want);
            }
    char what[96];
    snprintf(what, sizeof what, "resize method %d %dx%dx%d%s -> %dx%d", m, sh, sw, c, crop ? " (crop)" : "", oh, ow);
    check_expect(&a, what, CHECK_ABS, 0.5 + 1e-3);
    free(dst);
    free(src);
}

Test(resize, bilinear_matches_tf_definition)
{
    check(IMAGE_RESIZE_BILINEAR, 13, 17, 3, 29, 31, 0);
    check(IMAGE_RESIZE_BILINEAR, 40, 50, 3, 11, 7, 1);
    check(IMAGE_RESIZE_BILINEAR, 9, 9, 1, 9, 9, 0);
    check(IMAGE_RESIZE_BILINEAR_HALF, 13, 17, 3, 29, 31, 1);
    check(IMAGE_RESIZE_BILINEAR_HALF, 40, 50, 1, 11, 7, 0);
}

Test(resize, tf_known_values)
{
    /* tf.image.resize_bilinear([[0,10],[20,30]], [4,4], align_corners=False) */
    uint8_t src[4] = { 0, 10, 20, 30 }, dst[16];
    struct image_view v = image_view_of(src, 2, 2, 1);
    cr_assert_eq(image_resize(&v, dst, 4, 4, 0, IMAGE_RESIZE_BILINEAR), STATUS_OK);
    uint8_t want[16] = { 0, 5, 10, 10, 10, 15, 20, 20, 20, 25, 30, 30, 20, 25, 30, 30 };
    cr_assert_eq(memcmp(dst, want, 16), 0);
}

Test(resize, nearest_and_area)
{
    check(IMAGE_RESIZE_NEAREST, 13, 17, 3, 29, 31, 0);
    check(IMAGE_RESIZE_NEAREST, 40, 50, 1, 11, 7, 1);
    check(IMAGE_RESIZE_AREA, 40, 50, 3, 11, 7, 0);
    check(IMAGE_RESIZE_AREA, 30, 30, 1, 10, 15, 1);
    check(IMAGE_RESIZE_AREA, 7, 5, 3, 16, 9, 0);
    /* area by exactly 2 is the 2x2 box mean */
    uint8_t src[16] = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30 }, dst[4];
    struct image_view v = image_view_of(src, 4, 4, 1);
    cr_assert_eq(image_resize(&v, dst, 2, 2, 0, IMAGE_RESIZE_AREA), STATUS_OK);
    cr_assert_eq(dst[0], 5);
    cr_assert_eq(dst[3], 25);
}

Test(resize, short_side_and_errors)
{
    int h, w;
    image_size_short_side(375, 500, 256, &h, &w);
    cr_assert_eq(h, 256);
    cr_assert_eq(w, 341);
    image_size_short_side(500, 375, 256, &h, &w);
    cr_assert_eq(w, 256);
    cr_assert_eq(h, 341);
    image_size_short_side(100, 200, 256, &h, &w);
    cr_assert_eq(h, 100);
    cr_assert_eq(w, 200);
    uint8_t b[4];
    struct image_view v = image_view_of(b, 0, 2, 1);
    cr_assert_eq(image_resize(&v, b, 1, 1, 0, IMAGE_RESIZE_BILINEAR), STATUS_USAGE);
}

Test(image_codec, encoders_round_trip_and_gray)
{
    uint8_t *src = noise(21, 19, 1, 7), *png;
    size_t n;
    cr_assert_eq(image_encode_png(src, 21, 19, 1, &png, &n), STATUS_OK);
    struct image img;
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 1);
    cr_assert_eq(memcmp(img.pixels, src, 21 * 19), 0);
    image_clear(&img);
    free(png);
    uint8_t *jpg;
    cr_assert_eq(image_encode_jpeg(src, 21, 19, 1, 100, &jpg, &n), STATUS_OK);
    cr_assert_eq(image_encode_jpeg(src, 21, 19, 2, 90, &jpg, &n), STATUS_USAGE);
    free(jpg);
    uint8_t rgb[6] = { 255, 0, 0, 10, 200, 30 }, g[2];
    image_rgb_to_gray(rgb, g, 2);
    cr_assert_eq(g[0], 76);                 /* 0.299 * 255 */
    cr_assert_eq(g[1], (uint8_t)lround(0.299 * 10 + 0.587 * 200 + 0.114 * 30));
    uint8_t back[6];
    image_gray_to_rgb(g, back, 2);
    cr_assert_eq(back[3], g[1]);
    cr_assert_eq(back[5], g[1]);
    free(src);
}
