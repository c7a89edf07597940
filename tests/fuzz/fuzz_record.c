/*
 * fuzz_record — one LMDB value through the record decoder (shared/record.c).
 *
 * The input is the value (version 1 or 2, proto/record.md).  record_decode
 * runs without and with the CRC check, and record_check_label against a
 * range.  Checks: everything a decoded record points to (name, payload,
 * boxes) lies inside the value; a raw record's payload is exactly
 * height*width*channels bytes; every box is finite, in [0, 1] and not
 * inverted; and a decoded record encodes back (as version 2) to a value
 * that decodes to the same fields and boxes, of the same size when the
 * input was version 2 (the decoder accepts only what the encoder can
 * write).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/record.h"
#include "tests/fuzz/fuzz_util.h"

static int inside(const void *p, size_t n, const uint8_t *buf, size_t size)
{
    const uint8_t *b = p;
    return n == 0 || (b >= buf && n <= size && b - buf <= (ptrdiff_t)(size - n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so reading one past the value is caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    struct record r;
    status st = record_decode(buf, size, 0, &r);
    fuzz_check_failure(st, "record_decode");
    if (st == STATUS_OK) {
        if (!inside(r.name, r.name_len, buf, size)) fuzz_fail("name outside the value");
        if (!inside(r.payload, r.payload_len, buf, size)) fuzz_fail("payload outside the value");
        if (r.storage == RECORD_RAW && r.payload_len != (size_t)r.height * r.width * r.channels)
            fuzz_fail("raw payload of %zu bytes for %ux%ux%u", r.payload_len, r.height, r.width, r.channels);
        if (r.num_boxes > size / 16 || !inside(r.boxes, (size_t)r.num_boxes * 16, buf, size))
            fuzz_fail("%u boxes outside the value", r.num_boxes);
        float *boxes = malloc((size_t)r.num_boxes * 4 * sizeof(float) + 1);
        if (!boxes) { free(buf); return 0; }
        for (uint32_t i = 0; i < r.num_boxes; i++) {
            float *b = boxes + 4 * i;
            record_box_get(&r, i, b);
            for (int k = 0; k < 4; k++)
                if (!isfinite(b[k]) || b[k] < 0 || b[k] > 1) fuzz_fail("box %u value %g accepted", i, b[k]);
            if (b[0] > b[2] || b[1] > b[3]) fuzz_fail("inverted box %u accepted", i);
        }
        fuzz_check_failure(record_check_label(&r, 0, 10), "record_check_label");
        struct record v;
        status vst = record_decode(buf, size, 1, &v);
        fuzz_check_failure(vst, "record_decode with crc");
        if (vst == STATUS_OK && record_verify(&r) != STATUS_OK) fuzz_fail("crc checked one way, not the other");

        struct record again = r;
        again.boxes_in = boxes;
        size_t need = record_encoded_size(&again);
        uint8_t *out = malloc(need ? need : 1);
        size_t written = 0;
        if (out && record_encode(&again, out, need, &written) == STATUS_OK) {
            struct record back;
            if (r.version == 2 && written != size) fuzz_fail("re-encoded to %zu bytes, was %zu", written, size);
            if (record_decode(out, written, 1, &back) != STATUS_OK)
                fuzz_fail("re-encoded record does not decode: %s", status_msg());
            if (back.label != r.label || back.height != r.height || back.width != r.width ||
                back.channels != r.channels || back.storage != r.storage || back.name_len != r.name_len ||
                back.payload_len != r.payload_len || memcmp(back.payload, r.payload, r.payload_len) != 0 ||
                back.num_boxes != r.num_boxes)
                fuzz_fail("re-encoded record differs");
            for (uint32_t i = 0; i < r.num_boxes; i++) {
                float b[4];
                record_box_get(&back, i, b);
                if (memcmp(b, boxes + 4 * i, sizeof b) != 0) fuzz_fail("re-encoded box %u differs", i);
            }
        }
        free(boxes);
        free(out);
    }
    free(buf);
    return 0;
}
