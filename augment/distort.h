/*
 * distort.h — Inception's image distortions (TF research/inception
 * image_processing.py; docs/design.md, "TF semantics"), one function per
 * distortion with a parameters struct, plus the fused per-example pipeline
 * the augment worker runs.
 *
 * Training: sample_distorted_bounding_box crop -> resize to the output size
 * (bilinear) -> flip with p = 0.5 -> colour (brightness, saturation, hue,
 * contrast in one of TF's two orders) -> clip.  Eval: central crop 0.875 ->
 * resize, nothing random.
 *
 * Speed: crop, resize and flip are one fused pass in 11-bit fixed point over
 * uint8 (the flip just mirrors the column tables); colour runs on the resized
 * image in float through per-channel lookup tables for the affine parts
 * (brightness, contrast) and one HSV round trip per pixel for saturation and
 * hue together; the result is clipped and rounded to uint8 once.  The float
 * reference versions (distort_brightness_f32, ..._contrast_f32,
 * ..._saturation_f32, ..._hue_f32) follow TF's kernels op by op and are what
 * the tests compare the fused path with.
 *
 * Randomness: every draw comes from shared/rng.h keyed by
 * (seed, epoch, example id, what), so an example's distortion does not depend
 * on which worker handles it or in what order.
 *
 * Conventions: images are HWC uint8, row-major, values 0..255; float images
 * are HWC in [0,1] (TF's convert_image_dtype scale); a box is (y, x, h, w) in
 * pixels.  Nothing here allocates except distort_ctx_new.
 */
#ifndef DEEPER_AUGMENT_DISTORT_H
#define DEEPER_AUGMENT_DISTORT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/rng.h"
#include "shared/status.h"

struct box { int y, x, h, w; };

/* ---- crop ---------------------------------------------------------------- */

struct crop_params {
    float min_object_covered;   /* 0.1 */
    float aspect_lo, aspect_hi; /* 0.75, 1.33 (width / height) */
    float area_lo, area_hi;     /* 0.05, 1.0 (fraction of the image) */
    int max_attempts;           /* 100 */
};
void crop_params_default(struct crop_params *p);

/* TF's sample_distorted_bounding_box with no boxes and
 * use_image_if_no_bounding_boxes=True (the whole image is the object box):
 * up to max_attempts draws of (aspect, height, y, x) as TF's kernel makes
 * them; the first crop covering >= min_object_covered of the image wins; the
 * whole image if none does. */
struct box distort_crop_sample(const struct crop_params *p, int height, int width, struct rng *r);

/* The same with the example's object boxes (nboxes x 4 floats: ymin, xmin,
 * ymax, xmax, normalised; TF's image/object/bbox): corners become pixels as
 * int(ymin*H) ..., and a crop is accepted when it covers at least
 * min_object_covered of some box's area (boxes of zero pixel area are
 * skipped; at most 64 boxes are considered).  No boxes: the whole image is
 * the box (use_image_if_no_bounding_boxes), exactly distort_crop_sample.
 * After max_attempts failures: the whole image. */
struct box distort_crop_sample_boxes(const struct crop_params *p, int height, int width, const float *boxes,
                                     int nboxes, struct rng *r);

/* TF's central_crop(fraction): start = int((H - fraction*H) / 2), size = H - 2*start, per axis. */
struct box distort_crop_central(int height, int width, float fraction);

/* ---- resize + flip --------------------------------------------------------- */

enum resize_method { RESIZE_BILINEAR = 0, RESIZE_NEAREST = 1 };

struct resize_params {
    enum resize_method method;
    int half_pixel;   /* 0: TF1 resize_bilinear(align_corners=False) mapping src = dst*scale
                         (what inception ran); 1: half-pixel centres (TF2, torchvision) */
    int flip;         /* mirror left-right while resizing */
};

/* Resize box `b` of src (sh x sw x c, row stride `stride` bytes) to dst
 * (dh x dw x c, packed), optionally flipped.  `tmp` must hold
 * distort_resize_tmp_bytes(b.w or more, dw, c) bytes. */
void distort_resize(const uint8_t *src, int sh, int sw, int c, size_t stride, struct box b,
                    uint8_t *dst, int dh, int dw, const struct resize_params *p, void *tmp);
size_t distort_resize_tmp_bytes(int sw, int dw, int c);

/* Mirror an image left-right in place. */
void distort_flip(uint8_t *img, int h, int w, int c);

/* ---- colour ---------------------------------------------------------------- */

struct color_params {
    float brightness;           /* max delta, 32/255 */
    float sat_lo, sat_hi;       /* 0.5, 1.5 */
    float hue;                  /* max delta, 0.2 */
    float con_lo, con_hi;       /* 0.5, 1.5 */
    int ordering;               /* -1: drawn per example (TF's thread mix), 0 or 1: fixed */
};
void color_params_default(struct color_params *p);

/* One example's colour factors, drawn in TF's order of calls. */
struct color_draw {
    float brightness;   /* delta added to [0,1] values */
    float saturation;   /* factor on S */
    float hue;          /* delta added to H in [0,1) turns */
    float contrast;     /* factor around the channel mean */
    int ordering;       /* 0: b, s, h, c   1: b, c, s, h */
};
void distort_color_sample(const struct color_params *p, struct rng *r, struct color_draw *out);

/* Apply a colour draw to an RGB uint8 image in place (fused; clip + round).
 * `scratch` must hold npix * 3 floats (used by ordering 0). */
void distort_color_apply(uint8_t *img, size_t npix, const struct color_draw *d, float *scratch);

/* Float reference ops, one per TF op, on HWC RGB float images (npix pixels). */
void distort_brightness_f32(float *img, size_t npix, int c, float delta);
void distort_contrast_f32(float *img, size_t npix, int c, float factor);
void distort_saturation_f32(float *img, size_t npix, float factor);
void distort_hue_f32(float *img, size_t npix, float delta);
void distort_clip_f32(float *img, size_t n);
/* TF's rgb_to_hsv / hsv_to_rgb (adjust_saturation's kernel), H in [0,1). */
void distort_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v);
void distort_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b);

/* ---- per-example pipeline --------------------------------------------------- */

struct distort_config {
    int out_h, out_w, out_c;    /* output image; out_c 3 with 1-channel input expands gray */
    int eval;                   /* central crop + resize, nothing random */
    float central_fraction;     /* 0.875 */
    int crop, flip, color;      /* train switches */
    struct crop_params crop_p;
    struct color_params color_p;
    struct resize_params resize_p; /* flip is set per example */
    uint64_t seed;
};
void distort_config_default(struct distort_config *cfg, int out_size);

/* Scratch buffers for one thread, grown on demand. */
struct distort_ctx;
status distort_ctx_new(struct distort_ctx **out);
void distort_ctx_free(struct distort_ctx **ctx);

/* What was done to one example (for --dump and tests). */
struct distort_info {
    struct box crop;
    int flipped;
    struct color_draw color;
    int colored;
};

/* Draw everything random about one example of an h x w x c image: crop box,
 * flip, colour factors.  Deterministic in (cfg->seed, epoch, id). */
void distort_plan(const struct distort_config *cfg, int h, int w, int c, uint64_t epoch, uint64_t id,
                  struct distort_info *info);

/* distort_plan with the example's object boxes for the crop (see
 * distort_crop_sample_boxes); NULL/0: the whole image. */
void distort_plan_boxes(const struct distort_config *cfg, int h, int w, int c, const float *boxes, int nboxes,
                        uint64_t epoch, uint64_t id, struct distort_info *info);

/* Scale a plan's crop box from an h x w image to the sh x sw image that was
 * actually decoded (JPEG DCT scaling); the box stays inside the image. */
struct box distort_box_scale(struct box b, int h, int w, int sh, int sw);

/* Carry out a plan on src (h x w x c, packed) into dst (out_h x out_w x out_c).
 * c must be 1 or 3; out_c must equal c, or be 3 with c == 1 (gray expanded).
 * Colour ops apply only to 3-channel sources. */
status distort_apply(const struct distort_config *cfg, struct distort_ctx *ctx, const struct distort_info *info,
                     const uint8_t *src, int h, int w, int c, uint8_t *dst);

/* distort_plan + distort_apply.  info may be NULL. */
status distort_example(const struct distort_config *cfg, struct distort_ctx *ctx,
                       const uint8_t *src, int h, int w, int c, uint64_t epoch, uint64_t id,
                       uint8_t *dst, struct distort_info *info);

#endif
