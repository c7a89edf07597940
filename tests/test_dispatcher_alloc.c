/*
 * test_dispatcher_alloc.c — the dispatcher's batch buffers from a caller's
 * allocator (dispatcher_config.alloc), which is how the CUDA trainer gets
 * pinned host memory for its uploads (tower_input_allocator).  Runs on any
 * machine: a counting allocator stands in for cudaHostAlloc.  A real worker
 * (augment/lease_client.h over augment/worker.h, in a thread) serves a small
 * real dataset over ipc://; every batch handed out must have its pixels and
 * labels inside blocks the allocator gave, hold what worker_batch_at makes
 * for that index, and every block must be returned by dispatcher_free.
 * Independently of the worker's code, over two epochs (20 batches of 3 from
 * 30 records): every id is a train record, each appears exactly once per
 * epoch, its label is the one the dataset was written with (id % 3) and
 * the epoch field follows.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment/lease_client.h"
#include "augment/worker.h"
#include "shared/dispatch_proto.h"
#include "shared/stream.h"
#include "trainer/dispatcher.h"

#define IMG_H 12
#define IMG_W 10
#include "dataset_util.h"

#define B 3
#define S 8
#define C 3
#define MAXB 64

struct counting { void *p[MAXB]; size_t n[MAXB]; int live, total; };

static void *count_alloc(size_t size, void *ctx)
{
    struct counting *a = ctx;
    for (int i = 0; i < MAXB; i++)
        if (!a->p[i]) {
            a->p[i] = malloc(size);
            a->n[i] = size;
            a->live++;
            a->total++;
            return a->p[i];
        }
    return NULL;
}

static void count_free(void *p, size_t size, void *ctx)
{
    struct counting *a = ctx;
    for (int i = 0; i < MAXB; i++)
        if (a->p[i] == p) {
            cr_expect_eq(a->n[i], size, "freed with size %zu, allocated %zu", size, a->n[i]);
            free(p);
            a->p[i] = NULL;
            a->live--;
            return;
        }
    cr_assert_fail("the dispatcher freed a block the allocator never gave");
}

static int inside(const struct counting *a, const void *p, size_t len)
{
    for (int i = 0; i < MAXB; i++)
        if (a->p[i] && (const char *)p >= (const char *)a->p[i] &&
            (const char *)p + len <= (const char *)a->p[i] + a->n[i])
            return 1;
    return 0;
}

/* The worker's stream for the run the dispatcher describes: no distortion
 * but the crop, so the reference below is the same function. */
static struct worker_config run_config(const struct dproto_registered *r)
{
    struct worker_config c = { .data_dir = dir, .subset = "train", .worker = 0, .num_workers = 1,
                               .batch_size = (int)r->batch_size, .queue_factor = 1, .jpeg_scale = 1 };
    distort_config_default(&c.dc, (int)r->image_size);
    c.dc.seed = r->seed;
    c.dc.out_c = (int)r->channels;
    c.dc.flip = c.dc.color = 0;
    return c;
}

static status open_for_run(const struct dproto_registered *r, void *ctx, struct worker **out)
{
    struct worker_config c = run_config(r);
    return worker_open(&c, out);
}

static volatile sig_atomic_t stop_worker;

static void *serve(void *arg)
{
    const struct lease_client_config *lc = arg;
    status st = lease_client_run(lc, &stop_worker);
    return (void *)(intptr_t)st;
}

Test(dispatcher_alloc, batch_buffers_come_from_the_allocator, .fini = fini_remove, .timeout = 60)
{
    make_dataset(30, 6, -1);
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/deeper-test-dispatcher-alloc-%d.ipc", (int)getpid());
    struct counting cnt = { 0 };
    const struct stream_allocator al = { count_alloc, count_free, &cnt };
    struct dispatcher_config dc = dispatcher_config_default();
    dc.endpoints = ep;
    dc.batch_size = B;
    dc.image_size = S;
    dc.channels = C;
    dc.seed = 7;
    dc.examples = 30;
    dc.num_classes = 3;
    dc.flip = dc.color = 0;
    dc.alloc = &al;
    cr_assert_eq(dproto_dataset_identity(dir, &dc.manifest_crc, &dc.manifest_len, &dc.records), STATUS_OK, "%s",
                 status_msg());
    struct dispatcher *d = NULL;
    cr_assert_eq(dispatcher_new(&dc, &d), STATUS_OK, "%s", status_msg());
    cr_assert_eq(cnt.live, 2, "the handed-out batch's pixels and labels: %d blocks", cnt.live);

    struct lease_client_config lc = { .endpoint = ep, .open = open_for_run };
    cr_assert_eq(dproto_dataset_identity(dir, &lc.reg.manifest_crc, &lc.reg.manifest_len, &lc.reg.records),
                 STATUS_OK);
    lc.reg.flip = lc.reg.color = lc.reg.crop = lc.reg.color_ordering = -1;
    lc.reg.fast_jpeg = 1;   /* as run_config: jpeg_scale 1 */
    snprintf(lc.reg.name, sizeof lc.reg.name, "local-0");
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, serve, &lc), 0);

    /* the reference: the same stream, made here */
    struct dproto_registered run = { .batch_size = B, .image_size = S, .channels = C, .seed = 7 };
    struct worker_config rc = run_config(&run);
    struct worker *ref = NULL;
    cr_assert_eq(worker_open(&rc, &ref), STATUS_OK, "%s", status_msg());
    int32_t labels[B];
    uint64_t ids[B];
    uint8_t pixels[B * S * S * C];
    int seen[2][30] = { { 0 } };
    for (uint64_t q = 0; q < 20; q++) {
        struct dispatch_batch b;
        double wait = 0;
        cr_assert_eq(dispatcher_next(d, &b, NULL, NULL, NULL, &wait), STATUS_OK, "%s", status_msg());
        cr_assert_eq(b.index, q);
        cr_assert_eq(b.n, B);
        cr_assert(b.h == S && b.w == S && b.c == C, "batch %llu: %dx%dx%d", (unsigned long long)q, b.h, b.w, b.c);
        cr_assert_eq(b.epoch, q * B / 30, "batch %llu: epoch %llu", (unsigned long long)q, (unsigned long long)b.epoch);
        for (int i = 0; i < B; i++) {
            uint64_t id = b.ids[i];
            cr_assert_lt(id, 30u, "batch %llu: id %llu is not a train record", (unsigned long long)q,
                         (unsigned long long)id);
            cr_assert_eq(b.labels[i], (int32_t)(id % 3), "batch %llu: id %llu has label %d, the dataset says %d",
                         (unsigned long long)q, (unsigned long long)id, b.labels[i], (int)(id % 3));
            int e = (int)((q * B + (uint64_t)i) / 30);
            cr_assert_eq(seen[e][id]++, 0, "id %llu twice in epoch %d", (unsigned long long)id, e);
        }
        cr_assert(inside(&cnt, b.pixels, (size_t)B * S * S * C), "batch %llu: pixels not from the allocator",
                  (unsigned long long)q);
        cr_assert(inside(&cnt, b.labels, B * sizeof(int32_t)), "batch %llu: labels not from the allocator",
                  (unsigned long long)q);
        struct wire_header h;
        cr_assert_eq(worker_batch_at(ref, q, labels, ids, pixels, &h), STATUS_OK, "%s", status_msg());
        cr_assert_eq(memcmp(b.labels, labels, sizeof labels), 0, "batch %llu: labels differ", (unsigned long long)q);
        cr_assert_eq(memcmp(b.ids, ids, sizeof ids), 0, "batch %llu: ids differ", (unsigned long long)q);
        cr_assert_eq(memcmp(b.pixels, pixels, sizeof pixels), 0, "batch %llu: pixels differ", (unsigned long long)q);
    }
    for (int e = 0; e < 2; e++)
        for (int id = 0; id < 30; id++) cr_expect_eq(seen[e][id], 1, "epoch %d: id %d seen %d times", e, id, seen[e][id]);
    worker_free(&ref);
    stop_worker = 1;
    void *ret;
    pthread_join(th, &ret);
    cr_expect_eq((status)(intptr_t)ret, STATUS_OK, "the worker: %s", status_msg());
    dispatcher_free(&d);
    cr_expect_eq(cnt.live, 0, "%d blocks not returned by dispatcher_free", cnt.live);
    printf("dispatcher allocator: %d blocks allocated, all returned\n", cnt.total);
}
