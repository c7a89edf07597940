/*
 * jpeg.h — the augment worker's JPEG decoder: TurboJPEG with DCT-domain
 * scaling into a reusable buffer.
 *
 * A training crop is usually a fraction of the photo and often much larger
 * than the output, so the worker decodes only what it needs:
 *   - DCT scaling: jpeg_pick_scale picks the smallest of 1/8, 1/4, 1/2 that
 *     keeps the crop at least as large as the output in both directions, so
 *     the bilinear resize never upsamples because of it;
 *   - region decoding (libjpeg API, libjpeg62-turbo): rows above the crop
 *     are skipped with jpeg_skip_scanlines, columns outside it with
 *     jpeg_crop_scanline (which widens the region to iMCU boundaries), rows
 *     below it are never decoded (jpeg_abort_decompress).
 * Measured on 256 photos (mean 484x323) with TF crops: 0.48-0.55 ms per
 * image with region decoding against 0.79-0.83 ms for a full (scaled)
 * TurboJPEG decode, so region decoding is the default (README speed-augment).
 *
 * The decoder owns its pixel buffer (one decoder per thread); no codec state
 * is kept from one image to the next (a failed file cannot spoil the next).
 * Decoding is strict: a libjpeg warning (truncated or corrupt data) is an
 * error, which the worker counts and skips, and progressive files with more
 * than 500 scans are refused (TurboJPEG's TJFLAG_LIMITSCANS rule).
 * CMYK/YCCK files are handed to shared/image's decoder (which converts
 * them) at full size.
 */
#ifndef DEEPER_AUGMENT_JPEG_H
#define DEEPER_AUGMENT_JPEG_H

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"

struct jpeg_decoder;

status jpeg_decoder_new(struct jpeg_decoder **out);
void jpeg_decoder_free(struct jpeg_decoder **d);

/* Scaling factor num/denom (denom 8) such that crop_h*num/8 >= out_h and
 * crop_w*num/8 >= out_w, as small as possible; 8/8 when none is smaller. */
int jpeg_pick_scale(int crop_h, int crop_w, int out_h, int out_w);

/* Decode data (n bytes) to `channels` (1 or 3) at scale num/8.  *pixels
 * points into the decoder's buffer (valid until the next call); *h, *w get the
 * decoded size (TJSCALED of the header size).  max_pixels bounds the full-size
 * header (0: none). */
status jpeg_decoder_decode(struct jpeg_decoder *d, const uint8_t *data, size_t n, int channels, int num,
                           uint64_t max_pixels, const uint8_t **pixels, int *h, int *w);

/* Decode only the region `box` (in full-size image coordinates) of data at
 * scale num/8.  *pixels (valid until the next call) is an *h x *w image that
 * contains the scaled box; *in_box is where the box lies in it. */
struct box;
status jpeg_decoder_decode_region(struct jpeg_decoder *d, const uint8_t *data, size_t n, int channels, int num,
                                  uint64_t max_pixels, const struct box *box, const uint8_t **pixels, int *h,
                                  int *w, struct box *in_box);

#endif
