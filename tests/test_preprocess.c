/*
 * test_preprocess.c — eval preprocessing in shared/ (what `deeper classify`
 * calls) gives exactly the bytes an eval worker's distort_example gives:
 * gray and colour sources, gray expanded to three channels, each resize
 * method, odd sizes, up- and downscaling; and bad shapes are refused with
 * one line.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "augment/distort.h"
#include "shared/preprocess.h"
#include "shared/rng.h"

static uint8_t *noise_image(int h, int w, int c, uint64_t seed)
{
    uint8_t *img = malloc((size_t)h * w * c);
    struct rng r;
    rng_init(&r, seed, 0);
    for (size_t i = 0; i < (size_t)h * w * c; i++) img[i] = (uint8_t)rng_below(&r, 256);
    return img;
}

Test(preprocess, eval_matches_the_eval_workers_bytes)
{
    const int shapes[][2] = { { 37, 53 }, { 299, 299 }, { 8, 8 }, { 120, 41 } };
    const int outs[] = { 28, 75, 299 };
    const struct resize_params methods[] = { { RESIZE_BILINEAR, 0, 0 }, { RESIZE_BILINEAR, 1, 0 },
                                             { RESIZE_NEAREST, 0, 0 } };
    const int chans[][2] = { { 1, 1 }, { 3, 3 }, { 1, 3 } };
    struct distort_ctx *ctx;
    cr_assert_eq(distort_ctx_new(&ctx), STATUS_OK);
    int cases = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t o = 0; o < sizeof outs / sizeof *outs; o++)
            for (size_t m = 0; m < sizeof methods / sizeof *methods; m++)
                for (size_t k = 0; k < sizeof chans / sizeof *chans; k++) {
                    int h = shapes[s][0], w = shapes[s][1], c = chans[k][0], oc = chans[k][1], n = outs[o];
                    uint8_t *src = noise_image(h, w, c, 7 + s);
                    struct distort_config cfg;
                    distort_config_default(&cfg, n);
                    cfg.eval = 1;
                    cfg.out_c = oc;
                    cfg.resize_p = methods[m];
                    size_t bytes = (size_t)n * n * oc;
                    uint8_t *a = malloc(bytes), *b = malloc(bytes);
                    memset(a, 1, bytes);
                    memset(b, 2, bytes);
                    cr_assert_eq(distort_example(&cfg, ctx, src, h, w, c, 3, 5, a, NULL), STATUS_OK, "%s", status_msg());
                    cr_assert_eq(preprocess_eval(src, h, w, c, 0.875f, &methods[m], b, n, n, oc), STATUS_OK, "%s",
                                 status_msg());
                    cr_assert_eq(memcmp(a, b, bytes), 0, "%dx%dx%d -> %dx%dx%d, method %zu: bytes differ", h, w, c,
                                 n, n, oc, m);
                    free(src); free(a); free(b);
                    cases++;
                }
    distort_ctx_free(&ctx);
    cr_assert_eq(cases, 108);
}

Test(preprocess, bad_shapes_are_refused)
{
    uint8_t src[12] = { 0 }, dst[48];
    const struct resize_params rp = { RESIZE_BILINEAR, 0, 0 };
    cr_assert_eq(preprocess_eval(src, 2, 2, 2, 0.875f, &rp, dst, 4, 4, 2), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "2x2x2"), "%s", status_msg());
    cr_assert_eq(preprocess_eval(src, 2, 2, 3, 0.875f, &rp, dst, 4, 4, 1), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "3 channels"), "%s", status_msg());
    cr_assert_eq(preprocess_eval(src, 2, 2, 3, 0.875f, &rp, dst, 0, 4, 3), STATUS_USAGE);
}
