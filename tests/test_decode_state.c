/*
 * test_decode_state.c — a decoder keeps no state from one image to the next.
 *
 * Every broken sample of the bad-input corpus (a JPEG cut to 400 bytes or to
 * half, its scan removed, a bogus Huffman table, an early EOI, a frame header
 * of width 0, SOI+EOI only, a cut PNG and WebP, text, zero bytes) is decoded
 * and then a valid JPEG (colour and gray), PNG and WebP are decoded in the
 * same thread; each valid one must decode to exactly the pixels it gave
 * before anything broken was seen.  The same for the augment worker's
 * decoder (full, scaled and region decoding on one decoder object).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

#include "augment/distort.h"
#include "augment/jpeg.h"
#include "shared/image.h"

struct blob { uint8_t *p; size_t n; const char *name; };

static uint8_t *pattern(int h, int w, int c, int seed)
{
    uint8_t *p = malloc((size_t)h * w * c);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++)
                p[((size_t)y * w + x) * c + k] = (uint8_t)(x * 150 / w + y * 90 / h + k * 7 + seed + (x * y) % 13);
    return p;
}

static struct blob dup_blob(const uint8_t *p, size_t n, const char *name)
{
    struct blob b = { malloc(n ? n : 1), n, name };
    memcpy(b.p, p, n);
    return b;
}

/* offset of marker FF m (first occurrence after SOI), or 0 */
static size_t find_marker(const uint8_t *p, size_t n, uint8_t m)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (p[i] == 0xFF && p[i + 1] == m) return i;
    return 0;
}

/* The broken corpus, made from a valid colour JPEG j (n bytes) and PNG/WebP. */
static int broken_corpus(const uint8_t *j, size_t n, const uint8_t *png, size_t pn, const uint8_t *webp, size_t wn,
                         struct blob *out)
{
    int k = 0;
    cr_assert_gt(n, 800);
    out[k++] = dup_blob(j, 400, "jpeg cut to 400 bytes");
    out[k++] = dup_blob(j, n / 2, "jpeg cut to half");
    size_t sos = find_marker(j, n, 0xDA), dht = find_marker(j, n, 0xC4), sof = find_marker(j, n, 0xC0);
    cr_assert(sos && dht && sof, "markers in the reference JPEG");
    struct blob b = dup_blob(j, sos + 2, "jpeg with its scan removed");
    b.p[sos] = 0xFF; b.p[sos + 1] = 0xD9;
    out[k++] = b;
    out[k++] = dup_blob(j, sos, "jpeg cut before its scan");
    b = dup_blob(j, n, "jpeg with a bogus Huffman table");
    memset(b.p + dht + 5, 0xFF, 16);
    out[k++] = b;
    b = dup_blob(j, n, "jpeg with an early EOI in its scan");
    b.p[sos + (n - sos) / 2] = 0xFF; b.p[sos + (n - sos) / 2 + 1] = 0xD9;
    out[k++] = b;
    b = dup_blob(j, n, "jpeg with width 0");
    b.p[sof + 7] = 0; b.p[sof + 8] = 0;
    out[k++] = b;
    out[k++] = dup_blob((const uint8_t *)"\xFF\xD8\xFF\xD9", 4, "jpeg SOI+EOI");
    out[k++] = dup_blob((const uint8_t *)"\xFF\xD8\xFF", 3, "jpeg signature only");
    b = dup_blob(j, n, "jpeg with its scan zeroed");
    memset(b.p + sos + 20, 0, n - sos - 22);
    out[k++] = b;
    out[k++] = dup_blob(png, pn / 2, "png cut to half");
    out[k++] = dup_blob(webp, wn / 2, "webp cut to half");
    out[k++] = dup_blob((const uint8_t *)"not an image\n", 13, "text");
    out[k++] = dup_blob((const uint8_t *)"", 0, "zero bytes");
    return k;
}

struct good { struct blob b; struct image ref; };

static void check_same(const struct good *g, const char *after, int channels)
{
    struct image img;
    struct image_decode_opts o = { .channels = channels };
    status st = image_decode(g->b.p, g->b.n, &o, &img);
    cr_assert_eq(st, STATUS_OK, "valid %s rejected after %s: %s", g->b.name, after, status_msg());
    cr_assert(img.height == g->ref.height && img.width == g->ref.width && img.channels == g->ref.channels,
              "%s after %s: shape differs", g->b.name, after);
    cr_assert(!memcmp(img.pixels, g->ref.pixels, (size_t)img.height * img.width * img.channels),
              "%s after %s: pixels differ", g->b.name, after);
    image_clear(&img);
    /* the in-place path and the probe go through the same handle */
    struct image_info info;
    cr_assert_eq(image_probe(g->b.p, g->b.n, &info), STATUS_OK, "probe of %s after %s: %s", g->b.name, after,
                 status_msg());
    size_t cap = (size_t)g->ref.height * g->ref.width * g->ref.channels;
    uint8_t *dst = malloc(cap);
    cr_assert_eq(image_decode_to(g->b.p, g->b.n, &o, dst, cap, &img), STATUS_OK, "decode_to of %s after %s: %s",
                 g->b.name, after, status_msg());
    cr_assert(!memcmp(dst, g->ref.pixels, cap), "%s after %s: decode_to pixels differ", g->b.name, after);
    free(dst);
}

static void make_inputs(struct good *goods, int *ngood, struct blob *bad, int *nbad)
{
    uint8_t *rgb = pattern(48, 72, 3, 5), *gray = pattern(40, 56, 1, 9), *out;
    size_t n;
    int k = 0;
    cr_assert_eq(image_encode_jpeg(rgb, 48, 72, 3, 90, &out, &n), STATUS_OK);
    goods[k++].b = (struct blob){ out, n, "colour jpeg" };
    cr_assert_eq(image_encode_jpeg(gray, 40, 56, 1, 90, &out, &n), STATUS_OK);
    goods[k++].b = (struct blob){ out, n, "gray jpeg" };
    cr_assert_eq(image_encode_png(rgb, 48, 72, 3, &out, &n), STATUS_OK);
    goods[k++].b = (struct blob){ out, n, "png" };
    uint8_t *w = NULL;
    size_t wn = WebPEncodeLosslessRGB(rgb, 72, 48, 72 * 3, &w);
    cr_assert_gt(wn, 0);
    goods[k].b = dup_blob(w, wn, "webp");
    WebPFree(w);
    k++;
    *ngood = k;
    *nbad = broken_corpus(goods[0].b.p, goods[0].b.n, goods[2].b.p, goods[2].b.n, goods[3].b.p, goods[3].b.n, bad);
    free(rgb);
    free(gray);
}

Test(decode_state, valid_images_decode_identically_after_every_broken_one)
{
    struct good goods[4];
    struct blob bad[32];
    int ngood, nbad;
    make_inputs(goods, &ngood, bad, &nbad);
    for (int i = 0; i < ngood; i++)
        cr_assert_eq(image_decode(goods[i].b.p, goods[i].b.n, NULL, &goods[i].ref), STATUS_OK, "%s: %s",
                     goods[i].b.name, status_msg());
    for (int i = 0; i < nbad; i++) {
        struct image img;
        status st = image_decode(bad[i].p, bad[i].n, NULL, &img);
        cr_assert_neq(st, STATUS_OK, "broken sample accepted: %s", bad[i].name);
        cr_assert_null(img.pixels);
        for (int g = 0; g < ngood; g++) check_same(&goods[g], bad[i].name, 0);
        /* probe alone (the header path) must not leave state either */
        struct image_info info;
        (void)image_probe(bad[i].p, bad[i].n, &info);
        for (int g = 0; g < ngood; g++) check_same(&goods[g], bad[i].name, 0);
    }
    for (int i = 0; i < nbad; i++) free(bad[i].p);
    for (int g = 0; g < ngood; g++) { free(goods[g].b.p); image_clear(&goods[g].ref); }
}

/* the augment decoder: scaled full decodes and region decodes on one object */
Test(decode_state, augment_decoder_after_every_broken_one)
{
    struct good goods[4];
    struct blob bad[32];
    int ngood, nbad;
    make_inputs(goods, &ngood, bad, &nbad);
    struct jpeg_decoder *d;
    cr_assert_eq(jpeg_decoder_new(&d), STATUS_OK);
    const int njpeg = 2;   /* goods[0..1] are JPEGs */
    uint8_t *ref_full[2], *ref_region[2];
    int rh[2], rw[2], fh[2], fw[2];
    struct box rb[2];
    const struct box box = { 8, 16, 24, 32 };
    for (int g = 0; g < njpeg; g++) {
        const uint8_t *px;
        int ch = g == 0 ? 3 : 1;
        cr_assert_eq(jpeg_decoder_decode(d, goods[g].b.p, goods[g].b.n, ch, 4, 0, &px, &fh[g], &fw[g]), STATUS_OK);
        ref_full[g] = dup_blob(px, (size_t)fh[g] * fw[g] * ch, "").p;
        cr_assert_eq(jpeg_decoder_decode_region(d, goods[g].b.p, goods[g].b.n, ch, 8, 0, &box, &px, &rh[g], &rw[g],
                                                &rb[g]),
                     STATUS_OK, "%s", status_msg());
        ref_region[g] = dup_blob(px, (size_t)rh[g] * rw[g] * ch, "").p;
    }
    for (int i = 0; i < nbad; i++) {
        for (int how = 0; how < 2; how++) {
            const uint8_t *px;
            int h, w;
            struct box ib;
            status st = how == 0 ? jpeg_decoder_decode(d, bad[i].p, bad[i].n, 3, 4, 0, &px, &h, &w)
                                 : jpeg_decoder_decode_region(d, bad[i].p, bad[i].n, 3, 8, 0, &box, &px, &h, &w, &ib);
            cr_assert_neq(st, STATUS_OK, "broken sample accepted: %s (%s)", bad[i].name, how ? "region" : "full");
            for (int g = 0; g < njpeg; g++) {
                int ch = g == 0 ? 3 : 1;
                st = jpeg_decoder_decode(d, goods[g].b.p, goods[g].b.n, ch, 4, 0, &px, &h, &w);
                cr_assert_eq(st, STATUS_OK, "valid %s rejected after %s: %s", goods[g].b.name, bad[i].name,
                             status_msg());
                cr_assert(h == fh[g] && w == fw[g] && !memcmp(px, ref_full[g], (size_t)h * w * ch),
                          "%s after %s: scaled pixels differ", goods[g].b.name, bad[i].name);
                st = jpeg_decoder_decode_region(d, goods[g].b.p, goods[g].b.n, ch, 8, 0, &box, &px, &h, &w, &ib);
                cr_assert_eq(st, STATUS_OK, "valid %s (region) rejected after %s: %s", goods[g].b.name,
                             bad[i].name, status_msg());
                cr_assert(h == rh[g] && w == rw[g] && !memcmp(px, ref_region[g], (size_t)h * w * ch) &&
                              !memcmp(&ib, &rb[g], sizeof ib),
                          "%s after %s: region pixels differ", goods[g].b.name, bad[i].name);
            }
        }
    }
    jpeg_decoder_free(&d);
    for (int g = 0; g < njpeg; g++) { free(ref_full[g]); free(ref_region[g]); }
    for (int i = 0; i < nbad; i++) free(bad[i].p);
    for (int g = 0; g < ngood; g++) free(goods[g].b.p);
}
