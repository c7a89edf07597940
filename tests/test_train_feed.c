/*
 * test_train_feed.c — the trainer's ordered feed over a real ZeroMQ stream.
 *
 * Two senders (augment/sender.c, real PUSH sockets over ipc://, one socket
 * per worker as the trainer binds them) play two workers.  Worker 1 sends
 * its batches first, then worker 0, and worker 0 also replays two stale
 * batches (seq below the resume point, as a worker restarted from 0 would).
 * The feed must hand out batch k = worker k%2's batch k/2 in exactly that
 * order, starting from the resume position, and drop the stale ones.
 * Second test: while the feed waits for a silent worker 0, worker 1 trying
 * to send 100 batches gets only a handful out (its own socket pushes back);
 * the feed that parked early batches took all 100.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "augment/sender.h"
#include "shared/log.h"
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

/* a sender playing worker `worker`: connects to that worker's own endpoint */
static struct sender *worker_sender(const char *base, int worker, int sndhwm, int side, int c)
{
    char ep[160];
    cr_assert_eq(stream_worker_endpoint(base, worker, ep, sizeof ep), STATUS_OK);
    struct sender_config cfg = { 0 };
    cfg.endpoint = ep;
    cfg.sndhwm = sndhwm;
    cfg.pool = sndhwm + 8;
    cfg.linger_ms = 1000;
    cfg.max_n = B; cfg.h = (uint32_t)side; cfg.w = (uint32_t)side; cfg.c = (uint32_t)c;
    struct sender *s;
    cr_assert_eq(sender_new(&cfg, &s), STATUS_OK, "%s", status_msg());
    return s;
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
    sc.per_worker = 2;
    struct stream_receiver *rx;
    cr_assert_eq(stream_receiver_new(&sc, &rx), STATUS_OK, "%s", status_msg());

    /* resume at global position 5: worker 1 owes seq 2 next (k=5 -> w1 s2), worker 0 seq 3 */
    cr_assert_eq(feed_first_seq(5, 2, 0), 3u);
    cr_assert_eq(feed_first_seq(5, 2, 1), 2u);
    struct feed *f;
    cr_assert_eq(feed_new(&f, rx, 2, 1, 5, B, S, S, C), STATUS_OK, "%s", status_msg());

    struct sender *s0 = worker_sender(ep, 0, 8, S, C), *s1 = worker_sender(ep, 1, 8, S, C);
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

/* worker 1 sends as fast as it may, in a thread; sent counts what got out.
 * Batches of 4 x 64x64x3 (48 KiB): big enough that the kernel's socket
 * buffers (~200 KiB) hold only a few, as real batches are. */
#define AS 64
#define AC 3
struct runner { struct sender *s; atomic_int sent; volatile sig_atomic_t stop; };

static void *run_ahead(void *arg)
{
    struct runner *r = arg;
    for (uint64_t q = 0; q < 100 && !r->stop; q++) {
        struct send_buf *b;
        if (sender_acquire(r->s, &b, &r->stop) != STATUS_OK) break;
        wire_header_init(&b->header, 1, 2, q, 0, B, AS, AS, AC, 0, 7);
        for (int i = 0; i < B; i++) { b->labels[i] = 0; b->ids[i] = q * 100 + (uint64_t)i; }
        memset(b->pixels, 1, (size_t)B * AS * AS * AC);
        if (sender_send(r->s, b, &r->stop) != STATUS_OK) break;
        atomic_fetch_add(&r->sent, 1);
    }
    return NULL;
}

Test(feed, a_worker_ahead_is_held_back_by_its_socket)
{
    char ep[128];
    snprintf(ep, sizeof ep, "ipc:///tmp/deeper-test-feed-ahead-%d", (int)getpid());
    struct stream_config sc = stream_config_default();
    sc.endpoint = ep;
    sc.max_n = B; sc.h = AS; sc.w = AS; sc.c = AC;
    sc.num_classes = 3;
    sc.per_worker = 2;
    struct stream_receiver *rx;
    cr_assert_eq(stream_receiver_new(&sc, &rx), STATUS_OK, "%s", status_msg());
    struct feed *f;
    cr_assert_eq(feed_new(&f, rx, 2, 1, 0, B, AS, AS, AC), STATUS_OK, "%s", status_msg());
    struct runner r = { .s = worker_sender(ep, 1, 2, AS, AC) };
    struct sender *s0 = worker_sender(ep, 0, 2, AS, AC);
    pthread_t th;
    pthread_create(&th, NULL, run_ahead, &r);
    /* the feed wants worker 0's batch 0; worker 0 stays silent for 1.5 s */
    double t0 = log_now();
    struct stream_stats st;
    while (log_now() - t0 < 1.5) {
        stream_receiver_stats(rx, &st);
        cr_assert_leq(st.queue_depth, 2, "worker 1 holds %d batches in the receiver", st.queue_depth);
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    int sent = atomic_load(&r.sent);
    cr_assert_leq(sent, 30, "worker 1 got %d of 100 batches out while worker 0 was silent", sent);
    struct send_buf *b0;
    cr_assert_eq(sender_acquire(s0, &b0, NULL), STATUS_OK);
    wire_header_init(&b0->header, 0, 2, 0, 0, B, AS, AS, AC, 0, 7);
    for (int i = 0; i < B; i++) { b0->labels[i] = 2; b0->ids[i] = (uint64_t)i; }
    memset(b0->pixels, 0, (size_t)B * AS * AS * AC);
    cr_assert_eq(sender_send(s0, b0, NULL), STATUS_OK);
    struct feed_batch b;
    cr_assert_eq(feed_next(f, &b, NULL, NULL, NULL, NULL), STATUS_OK, "%s", status_msg());
    cr_assert_eq(b.worker, 0);
    cr_assert_eq(feed_next(f, &b, NULL, NULL, NULL, NULL), STATUS_OK, "%s", status_msg());
    cr_assert_eq(b.worker, 1);
    cr_assert_eq(b.seq, 0u);
    printf("worker 1 sent %d of 100 batches while worker 0 was silent\n", sent);
    r.stop = 1;
    pthread_join(th, NULL);
    feed_free(&f);
    sender_free(&s0);
    sender_free(&r.s);
    stream_receiver_free(&rx);
}
