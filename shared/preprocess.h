/*
 * preprocess.h — the image preprocessing that training and evaluation
 * share: TF's central crop and the fused fixed-point crop + resize + flip,
 * and with them eval's whole preprocessing of one image (TF research/
 * inception image_processing.py, eval_image: central crop 0.875, bilinear
 * resize), which the eval workers run through augment/distort.c and
 * `deeper classify` calls directly, so both give the same bytes.
 *
 * Conventions: images are HWC uint8, row-major, values 0..255; a box is
 * (y, x, h, w) in pixels.
 */
#ifndef DEEPER_PREPROCESS_H
#define DEEPER_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

struct box { int y, x, h, w; };

/* TF's central_crop(fraction): start = int((H - fraction*H) / 2), size = H - 2*start, per axis. */
struct box preprocess_crop_central(int height, int width, float fraction);

enum resize_method { RESIZE_BILINEAR = 0, RESIZE_NEAREST = 1 };

struct resize_params {
    enum resize_method method;
    int half_pixel;   /* 0: TF1 resize_bilinear(align_corners=False) mapping src = dst*scale
                         (what inception ran); 1: half-pixel centres (TF2, torchvision) */
    int flip;         /* mirror left-right while resizing */
};

/* Resize box `b` of src (sh x sw x c, row stride `stride` bytes) to dst
 * (dh x dw x c, packed), optionally flipped.  `tmp` must hold
 * preprocess_resize_tmp_bytes(b.w or more, dw, c) bytes. */
void preprocess_resize(const uint8_t *src, int sh, int sw, int c, size_t stride, struct box b,
                       uint8_t *dst, int dh, int dw, const struct resize_params *p, void *tmp);
size_t preprocess_resize_tmp_bytes(int sw, int dw, int c);

/* Eval preprocessing of one decoded image src (h x w x c packed, c = 1 or
 * 3) into dst (out_h x out_w x out_c): central crop of `fraction`, resize
 * with rp (its flip is ignored), gray repeated into three channels when
 * out_c is 3 and c is 1.  The same bytes as an eval worker's
 * distort_example with the same resize parameters. */
status preprocess_eval(const uint8_t *src, int h, int w, int c, float fraction,
                       const struct resize_params *rp, uint8_t *dst, int out_h, int out_w, int out_c);

#endif
