/*
 * test_dispatch_check.c — what the dispatcher refuses in a worker's BATCH
 * before it hands the batch to the trainer (trainer/dispatch_check.c): a
 * batch of the wrong size (train: exactly batch_size; eval: at most what is
 * left of the pass at that index), images of the wrong shape, a header whose
 * seq is not the batch's index (a gap or a batch sent for another slot), a
 * different seed or stream kind, a label outside [0, classes) and an id
 * outside the dataset.  Every case starts from a batch that is accepted, so
 * each refusal is caused by the one field changed.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "shared/dispatch_proto.h"
#include "shared/endian.h"
#include "shared/wire.h"
#include "trainer/dispatch_check.h"
#include "trainer/dispatcher.h"

#define BS 4
#define IMG 8

static struct dispatcher_config cfg;
static uint8_t labels[4 * (BS + 2)], ids[8 * (BS + 2)];

static struct dispatcher_config run(int eval)
{
    struct dispatcher_config c = dispatcher_config_default();
    c.batch_size = BS;
    c.image_size = IMG;
    c.channels = 3;
    c.seed = 11;
    c.examples = 10;          /* eval: batches of 4, 4, 2 */
    c.records = 10;
    c.num_classes = 5;
    c.eval = eval;
    return c;
}

/* batch `index` with n examples, ids index*BS + i, labels i % 5 */
static struct dproto_batch good(uint64_t index, uint32_t n)
{
    struct dproto_batch b = { .lease = 1, .index = index };
    wire_header_init(&b.header, 0, 1, index, 0, n, IMG, IMG, 3, cfg.eval ? WIRE_FLAG_EVAL : 0, cfg.seed);
    for (uint32_t i = 0; i < n; i++) {
        le_put_u32(labels + 4 * i, i % 5);
        le_put_u64(ids + 8 * i, (index * BS + i) % 10);
    }
    b.labels = labels;
    b.ids = ids;
    return b;
}

static void refused(const struct dproto_batch *b, const char *want)
{
    char buf[160];
    const char *why = dispatch_batch_wrong(&cfg, b, buf, sizeof buf);
    cr_assert_not_null(why, "accepted, expected a refusal containing \"%s\"", want);
    cr_assert(strstr(why, want) != NULL, "refusal \"%s\" does not name \"%s\"", why, want);
}

static void accepted(const struct dproto_batch *b)
{
    char buf[160];
    const char *why = dispatch_batch_wrong(&cfg, b, buf, sizeof buf);
    cr_assert_null(why, "refused: %s", why ? why : "");
}

Test(dispatch_check, train_batch_size_shape_seq_seed)
{
    cfg = run(0);
    struct dproto_batch b = good(2, BS);
    accepted(&b);
    b = good(2, BS - 1);
    refused(&b, "has 3 examples, expected 4");
    b = good(2, BS + 1);
    b.header.n = BS + 1;
    refused(&b, "has 5 examples, expected 4");
    b = good(2, BS);
    b.header.h = IMG + 1;
    refused(&b, "images of 9x8x3, expected 8x8x3");
    b = good(2, BS);
    b.header.c = 1;
    refused(&b, "expected 8x8x3");
    b = good(2, BS);
    b.header.seq = 3;                          /* sent as batch 2 but made for 3: a gap */
    refused(&b, "does not match batch 2");
    b = good(2, BS);
    b.index = 1;                               /* batch 2's content in slot 1 */
    refused(&b, "does not match batch 1");
    b = good(2, BS);
    b.header.seed = 12;
    refused(&b, "seed 12");
    b = good(2, BS);
    b.header.flags = WIRE_FLAG_EVAL;           /* an eval stream's batch in a training run */
    refused(&b, "does not match batch 2");
}

Test(dispatch_check, labels_and_ids)
{
    cfg = run(0);
    struct dproto_batch b = good(0, BS);
    le_put_u32(labels + 4 * 3, 5);
    refused(&b, "label 5 out of range");
    b = good(0, BS);
    le_put_u32(labels + 4 * 1, (uint32_t)-1);
    refused(&b, "label -1 out of range");
    b = good(0, BS);
    le_put_u64(ids + 8 * 2, 10);
    refused(&b, "example id out of range");
    /* id_limit: ingest left gaps in the ids, so they may reach past records */
    cfg.id_limit = 12;
    b = good(0, BS);
    le_put_u64(ids + 8 * 2, 11);
    accepted(&b);
    le_put_u64(ids + 8 * 2, 12);
    refused(&b, "example id out of range");
}

Test(dispatch_check, eval_batches_are_at_most_what_is_left)
{
    cfg = run(1);
    struct dproto_batch b = good(0, BS);
    accepted(&b);
    b = good(2, 2);                            /* the pass's last batch: 10 - 8 */
    accepted(&b);
    b = good(2, 1);                            /* a bad record left a slot empty */
    accepted(&b);
    b = good(2, 3);
    refused(&b, "has 3 examples, expected at most 2");
    b = good(5, 2);                            /* pass 1's last batch (index 5 = 2 of 3) */
    accepted(&b);
    b = good(4, BS + 1);
    refused(&b, "expected at most 4");
    b = good(1, BS);
    b.header.flags = 0;                        /* a training batch in an eval run */
    refused(&b, "does not match batch 1");
}
