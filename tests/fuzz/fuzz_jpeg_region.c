/*
 * fuzz_jpeg_region — the augment worker's JPEG decoder (augment/jpeg.c).
 *
 * Input layout: 8 bytes of parameters, then the JPEG file.
 *   byte 0  bit 0: gray (1) or RGB (0) output; bits 1-2: DCT scale 1/8,
 *           2/8, 4/8 or 8/8; bit 3: the box is laid out over a size read
 *           from bytes 5-7 (a record whose height/width disagree with its
 *           JPEG) instead of the size in the JPEG header
 *   bytes 1-4  the crop box as fractions (y, x, h, w) of that size
 *   bytes 5-7  the claimed height and width (12 bits each, bit 3 only)
 * Each input goes through jpeg_decoder_decode_region (the worker's default)
 * and jpeg_decoder_decode on one long-lived decoder, as a worker thread
 * does.  Checks: a region that decodes lies inside the pixels returned; and
 * afterwards a fixed valid JPEG still decodes, region and whole, to the same
 * pixels as on a fresh decoder (no state carried over from a bad file).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "augment/distort.h"
#include "augment/jpeg.h"
#include "shared/image.h"
#include "tests/fuzz/fuzz_images.h"
#include "tests/fuzz/fuzz_util.h"

#define FUZZ_MAX_PIXELS (4096u * 4096u)
#define PARAMS 8

static struct jpeg_decoder *dec;
static uint8_t *ref_file;
static size_t ref_n;
static uint8_t *ref_region, *ref_whole;
static size_t ref_region_n, ref_whole_n;
static const struct box ref_box = { 5, 7, 20, 30 };

static void decode_ref(uint8_t **region, size_t *rn, uint8_t **whole, size_t *wn)
{
    const uint8_t *px;
    int h, w;
    struct box in_box;
    if (jpeg_decoder_decode_region(dec, ref_file, ref_n, 3, 4, FUZZ_MAX_PIXELS, &ref_box, &px, &h, &w, &in_box) !=
        STATUS_OK)
        fuzz_fail("a valid JPEG's region no longer decodes: %s", status_msg());
    *rn = (size_t)h * w * 3;
    *region = malloc(*rn);
    memcpy(*region, px, *rn);
    if (jpeg_decoder_decode(dec, ref_file, ref_n, 3, 8, FUZZ_MAX_PIXELS, &px, &h, &w) != STATUS_OK)
        fuzz_fail("a valid JPEG no longer decodes: %s", status_msg());
    *wn = (size_t)h * w * 3;
    *whole = malloc(*wn);
    memcpy(*whole, px, *wn);
}

static void setup(void)
{
    if (jpeg_decoder_new(&dec) != STATUS_OK) fuzz_fail("jpeg_decoder_new: %s", status_msg());
    if (fuzz_image_encode(FUZZ_IMAGE_JPEG, 48, 64, 3, &ref_file, &ref_n) != STATUS_OK)
        fuzz_fail("cannot encode the reference JPEG: %s", status_msg());
    decode_ref(&ref_region, &ref_region_n, &ref_whole, &ref_whole_n);
}

static int frac(uint8_t b, int n) { return (int)((int64_t)b * n / 256); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dec) setup();
    if (size < PARAMS) return 0;
    const uint8_t *jpg = data + PARAMS;
    size_t n = size - PARAMS;
    int channels = (data[0] & 1) ? 1 : 3;
    static const int nums[4] = { 1, 2, 4, 8 };
    int num = nums[(data[0] >> 1) & 3];

    int H, W;
    if (data[0] & 8) {
        H = 1 + ((data[5] << 4 | data[6] >> 4) & 0xfff);
        W = 1 + ((((data[6] & 0xf) << 8) | data[7]) & 0xfff);
    } else {
        struct image_info info;
        if (image_probe(jpg, n, &info) != STATUS_OK || info.format != IMAGE_FORMAT_JPEG) return 0;
        H = info.height;
        W = info.width;
    }
    struct box box;
    box.y = frac(data[1], H);
    box.x = frac(data[2], W);
    box.h = 1 + frac(data[3], H - box.y);
    box.w = 1 + frac(data[4], W - box.x);
    if (box.y + box.h > H) box.h = H - box.y;
    if (box.x + box.w > W) box.w = W - box.x;

    const uint8_t *px;
    int h = 0, w = 0;
    struct box in_box;
    status st = jpeg_decoder_decode_region(dec, jpg, n, channels, num, FUZZ_MAX_PIXELS, &box, &px, &h, &w, &in_box);
    fuzz_check_failure(st, "jpeg_decoder_decode_region");
    if (st == STATUS_OK) {
        if (h <= 0 || w <= 0) fuzz_fail("region decoded to %dx%d", h, w);
        if (in_box.y < 0 || in_box.x < 0 || in_box.h <= 0 || in_box.w <= 0 || in_box.y + in_box.h > h ||
            in_box.x + in_box.w > w)
            fuzz_fail("box (%d,%d %dx%d) of a %dx%d image maps to (%d,%d %dx%d) outside the %dx%d pixels", box.y,
                      box.x, box.h, box.w, H, W, in_box.y, in_box.x, in_box.h, in_box.w, h, w);
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)h * w * channels; i++) sum += px[i];
        (void)sum;
    }
    st = jpeg_decoder_decode(dec, jpg, n, channels, num, FUZZ_MAX_PIXELS, &px, &h, &w);
    fuzz_check_failure(st, "jpeg_decoder_decode");

    uint8_t *region, *whole;
    size_t rn, wn;
    decode_ref(&region, &rn, &whole, &wn);
    if (rn != ref_region_n || memcmp(region, ref_region, rn) != 0)
        fuzz_fail("a valid JPEG's region decodes to other pixels after the fuzzed input");
    if (wn != ref_whole_n || memcmp(whole, ref_whole, wn) != 0)
        fuzz_fail("a valid JPEG decodes to other pixels after the fuzzed input");
    free(region);
    free(whole);
    return 0;
}
