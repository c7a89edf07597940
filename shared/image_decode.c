/*
 * image_decode.c — sniff, probe and decode JPEG / PNG / WebP to 8-bit gray or
 * RGB (see image.h for the conversions and what is rejected).
 *
 * Every decoder reads the header first, checks width*height against
 * max_pixels, and only then allocates the output.  Codec messages are copied
 * into the status message; none of them is printed (libpng's default warning
 * printer is replaced).
 *
 * No decoder keeps state from one image to the next: every JPEG call makes
 * its own TurboJPEG handle and destroys it before returning.  A handle that
 * saw an error (even one in the header) is left mid-parse by TurboJPEG, and
 * reusing it made later valid files fail with the first file's message.  A
 * handle costs about 0.5 us to make and destroy, against about 2 ms to decode
 * a 400x300 photo.  libpng and libwebp get fresh state per call already.
 */
#include "shared/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/decode.h>

enum image_format image_sniff(const void *data, size_t n)
{
    const uint8_t *b = data;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return IMAGE_FORMAT_JPEG;
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return IMAGE_FORMAT_PNG;
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return IMAGE_FORMAT_WEBP;
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return IMAGE_FORMAT_GIF;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return IMAGE_FORMAT_BMP;
    return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_name(enum image_format f)
{
    switch (f) {
    case IMAGE_FORMAT_JPEG: return "jpeg";
    case IMAGE_FORMAT_PNG: return "png";
    case IMAGE_FORMAT_WEBP: return "webp";
    case IMAGE_FORMAT_GIF: return "gif";
    case IMAGE_FORMAT_BMP: return "bmp";
    case IMAGE_FORMAT_UNKNOWN: break;
    }
    return "unknown";
}

void image_clear(struct image *img)
{
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

void image_rgb_to_gray(const uint8_t *rgb, uint8_t *gray, size_t npixels)
{
    for (size_t i = 0; i < npixels; i++) {
        uint32_t y = 19595u * rgb[3 * i] + 38470u * rgb[3 * i + 1] + 7471u * rgb[3 * i + 2] + 32768u;
        gray[i] = (uint8_t)(y >> 16);
    }
}

void image_gray_to_rgb(const uint8_t *gray, uint8_t *rgb, size_t npixels)
{
    /* backwards, so gray may sit at the start of the rgb buffer */
    for (size_t i = npixels; i-- > 0;) {
        uint8_t v = gray[i];
        rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v;
    }
}

static status image_check_size(int w, int h, uint64_t max_pixels)
{
    if (w <= 0 || h <= 0) return FAIL(STATUS_DECODE, "image header gives an empty size %dx%d", w, h);
    if (max_pixels && (uint64_t)w * (uint64_t)h > max_pixels)
        return FAIL(STATUS_TOO_BIG, "header says %dx%d = %llu pixels, over --max_pixels %llu", w, h,
                    (unsigned long long)((uint64_t)w * (uint64_t)h), (unsigned long long)max_pixels);
    return STATUS_OK;
}

/* Hand a decoded buffer to the caller: px holds w*h pixels of ch channels
 * at its start, in an allocation made for `alloc_ch` channels; shrink the
 * allocation when it was made bigger (CMYK, RGB turned gray) and fill out. */
static void image_finish(struct image *out, uint8_t *px, int w, int h, int ch, int alloc_ch)
{
    if (alloc_ch > ch) {
        uint8_t *shrunk = realloc(px, (size_t)w * (size_t)h * (size_t)ch);
        if (shrunk) px = shrunk;
    }
    out->pixels = px;
    out->width = w;
    out->height = h;
    out->channels = ch;
}

/* ------------------------------------------------------------------- JPEG */

/* A fresh handle for one image (see the header comment). */
static status image_tj_new(tjhandle *out)
{
    *out = tjInitDecompress();
    if (!*out) return FAIL(STATUS_NOMEM, "jpeg: tjInitDecompress failed: %s", tjGetErrorStr2(NULL));
    return STATUS_OK;
}

/* Does the JPEG carry an Adobe APP14 marker (CMYK stored inverted)? Scans
 * the markers before the first SOS. */
static int image_jpeg_has_adobe(const uint8_t *b, size_t n)
{
    size_t i = 2;
    while (i + 4 <= n) {
        if (b[i] != 0xFF) return 0;
        uint8_t m = b[i + 1];
        if (m == 0xFF) { i++; continue; }
        if (m == 0xDA || m == 0xD9) return 0;          /* SOS / EOI */
        size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
        if (len < 2) return 0;
        if (m == 0xEE && len >= 7 && i + 4 + 5 <= n && !memcmp(b + i + 4, "Adobe", 5)) return 1;
        i += 2 + len;
    }
    return 0;
}

static status image_jpeg_header(tjhandle tj, const void *data, size_t n, struct image_info *info)
{
    int w = 0, h = 0, subsamp = -1, cs = -1;
    if (tjDecompressHeader3(tj, data, (unsigned long)n, &w, &h, &subsamp, &cs) != 0)
        return FAIL(STATUS_DECODE, "jpeg header: %s", tjGetErrorStr2(tj));
    /* a file that holds only tables (or nothing) can "succeed" with no frame */
    if (w <= 0 || h <= 0 || w > 65535 || h > 65535 || cs < 0)
        return FAIL(STATUS_DECODE, "jpeg header: no valid frame header (truncated or corrupt)");
    info->format = IMAGE_FORMAT_JPEG;
    info->width = w;
    info->height = h;
    info->cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    info->channels = cs == TJCS_GRAY ? 1 : 3;
    info->animated = 0;
    return STATUS_OK;
}

static status image_jpeg_decode_with(tjhandle tj, const void *data, size_t n, const struct image_decode_opts *o,
                                     uint8_t *dst_buf, size_t dst_cap, struct image *out)
{
    struct image_info info;
    TRY(image_jpeg_header(tj, data, n, &info));
    TRY(image_check_size(info.width, info.height, o->max_pixels));
    int ch = o->channels ? o->channels : info.channels;
    size_t npx = (size_t)info.width * (size_t)info.height;
    int pf = info.cmyk ? TJPF_CMYK : (ch == 1 ? TJPF_GRAY : TJPF_RGB);
    int bpp = info.cmyk ? 4 : ch;
    if (dst_buf && (info.cmyk || dst_cap < npx * (size_t)ch))
        return FAIL(STATUS_USAGE, "jpeg: cannot decode %dx%dx%d in place into %zu bytes", info.width, info.height, ch,
                    dst_cap);
    uint8_t *px = dst_buf ? dst_buf : malloc(npx * (size_t)bpp);
    if (!px) return FAIL(STATUS_NOMEM, "jpeg: out of memory for %dx%d", info.width, info.height);
    int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
    if (tjDecompress2(tj, data, (unsigned long)n, px, info.width, 0, info.height, pf, flags) != 0) {
        int warn = tjGetErrorCode(tj) == TJERR_WARNING;
        status st = FAIL(STATUS_DECODE, "jpeg: %s%s", tjGetErrorStr2(tj),
                         warn ? " (a decoder warning: the file is truncated or corrupt)" : "");
        if (!dst_buf) free(px);
        return st;
    }
    if (info.cmyk) {
        /* CMYK -> RGB.  With an Adobe marker the stored values are inverted
           (255 = no ink): R = C*K/255; otherwise R = (255-C)(255-K)/255. */
        int inv = image_jpeg_has_adobe(data, n);
        uint8_t *dst = px;   /* in place, front to back: 3 bytes written per 4 read */
        for (size_t i = 0; i < npx; i++) {
            uint32_t c = px[4 * i], m = px[4 * i + 1], y = px[4 * i + 2], k = px[4 * i + 3];
            if (!inv) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
            uint8_t r = (uint8_t)((c * k + 127) / 255), g = (uint8_t)((m * k + 127) / 255),
                    b = (uint8_t)((y * k + 127) / 255);
            if (ch == 1) {
                uint8_t rgb[3] = { r, g, b };
                image_rgb_to_gray(rgb, dst + i, 1);
            } else {
                dst[3 * i] = r; dst[3 * i + 1] = g; dst[3 * i + 2] = b;
            }
        }
    }
    image_finish(out, px, info.width, info.height, ch, bpp);
    return STATUS_OK;
}

static status image_jpeg_decode(const void *data, size_t n, const struct image_decode_opts *o,
                                uint8_t *dst_buf, size_t dst_cap, struct image *out)
{
    tjhandle tj;
    TRY(image_tj_new(&tj));
    status st = image_jpeg_decode_with(tj, data, n, o, dst_buf, dst_cap, out);
    tjDestroy(tj);
    return st;
}

static status image_jpeg_probe(const void *data, size_t n, struct image_info *info)
{
    tjhandle tj;
    TRY(image_tj_new(&tj));
    status st = image_jpeg_header(tj, data, n, info);
    tjDestroy(tj);
    return st;
}

/* -------------------------------------------------------------------- PNG */

struct png_src {
    const uint8_t *data;
    size_t n, pos;
    char msg[200];
};

static void image_png_read(png_structp png, png_bytep out, size_t len)
{
    struct png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->pos) png_error(png, "file is truncated");
    memcpy(out, s->data + s->pos, len);
    s->pos += len;
}

static void image_png_error(png_structp png, png_const_charp msg)
{
    struct png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void image_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static status image_png_header(const void *data, size_t n, struct image_info *info)
{
    const uint8_t *b = data;
    /* signature (8), IHDR length (4), "IHDR" (4), width, height, depth, colour type */
    if (n < 33 || memcmp(b + 12, "IHDR", 4))
        return FAIL(STATUS_DECODE, "png: no IHDR chunk (truncated or corrupt)");
    uint32_t w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    uint32_t h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
    if (w == 0 || h == 0 || w > 0x7fffffff || h > 0x7fffffff)
        return FAIL(STATUS_DECODE, "png: IHDR gives an invalid size %ux%u", w, h);
    uint8_t ct = b[25];
    info->format = IMAGE_FORMAT_PNG;
    info->width = (int)w;
    info->height = (int)h;
    info->channels = (ct == 0 || ct == 4) ? 1 : 3;
    info->cmyk = 0;
    info->animated = 0;
    return STATUS_OK;
}

static status image_png_decode(const void *data, size_t n, const struct image_decode_opts *o,
                               struct image *out)
{
    struct image_info info;
    TRY(image_png_header(data, n, &info));
    TRY(image_check_size(info.width, info.height, o->max_pixels));
    struct png_src src = { data, n, 0, "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, image_png_error, image_png_warning);
    if (!png) return FAIL(STATUS_NOMEM, "png: out of memory");
    png_infop pi = png_create_info_struct(png);
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    status st = STATUS_OK;
    if (!pi) { st = FAIL(STATUS_NOMEM, "png: out of memory"); goto done; }
    if (setjmp(png_jmpbuf(png))) {
        st = FAIL(STATUS_DECODE, "png: %s", src.msg[0] ? src.msg : "decode error");
        goto done;
    }
    png_set_read_fn(png, &src, image_png_read);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, pi);
    png_uint_32 w, h;
    int depth, ct, interlace;
    png_get_IHDR(png, pi, &w, &h, &depth, &ct, &interlace, NULL, NULL);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    /* the palette expansion also turns tRNS into alpha; drop it after */
    if ((ct & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, pi, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    int native = (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) ? 1 : 3;
    int ch = o->channels ? o->channels : native;
    if (native == 1 && ch == 3) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, pi);
    size_t rowbytes = png_get_rowbytes(png, pi);
    int got = png_get_channels(png, pi);
    if (rowbytes != (size_t)w * (size_t)got || (got != 1 && got != 3)) {
        st = FAIL(STATUS_DECODE, "png: unexpected layout after conversion (%d channels)", got);
        goto done;
    }
    px = malloc((size_t)h * rowbytes);
    rows = malloc((size_t)h * sizeof *rows);
    if (!px || !rows) { st = FAIL(STATUS_NOMEM, "png: out of memory for %ux%u", w, h); goto done; }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    if (got == 3 && ch == 1) image_rgb_to_gray(px, px, (size_t)w * h);   /* in place: gray index <= rgb index */
    image_finish(out, px, (int)w, (int)h, ch, got);
    px = NULL;
done:
    png_destroy_read_struct(&png, pi ? &pi : NULL, NULL);
    free(rows);
    free(px);
    return st;
}

/* ------------------------------------------------------------------- WebP */

static const char *image_webp_status(VP8StatusCode c)
{
    switch (c) {
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error (corrupt)";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "not enough data (truncated)";
    default: return "error";
    }
}

static status image_webp_header(const void *data, size_t n, struct image_info *info)
{
    WebPBitstreamFeatures f;
    VP8StatusCode c = WebPGetFeatures(data, n, &f);
    if (c != VP8_STATUS_OK) return FAIL(STATUS_DECODE, "webp header: %s", image_webp_status(c));
    info->format = IMAGE_FORMAT_WEBP;
    info->width = f.width;
    info->height = f.height;
    info->channels = 3;
    info->cmyk = 0;
    info->animated = f.has_animation != 0;
    return STATUS_OK;
}

static status image_webp_decode(const void *data, size_t n, const struct image_decode_opts *o,
                                struct image *out)
{
    struct image_info info;
    TRY(image_webp_header(data, n, &info));
    if (info.animated)
        return FAIL(STATUS_UNSUPPORTED, "animated WebP is not supported (which frame to keep is ambiguous)");
    TRY(image_check_size(info.width, info.height, o->max_pixels));
    size_t npx = (size_t)info.width * (size_t)info.height;
    uint8_t *px = malloc(npx * 3);
    if (!px) return FAIL(STATUS_NOMEM, "webp: out of memory for %dx%d", info.width, info.height);
    if (!WebPDecodeRGBInto(data, n, px, npx * 3, info.width * 3)) {
        free(px);
        return FAIL(STATUS_DECODE, "webp: the decoder refused the data (corrupt or truncated)");
    }
    int ch = o->channels ? o->channels : 3;
    if (ch == 1) image_rgb_to_gray(px, px, npx);
    image_finish(out, px, info.width, info.height, ch, 3);
    return STATUS_OK;
}

/* ------------------------------------------------------------------ front */

static status image_unknown(const void *data, size_t n)
{
    enum image_format f = image_sniff(data, n);
    if (n == 0) return FAIL(STATUS_FORMAT, "empty file (0 bytes)");
    if (f == IMAGE_FORMAT_GIF || f == IMAGE_FORMAT_BMP)
        return FAIL(STATUS_UNSUPPORTED, "%s images are not supported (use JPEG, PNG or WebP)", image_format_name(f));
    return FAIL(STATUS_FORMAT, "not an image (no JPEG, PNG or WebP signature)");
}

status image_probe(const void *data, size_t n, struct image_info *info)
{
    memset(info, 0, sizeof *info);
    switch (image_sniff(data, n)) {
    case IMAGE_FORMAT_JPEG: return image_jpeg_probe(data, n, info);
    case IMAGE_FORMAT_PNG: return image_png_header(data, n, info);
    case IMAGE_FORMAT_WEBP: return image_webp_header(data, n, info);
    default: return image_unknown(data, n);
    }
}

status image_decode(const void *data, size_t n, const struct image_decode_opts *opts, struct image *out)
{
    struct image_decode_opts def = { 0, 0 };
    const struct image_decode_opts *o = opts ? opts : &def;
    memset(out, 0, sizeof *out);
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return FAIL(STATUS_USAGE, "image_decode: channels %d (expected 0, 1 or 3)", o->channels);
    switch (image_sniff(data, n)) {
    case IMAGE_FORMAT_JPEG: return image_jpeg_decode(data, n, o, NULL, 0, out);
    case IMAGE_FORMAT_PNG: return image_png_decode(data, n, o, out);
    case IMAGE_FORMAT_WEBP: return image_webp_decode(data, n, o, out);
    default: return image_unknown(data, n);
    }
}

status image_decode_to(const void *data, size_t n, const struct image_decode_opts *opts, uint8_t *dst,
                       size_t cap, struct image *out)
{
    struct image_decode_opts def = { 0, 0 };
    const struct image_decode_opts *o = opts ? opts : &def;
    memset(out, 0, sizeof *out);
    if (image_sniff(data, n) == IMAGE_FORMAT_JPEG) {
        struct image_info info;
        tjhandle tj;
        TRY(image_tj_new(&tj));   /* one handle for the header and the pixels of this image */
        status st = image_jpeg_header(tj, data, n, &info);
        if (st == STATUS_OK && !info.cmyk) st = image_jpeg_decode_with(tj, data, n, o, dst, cap, out);
        tjDestroy(tj);
        if (st != STATUS_OK || !info.cmyk) return st;
    }
    struct image tmp;
    TRY(image_decode(data, n, o, &tmp));
    size_t need = (size_t)tmp.height * tmp.width * tmp.channels;
    if (need > cap) {
        image_clear(&tmp);
        return FAIL(STATUS_USAGE, "image_decode_to: %zu bytes needed, buffer has %zu", need, cap);
    }
    memcpy(dst, tmp.pixels, need);
    *out = tmp;
    out->pixels = dst;
    free(tmp.pixels);
    return STATUS_OK;
}
