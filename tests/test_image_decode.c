/*
 * test_image_decode.c — decode of every supported format and every bad-input
 * class, on images the test makes itself (TurboJPEG, libpng, libwebp):
 * JPEG rgb/gray/CMYK(YCCK)/truncated/corrupt, PNG 8/16-bit, palette, tRNS,
 * alpha, 1-bit, interlaced, truncated; WebP lossless, animated (rejected);
 * zero bytes, text, GIF; and the --max_pixels check before allocation.
 */
#include <criterion/criterion.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include "shared/image.h"

static uint8_t *pattern(int h, int w, int c)
{
    uint8_t *p = malloc((size_t)h * w * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) p[((size_t)y * w + x) * c + k] = (uint8_t)(x * 150 / w + y * 90 / h + k * 7);
    return p;
}

static int max_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) { int d = abs((int)a[i] - (int)b[i]); if (d > m) m = d; }
    return m;
}

Test(image, sniff_by_magic_bytes)
{
    cr_assert_eq(image_sniff("\xff\xd8\xff\xe0", 4), IMAGE_FORMAT_JPEG);
    cr_assert_eq(image_sniff("\x89PNG\r\n\x1a\n", 8), IMAGE_FORMAT_PNG);
    cr_assert_eq(image_sniff("RIFF\0\0\0\0WEBPVP8 ", 16), IMAGE_FORMAT_WEBP);
    cr_assert_eq(image_sniff("GIF89a", 6), IMAGE_FORMAT_GIF);
    cr_assert_eq(image_sniff("hello", 5), IMAGE_FORMAT_UNKNOWN);
    cr_assert_eq(image_sniff("\xff\xd8", 2), IMAGE_FORMAT_UNKNOWN);
    cr_assert_eq(image_sniff("", 0), IMAGE_FORMAT_UNKNOWN);
}

Test(image, jpeg_rgb_and_gray)
{
    uint8_t *src = pattern(37, 53, 3), *jpg;
    size_t n;
    cr_assert_eq(image_encode_jpeg(src, 37, 53, 3, 98, &jpg, &n), STATUS_OK, "%s", status_msg());
    struct image img;
    cr_assert_eq(image_decode(jpg, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.height, 37);
    cr_assert_eq(img.width, 53);
    cr_assert_eq(img.channels, 3);
    int d = max_abs_diff(src, img.pixels, 37 * 53 * 3);
    printf("jpeg q98 rgb: largest error %d\n", d);
    cr_assert_leq(d, 24);
    image_clear(&img);
    struct image_decode_opts gray = { .channels = 1 };
    cr_assert_eq(image_decode(jpg, n, &gray, &img), STATUS_OK);
    cr_assert_eq(img.channels, 1);
    image_clear(&img);
    free(jpg);
    /* grayscale JPEG: native 1 channel, or expanded to RGB on request */
    uint8_t *g = pattern(20, 30, 1);
    cr_assert_eq(image_encode_jpeg(g, 20, 30, 1, 95, &jpg, &n), STATUS_OK);
    struct image_info info;
    cr_assert_eq(image_probe(jpg, n, &info), STATUS_OK);
    cr_assert_eq(info.channels, 1);
    cr_assert_eq(image_decode(jpg, n, NULL, &img), STATUS_OK);
    cr_assert_eq(img.channels, 1);
    struct image rgb;
    struct image_decode_opts three = { .channels = 3 };
    cr_assert_eq(image_decode(jpg, n, &three, &rgb), STATUS_OK);
    cr_assert_eq(rgb.channels, 3);
    for (int i = 0; i < 600; i++) {
        cr_assert_eq(rgb.pixels[3 * i], img.pixels[i]);
        cr_assert_eq(rgb.pixels[3 * i + 2], img.pixels[i]);
    }
    image_clear(&img);
    image_clear(&rgb);
    free(jpg);
    free(g);
    free(src);
}

Test(image, jpeg_truncated_and_corrupt_are_errors)
{
    uint8_t *src = pattern(64, 64, 3), *jpg;
    size_t n;
    cr_assert_eq(image_encode_jpeg(src, 64, 64, 3, 90, &jpg, &n), STATUS_OK);
    struct image img;
    for (size_t cut = n - 2; cut > 0; cut = cut * 3 / 4) {
        status st = image_decode(jpg, cut, NULL, &img);
        cr_assert_neq(st, STATUS_OK, "truncated to %zu of %zu bytes accepted", cut, n);
        cr_assert_null(img.pixels);
    }
    /* clobber the middle of the entropy-coded data (after SOS) with an early EOI */
    size_t sos = 0;
    for (size_t i = 2; i + 1 < n && !sos; i++)
        if (jpg[i] == 0xFF && jpg[i + 1] == 0xDA) sos = i;
    cr_assert_gt(sos, 0);
    uint8_t *bad = malloc(n);
    memcpy(bad, jpg, n);
    bad[sos + (n - sos) / 2] = 0xFF;
    bad[sos + (n - sos) / 2 + 1] = 0xD9;
    cr_assert_eq(image_decode(bad, n, NULL, &img), STATUS_DECODE, "corrupt scan accepted");
    cr_assert(strstr(status_msg(), "jpeg"), "%s", status_msg());
    free(bad);
    free(jpg);
    free(src);
}

/* A file whose header fails must not make the next, valid JPEG fail too. */
Test(image, jpeg_after_a_bad_header_decodes)
{
    uint8_t *src = pattern(20, 30, 3), *jpg;
    size_t n;
    cr_assert_eq(image_encode_jpeg(src, 20, 30, 3, 90, &jpg, &n), STATUS_OK);
    static const uint8_t bad[] = { 0xFF, 0xD8, 0xFF, 'n', 'o', 't', ' ', 'a', ' ', 'j', 'p', 'e', 'g' };
    struct image img;
    cr_assert_eq(image_decode(bad, sizeof bad, NULL, &img), STATUS_DECODE);
    status st = image_decode(jpg, n, NULL, &img);
    cr_assert_eq(st, STATUS_OK, "valid JPEG after a bad one: %s", status_msg());
    cr_assert_eq(img.width, 30);
    image_clear(&img);
    struct image_info info;
    cr_assert_eq(image_probe(bad, sizeof bad, &info), STATUS_DECODE);
    cr_assert_eq(image_probe(jpg, n, &info), STATUS_OK, "probe after a bad one: %s", status_msg());
    free(jpg);
    free(src);
}

Test(image, cmyk_ycck_jpeg_becomes_rgb)
{
    /* TurboJPEG writes CMYK input as a YCCK JPEG with an Adobe marker; the
       values it stores are what libjpeg hands back (inverted convention) */
    const int h = 16, w = 16;
    uint8_t cmyk[16 * 16 * 4];
    for (int i = 0; i < h * w; i++) {
        cmyk[4 * i] = 200; cmyk[4 * i + 1] = 100; cmyk[4 * i + 2] = 50; cmyk[4 * i + 3] = 220;
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long n = 0;
    cr_assert_eq(tjCompress2(tj, cmyk, w, 0, h, TJPF_CMYK, &jpg, &n, TJSAMP_444, 100, 0), 0, "%s",
                 tjGetErrorStr2(tj));
    tjDestroy(tj);
    struct image_info info;
    cr_assert_eq(image_probe(jpg, n, &info), STATUS_OK);
    cr_assert(info.cmyk);
    struct image img;
    cr_assert_eq(image_decode(jpg, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 3);
    int want[3] = { 200 * 220 / 255, 100 * 220 / 255, 50 * 220 / 255 };
    int worst = 0;
    for (int i = 0; i < h * w; i++)
        for (int k = 0; k < 3; k++) { int d = abs(img.pixels[3 * i + k] - want[k]); if (d > worst) worst = d; }
    printf("cmyk->rgb: largest error %d\n", worst);
    cr_assert_leq(worst, 3);
    image_clear(&img);
    tjFree(jpg);
}

/* Write a PNG with libpng's low-level API (any depth/type) into memory. */
static uint8_t *png_make(int w, int h, int depth, int type, const uint8_t *rows, size_t rowbytes,
                         const png_color *pal, int npal, const uint8_t *trns, int ntrns, int interlace, size_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, pi, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, pi, pal, npal);
    if (trns) png_set_tRNS(png, pi, trns, ntrns, NULL);
    png_write_info(png, pi);
    png_bytep *rp = malloc((size_t)h * sizeof *rp);
    for (int y = 0; y < h; y++) rp[y] = (png_bytep)(rows + (size_t)y * rowbytes);
    png_write_image(png, rp);
    png_write_end(png, pi);
    png_destroy_write_struct(&png, &pi);
    free(rp);
    fclose(f);
    *n = len;
    return (uint8_t *)buf;
}

Test(image, png_variants)
{
    struct image img;
    size_t n;
    /* 8-bit RGB: exact */
    uint8_t *src = pattern(9, 11, 3), *png;
    cr_assert_eq(image_encode_png(src, 9, 11, 3, &png, &n), STATUS_OK);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 3);
    cr_assert_eq(max_abs_diff(src, img.pixels, 9 * 11 * 3), 0);
    image_clear(&img);
    free(png);
    /* 16-bit RGB: the high byte */
    uint8_t rows16[4 * 5 * 6];
    for (int i = 0; i < 4 * 5 * 3; i++) { rows16[2 * i] = (uint8_t)(i * 3); rows16[2 * i + 1] = 0xAB; }
    png = png_make(5, 4, 16, PNG_COLOR_TYPE_RGB, rows16, 30, NULL, 0, NULL, 0, 0, &n);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 3);
    for (int i = 0; i < 60; i++) cr_assert_eq(img.pixels[i], (uint8_t)(i * 3), "16-bit sample %d", i);
    image_clear(&img);
    free(png);
    /* palette with transparency: RGB from the palette, alpha dropped */
    png_color pal[3] = { { 255, 0, 0 }, { 0, 255, 0 }, { 10, 20, 30 } };
    uint8_t trns[3] = { 0, 128, 255 };
    uint8_t idx[2 * 3] = { 0, 1, 2, 2, 1, 0 };
    png = png_make(3, 2, 8, PNG_COLOR_TYPE_PALETTE, idx, 3, pal, 3, trns, 3, 0, &n);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 3);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(img.pixels[3 * i], pal[idx[i]].red);
        cr_assert_eq(img.pixels[3 * i + 2], pal[idx[i]].blue);
    }
    image_clear(&img);
    free(png);
    /* RGBA: alpha dropped, colour exact */
    uint8_t rgba[2 * 2 * 4] = { 1, 2, 3, 0, 4, 5, 6, 50, 7, 8, 9, 100, 10, 11, 12, 255 };
    png = png_make(2, 2, 8, PNG_COLOR_TYPE_RGB_ALPHA, rgba, 8, NULL, 0, NULL, 0, 0, &n);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 3);
    for (int i = 0; i < 4; i++) cr_assert_eq(img.pixels[3 * i + 1], rgba[4 * i + 1]);
    image_clear(&img);
    free(png);
    /* gray + alpha: gray */
    uint8_t ga[2 * 2 * 2] = { 10, 0, 20, 9, 30, 99, 40, 255 };
    png = png_make(2, 2, 8, PNG_COLOR_TYPE_GRAY_ALPHA, ga, 4, NULL, 0, NULL, 0, 0, &n);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 1);
    cr_assert_eq(img.pixels[3], 40);
    image_clear(&img);
    free(png);
    /* 1-bit gray: 0/255 */
    uint8_t bits[2] = { 0xA0, 0x40 };   /* row0: 1 0 1 0, row1: 0 1 0 0 */
    png = png_make(4, 2, 1, PNG_COLOR_TYPE_GRAY, bits, 1, NULL, 0, NULL, 0, 0, &n);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    uint8_t want1[8] = { 255, 0, 255, 0, 0, 255, 0, 0 };
    cr_assert_eq(memcmp(img.pixels, want1, 8), 0);
    image_clear(&img);
    free(png);
    /* interlaced gray 16-bit, 13x7 */
    uint8_t g16[7 * 13 * 2];
    for (int i = 0; i < 91; i++) { g16[2 * i] = (uint8_t)(i * 2); g16[2 * i + 1] = 7; }
    png = png_make(13, 7, 16, PNG_COLOR_TYPE_GRAY, g16, 26, NULL, 0, NULL, 0, 1, &n);
    cr_assert_eq(image_decode(png, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 1);
    for (int i = 0; i < 91; i++) cr_assert_eq(img.pixels[i], (uint8_t)(i * 2));
    image_clear(&img);
    /* truncated */
    for (size_t cut = n - 1; cut > 0; cut /= 2)
        cr_assert_neq(image_decode(png, cut, NULL, &img), STATUS_OK, "png truncated to %zu accepted", cut);
    free(png);
    free(src);
}

Test(image, webp_still_and_animated)
{
    uint8_t *src = pattern(12, 10, 3), *out = NULL;
    size_t n = WebPEncodeLosslessRGB(src, 10, 12, 30, &out);
    cr_assert_gt(n, 0);
    struct image img;
    cr_assert_eq(image_decode(out, n, NULL, &img), STATUS_OK, "%s", status_msg());
    cr_assert_eq(img.channels, 3);
    cr_assert_eq(max_abs_diff(src, img.pixels, 360), 0);
    image_clear(&img);
    cr_assert_neq(image_decode(out, n / 2, NULL, &img), STATUS_OK, "truncated webp accepted");
    WebPFree(out);

    /* two-frame animation */
    WebPAnimEncoderOptions ao;
    cr_assert(WebPAnimEncoderOptionsInit(&ao));
    WebPAnimEncoder *enc = WebPAnimEncoderNew(10, 12, &ao);
    WebPConfig cfg;
    WebPConfigInit(&cfg);
    cfg.lossless = 1;
    for (int f = 0; f < 2; f++) {
        WebPPicture pic;
        WebPPictureInit(&pic);
        pic.width = 10; pic.height = 12; pic.use_argb = 1;
        WebPPictureImportRGB(&pic, src, 30);
        if (f) for (int i = 0; i < 120; i++) pic.argb[i] ^= 0x00ffffff;
        cr_assert(WebPAnimEncoderAdd(enc, &pic, f * 100, &cfg));
        WebPPictureFree(&pic);
    }
    WebPAnimEncoderAdd(enc, NULL, 200, NULL);
    WebPData data;
    WebPDataInit(&data);
    cr_assert(WebPAnimEncoderAssemble(enc, &data));
    WebPAnimEncoderDelete(enc);
    struct image_info info;
    cr_assert_eq(image_probe(data.bytes, data.size, &info), STATUS_OK);
    cr_assert(info.animated);
    cr_assert_eq(image_decode(data.bytes, data.size, NULL, &img), STATUS_UNSUPPORTED);
    cr_assert(strstr(status_msg(), "animated"), "%s", status_msg());
    WebPDataClear(&data);
    free(src);
}

Test(image, not_images)
{
    struct image img;
    cr_assert_eq(image_decode("", 0, NULL, &img), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "empty"));
    const char *txt = "just some text, not a picture\n";
    cr_assert_eq(image_decode(txt, strlen(txt), NULL, &img), STATUS_FORMAT);
    cr_assert_eq(image_decode("GIF89a\1\0\1\0", 10, NULL, &img), STATUS_UNSUPPORTED);
    status st = image_decode("\xff\xd8\xff", 3, NULL, &img);
    cr_assert_eq(st, STATUS_DECODE, "%d %s", st, status_msg());
}

Test(image, max_pixels_checked_on_the_header)
{
    /* a PNG header that claims 100000 x 100000 and has no data */
    uint8_t hdr[33] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                        0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0, 8, 2, 0, 0, 0, 0, 0, 0, 0 };
    struct image img;
    struct image_decode_opts o = { .max_pixels = 178956970 };
    cr_assert_eq(image_decode(hdr, sizeof hdr, &o, &img), STATUS_TOO_BIG);
    cr_assert(strstr(status_msg(), "100000x100000"), "%s", status_msg());
    /* a JPEG whose SOF claims 60000 x 60000 */
    uint8_t *src = pattern(8, 8, 3), *jpg;
    size_t n;
    cr_assert_eq(image_encode_jpeg(src, 8, 8, 3, 90, &jpg, &n), STATUS_OK);
    for (size_t i = 0; i + 9 < n; i++)
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 0xEA; jpg[i + 6] = 0x60;   /* height 60000 */
            jpg[i + 7] = 0xEA; jpg[i + 8] = 0x60;   /* width 60000 */
            break;
        }
    cr_assert_eq(image_decode(jpg, n, &o, &img), STATUS_TOO_BIG, "%s", status_msg());
    free(jpg);
    /* a real small WebP over a tiny limit */
    uint8_t *out = NULL;
    size_t wn = WebPEncodeLosslessRGB(src, 8, 8, 24, &out);
    struct image_decode_opts tiny = { .max_pixels = 63 };
    cr_assert_eq(image_decode(out, wn, &tiny, &img), STATUS_TOO_BIG);
    tiny.max_pixels = 64;
    cr_assert_eq(image_decode(out, wn, &tiny, &img), STATUS_OK);
    image_clear(&img);
    WebPFree(out);
    free(src);
}

Test(image, decode_into_a_caller_buffer)
{
    uint8_t *src = pattern(30, 40, 3), *jpg, *png;
    size_t n, pn;
    cr_assert_eq(image_encode_jpeg(src, 30, 40, 3, 90, &jpg, &n), STATUS_OK);
    struct image a, b;
    cr_assert_eq(image_decode(jpg, n, NULL, &a), STATUS_OK);
    uint8_t *buf = malloc(30 * 40 * 3);
    cr_assert_eq(image_decode_to(jpg, n, NULL, buf, 30 * 40 * 3, &b), STATUS_OK, "%s", status_msg());
    cr_assert_eq(b.pixels, buf);
    cr_assert_eq(memcmp(a.pixels, buf, 3600), 0);
    cr_assert_eq(image_decode_to(jpg, n, NULL, buf, 3599, &b), STATUS_USAGE);
    cr_assert_eq(image_decode_to(jpg, n / 2, NULL, buf, 3600, &b), STATUS_DECODE);
    cr_assert_eq(image_encode_png(src, 30, 40, 3, &png, &pn), STATUS_OK);
    cr_assert_eq(image_decode_to(png, pn, NULL, buf, 3600, &b), STATUS_OK);
    cr_assert_eq(memcmp(src, buf, 3600), 0);
    image_clear(&a);
    free(buf);
    free(png);
    free(jpg);
    free(src);
}
