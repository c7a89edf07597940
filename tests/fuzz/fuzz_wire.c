/*
 * fuzz_wire — the 64-byte batch header (shared/wire.c) a trainer receives
 * from any augment worker, possibly over the network.
 *
 * The input is the header frame, any size.  wire_header_unpack parses it,
 * wire_header_check compares it with a receiver's expectations (a fixed
 * shape, and a free one bounded by a buffer).  Checks: an unpacked header
 * respects the WIRE_MAX_* limits, its frame sizes do not overflow, a
 * header accepted by a check fits the receiver's buffer, and a header
 * packed again unpacks to the same fields.
 */
#include <stdint.h>
#include <string.h>

#include "shared/wire.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_header h;
    status st = wire_header_unpack(data, size, &h);
    fuzz_check_failure(st, "wire_header_unpack");
    if (st != STATUS_OK) return 0;
    if (size != WIRE_HEADER_SIZE) fuzz_fail("accepted a %zu-byte header", size);
    if (h.n > WIRE_MAX_N || h.h > WIRE_MAX_SIDE || h.w > WIRE_MAX_SIDE || h.c > WIRE_MAX_C)
        fuzz_fail("n/h/w/c %u/%u/%u/%u over the limits", h.n, h.h, h.w, h.c);
    if (wire_image_bytes(&h) && wire_pixels_bytes(&h) / wire_image_bytes(&h) != h.n)
        fuzz_fail("pixel bytes overflow");
    if (wire_pixels_bytes(&h) > WIRE_MAX_PIXELS) fuzz_fail("pixels frame over WIRE_MAX_PIXELS");
    if (((h.flags & WIRE_FLAG_END_OF_PASS) != 0) != (h.n == 0)) fuzz_fail("END_OF_PASS and n = %u", h.n);
    uint8_t again[WIRE_HEADER_SIZE];
    wire_header_pack(&h, again);
    struct wire_header h2;
    if (wire_header_unpack(again, sizeof again, &h2) != STATUS_OK || memcmp(&h, &h2, sizeof h) != 0)
        fuzz_fail("header does not survive pack + unpack");

    struct wire_expect fixed = { .max_n = 32, .h = 28, .w = 28, .c = 1, .max_pixels = 32u * 28 * 28 };
    struct wire_expect free_shape = { .max_n = 64, .max_h = 512, .max_w = 512, .max_c = 3, .num_workers = 4,
                                      .max_pixels = 1u << 20 };
    const struct wire_expect *ex[2] = { &fixed, &free_shape };
    for (int i = 0; i < 2; i++) {
        status cst = wire_header_check(&h, ex[i]);
        fuzz_check_failure(cst, "wire_header_check");
        if (cst != STATUS_OK) continue;
        if (h.n > ex[i]->max_n || wire_pixels_bytes(&h) > ex[i]->max_pixels)
            fuzz_fail("accepted n=%u and %zu pixel bytes", h.n, wire_pixels_bytes(&h));
        if (ex[i]->h && (h.h != ex[i]->h || h.w != ex[i]->w || h.c != ex[i]->c)) fuzz_fail("accepted another shape");
        if (ex[i]->num_workers && (h.num_workers != ex[i]->num_workers || h.worker >= h.num_workers))
            fuzz_fail("accepted worker %u of %u", h.worker, h.num_workers);
    }
    return 0;
}
