/*
 * fuzz_dispatch — the dispatcher's message parser (shared/dispatch_proto.c),
 * which reads every message a worker or a consumer sends, possibly from the
 * network before anything else has looked at it.
 *
 * The input is one message, any size.  dproto_parse checks it; the target
 * then checks that a failure leaves one line of message, that an accepted
 * message other than BATCH encodes to bytes that parse to the same message,
 * and that an accepted BATCH's labels, ids and pixels lie inside the input
 * with the sizes its wire header gives.
 */
#include <stdint.h>
#include <string.h>

#include "shared/dispatch_proto.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dproto_msg m;
    status st = dproto_parse(data, size, &m);
    fuzz_check_failure(st, "dproto_parse");
    if (st != STATUS_OK) return 0;
    if (m.type < DPROTO_REGISTER || m.type > DPROTO_TYPE_MAX) fuzz_fail("accepted type %u", m.type);
    if (m.type == DPROTO_BATCH) {
        const struct wire_header *h = &m.u.batch.header;
        const uint8_t *end = data + size;
        size_t want = dproto_batch_size(h->n, h->h, h->w, h->c);
        if (want == 0 || want != size) fuzz_fail("BATCH of %zu bytes for n=%u %ux%ux%u", size, h->n, h->h, h->w, h->c);
        if (m.u.batch.labels < data || m.u.batch.labels + 4u * h->n > end || m.u.batch.ids + 8u * (size_t)h->n > end ||
            m.u.batch.pixels + (size_t)h->n * h->h * h->w * h->c > end)
            fuzz_fail("BATCH parts outside the message");
        return 0;
    }
    uint8_t again[1024];
    size_t n = dproto_encode(&m, again, sizeof again);
    if (n == 0) fuzz_fail("an accepted %s does not encode", dproto_type_name(m.type));
    struct dproto_msg m2;
    if (dproto_parse(again, n, &m2) != STATUS_OK) fuzz_fail("%s does not survive encode + parse", dproto_type_name(m.type));
    if (m2.type != m.type || m2.session != m.session) fuzz_fail("type or session changed on encode + parse");
    uint8_t third[1024];
    size_t n3 = dproto_encode(&m2, third, sizeof third);
    if (n3 != n || memcmp(third, again, n) != 0) fuzz_fail("%s encodes differently after a round trip", dproto_type_name(m.type));
    return 0;
}
