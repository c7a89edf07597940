/*
 * test_augment_profile.c — what each dataset augmentation profile turns on
 * (augment/profile.h): `small` (Fashion-MNIST) gives mild crops plus flips
 * and no colour, `digits` the same crops without flips, `photo` TF's wide
 * crop sampler, `none` nothing; the crops actually drawn at 28x28 stay inside
 * the profile's area/aspect ranges, and "small" survives the manifest's
 * name round trip.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "augment/distort.h"
#include "augment/profile.h"
#include "shared/manifest.h"
#include "shared/rng.h"

/* Draw n crops of a 28x28 image; report the smallest area fraction, the
 * aspect range and how many were not the whole image. */
static void draw_crops(const struct crop_params *p, int n, double *min_area, double *min_ar, double *max_ar,
                       int *partial)
{
    *min_area = 1.0; *min_ar = 1e9; *max_ar = 0; *partial = 0;
    for (int i = 0; i < n; i++) {
        struct rng r;
        rng_init(&r, 7, rng_stream(0, (uint64_t)i, RNG_WHAT_CROP));
        struct box b = distort_crop_sample(p, 28, 28, &r);
        cr_assert(b.y >= 0 && b.x >= 0 && b.y + b.h <= 28 && b.x + b.w <= 28, "crop %d,%d %dx%d out of bounds",
                  b.y, b.x, b.h, b.w);
        double a = b.h * b.w / 784.0, ar = (double)b.w / b.h;
        if (a < *min_area) *min_area = a;
        if (ar < *min_ar) *min_ar = ar;
        if (ar > *max_ar) *max_ar = ar;
        if (b.h != 28 || b.w != 28) (*partial)++;
    }
}

Test(augment_profile, small_is_mild_crops_with_flips)
{
    struct distort_config dc;
    distort_config_default(&dc, 28);
    augment_profile_apply(MANIFEST_PROFILE_SMALL, 1, 1, &dc);
    cr_assert(dc.crop && dc.flip && !dc.color, "small: crop %d flip %d color %d (want 1 1 0)", dc.crop, dc.flip, dc.color);
    cr_assert_float_eq(dc.crop_p.area_lo, 0.75f, 1e-6);
    cr_assert_float_eq(dc.crop_p.min_object_covered, 0.75f, 1e-6);
    double min_area, min_ar, max_ar;
    int partial;
    draw_crops(&dc.crop_p, 2000, &min_area, &min_ar, &max_ar, &partial);
    printf("small: 2000 crops at 28x28: smallest area %.3f, aspect %.3f..%.3f, %d not whole\n", min_area, min_ar,
           max_ar, partial);
    cr_assert_geq(min_area, 0.75 - 1e-9, "a small-profile crop covers only %.3f of the image", min_area);
    cr_assert(min_ar >= 0.85 && max_ar <= 1.18, "aspect %.3f..%.3f outside ~0.9..1.11", min_ar, max_ar);
    cr_assert_gt(partial, 1000, "only %d of 2000 crops moved or zoomed: crops are not random", partial);
    /* the manifest may forbid flips (ingest --no_flip) */
    augment_profile_apply(MANIFEST_PROFILE_SMALL, 0, 0, &dc);
    cr_assert(dc.crop && !dc.flip && !dc.color);
}

Test(augment_profile, digits_never_flips_photo_is_wide_none_is_off)
{
    struct distort_config dc;
    distort_config_default(&dc, 28);
    augment_profile_apply(MANIFEST_PROFILE_DIGITS, 1, 1, &dc);
    cr_assert(dc.crop && !dc.flip && !dc.color, "digits: crop %d flip %d color %d", dc.crop, dc.flip, dc.color);
    cr_assert_float_eq(dc.crop_p.area_lo, 0.75f, 1e-6);

    augment_profile_apply(MANIFEST_PROFILE_PHOTO, 1, 1, &dc);   /* after digits: must reset the crop */
    cr_assert(dc.crop && dc.flip && dc.color);
    cr_assert_float_eq(dc.crop_p.area_lo, 0.05f, 1e-6);
    cr_assert_float_eq(dc.crop_p.min_object_covered, 0.1f, 1e-6);
    double min_area, min_ar, max_ar;
    int partial;
    draw_crops(&dc.crop_p, 2000, &min_area, &min_ar, &max_ar, &partial);
    printf("photo: 2000 crops at 28x28: smallest area %.3f, aspect %.3f..%.3f\n", min_area, min_ar, max_ar);
    cr_assert_lt(min_area, 0.3, "photo crops never went below %.3f of the image", min_area);

    augment_profile_apply(MANIFEST_PROFILE_NONE, 1, 1, &dc);
    cr_assert(!dc.crop && !dc.flip && !dc.color);
}

Test(augment_profile, small_name_round_trip)
{
    enum manifest_profile p = MANIFEST_PROFILE_PHOTO;
    cr_assert_eq(manifest_profile_parse("small", &p), STATUS_OK);
    cr_assert_eq(p, MANIFEST_PROFILE_SMALL);
    cr_assert_str_eq(manifest_profile_name(MANIFEST_PROFILE_SMALL), "small");
    cr_assert_neq(manifest_profile_parse("tiny", &p), STATUS_OK);
}
