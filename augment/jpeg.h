/*
 * jpeg.h — the augment worker's JPEG decoder: TurboJPEG with DCT-domain
 * scaling into a reusable buffer.
 *
 * A training crop is usually much larger than the output image (a 500x375
 * photo cropped to 300x250 and resized to 299 is fine at full size, but a
 * 1000x800 one is not), so decoding at 1/2, 1/4 or 1/8 scale in the IDCT
 * costs less and loses nothing the bilinear resize would keep.  jpeg_pick_scale
 * chooses the smallest TurboJPEG scaling factor that keeps the crop at least
 * as large as the output in both directions.  (Region decoding —
 * jpeg_crop_scanline / jpeg_skip_scanlines in the libjpeg API — is not used:
 * see README `speed-augment` for the measurement that decided it.)
 *
 * The decoder owns its TurboJPEG handle and pixel buffer; one per thread.
 * Decoding is strict (TJFLAG_STOPONWARNING): a truncated or corrupt JPEG is an
 * error, which the worker counts and skips.  CMYK/YCCK files are handed to
 * shared/image's decoder (which converts them) at full size.
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

#endif
