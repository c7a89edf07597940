/*
 * test_train_feed.c — the trainer's ordered feed over a real ZeroMQ stream.
 *
 * Two senders (augment/sender.c, real PUSH sockets over ipc://) play two
 * workers.  Worker 1 sends its batches first, then worker 0, and worker 0
 * also replays two stale batches (seq below the resume point, as a worker
 * restarted from 0 would).  The feed must hand out batch k = worker k%2's
 * batch k/2 in exactly that order, starting from the resume position, and
 * drop the stale ones.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "augment/sender.h"
#include "shared/stream.h"
#include "trainer/feed.h"

#define B 4
#define S 2
#define C 1

static void send_batch(struct sender *s, int worker, uint64_t seq)
{
    struct send_buf *b;
    cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK, "%s", status_msg());
    wire_header_init(&b->header, (uint16_t)worker, 2, seq, seq / 10, B, S, S, C, 0, 7);
    for (int i = 0; i < B; i++) {
        b->labels[i] = (int32_t)(seq % 3);
        b->ids[i] = (uint64_t)worker * 1000000 + seq * 100 + (uint64_t)i;
        for (int p = 0; p < S * S * C; p++) b->pixels[i * S * S * C + p] = (uint8_t)(worker * 100 + seq);
    }
    cr_assert_eq(sender_send(s, b, NULL), STATUS_OK, "%s", status_msg());
}

Test(feed, round_robin_order_resume_and_stale_drop)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/deeper-test-feed-%d.ipc", (int)getpid());
    struct stream_config sc = stream_config_default();
    sc.endpoint = ep;
    sc.max_n = B; sc.h = S; sc.w = S; sc.c = C;
    sc.pool_size = 4;
    sc.num_classes = 3;
    struct stream_receiver *rx;
    cr_assert_eq(stream_receiver_new(&sc, &rx), STATUS_OK, "%s", status_msg());

    /* resume at global position 5: worker 1 owes seq 2 next (k=5 -> w1 s2), worker 0 seq 3 */
    cr_assert_eq(feed_first_seq(5, 2, 0), 3u);
    cr_assert_eq(feed_first_seq(5, 2, 1), 2u);
    struct feed *f;
    cr_assert_eq(feed_new(&f, rx, 2, 1, 5, 2, B, S, S, C), STATUS_OK, "%s", status_msg());

    struct sender_config cfg = { 0 };
    cfg.endpoint = ep;
    cfg.sndhwm = 8;
    cfg.pool = 16;
    cfg.linger_ms = 1000;
    cfg.max_n = B; cfg.h = S; cfg.w = S; cfg.c = C;
    struct sender *s0, *s1;
    cr_assert_eq(sender_new(&cfg, &s1), STATUS_OK, "%s", status_msg());
    cr_assert_eq(sender_new(&cfg, &s0), STATUS_OK, "%s", status_msg());
    for (uint64_t q = 2; q < 6; q++) send_batch(s1, 1, q);        /* worker 1 runs ahead */
    send_batch(s0, 0, 1);                                          /* stale */
    send_batch(s0, 0, 2);                                          /* stale */
    for (uint64_t q = 3; q < 7; q++) send_batch(s0, 0, q);

    /* expected: k = 5..12 -> (1,2) (0,3) (1,3) (0,4) (1,4) (0,5) (1,5) (0,6) */
    for (int64_t k = 5; k < 13; k++) {
        struct feed_batch b;
        double wait = 0;
        cr_assert_eq(feed_next(f, &b, NULL, NULL, NULL, &wait), STATUS_OK, "%s", status_msg());
        int w = (int)(k % 2);
        uint64_t seq = (uint64_t)(k / 2);
        cr_assert_eq(b.worker, w, "k=%lld: worker %d, expected %d", (long long)k, b.worker, w);
        cr_assert_eq(b.seq, seq, "k=%lld: seq %llu, expected %llu", (long long)k, (unsigned long long)b.seq,
                     (unsigned long long)seq);
        cr_assert_eq(b.n, B);
        cr_assert_eq(b.ids[3], (uint64_t)w * 1000000 + seq * 100 + 3);
        cr_assert_eq(b.pixels[0], (uint8_t)(w * 100 + seq));
        cr_assert_eq(feed_position(f), k + 1);
    }
    cr_assert_eq(feed_dropped(f), 2u, "dropped %llu", (unsigned long long)feed_dropped(f));
    feed_free(&f);
    sender_free(&s0);
    sender_free(&s1);
    stream_receiver_free(&rx);
}
