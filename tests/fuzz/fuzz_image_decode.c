/*
 * fuzz_image_decode — one input, any image format, through shared/image.
 *
 * The input is a whole file.  image_probe reads its header, image_decode
 * decodes it to its native channels, and image_decode_to decodes it again
 * to RGB into a buffer sized from the probe (the in-place path ingest uses
 * to write pixels straight into a record).  The format is sniffed from the
 * first bytes, so the JPEG (TurboJPEG), PNG (libpng) and WebP (libwebp)
 * paths are all reached; the seeds hold one valid file of each plus broken
 * ones.  Beyond memory safety it checks that a failure leaves a one-line
 * message and that a successful decode has exactly the probed size.
 */
#include <stdint.h>
#include <stdlib.h>

#include "shared/image.h"
#include "tests/fuzz/fuzz_util.h"

#define FUZZ_MAX_PIXELS (4096u * 4096u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct image_info info;
    status pst = image_probe(data, size, &info);
    fuzz_check_failure(pst, "image_probe");

    struct image_decode_opts opts = { 0, FUZZ_MAX_PIXELS };
    struct image img = { 0 };
    status st = image_decode(data, size, &opts, &img);
    fuzz_check_failure(st, "image_decode");
    if (st == STATUS_OK) {
        if (pst != STATUS_OK) fuzz_fail("image_decode accepted what image_probe refused");
        if (img.width != info.width || img.height != info.height)
            fuzz_fail("decoded %dx%d, probe said %dx%d", img.width, img.height, info.width, info.height);
        if (img.channels != 1 && img.channels != 3) fuzz_fail("decoded to %d channels", img.channels);
        /* touch every byte so ASan sees a short buffer */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)img.width * img.height * img.channels; i++) sum += img.pixels[i];
        (void)sum;
    }
    image_clear(&img);

    if (pst == STATUS_OK && (uint64_t)info.width * info.height <= FUZZ_MAX_PIXELS) {
        size_t cap = (size_t)info.width * info.height * 3;
        uint8_t *buf = malloc(cap ? cap : 1);
        if (buf) {
            struct image_decode_opts rgb = { 3, FUZZ_MAX_PIXELS };
            struct image view = { 0 };
            st = image_decode_to(data, size, &rgb, buf, cap, &view);
            fuzz_check_failure(st, "image_decode_to");
            if (st == STATUS_OK && (view.pixels != buf || view.channels != 3 || view.width != info.width ||
                                    view.height != info.height))
                fuzz_fail("image_decode_to gave %dx%dx%d", view.height, view.width, view.channels);
            free(buf);
        }
    }
    return 0;
}
