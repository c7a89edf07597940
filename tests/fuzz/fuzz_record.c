/*
 * fuzz_record — one LMDB value through the record decoder (shared/record.c).
 *
 * The input is the value.  record_decode runs without and with the CRC
 * check.  Checks: everything a decoded record points to lies inside the
 * value; a raw record's payload is exactly height*width*channels bytes;
 * and a decoded record encodes back to a value of the same size that
 * decodes to the same fields (the decoder accepts only what the encoder
 * can write).
 */
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
        struct record v;
        status vst = record_decode(buf, size, 1, &v);
        fuzz_check_failure(vst, "record_decode with crc");
        if (vst == STATUS_OK && record_verify(&r) != STATUS_OK) fuzz_fail("crc checked one way, not the other");

        struct record again = r;
        size_t need = record_encoded_size(&again);
        uint8_t *out = malloc(need ? need : 1);
        size_t written = 0;
        if (out && record_encode(&again, out, need, &written) == STATUS_OK) {
            struct record back;
            if (written != size) fuzz_fail("re-encoded to %zu bytes, was %zu", written, size);
            if (record_decode(out, written, 1, &back) != STATUS_OK)
                fuzz_fail("re-encoded record does not decode: %s", status_msg());
            if (back.label != r.label || back.height != r.height || back.width != r.width ||
                back.channels != r.channels || back.storage != r.storage || back.name_len != r.name_len ||
                back.payload_len != r.payload_len || memcmp(back.payload, r.payload, r.payload_len) != 0)
                fuzz_fail("re-encoded record differs");
        }
        free(out);
    }
    free(buf);
    return 0;
}
