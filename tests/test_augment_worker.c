/*
 * test_augment_worker.c — the worker's example stream on a small real
 * dataset (LMDB shards + manifest written with shared/shard.h and
 * shared/manifest.h): eval passes are exactly-once for W = 1, 2, 3 with true
 * last-batch sizes and END counts; W train workers read disjoint ranges that
 * together cover the subset; --start_batch fast-forwards to exactly the batch
 * a fresh run would send; streams are deterministic; a record with a bad CRC
 * is skipped and counted.  Leased-split stream: batch k does not depend on
 * which worker makes it or in what order, epoch 0 is a permutation, eval
 * batches cover the subset once, a bad record is replaced deterministically.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment/worker.h"
#include "shared/manifest.h"
#include "shared/record.h"
#include "shared/shard.h"

#define IMG_H 12
#define IMG_W 10
#define NSHARDS 3

static char dir[256];

static void remove_dataset(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* criterion runs each test in its own process: clean up at its end */
static void fini_remove(void) { if (dir[0]) remove_dataset(); }

/* Record `odd_label_id` (if >= 0) is written with label `odd_label` and a
 * CRC that matches it. */
static int64_t odd_label_id = -1;
static int32_t odd_label;

/* N records over NSHARDS shards per subset; record id k has label k % 3 and
 * pixels derived from k.  Record `bad_id` (if >= 0) gets a wrong CRC. */
static void make_dataset(int n_train, int n_val, int bad_id)
{
    snprintf(dir, sizeof dir, "%s/augds-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    struct manifest *m = calloc(1, sizeof *m);
    m->format_version = MANIFEST_FORMAT_VERSION;
    m->nclasses = 3;
    m->classes = calloc(3, sizeof *m->classes);
    for (int c = 0; c < 3; c++) { m->classes[c].id = c; m->classes[c].name = strdup(c == 0 ? "a" : c == 1 ? "b" : "c"); }
    m->storage = RECORD_RAW;
    m->image.channels = 3;
    m->image.min_height = m->image.max_height = IMG_H;
    m->image.min_width = m->image.max_width = IMG_W;
    m->augment.profile = MANIFEST_PROFILE_PHOTO;
    m->augment.flip = m->augment.color = 1;
    m->made.command = strdup("test");
    m->made.date = strdup("2026-11-25T04:00:00Z");
    m->made.program = strdup("test_augment_worker");
    m->nsubsets = 2;
    m->subsets = calloc(2, sizeof *m->subsets);
    uint64_t id = 0;
    for (int s = 0; s < 2; s++) {
        struct manifest_subset *sub = &m->subsets[s];
        int n = s == 0 ? n_train : n_val;
        sub->name = strdup(s == 0 ? "train" : "validation");
        sub->count = (uint64_t)n;
        sub->nshards = NSHARDS;
        sub->shards = calloc(NSHARDS, sizeof *sub->shards);
        for (int k = 0; k < NSHARDS; k++) {
            char name[64], path[400];
            cr_assert_eq(shard_file_name(sub->name, k, NSHARDS, name, sizeof name), STATUS_OK);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            struct shard_writer *wr;
            cr_assert_eq(shard_writer_open(path, NULL, &wr), STATUS_OK, "%s", status_msg());
            int lo = n * k / NSHARDS, hi = n * (k + 1) / NSHARDS;
            uint64_t first = id, bytes = 0;
            for (int i = lo; i < hi; i++, id++) {
                uint8_t px[IMG_H * IMG_W * 3], buf[1024];
                for (int p = 0; p < IMG_H * IMG_W * 3; p++) px[p] = (uint8_t)(id * 31 + p * 7);
                struct record r = { .label = (int32_t)(id % 3), .height = IMG_H, .width = IMG_W, .channels = 3,
                                    .storage = RECORD_RAW, .name = "x.png", .name_len = 5, .payload = px,
                                    .payload_len = sizeof px };
                if ((int64_t)id == odd_label_id) r.label = odd_label;
                size_t len;
                cr_assert_eq(record_encode(&r, buf, sizeof buf, &len), STATUS_OK);
                if ((int64_t)id == bad_id) buf[len - 1] ^= 0x55;   /* payload byte: CRC mismatch */
                cr_assert_eq(shard_writer_put(wr, id, buf, len), STATUS_OK);
                bytes += len;
            }
            uint64_t recs;
            uint32_t crc;
            cr_assert_eq(shard_writer_close(&wr, &recs, &crc), STATUS_OK);
            sub->shards[k] = (struct manifest_shard){ strdup(name), recs, first, id - 1, crc, bytes };
        }
    }
    cr_assert_eq(manifest_save(m, dir), STATUS_OK, "%s", status_msg());
    manifest_free(&m);
}

static struct worker_config config(int eval, int I, int W, int B)
{
    struct worker_config c = { .data_dir = dir, .subset = eval ? "validation" : "train", .worker = I,
                               .num_workers = W, .batch_size = B, .eval = eval, .queue_factor = 1, .jpeg_scale = 1 };
    distort_config_default(&c.dc, 8);
    c.dc.eval = eval;
    c.dc.seed = 7;
    return c;
}

struct bufs { struct send_buf b; };
static void bufs_init(struct send_buf *b, int B)
{
    memset(b, 0, sizeof *b);
    b->labels = calloc((size_t)B, sizeof *b->labels);
    b->ids = calloc((size_t)B, sizeof *b->ids);
    b->pixels = calloc((size_t)B, 8 * 8 * 3);
}
static void bufs_free(struct send_buf *b) { free(b->labels); free(b->ids); free(b->pixels); }

Test(augment_worker, eval_exactly_once_w123, .fini = fini_remove)
{
    make_dataset(30, 23, -1);
    for (int W = 1; W <= 3; W++) {
        int seen[23] = { 0 };
        for (int I = 0; I < W; I++) {
            struct worker_config c = config(1, I, W, 4);
            c.num_passes = 2;
            struct worker *w;
            cr_assert_eq(worker_open(&c, &w), STATUS_OK, "%s", status_msg());
            struct send_buf b;
            bufs_init(&b, 4);
            for (int pass = 0; pass < 2; pass++) {
                uint32_t sent = 0;
                for (;;) {
                    cr_assert_eq(worker_next(w, &b), STATUS_OK, "%s", status_msg());
                    cr_assert_eq(b.header.epoch, (uint64_t)pass);
                    cr_assert(b.header.flags & WIRE_FLAG_EVAL);
                    if (b.header.flags & WIRE_FLAG_END_OF_PASS) {
                        cr_assert_eq(b.header.n, 0);
                        cr_assert_eq(b.header.count, sent, "W %d I %d: END count %u, sent %u", W, I, b.header.count, sent);
                        break;
                    }
                    cr_assert(b.header.n >= 1 && b.header.n <= 4);
                    for (uint32_t k = 0; k < b.header.n; k++) {
                        uint64_t id = b.ids[k];
                        cr_assert(id >= 30 && id < 53, "id %llu not in validation", (unsigned long long)id);
                        cr_assert_eq(b.labels[k], (int32_t)(id % 3));
                        if (pass == 0) seen[id - 30]++;
                    }
                    sent += b.header.n;
                }
            }
            cr_assert_eq(worker_next(w, &b), STATUS_NOT_FOUND);   /* num_passes done */
            bufs_free(&b);
            worker_free(&w);
        }
        for (int k = 0; k < 23; k++) cr_assert_eq(seen[k], 1, "W %d: id %d seen %d times", W, 30 + k, seen[k]);
    }
}

Test(augment_worker, train_workers_cover_evenly, .fini = fini_remove)
{
    make_dataset(40, 6, -1);
    int owner[40], count[40];
    for (int k = 0; k < 40; k++) { owner[k] = -1; count[k] = 0; }
    int W = 3;
    for (int I = 0; I < W; I++) {
        struct worker_config c = config(0, I, W, 5);
        struct worker *w;
        cr_assert_eq(worker_open(&c, &w), STATUS_OK, "%s", status_msg());
        struct send_buf b;
        bufs_init(&b, 5);
        for (int t = 0; t < 20; t++) {
            cr_assert_eq(worker_next(w, &b), STATUS_OK, "%s", status_msg());
            cr_assert_eq(b.header.n, 5);
            cr_assert_eq(b.header.seq, (uint64_t)t);
            for (int k = 0; k < 5; k++) {
                int id = (int)b.ids[k];
                cr_assert(id >= 0 && id < 40);
                owner[id] = I;   /* shards move between workers from epoch to epoch */
                count[id]++;
            }
        }
        bufs_free(&b);
        worker_free(&w);
    }
    /* 100 draws per worker over ~13 records each: every record about 7-8 times */
    for (int k = 0; k < 40; k++) {
        cr_assert(owner[k] >= 0, "id %d never read", k);
        cr_assert(count[k] >= 5 && count[k] <= 10, "id %d drawn %d times", k, count[k]);
    }
}

static void first_batches(int start, int nb, int seed, struct send_buf *out)
{
    struct worker_config c = config(0, 1, 2, 4);
    c.start_batch = (uint64_t)start;
    c.dc.seed = (uint64_t)seed;
    struct worker *w;
    cr_assert_eq(worker_open(&c, &w), STATUS_OK, "%s", status_msg());
    for (int i = 0; i < nb; i++) cr_assert_eq(worker_next(w, &out[i]), STATUS_OK, "%s", status_msg());
    worker_free(&w);
}

static int same_batch(const struct send_buf *a, const struct send_buf *b)
{
    return a->header.seq == b->header.seq && a->header.epoch == b->header.epoch &&
           !memcmp(a->ids, b->ids, 4 * sizeof *a->ids) && !memcmp(a->labels, b->labels, 4 * sizeof *a->labels) &&
           !memcmp(a->pixels, b->pixels, 4 * 8 * 8 * 3);
}

Test(augment_worker, deterministic_and_fast_forward, .fini = fini_remove)
{
    make_dataset(30, 6, -1);
    struct send_buf a[8], b[8], c[3], d[2];
    for (int i = 0; i < 8; i++) { bufs_init(&a[i], 4); bufs_init(&b[i], 4); }
    for (int i = 0; i < 3; i++) bufs_init(&c[i], 4);
    for (int i = 0; i < 2; i++) bufs_init(&d[i], 4);
    first_batches(0, 8, 7, a);
    first_batches(0, 8, 7, b);
    for (int i = 0; i < 8; i++) cr_assert(same_batch(&a[i], &b[i]), "batch %d differs between two runs", i);
    first_batches(5, 3, 7, c);
    for (int i = 0; i < 3; i++) cr_assert(same_batch(&a[5 + i], &c[i]), "start_batch 5: batch %d differs", 5 + i);
    first_batches(0, 2, 8, d);
    cr_assert(!same_batch(&a[0], &d[0]), "another seed gave the same batch");
    for (int i = 0; i < 8; i++) { bufs_free(&a[i]); bufs_free(&b[i]); }
    for (int i = 0; i < 3; i++) bufs_free(&c[i]);
    for (int i = 0; i < 2; i++) bufs_free(&d[i]);
}

Test(augment_worker, bad_record_skipped_and_counted, .fini = fini_remove)
{
    make_dataset(10, 9, 13);    /* validation ids 10..18: id 13 is bad */
    struct worker_config c = config(1, 0, 1, 4);
    c.num_passes = 1;
    struct worker *w;
    cr_assert_eq(worker_open(&c, &w), STATUS_OK, "%s", status_msg());
    struct send_buf b;
    bufs_init(&b, 4);
    int got = 0, saw_bad = 0;
    for (;;) {
        cr_assert_eq(worker_next(w, &b), STATUS_OK, "%s", status_msg());
        if (b.header.flags & WIRE_FLAG_END_OF_PASS) { cr_assert_eq(b.header.count, 8); break; }
        for (uint32_t k = 0; k < b.header.n; k++) saw_bad |= b.ids[k] == 13;
        got += (int)b.header.n;
    }
    cr_assert_eq(got, 8);
    cr_assert_eq(saw_bad, 0);
    struct worker_stats st;
    worker_get_stats(w, &st);
    cr_assert_eq(st.bad_records, 1);
    bufs_free(&b);
    worker_free(&w);
}

/* A label outside the manifest's classes (with a CRC that matches it) is a
 * bad record: skipped and counted, never sent, every batch still full, and
 * two workers reading the same data send the same batches. */
Test(augment_worker, out_of_range_label_skipped_batches_full, .fini = fini_remove)
{
    odd_label_id = 7;
    odd_label = 200;
    make_dataset(10, 4, -1);
    struct worker *w[2];
    struct send_buf b[2];
    for (int k = 0; k < 2; k++) {
        struct worker_config c = config(0, 0, 1, 4);
        cr_assert_eq(worker_open(&c, &w[k]), STATUS_OK, "%s", status_msg());
        bufs_init(&b[k], 4);
    }
    int seen[10] = { 0 };
    for (int batch = 0; batch < 10; batch++) {   /* 40 examples: 4 epochs of 10 */
        for (int k = 0; k < 2; k++) cr_assert_eq(worker_next(w[k], &b[k]), STATUS_OK, "%s", status_msg());
        cr_assert_eq(b[0].header.n, 4, "a batch is always full");
        cr_assert(!memcmp(b[0].ids, b[1].ids, 4 * sizeof *b[0].ids), "deterministic");
        cr_assert(!memcmp(b[0].pixels, b[1].pixels, 4 * 8 * 8 * 3), "deterministic");
        for (int i = 0; i < 4; i++) {
            cr_assert_neq(b[0].ids[i], 7, "the record with label 200 was sent");
            cr_assert(b[0].labels[i] >= 0 && b[0].labels[i] < 3);
            seen[b[0].ids[i]]++;
        }
    }
    for (int i = 0; i < 10; i++) if (i != 7) cr_assert_gt(seen[i], 0, "id %d never sent", i);
    struct worker_stats st;
    worker_get_stats(w[0], &st);
    cr_assert_geq(st.bad_records, 4, "one skip per epoch, got %llu", (unsigned long long)st.bad_records);
    for (int k = 0; k < 2; k++) { bufs_free(&b[k]); worker_free(&w[k]); }
}

Test(augment_worker, missing_dataset_is_one_clear_error, .fini = fini_remove)
{
    struct worker_config c = config(0, 0, 1, 4);
    c.data_dir = "/nonexistent/dataset";
    struct worker *w = NULL;
    status st = worker_open(&c, &w);
    cr_assert_neq(st, STATUS_OK);
    cr_assert_null(w);
    cr_assert(strstr(status_msg(), "/nonexistent/dataset"), "message: %s", status_msg());
    /* a shard listed but missing */
    make_dataset(9, 3, -1);
    char path[400];
    snprintf(path, sizeof path, "%s/train-00001-of-00003.mdb", dir);
    cr_assert_eq(unlink(path), 0);
    c.data_dir = dir;
    st = worker_open(&c, &w);
    cr_assert_neq(st, STATUS_OK);
    cr_assert(strstr(status_msg(), "train-00001-of-00003.mdb"), "message: %s", status_msg());
}

/* Leased-split stream (worker_batch_at): batch k is the same whichever worker
 * instance makes it and in whatever order; the first N positions are a
 * permutation of the subset; eval batches cover the subset once per pass. */
Test(augment_worker, batch_at_is_a_function_of_the_index, .fini = fini_remove)
{
    make_dataset(30, 23, -1);
    const int B = 4, K = 9;
    struct worker_config c = config(0, 0, 1, B);
    struct worker *a, *b;
    cr_assert_eq(worker_open(&c, &a), STATUS_OK, "%s", status_msg());
    cr_assert_eq(worker_open(&c, &b), STATUS_OK, "%s", status_msg());
    size_t img = 8 * 8 * 3;
    int32_t la[9][4], lb[9][4];
    uint64_t ia[9][4], ib[9][4];
    uint8_t *pa = calloc((size_t)K * B, img), *pb = calloc((size_t)K * B, img);
    struct wire_header h;
    for (int k = 0; k < K; k++) {
        cr_assert_eq(worker_batch_at(a, (uint64_t)k, la[k], ia[k], pa + (size_t)k * B * img, &h), STATUS_OK, "%s", status_msg());
        cr_assert_eq(h.n, (uint32_t)B);
        cr_assert_eq(h.seq, (uint64_t)k);
        cr_assert_eq(h.epoch, (uint64_t)(k * B / 30));
    }
    for (int k = K - 1; k >= 0; k--)
        cr_assert_eq(worker_batch_at(b, (uint64_t)k, lb[k], ib[k], pb + (size_t)k * B * img, &h), STATUS_OK, "%s", status_msg());
    cr_assert_eq(memcmp(ia, ib, sizeof ia), 0);
    cr_assert_eq(memcmp(la, lb, sizeof la), 0);
    cr_assert_eq(memcmp(pa, pb, (size_t)K * B * img), 0);
    int seen[30] = { 0 };
    for (int g = 0; g < 30; g++) {
        uint64_t id = ia[g / B][g % B];
        cr_assert_lt(id, 30u);
        seen[id]++;
        cr_assert_eq(la[g / B][g % B], (int32_t)(id % 3));
    }
    for (int i = 0; i < 30; i++) cr_assert_eq(seen[i], 1, "id %d seen %d times in epoch 0", i, seen[i]);
    int in_order = 1;
    for (int g = 1; g < 30; g++) in_order &= ia[g / B][g % B] > ia[(g - 1) / B][(g - 1) % B];
    cr_assert(!in_order, "epoch 0 is not shuffled");
    free(pa); free(pb);
    worker_free(&a); worker_free(&b);

    /* eval: ceil(23/4) = 6 batches per pass, the last of 3; batch 6 starts pass 1 */
    struct worker_config e = config(1, 0, 1, B);
    cr_assert_eq(worker_open(&e, &a), STATUS_OK, "%s", status_msg());
    cr_assert_eq(worker_eval_batches(a), 6u);
    int vseen[23] = { 0 };
    int32_t lab[4];
    uint64_t ids[4];
    uint8_t px[4 * 8 * 8 * 3];
    for (int k = 0; k < 7; k++) {
        cr_assert_eq(worker_batch_at(a, (uint64_t)k, lab, ids, px, &h), STATUS_OK, "%s", status_msg());
        cr_assert(h.flags & WIRE_FLAG_EVAL);
        cr_assert_eq(h.epoch, (uint64_t)(k / 6));
        cr_assert_eq(h.n, k == 5 ? 3u : 4u);
        if (k < 6) for (uint32_t i = 0; i < h.n; i++) vseen[ids[i] - 30]++;
        else cr_assert_eq(ids[0], 30u);
    }
    for (int i = 0; i < 23; i++) cr_assert_eq(vseen[i], 1);
    worker_free(&a);
}

/* A bad record is replaced by the next position of the same epoch's order:
 * every batch stays full and the replacement is the same for every worker. */
Test(augment_worker, batch_at_replaces_a_bad_record, .fini = fini_remove)
{
    make_dataset(30, 6, 5);
    struct worker_config c = config(0, 0, 1, 5);
    struct worker *w;
    cr_assert_eq(worker_open(&c, &w), STATUS_OK, "%s", status_msg());
    int seen[30] = { 0 };
    int32_t lab[5];
    uint64_t ids[5];
    uint8_t px[5 * 8 * 8 * 3];
    struct wire_header h;
    for (int k = 0; k < 6; k++) {
        cr_assert_eq(worker_batch_at(w, (uint64_t)k, lab, ids, px, &h), STATUS_OK, "%s", status_msg());
        cr_assert_eq(h.n, 5u);
        for (int i = 0; i < 5; i++) seen[ids[i]]++;
    }
    cr_assert_eq(seen[5], 0);
    int twice = 0;
    for (int i = 0; i < 30; i++) twice += seen[i] == 2;
    cr_assert_eq(twice, 1);
    struct worker_stats st;
    worker_get_stats(w, &st);
    cr_assert_geq(st.bad_records, 1u);
    worker_free(&w);
}
