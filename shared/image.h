/*
 * image.h — decode, encode and resize 8-bit images.
 *
 * Decoding picks the codec from the first bytes of the data (magic numbers),
 * never from a file name: JPEG (FF D8 FF) through TurboJPEG, PNG through
 * libpng, WebP (RIFF....WEBP) through libwebp.  Everything decodes to tightly
 * packed row-major HWC uint8, either gray (1 channel) or RGB (3 channels):
 *   - JPEG: TJFLAG_STOPONWARNING, so a truncated or corrupt file (a libjpeg
 *     *warning*) is an error, not a half-grey image.  CMYK and YCCK JPEGs are
 *     decoded to CMYK and converted to RGB here (R = C*K/255 on the stored,
 *     Adobe-inverted values, which is what Photoshop-written files hold).
 *   - PNG: 16-bit samples are reduced to 8 (high byte), palettes expanded,
 *     gray+alpha / RGBA lose their alpha channel (as TF's decode_png(channels=3)
 *     and PIL's convert("RGB") do), tRNS ignored.
 *   - WebP: still images only; an animated WebP is rejected with
 *     STATUS_UNSUPPORTED ("animated WebP is not supported") because which
 *     frame to keep is not a decision a dataset tool should take silently.
 * Before any buffer the size of the image is allocated, the header's
 * width*height is checked against max_pixels (STATUS_TOO_BIG).
 *
 * Resizing works on views (pointer, height, width, channels, row stride), so a
 * crop is a view into the source and needs no copy.  BILINEAR follows TF's
 * resize_bilinear with align_corners=False and half_pixel_centers=False (the
 * TF 1.x behaviour image_processing.py relies on): src = dst * (in/out).
 * BILINEAR_HALF is the half-pixel variant (PyTorch/PIL-style centres).  AREA
 * averages every source pixel a destination pixel covers (with fractional
 * weights), TF's resize_area; it is what ingest uses to shrink.
 */
#ifndef DEEPER_IMAGE_H
#define DEEPER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

enum image_format {
    IMAGE_FORMAT_UNKNOWN = 0,
    IMAGE_FORMAT_JPEG,
    IMAGE_FORMAT_PNG,
    IMAGE_FORMAT_WEBP,
    IMAGE_FORMAT_GIF,     /* recognised only to name it in the rejection */
    IMAGE_FORMAT_BMP,     /* idem */
};

/* Format from the first bytes (n may be short). */
enum image_format image_sniff(const void *data, size_t n);
const char *image_format_name(enum image_format f);   /* "jpeg", "png", ... */

/* What the header says, without decoding the pixels. */
struct image_info {
    enum image_format format;
    int width, height;
    int channels;        /* what it decodes to natively: 1 gray, 3 colour */
    int cmyk;            /* JPEG stored as CMYK or YCCK */
    int animated;        /* WebP animation */
};

status image_probe(const void *data, size_t n, struct image_info *info);

/* An owned image: pixels is malloc'd, tightly packed HWC. */
struct image {
    uint8_t *pixels;
    int height, width, channels;
};

void image_clear(struct image *img);       /* frees pixels, zeroes the struct; NULL ok */

struct image_decode_opts {
    int channels;          /* 0: native (gray stays 1, colour 3); 1: to gray; 3: to RGB */
    uint64_t max_pixels;   /* 0: no limit */
};

/* Decode data into *out (caller frees with image_clear).  Fails with
 * STATUS_FORMAT (not an image we know), STATUS_DECODE (the codec refused it,
 * message says why), STATUS_TOO_BIG (max_pixels), STATUS_UNSUPPORTED
 * (animated WebP, GIF, BMP). Messages do not name the file; the caller does. */
status image_decode(const void *data, size_t n, const struct image_decode_opts *opts, struct image *out);

/* Decode into a caller's buffer (e.g. straight into a record being written):
 * dst must hold height*width*channels bytes of what image_probe reports
 * (channels as opts asks).  out->pixels is set to dst and NOT owned: do not
 * image_clear it.  JPEG (not CMYK) decodes in place; other formats go through
 * a temporary image.  STATUS_USAGE when cap is too small. */
status image_decode_to(const void *data, size_t n, const struct image_decode_opts *opts, uint8_t *dst,
                       size_t cap, struct image *out);

/* Encoders.  *out is malloc'd (caller frees with free()). */
status image_encode_jpeg(const uint8_t *pixels, int height, int width, int channels,
                         int quality, uint8_t **out, size_t *n);
status image_encode_png(const uint8_t *pixels, int height, int width, int channels,
                        uint8_t **out, size_t *n);

/* Colour conversions on tightly packed buffers. */
void image_rgb_to_gray(const uint8_t *rgb, uint8_t *gray, size_t npixels);  /* ITU-R 601, rounded */
void image_gray_to_rgb(const uint8_t *gray, uint8_t *rgb, size_t npixels);

/* ----------------------------------------------------------------- resize */

/* A borrowed image region: row r starts at data + r*stride. */
struct image_view {
    const uint8_t *data;
    int height, width, channels;
    size_t stride;          /* bytes between rows (>= width*channels) */
};

static inline struct image_view image_view_of(const uint8_t *data, int height, int width, int channels)
{
    struct image_view v = { data, height, width, channels, (size_t)width * (size_t)channels };
    return v;
}

/* The sub-rectangle [y, y+h) x [x, x+w) of v (caller keeps it inside v). */
static inline struct image_view image_view_crop(struct image_view v, int y, int x, int h, int w)
{
    struct image_view c = { v.data + (size_t)y * v.stride + (size_t)x * (size_t)v.channels,
                            h, w, v.channels, v.stride };
    return c;
}

enum image_resize_method {
    IMAGE_RESIZE_BILINEAR = 0,       /* TF resize_bilinear, align_corners=False (legacy coordinates) */
    IMAGE_RESIZE_NEAREST = 1,        /* TF resize_nearest_neighbor, align_corners=False */
    IMAGE_RESIZE_BILINEAR_HALF = 2,  /* half-pixel centres (PIL/PyTorch align_corners=False) */
    IMAGE_RESIZE_AREA = 3,           /* TF resize_area */
};

/* Resize src into dst (dst_h x dst_w, same channels, rows dst_stride bytes
 * apart; dst_stride 0 means tight).  Results are rounded to nearest uint8.
 * STATUS_USAGE on empty sizes or a channel count other than 1..4. */
status image_resize(const struct image_view *src, uint8_t *dst, int dst_h, int dst_w,
                    size_t dst_stride, enum image_resize_method method);

/* The size that makes the shorter side `short_side` keeping the aspect ratio
 * (rounded to nearest, at least 1).  If the short side is already <= short_side,
 * returns the input size unchanged. */
void image_size_short_side(int h, int w, int short_side, int *out_h, int *out_w);

#endif
