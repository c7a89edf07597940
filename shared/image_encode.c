/*
 * image_encode.c — JPEG (TurboJPEG) and PNG (libpng) encoders for packed
 * gray/RGB uint8 images.  Used by ingest (--store jpeg of non-JPEG or CMYK
 * sources, and of resized images) and by augment --dump.  Output buffers are
 * malloc'd; the caller frees them with free().
 */
#include "shared/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

static _Thread_local tjhandle image_tjc;

status image_encode_jpeg(const uint8_t *pixels, int height, int width, int channels,
                         int quality, uint8_t **out, size_t *n)
{
    if (channels != 1 && channels != 3)
        return FAIL(STATUS_USAGE, "jpeg encode: channels %d (expected 1 or 3)", channels);
    if (height <= 0 || width <= 0) return FAIL(STATUS_USAGE, "jpeg encode: empty image %dx%d", height, width);
    if (quality < 1 || quality > 100) return FAIL(STATUS_USAGE, "jpeg encode: quality %d (1..100)", quality);
    if (!image_tjc) image_tjc = tjInitCompress();
    if (!image_tjc) return FAIL(STATUS_NOMEM, "jpeg encode: tjInitCompress failed");
    int subsamp = channels == 1 ? TJSAMP_GRAY : TJSAMP_420;
    unsigned long cap = tjBufSize(width, height, subsamp);
    if (cap == (unsigned long)-1) return FAIL(STATUS_USAGE, "jpeg encode: image %dx%d too large", height, width);
    unsigned char *buf = malloc(cap);
    if (!buf) return FAIL(STATUS_NOMEM, "jpeg encode: out of memory (%lu bytes)", cap);
    unsigned long len = cap;
    if (tjCompress2(image_tjc, pixels, width, 0, height, channels == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &len,
                    subsamp, quality, TJFLAG_NOREALLOC) != 0) {
        status st = FAIL(STATUS_DECODE, "jpeg encode: %s", tjGetErrorStr2(image_tjc));
        free(buf);
        return st;
    }
    *out = buf;
    *n = len;
    return STATUS_OK;
}

struct png_sink {
    uint8_t *buf;
    size_t len, cap;
    int oom;
    char msg[200];
};

static void image_png_write(png_structp png, png_bytep data, size_t len)
{
    struct png_sink *s = png_get_io_ptr(png);
    if (s->len + len > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4096;
        while (nc < s->len + len) nc *= 2;
        uint8_t *p = realloc(s->buf, nc);
        if (!p) { s->oom = 1; png_error(png, "out of memory"); }
        s->buf = p;
        s->cap = nc;
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
}

static void image_png_flush(png_structp png) { (void)png; }

static void image_png_werror(png_structp png, png_const_charp msg)
{
    struct png_sink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void image_png_wwarn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

status image_encode_png(const uint8_t *pixels, int height, int width, int channels, uint8_t **out, size_t *n)
{
    if (channels < 1 || channels > 4)
        return FAIL(STATUS_USAGE, "png encode: channels %d (expected 1..4)", channels);
    if (height <= 0 || width <= 0) return FAIL(STATUS_USAGE, "png encode: empty image %dx%d", height, width);
    static const int types[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                  PNG_COLOR_TYPE_RGB_ALPHA };
    struct png_sink sink = { NULL, 0, 0, 0, "" };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, image_png_werror, image_png_wwarn);
    if (!png) return FAIL(STATUS_NOMEM, "png encode: out of memory");
    png_infop pi = png_create_info_struct(png);
    status st = STATUS_OK;
    if (!pi) { st = FAIL(STATUS_NOMEM, "png encode: out of memory"); goto done; }
    if (setjmp(png_jmpbuf(png))) {
        st = FAIL(sink.oom ? STATUS_NOMEM : STATUS_IO, "png encode: %s", sink.msg);
        goto done;
    }
    png_set_write_fn(png, &sink, image_png_write, image_png_flush);
    png_set_compression_level(png, 3);
    png_set_IHDR(png, pi, (png_uint_32)width, (png_uint_32)height, 8, types[channels], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, pi);
    for (int y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * (size_t)width * (size_t)channels);
    png_write_end(png, pi);
done:
    png_destroy_write_struct(&png, pi ? &pi : NULL);
    if (st != STATUS_OK) { free(sink.buf); return st; }
    *out = sink.buf;
    *n = sink.len;
    return STATUS_OK;
}
