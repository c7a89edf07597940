/*
 * fuzz_image_two — a fuzzed image, then known good ones, on the same decoder.
 *
 * A decoder that keeps state from one image to the next (an error flag, a
 * half-parsed table) turns one bad file into many lost good ones, and a
 * fuzzer that feeds one input per decoder cannot see it.  Here each input is
 * decoded first (its result does not matter), then a fixed set of valid
 * images — colour and gray JPEG, PNG, WebP — is decoded on the same thread,
 * hence the same decoder handles, and each must succeed with exactly the
 * pixels it gave before any fuzzed input was seen.  The seeds include the
 * failures that used to poison the JPEG handle: a file cut inside its
 * Huffman tables and one with its scan removed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/image.h"
#include "tests/fuzz/fuzz_images.h"
#include "tests/fuzz/fuzz_util.h"

#define FUZZ_MAX_PIXELS (4096u * 4096u)
#define NREF 4

struct ref {
    const char *what;
    uint8_t *file;
    size_t n;
    struct image img;
};
static struct ref refs[NREF];
static int refs_ready;

static void refs_make(void)
{
    static const struct { const char *what; enum fuzz_image_kind kind; int c; } spec[NREF] = {
        { "colour JPEG", FUZZ_IMAGE_JPEG, 3 }, { "gray JPEG", FUZZ_IMAGE_JPEG, 1 },
        { "PNG", FUZZ_IMAGE_PNG, 3 },          { "WebP", FUZZ_IMAGE_WEBP, 3 },
    };
    struct image_decode_opts opts = { 0, FUZZ_MAX_PIXELS };
    for (int i = 0; i < NREF; i++) {
        refs[i].what = spec[i].what;
        if (fuzz_image_encode(spec[i].kind, 24, 40, spec[i].c, &refs[i].file, &refs[i].n) != STATUS_OK)
            fuzz_fail("cannot encode the reference %s: %s", spec[i].what, status_msg());
        if (image_decode(refs[i].file, refs[i].n, &opts, &refs[i].img) != STATUS_OK)
            fuzz_fail("the reference %s does not decode: %s", spec[i].what, status_msg());
    }
    refs_ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!refs_ready) refs_make();
    struct image_decode_opts opts = { 0, FUZZ_MAX_PIXELS };
    struct image img = { 0 };
    status st = image_decode(data, size, &opts, &img);
    fuzz_check_failure(st, "image_decode");
    image_clear(&img);
    for (int i = 0; i < NREF; i++) {
        struct image again = { 0 };
        st = image_decode(refs[i].file, refs[i].n, &opts, &again);
        if (st != STATUS_OK)
            fuzz_fail("a valid %s no longer decodes after the fuzzed input: %s", refs[i].what, status_msg());
        const struct image *r = &refs[i].img;
        if (again.width != r->width || again.height != r->height || again.channels != r->channels ||
            memcmp(again.pixels, r->pixels, (size_t)r->width * r->height * r->channels) != 0)
            fuzz_fail("a valid %s decodes to other pixels after the fuzzed input", refs[i].what);
        image_clear(&again);
    }
    return 0;
}
