/*
 * fuzz_images.h — the small valid images the fuzz targets and the seed
 * generator share: a deterministic gradient with a few sharp edges (so a
 * decoder that keeps state from an earlier image shows up as changed pixels),
 * encoded as baseline JPEG, PNG and lossless WebP by the project's encoders
 * and libwebp.
 */
#ifndef DEEPER_FUZZ_IMAGES_H
#define DEEPER_FUZZ_IMAGES_H
#include <stdint.h>
#include <stdlib.h>
#include <webp/encode.h>

#include "shared/image.h"

enum fuzz_image_kind { FUZZ_IMAGE_JPEG, FUZZ_IMAGE_PNG, FUZZ_IMAGE_WEBP, FUZZ_IMAGE_KINDS };

/* h x w x c pixels (malloc'd). */
static inline uint8_t *fuzz_image_pixels(int h, int w, int c)
{
    uint8_t *p = malloc((size_t)h * w * c);
    if (!p) return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                p[((size_t)y * w + x) * c + k] =
                    (uint8_t)(((x * 255) / (w > 1 ? w - 1 : 1) + k * 80 + ((x / 4 + y / 4) % 2) * 60) & 0xff);
    return p;
}

/* Encode the test image of h x w x c as kind; *out malloc'd (free()). */
static inline status fuzz_image_encode(enum fuzz_image_kind kind, int h, int w, int c, uint8_t **out, size_t *n)
{
    uint8_t *px = fuzz_image_pixels(h, w, c);
    status st = STATUS_OK;
    if (!px) return FAIL(STATUS_NOMEM, "fuzz image");
    if (kind == FUZZ_IMAGE_JPEG) {
        st = image_encode_jpeg(px, h, w, c, 90, out, n);
    } else if (kind == FUZZ_IMAGE_PNG) {
        st = image_encode_png(px, h, w, c, out, n);
    } else {
        uint8_t *rgb = px, *webp = NULL;
        if (c == 1) {
            rgb = malloc((size_t)h * w * 3);
            if (!rgb) { free(px); return FAIL(STATUS_NOMEM, "fuzz image"); }
            image_gray_to_rgb(px, rgb, (size_t)h * w);
        }
        size_t len = WebPEncodeLosslessRGB(rgb, w, h, w * 3, &webp);
        if (rgb != px) free(rgb);
        if (!len) {
            st = FAIL(STATUS_DECODE, "webp encode failed");
        } else {
            *out = malloc(len);
            if (*out) { memcpy(*out, webp, len); *n = len; } else st = FAIL(STATUS_NOMEM, "fuzz image");
            WebPFree(webp);
        }
    }
    free(px);
    return st;
}

#endif
