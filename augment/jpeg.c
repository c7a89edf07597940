/*
 * jpeg.c — TurboJPEG decode with DCT scaling into a reusable buffer (see jpeg.h).
 *
 * Only the pixel buffer lives from one image to the next.  The TurboJPEG
 * handle is made per call (about 0.5 us): one that saw an error is left
 * mid-parse and made later valid files fail.  The libjpeg object used for
 * region decoding is aborted after every image and destroyed after every
 * error, so the next image starts from a newly created one.
 */
#include "augment/jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <jpeglib.h>

#include "augment/distort.h"
#include "shared/image.h"

#define JPEG_MAX_SCANS 500

struct lj_error {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
};

struct jpeg_decoder {
    struct jpeg_decompress_struct lj;
    struct lj_error lj_err;
    struct jpeg_progress_mgr lj_progress;
    int lj_ready;
    uint8_t *buf;
    size_t cap;
    struct image fallback;   /* CMYK path */
};

status jpeg_decoder_new(struct jpeg_decoder **out)
{
    struct jpeg_decoder *d = calloc(1, sizeof *d);
    if (!d) return FAIL(STATUS_NOMEM, "jpeg decoder");
    *out = d;
    return STATUS_OK;
}

void jpeg_decoder_free(struct jpeg_decoder **dp)
{
    if (!dp || !*dp) return;
    struct jpeg_decoder *d = *dp;
    if (d->lj_ready) jpeg_destroy_decompress(&d->lj);
    free(d->buf);
    image_clear(&d->fallback);
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

static status jpeg_decoder_decode_with(struct jpeg_decoder *d, tjhandle tj, const uint8_t *data, size_t n,
                                       int channels, int num, uint64_t max_pixels, const uint8_t **pixels, int *h,
                                       int *w)
{
    int W = 0, H = 0, subsamp = -1, cs = -1;
    if (channels != 1 && channels != 3) return FAIL(STATUS_USAGE, "jpeg: channels %d", channels);
    if (tjDecompressHeader3(tj, data, (unsigned long)n, &W, &H, &subsamp, &cs) != 0)
        return FAIL(STATUS_DECODE, "jpeg header: %s", tjGetErrorStr2(tj));
    if (W <= 0 || H <= 0 || cs < 0) return FAIL(STATUS_DECODE, "jpeg header: no valid frame");
    if (max_pixels && (uint64_t)W * (uint64_t)H > max_pixels)
        return FAIL(STATUS_TOO_BIG, "jpeg: %dx%d exceeds %llu pixels", W, H, (unsigned long long)max_pixels);
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        image_clear(&d->fallback);
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
    if (tjDecompress2(tj, data, (unsigned long)n, d->buf, sw, 0, sh, channels == 1 ? TJPF_GRAY : TJPF_RGB, flags) != 0) {
        int warn = tjGetErrorCode(tj) == TJERR_WARNING;
        return FAIL(STATUS_DECODE, "jpeg: %s%s", tjGetErrorStr2(tj), warn ? " (truncated or corrupt)" : "");
    }
    *pixels = d->buf;
    *h = sh;
    *w = sw;
    return STATUS_OK;
}

status jpeg_decoder_decode(struct jpeg_decoder *d, const uint8_t *data, size_t n, int channels, int num,
                           uint64_t max_pixels, const uint8_t **pixels, int *h, int *w)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) return FAIL(STATUS_NOMEM, "tjInitDecompress: %s", tjGetErrorStr2(NULL));
    status st = jpeg_decoder_decode_with(d, tj, data, n, channels, num, max_pixels, pixels, h, w);
    tjDestroy(tj);
    return st;
}

/* ---------------------------------------------------------------- libjpeg */

static void lj_error_exit(j_common_ptr c)
{
    struct lj_error *e = (struct lj_error *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

static void lj_emit_message(j_common_ptr c, int level)
{
    if (level < 0) {   /* a warning: corrupt or truncated data; be strict */
        struct lj_error *e = (struct lj_error *)c->err;
        (*c->err->format_message)(c, e->msg);
        strncat(e->msg, " (truncated or corrupt)", sizeof e->msg - strlen(e->msg) - 1);
        longjmp(e->jb, 1);
    }
}

static void lj_progress(j_common_ptr c)
{
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->is_decompressor && d->input_scan_number > JPEG_MAX_SCANS) {
        struct lj_error *e = (struct lj_error *)c->err;
        snprintf(e->msg, sizeof e->msg, "progressive JPEG with more than %d scans", JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

static int grow_buf(struct jpeg_decoder *d, size_t need)
{
    if (need <= d->cap) return 1;
    uint8_t *nb = realloc(d->buf, need);
    if (!nb) return 0;
    d->buf = nb;
    d->cap = need;
    return 1;
}

static status jpeg_decoder_region_run(struct jpeg_decoder *d, const uint8_t *data, size_t n, int channels, int num,
                                      uint64_t max_pixels, const struct box *box, const uint8_t **pixels, int *h,
                                      int *w, struct box *in_box)
{
    if (channels != 1 && channels != 3) return FAIL(STATUS_USAGE, "jpeg: channels %d", channels);
    struct jpeg_decompress_struct *c = &d->lj;
    if (!d->lj_ready) {
        c->err = jpeg_std_error(&d->lj_err.pub);
        d->lj_err.pub.error_exit = lj_error_exit;
        d->lj_err.pub.emit_message = lj_emit_message;
        if (setjmp(d->lj_err.jb)) return FAIL(STATUS_DECODE, "jpeg: %s", d->lj_err.msg);
        jpeg_create_decompress(c);
        d->lj_progress.progress_monitor = lj_progress;
        d->lj_ready = 1;
    }
    if (setjmp(d->lj_err.jb)) {
        jpeg_abort_decompress(c);
        return FAIL(STATUS_DECODE, "jpeg: %s", d->lj_err.msg);
    }
    jpeg_mem_src(c, data, (unsigned long)n);
    c->progress = &d->lj_progress;
    jpeg_read_header(c, TRUE);
    int W = (int)c->image_width, H = (int)c->image_height;
    if (W <= 0 || H <= 0) { jpeg_abort_decompress(c); return FAIL(STATUS_DECODE, "jpeg header: no valid frame"); }
    if (max_pixels && (uint64_t)W * (uint64_t)H > max_pixels) {
        jpeg_abort_decompress(c);
        return FAIL(STATUS_TOO_BIG, "jpeg: %dx%d exceeds %llu pixels", W, H, (unsigned long long)max_pixels);
    }
    /* the box was planned from the record's header: a JPEG of another size
       (a damaged or hostile record) must not map it outside the pixels */
    if (box->y < 0 || box->x < 0 || box->h < 1 || box->w < 1 || box->y > H - box->h || box->x > W - box->w) {
        jpeg_abort_decompress(c);
        return FAIL(STATUS_CORRUPT, "jpeg: crop %dx%d at (%d,%d) lies outside the %dx%d image (JPEG size differs "
                    "from the record header)", box->h, box->w, box->y, box->x, H, W);
    }
    if (c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK) {
        jpeg_abort_decompress(c);
        const uint8_t *px;
        TRY(jpeg_decoder_decode(d, data, n, channels, 8, max_pixels, &px, h, w));
        *pixels = px;
        *in_box = distort_box_scale(*box, H, W, *h, *w);
        return STATUS_OK;
    }
    c->scale_num = (unsigned)num;
    c->scale_denom = 8;
    c->out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    c->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(c);
    int sh = (int)c->output_height, sw = (int)c->output_width;
    struct box sb = distort_box_scale(*box, H, W, sh, sw);
    JDIMENSION xo = (JDIMENSION)sb.x, xw = (JDIMENSION)sb.w;
    if (xw < (JDIMENSION)sw) jpeg_crop_scanline(c, &xo, &xw);
    else { xo = 0; xw = (JDIMENSION)sw; }
    if (!grow_buf(d, (size_t)xw * (size_t)sb.h * (size_t)channels)) {
        jpeg_abort_decompress(c);
        return FAIL(STATUS_NOMEM, "jpeg: region buffer");
    }
    if (sb.y > 0) jpeg_skip_scanlines(c, (JDIMENSION)sb.y);
    for (int y = 0; y < sb.h;) {
        JSAMPROW row = d->buf + (size_t)y * xw * channels;
        JDIMENSION got = jpeg_read_scanlines(c, &row, 1);
        if (got != 1) { jpeg_abort_decompress(c); return FAIL(STATUS_DECODE, "jpeg: image ended early"); }
        y++;
    }
    jpeg_abort_decompress(c);   /* rows below the crop are never decoded */
    *pixels = d->buf;
    *h = sb.h;
    *w = (int)xw;
    *in_box = (struct box){ 0, sb.x - (int)xo, sb.h, sb.w };
    return STATUS_OK;
}

status jpeg_decoder_decode_region(struct jpeg_decoder *d, const uint8_t *data, size_t n, int channels, int num,
                                  uint64_t max_pixels, const struct box *box, const uint8_t **pixels, int *h,
                                  int *w, struct box *in_box)
{
    status st = jpeg_decoder_region_run(d, data, n, channels, num, max_pixels, box, pixels, h, w, in_box);
    if (st != STATUS_OK && d->lj_ready) {   /* nothing of a failed image survives into the next */
        jpeg_destroy_decompress(&d->lj);
        memset(&d->lj, 0, sizeof d->lj);
        d->lj_ready = 0;
    }
    return st;
}
