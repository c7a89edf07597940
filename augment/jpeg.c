/*
 * jpeg.c — TurboJPEG decode with DCT scaling into a reusable buffer (see jpeg.h).
 */
#include "augment/jpeg.h"

#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "shared/image.h"

struct jpeg_decoder {
    tjhandle tj;
    uint8_t *buf;
    size_t cap;
    struct image fallback;   /* CMYK path */
};

status jpeg_decoder_new(struct jpeg_decoder **out)
{
    struct jpeg_decoder *d = calloc(1, sizeof *d);
    if (!d) return FAIL(STATUS_NOMEM, "jpeg decoder");
    d->tj = tjInitDecompress();
    if (!d->tj) { free(d); return FAIL(STATUS_DECODE, "tjInitDecompress: %s", tjGetErrorStr2(NULL)); }
    *out = d;
    return STATUS_OK;
}

void jpeg_decoder_free(struct jpeg_decoder **dp)
{
    if (!dp || !*dp) return;
    struct jpeg_decoder *d = *dp;
    if (d->tj) tjDestroy(d->tj);
    free(d->buf);
    image_free(&d->fallback);
    free(d);
    *dp = NULL;
}

int jpeg_pick_scale(int crop_h, int crop_w, int out_h, int out_w)
{
    /* TurboJPEG 2.1 decodes fastest at M/8 for M in 1, 2, 4 (pure IDCT
     * reductions); other factors add an upsampling step, so only those. */
    static const int nums[] = { 1, 2, 4 };
    for (int i = 0; i < 3; i++) {
        int m = nums[i];
        if ((crop_h * m) / 8 >= out_h && (crop_w * m) / 8 >= out_w) return m;
    }
    return 8;
}

status jpeg_decoder_decode(struct jpeg_decoder *d, const uint8_t *data, size_t n, int channels, int num,
                           uint64_t max_pixels, const uint8_t **pixels, int *h, int *w)
{
    int W = 0, H = 0, subsamp = -1, cs = -1;
    if (channels != 1 && channels != 3) return FAIL(STATUS_USAGE, "jpeg: channels %d", channels);
    if (tjDecompressHeader3(d->tj, data, (unsigned long)n, &W, &H, &subsamp, &cs) != 0)
        return FAIL(STATUS_DECODE, "jpeg header: %s", tjGetErrorStr2(d->tj));
    if (W <= 0 || H <= 0 || cs < 0) return FAIL(STATUS_DECODE, "jpeg header: no valid frame");
    if (max_pixels && (uint64_t)W * (uint64_t)H > max_pixels)
        return FAIL(STATUS_TOO_BIG, "jpeg: %dx%d exceeds %llu pixels", W, H, (unsigned long long)max_pixels);
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        image_free(&d->fallback);
        struct image_decode_opts o = { channels, max_pixels };
        TRY(image_decode(data, n, &o, &d->fallback));
        *pixels = d->fallback.pixels;
        *h = d->fallback.height;
        *w = d->fallback.width;
        return STATUS_OK;
    }
    tjscalingfactor sf = { num, 8 };
    int sw = TJSCALED(W, sf), sh = TJSCALED(H, sf);
    size_t need = (size_t)sw * sh * channels;
    if (need > d->cap) {
        uint8_t *nb = realloc(d->buf, need);
        if (!nb) return FAIL(STATUS_NOMEM, "jpeg: %zu bytes", need);
        d->buf = nb;
        d->cap = need;
    }
    int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
    if (tjDecompress2(d->tj, data, (unsigned long)n, d->buf, sw, 0, sh, channels == 1 ? TJPF_GRAY : TJPF_RGB, flags) != 0) {
        int warn = tjGetErrorCode(d->tj) == TJERR_WARNING;
        return FAIL(STATUS_DECODE, "jpeg: %s%s", tjGetErrorStr2(d->tj), warn ? " (truncated or corrupt)" : "");
    }
    *pixels = d->buf;
    *h = sh;
    *w = sw;
    return STATUS_OK;
}
