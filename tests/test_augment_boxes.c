/*
 * test_augment_boxes.c — the crop sampler with object boxes
 * (distort_crop_sample_boxes) against a reference written from the
 * description of TF's sample_distorted_bounding_box kernel:
 *   boxes to pixels as int(ymin*H), int(xmin*W), int(ymax*H), int(xmax*W);
 *   per attempt (<= max_attempts): aspect ar ~ U[lo, hi); h0 = lrint(sqrt(
 *   area_lo*W*H/ar)), hmax = lrint(sqrt(area_hi*W*H/ar)) clamped so that
 *   lrint(hmax*ar) <= W and hmax <= H; h = h0 + Uniform(hmax - h0 + 1),
 *   w = lrint(h*ar) with up to two +1 fix-ups of h for the area; y =
 *   Uniform(H - h), x = Uniform(W - w); accept when the crop covers at least
 *   min_object_covered of some box of non-zero area; else the whole image.
 * Checked: identical crops for thousands of seeds and random box sets; the
 * property (every accepted crop covers >= 0.1 of a box, aspect and area in
 * range); statistics (a box in a corner pulls the crops there); fallbacks
 * (boxes of zero pixel area, impossible coverage).
 */
#include <criterion/criterion.h>
#include <math.h>

#include "augment/distort.h"
#include "shared/rng.h"

static int ref_crop(int W, int H, float amin, float amax, float ar, struct rng *r, int out[4])
{
    float min_area = amin * W * H, max_area = amax * W * H;
    int h = (int)lrintf(sqrtf(min_area / ar)), hmax = (int)lrintf(sqrtf(max_area / ar));
    if (lrintf(hmax * ar) > W) {
        hmax = (int)((W + 0.5 - 0.0000001f) / ar);
        if (lrintf(hmax * ar) > W) hmax--;
    }
    if (hmax > H) hmax = H;
    if (h >= hmax) h = hmax;
    if (h < hmax) h += (int)rng_below(r, (uint32_t)(hmax - h + 1));
    int w = (int)lrintf(h * ar);
    for (int k = 0; k < 2 && (float)(w * h) < min_area; k++) { h++; w = (int)lrintf(h * ar); }
    float area = (float)(w * h);
    if (area < min_area || area > max_area || w > W || h > H || w <= 0 || h <= 0) return 0;
    int y = h < H ? (int)rng_below(r, (uint32_t)(H - h)) : 0;
    int x = w < W ? (int)rng_below(r, (uint32_t)(W - w)) : 0;
    out[0] = y; out[1] = x; out[2] = h; out[3] = w;
    return 1;
}

/* fraction of box b (pixels ymin, xmin, ymax, xmax) inside crop c (y, x, h, w); -1 for an empty box */
static float covered(const int c[4], const int b[4])
{
    int area = (b[2] - b[0]) * (b[3] - b[1]);   /* integer pixel areas, their ratio in float, as the kernel */
    if (area <= 0) return -1;
    int y0 = fmax(c[0], b[0]), x0 = fmax(c[1], b[1]), y1 = fmin(c[0] + c[2], b[2]), x1 = fmin(c[1] + c[3], b[3]);
    return (y1 > y0 && x1 > x0) ? (float)((y1 - y0) * (x1 - x0)) / (float)area : 0.0f;
}

static void ref_sample(const struct crop_params *p, int H, int W, const float *boxes, int n, struct rng *r, int out[4])
{
    int px[8][4], m = 0;
    if (n == 0) { px[0][0] = 0; px[0][1] = 0; px[0][2] = H; px[0][3] = W; m = 1; }
    for (int i = 0; i < n; i++, m++) {
        px[m][0] = (int)(boxes[4 * i] * H); px[m][1] = (int)(boxes[4 * i + 1] * W);
        px[m][2] = (int)(boxes[4 * i + 2] * H); px[m][3] = (int)(boxes[4 * i + 3] * W);
    }
    for (int a = 0; a < p->max_attempts; a++) {
        float ar = rng_uniform(r) * (p->aspect_hi - p->aspect_lo) + p->aspect_lo;
        int c[4];
        if (!ref_crop(W, H, p->area_lo, p->area_hi, ar, r, c)) continue;
        for (int i = 0; i < m; i++)
            if (covered(c, px[i]) >= p->min_object_covered) { memcpy(out, c, sizeof c); return; }
    }
    out[0] = 0; out[1] = 0; out[2] = H; out[3] = W;
}

static void random_boxes(struct rng *r, float *b, int n)
{
    for (int i = 0; i < n; i++) {
        float y0 = rng_uniform(r), x0 = rng_uniform(r), y1 = rng_uniform(r), x1 = rng_uniform(r);
        b[4 * i] = fminf(y0, y1); b[4 * i + 2] = fmaxf(y0, y1);
        b[4 * i + 1] = fminf(x0, x1); b[4 * i + 3] = fmaxf(x0, x1);
    }
}

Test(boxes, same_crops_as_the_reference_and_the_property_holds)
{
    struct crop_params p;
    crop_params_default(&p);   /* 0.1, [0.75, 1.33], [0.05, 1.0], 100 attempts */
    int sizes[][2] = { { 375, 500 }, { 299, 299 }, { 500, 333 }, { 64, 256 } };
    int fallbacks = 0, total = 0;
    for (int s = 0; s < 4; s++)
        for (int seed = 0; seed < 3000; seed++) {
            int H = sizes[s][0], W = sizes[s][1];
            struct rng rb;
            rng_init(&rb, 99, rng_stream(s, (uint64_t)seed, 7));
            int n = (int)rng_below(&rb, 4);   /* 0..3 boxes */
            float boxes[12];
            random_boxes(&rb, boxes, n);
            struct rng r1, r2;
            rng_init(&r1, (uint64_t)seed, rng_stream(1, (uint64_t)s, RNG_WHAT_CROP));
            r2 = r1;
            struct box b = distort_crop_sample_boxes(&p, H, W, boxes, n, &r1);
            int ref[4];
            ref_sample(&p, H, W, boxes, n, &r2, ref);
            cr_assert(b.y == ref[0] && b.x == ref[1] && b.h == ref[2] && b.w == ref[3],
                      "%dx%d seed %d, %d boxes: got %d,%d %dx%d, reference %d,%d %dx%d", H, W, seed, n, b.y, b.x, b.h,
                      b.w, ref[0], ref[1], ref[2], ref[3]);
            total++;
            if (b.h == H && b.w == W) { fallbacks++; continue; }
            /* the property: covers >= 0.1 of some box, aspect and area within range */
            int c[4] = { b.y, b.x, b.h, b.w };
            float best = n ? -1 : 1;
            for (int i = 0; i < n; i++) {
                int px[4] = { (int)(boxes[4 * i] * H), (int)(boxes[4 * i + 1] * W), (int)(boxes[4 * i + 2] * H),
                              (int)(boxes[4 * i + 3] * W) };
                best = fmaxf(best, covered(c, px));
            }
            cr_assert_geq(best, 0.1f, "crop covers only %.3f of every box", best);
            double area = (double)b.h * b.w / ((double)H * W), ar = (double)b.w / b.h, slack = 0.5 / b.h + 1e-6;
            cr_assert(area >= 0.05 - 1e-9 && area <= 1.0 + 1e-9, "area %.4f", area);
            cr_assert(ar >= 0.75 - slack && ar <= 1.33 + slack, "aspect %.4f", ar);
            cr_assert(b.y >= 0 && b.x >= 0 && b.y + b.h <= H && b.x + b.w <= W);
        }
    cr_log_info("%d crops, %d whole-image fallbacks", total, fallbacks);
    cr_assert_lt(fallbacks, total / 10);
}

Test(boxes, a_corner_box_pulls_the_crops_and_fallbacks_are_the_whole_image)
{
    struct crop_params p;
    crop_params_default(&p);
    const int H = 400, W = 400, n = 4000;
    const float corner[4] = { 0.0f, 0.0f, 0.2f, 0.2f };   /* top-left 80x80 pixels */
    double cy_box = 0, cy_none = 0;
    int touching = 0;
    for (int i = 0; i < n; i++) {
        struct rng r, q;
        rng_init(&r, 3, rng_stream(0, (uint64_t)i, RNG_WHAT_CROP));
        q = r;
        struct box b = distort_crop_sample_boxes(&p, H, W, corner, 1, &r);
        struct box a = distort_crop_sample(&p, H, W, &q);
        cy_box += b.y + b.h / 2.0 + b.x + b.w / 2.0;
        cy_none += a.y + a.h / 2.0 + a.x + a.w / 2.0;
        touching += b.y < 80 && b.x < 80;   /* every crop must overlap the box */
    }
    /* large crops cover the box from anywhere; the shift is about 40 pixels, its standard error under 2 */
    cr_log_info("mean crop centre y+x: %.1f with a top-left box, %.1f without", cy_box / n, cy_none / n);
    cr_assert_eq(touching, n, "%d of %d crops miss the box", n - touching, n);
    cr_assert_lt(cy_box / n, cy_none / n - 20.0, "mean crop centre y+x: %.1f with a top-left box, %.1f without",
                 cy_box / n, cy_none / n);
    /* no boxes: exactly the whole-image sampler */
    for (int i = 0; i < 200; i++) {
        struct rng r, q;
        rng_init(&r, 4, (uint64_t)i);
        q = r;
        struct box a = distort_crop_sample_boxes(&p, 375, 500, NULL, 0, &r), b = distort_crop_sample(&p, 375, 500, &q);
        cr_assert(a.y == b.y && a.x == b.x && a.h == b.h && a.w == b.w);
    }
    /* a box of zero pixel area is skipped: nothing can be covered, the whole image comes back */
    const float dot[4] = { 0.5f, 0.5f, 0.5001f, 0.5001f };
    for (int i = 0; i < 50; i++) {
        struct rng r;
        rng_init(&r, 5, (uint64_t)i);
        struct box b = distort_crop_sample_boxes(&p, 300, 300, dot, 1, &r);
        cr_assert(b.y == 0 && b.x == 0 && b.h == 300 && b.w == 300, "zero-area box: %d,%d %dx%d", b.y, b.x, b.h, b.w);
    }
    /* coverage 1.0 of a box that no allowed crop can hold entirely -> whole image */
    struct crop_params q = p;
    q.min_object_covered = 1.0f;
    q.area_hi = 0.3f;
    const float big[4] = { 0.0f, 0.0f, 0.9f, 0.9f };
    struct rng r;
    rng_init(&r, 6, 1);
    struct box b = distort_crop_sample_boxes(&q, 200, 200, big, 1, &r);
    cr_assert(b.y == 0 && b.x == 0 && b.h == 200 && b.w == 200);
}
