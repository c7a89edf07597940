/*
 * test_backend_cuda_feed.c — the feed's batch buffers from a caller's
 * allocator (feed_new_alloc), which is how the CUDA trainer gets pinned
 * host memory for its uploads.  Runs on any machine: a counting allocator
 * stands in for cudaHostAlloc.  A real sender (augment/sender.c) pushes
 * batches over ipc://; every batch handed out must have its pixels and
 * labels inside blocks the allocator gave, hold the sent values, and every
 * block must be returned by feed_free.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment/sender.h"
#include "shared/stream.h"
#include "trainer/feed.h"

#define B 3
#define S 4
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
    cr_assert_fail("feed freed a block the allocator never gave");
}

static int inside(const struct counting *a, const void *p, size_t len)
{
    for (int i = 0; i < MAXB; i++)
        if (a->p[i] && (const char *)p >= (const char *)a->p[i] &&
            (const char *)p + len <= (const char *)a->p[i] + a->n[i])
            return 1;
    return 0;
}

Test(backend_cuda_feed, batch_buffers_come_from_the_allocator)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/deeper-test-feed-alloc-%d.ipc", (int)getpid());
    struct stream_config sc = stream_config_default();
    sc.endpoint = ep;
    sc.max_n = B; sc.h = S; sc.w = S; sc.c = C;
    sc.pool_size = 4;
    sc.num_classes = 5;
    sc.per_worker = 1;
    struct stream_receiver *rx;
    cr_assert_eq(stream_receiver_new(&sc, &rx), STATUS_OK, "%s", status_msg());
    struct counting cnt = { 0 };
    const struct stream_allocator al = { count_alloc, count_free, &cnt };
    struct feed *f;
    cr_assert_eq(feed_new_alloc(&f, rx, 1, 1, 0, B, S, S, C, &al), STATUS_OK, "%s", status_msg());
    cr_assert_eq(cnt.live, 2, "the handed-out batch's pixels and labels: %d blocks", cnt.live);

    char ep0[160];
    cr_assert_eq(stream_worker_endpoint(ep, 0, ep0, sizeof ep0), STATUS_OK);
    struct sender_config cfg = { 0 };
    cfg.endpoint = ep0;
    cfg.sndhwm = 8;
    cfg.pool = 8;
    cfg.linger_ms = 1000;
    cfg.max_n = B; cfg.h = S; cfg.w = S; cfg.c = C;
    struct sender *s;
    cr_assert_eq(sender_new(&cfg, &s), STATUS_OK, "%s", status_msg());
    for (uint64_t q = 0; q < 4; q++) {
        struct send_buf *b;
        cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK, "%s", status_msg());
        wire_header_init(&b->header, 0, 1, q, 0, B, S, S, C, 0, 7);
        for (int i = 0; i < B; i++) {
            b->labels[i] = (int32_t)((q + i) % 5);
            b->ids[i] = q * 10 + (uint64_t)i;
        }
        for (int p = 0; p < B * S * S * C; p++) b->pixels[p] = (uint8_t)(q * 50 + p);
        cr_assert_eq(sender_send(s, b, NULL), STATUS_OK, "%s", status_msg());
    }
    for (uint64_t q = 0; q < 4; q++) {
        struct feed_batch b;
        double wait = 0;
        cr_assert_eq(feed_next(f, &b, NULL, NULL, NULL, &wait), STATUS_OK, "%s", status_msg());
        cr_assert_eq(b.seq, q);
        cr_assert(inside(&cnt, b.pixels, (size_t)B * S * S * C), "batch %llu: pixels not from the allocator",
                  (unsigned long long)q);
        cr_assert(inside(&cnt, b.labels, B * sizeof(int32_t)), "batch %llu: labels not from the allocator",
                  (unsigned long long)q);
        for (int i = 0; i < B; i++) cr_assert_eq(b.labels[i], (int32_t)((q + i) % 5));
        for (int p = 0; p < B * S * S * C; p++) cr_assert_eq(b.pixels[p], (uint8_t)(q * 50 + p));
    }
    sender_free(&s);
    feed_free(&f);
    cr_expect_eq(cnt.live, 0, "%d blocks not returned by feed_free", cnt.live);
    printf("feed allocator: %d blocks allocated, all returned\n", cnt.total);
    stream_receiver_free(&rx);
}
