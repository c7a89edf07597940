/*
 * test_stream.c — the batch-stream receiver with real ZeroMQ sockets on
 * loopback TCP: batches arrive intact into the pool, hostile messages of every
 * kind are dropped and counted without a crash, end-of-pass markers from W
 * workers complete a pass, and a caller-supplied allocator is used.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "augment/sender.h"
#include "shared/stream.h"
#include "shared/wire.h"

#define N 4
#define H 5
#define W 6
#define C 3

static struct stream_receiver *open_receiver(int workers, int pool)
{
    struct stream_config cfg = stream_config_default();
    cfg.endpoint = "tcp://127.0.0.1:*";
    cfg.max_n = N; cfg.h = H; cfg.w = W; cfg.c = C;
    cfg.pool_size = pool;
    cfg.num_classes = 10;
    cfg.expect_workers = (uint16_t)workers;
    struct stream_receiver *r = NULL;
    cr_assert_eq(stream_receiver_new(&cfg, &r), STATUS_OK, "%s", status_msg());
    return r;
}

static void fill(struct send_buf *b, uint16_t worker, uint16_t nw, uint64_t seq, uint32_t n)
{
    wire_header_init(&b->header, worker, nw, seq, 0, n, H, W, C, 0, 9);
    for (uint32_t i = 0; i < n; i++) { b->labels[i] = (int32_t)((seq + i) % 10); b->ids[i] = seq * 100 + i; }
    for (uint32_t i = 0; i < n * H * W * C; i++) b->pixels[i] = (uint8_t)(seq * 7 + i);
}

static void check(const struct stream_batch *b, uint64_t seq, uint32_t n)
{
    cr_assert_eq(b->n, n);
    cr_assert_eq(b->header.seq, seq);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(b->labels[i], (int32_t)((seq + i) % 10));
        cr_assert_eq(b->ids[i], seq * 100 + i);
    }
    for (uint32_t i = 0; i < n * H * W * C; i++) cr_assert_eq(b->pixels[i], (uint8_t)(seq * 7 + i), "pixel %u", i);
}

Test(stream, batches_arrive_intact_in_order)
{
    struct stream_receiver *r = open_receiver(1, 3);
    struct sender_config sc = { .endpoint = stream_receiver_endpoint(r), .max_n = N, .h = H, .w = W, .c = C };
    struct sender *s = NULL;
    cr_assert_eq(sender_new(&sc, &s), STATUS_OK, "%s", status_msg());
    for (uint64_t seq = 0; seq < 20; seq++) {
        struct send_buf *b;
        cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK);
        fill(b, 0, 1, seq, seq % 5 == 4 ? 2 : N);
        cr_assert_eq(sender_send(s, b, NULL), STATUS_OK, "%s", status_msg());
        struct stream_batch *got;
        cr_assert_eq(stream_receiver_next(r, &got, 5000), STATUS_OK, "%s", status_msg());
        check(got, seq, seq % 5 == 4 ? 2 : N);
        stream_receiver_release(r, got);
    }
    struct stream_stats st;
    stream_receiver_stats(r, &st);
    cr_assert_eq(st.received, 20);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.pool_size, 3);
    struct stream_batch *none;
    cr_assert_eq(stream_receiver_next(r, &none, 50), STATUS_TIMEOUT);
    sender_free(&s);
    stream_receiver_free(&r);
    cr_assert_null(r);
}

/* Send a raw multipart message: nparts frames of the given sizes/contents. */
static void raw_send(void *sock, int nparts, const void **data, const size_t *sizes)
{
    for (int i = 0; i < nparts; i++)
        cr_assert_eq(zmq_send(sock, data[i], sizes[i], i + 1 < nparts ? ZMQ_SNDMORE : 0), (int)sizes[i]);
}

Test(stream, hostile_messages_dropped_and_counted)
{
    struct stream_receiver *r = open_receiver(1, 2);
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_PUSH);
    cr_assert_eq(zmq_connect(sock, stream_receiver_endpoint(r)), 0);
    static uint8_t pix[N * H * W * C + 100];
    int32_t labels[N] = { 1, 2, 3, 4 };
    uint64_t ids[N] = { 0, 1, 2, 3 };
    uint8_t hdr[WIRE_HEADER_SIZE];
    struct wire_header h;
    int sent_bad = 0;

    /* 1. garbage single frame */
    { const void *d[] = { "hello" }; size_t z[] = { 5 }; raw_send(sock, 1, d, z); sent_bad++; }
    /* 2. good header, missing frames */
    wire_header_init(&h, 0, 1, 0, 0, N, H, W, C, 0, 1); wire_header_pack(&h, hdr);
    { const void *d[] = { hdr, labels }; size_t z[] = { sizeof hdr, sizeof labels }; raw_send(sock, 2, d, z); sent_bad++; }
    /* 3. pixels frame too short */
    { const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, 10 }; raw_send(sock, 4, d, z); sent_bad++; }
    /* 5. five frames */
    { const void *d[] = { hdr, labels, ids, pix, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, N * H * W * C, 3 }; raw_send(sock, 5, d, z); sent_bad++; }
    /* 6. wrong shape in the header */
    wire_header_init(&h, 0, 1, 0, 0, N, H + 1, W, C, 0, 1); wire_header_pack(&h, hdr);
    { const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, N * H * W * C }; raw_send(sock, 4, d, z); sent_bad++; }
    /* 7. n larger than max_n */
    wire_header_init(&h, 0, 1, 0, 0, N + 1, H, W, C, 0, 1); wire_header_pack(&h, hdr);
    { const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, N * H * W * C }; raw_send(sock, 4, d, z); sent_bad++; }
    /* 8. label out of range */
    int32_t badlab[N] = { 1, 2, 99, 4 };
    wire_header_init(&h, 0, 1, 0, 0, N, H, W, C, 0, 1); wire_header_pack(&h, hdr);
    { const void *d[] = { hdr, badlab, ids, pix }; size_t z[] = { sizeof hdr, sizeof badlab, sizeof ids, N * H * W * C }; raw_send(sock, 4, d, z); sent_bad++; }
    /* 9. corrupted magic with correct sizes */
    hdr[0] ^= 0xff;
    { const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, N * H * W * C }; raw_send(sock, 4, d, z); sent_bad++; }
    hdr[0] ^= 0xff;
    /* 10. a good one */
    h.seq = 42; wire_header_pack(&h, hdr);
    { const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, N * H * W * C }; raw_send(sock, 4, d, z); }

    struct stream_batch *b;
    cr_assert_eq(stream_receiver_next(r, &b, 5000), STATUS_OK, "%s", status_msg());
    cr_assert_eq(b->header.seq, 42);
    cr_assert_eq(b->labels[3], 4);
    stream_receiver_release(r, b);
    struct stream_stats st;
    stream_receiver_stats(r, &st);
    cr_assert_eq(st.dropped, (uint64_t)sent_bad, "dropped %llu of %d", (unsigned long long)st.dropped, sent_bad);
    cr_assert_eq(st.received, 1);

    /* A frame larger than the largest legitimate one exceeds ZMQ_MAXMSGSIZE:
     * libzmq disconnects that peer (nothing is buffered or counted); the PUSH
     * socket reconnects and later good messages arrive again. */
    wire_header_init(&h, 0, 1, 0, 0, N, H, W, C, 0, 1); wire_header_pack(&h, hdr);
    { const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, sizeof pix }; raw_send(sock, 4, d, z); }
    int ok = 0;
    for (int tries = 0; tries < 50 && !ok; tries++) {
        h.seq = 43; wire_header_pack(&h, hdr);
        const void *d[] = { hdr, labels, ids, pix }; size_t z[] = { sizeof hdr, sizeof labels, sizeof ids, N * H * W * C };
        raw_send(sock, 4, d, z);
        if (stream_receiver_next(r, &b, 200) == STATUS_OK) {
            cr_assert_eq(b->header.seq, 43);
            ok = 1;
            stream_receiver_release(r, b);
        }
    }
    cr_assert(ok, "no good message accepted after an oversized frame");
    zmq_close(sock);
    zmq_ctx_term(ctx);
    stream_receiver_free(&r);
}

Test(stream, end_of_pass_from_all_workers)
{
    struct stream_receiver *r = open_receiver(2, 4);
    struct sender_config sc = { .endpoint = stream_receiver_endpoint(r), .max_n = N, .h = H, .w = W, .c = C };
    struct sender *s0 = NULL, *s1 = NULL;
    cr_assert_eq(sender_new(&sc, &s0), STATUS_OK);
    cr_assert_eq(sender_new(&sc, &s1), STATUS_OK);
    struct send_buf *b;
    /* worker 0: batch + END; worker 0 END again (duplicate) ; worker 1: END */
    cr_assert_eq(sender_acquire(s0, &b, NULL), STATUS_OK);
    fill(b, 0, 2, 0, 3);
    cr_assert_eq(sender_send(s0, b, NULL), STATUS_OK);
    struct stream_batch *got;
    cr_assert_eq(stream_receiver_next(r, &got, 5000), STATUS_OK);
    cr_assert_eq(got->n, 3); cr_assert_eq(got->end_of_pass, 0);
    stream_receiver_release(r, got);
    for (int k = 0; k < 3; k++) {
        struct sender *s = k < 2 ? s0 : s1;
        cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK);
        wire_header_init(&b->header, k < 2 ? 0 : 1, 2, 1, 0, 0, H, W, C, WIRE_FLAG_END_OF_PASS | WIRE_FLAG_EVAL, 9);
        b->header.count = 3;
        cr_assert_eq(sender_send(s, b, NULL), STATUS_OK);
        cr_assert_eq(stream_receiver_next(r, &got, 5000), STATUS_OK);
        cr_assert_eq(got->end_of_pass, 1);
        cr_assert_eq(got->n, 0);
        cr_assert_eq(got->pass_complete, k == 2, "marker %d", k);
        stream_receiver_release(r, got);
    }
    struct stream_stats st;
    stream_receiver_stats(r, &st);
    cr_assert_eq(st.end_markers, 3);
    cr_assert_eq(st.passes_complete, 1);
    sender_free(&s0);
    sender_free(&s1);
    stream_receiver_free(&r);
}

static int allocs, frees;
static void *my_alloc(size_t size, void *ctx) { (void)ctx; allocs++; void *p = NULL; return posix_memalign(&p, 64, size) ? NULL : p; }
static void my_free(void *p, size_t size, void *ctx) { (void)ctx; (void)size; frees++; free(p); }

Test(stream, caller_allocator_and_queue_depth_bounded)
{
    struct stream_allocator a = { my_alloc, my_free, NULL };
    struct stream_config cfg = stream_config_default();
    cfg.endpoint = "tcp://127.0.0.1:*";
    cfg.max_n = N; cfg.h = H; cfg.w = W; cfg.c = C; cfg.pool_size = 2;
    cfg.allocator = &a;
    struct stream_receiver *r = NULL;
    cr_assert_eq(stream_receiver_new(&cfg, &r), STATUS_OK);
    cr_assert_eq(allocs, 2);
    struct sender_config sc = { .endpoint = stream_receiver_endpoint(r), .max_n = N, .h = H, .w = W, .c = C };
    struct sender *s = NULL;
    cr_assert_eq(sender_new(&sc, &s), STATUS_OK);
    for (uint64_t seq = 0; seq < 5; seq++) {   /* consumer does not read: only HWMs + pool absorb */
        struct send_buf *b;
        cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK);
        fill(b, 0, 1, seq, N);
        cr_assert_eq(sender_send(s, b, NULL), STATUS_OK);
    }
    /* The consumer does not read: the receiver fills its pool of 2 and then
     * stops taking messages off the socket (the other 3 wait in ZeroMQ's
     * queues), allocating nothing more.  Polled for up to 5 s, then held
     * 300 ms to see that it stays there. */
    struct stream_stats st;
    for (int i = 0; i < 500; i++) {
        stream_receiver_stats(r, &st);
        if (st.queue_depth == 2) break;
        usleep(10000);
    }
    usleep(300000);
    stream_receiver_stats(r, &st);
    cr_assert_eq(st.queue_depth, 2, "the pool of 2 should be full while the consumer waits: depth %d", st.queue_depth);
    cr_assert_eq(st.received, 2, "the receiver took %llu batches off the socket with a pool of 2",
                 (unsigned long long)st.received);
    cr_assert_eq(allocs, 2, "the receiver allocated %d buffers for a pool of 2", allocs);
    /* one batch consumed and released: exactly one more is taken in */
    struct stream_batch *got;
    cr_assert_eq(stream_receiver_next(r, &got, 5000), STATUS_OK, "batch 0: %s", status_msg());
    check(got, 0, N);
    stream_receiver_release(r, got);
    for (int i = 0; i < 500; i++) {
        stream_receiver_stats(r, &st);
        if (st.received == 3 && st.queue_depth == 2) break;
        usleep(10000);
    }
    usleep(300000);
    stream_receiver_stats(r, &st);
    cr_assert(st.received == 3 && st.queue_depth == 2, "after one release: received %llu, depth %d (want 3, 2)",
              (unsigned long long)st.received, st.queue_depth);
    for (uint64_t seq = 1; seq < 5; seq++) {
        cr_assert_eq(stream_receiver_next(r, &got, 5000), STATUS_OK, "batch %llu: %s", (unsigned long long)seq, status_msg());
        check(got, seq, N);
        stream_receiver_release(r, got);
    }
    cr_assert_eq(allocs, 2);
    sender_free(&s);
    stream_receiver_free(&r);
    cr_assert_eq(frees, 2);
}

/* A separate process (Python, pyzmq) sends hostile messages over TCP, then a
 * good one: the receiver drops and counts them and keeps working. */
Test(stream, hostile_sender_process)
{
    if (access("/usr/bin/python3", X_OK) != 0) cr_skip_test("no /usr/bin/python3");
    struct stream_receiver *r = open_receiver(1, 2);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"\n"
             "import zmq, struct, time, os\n"
             "s = zmq.Context().socket(zmq.PUSH); s.connect('%s')\n"
             "hdr = lambda n, h=%d: struct.pack('<IHHIHHQQIIIIIIQ', 0x48425044, 1, 64, 0, 0, 1, 7, 0, n, h, %d, %d, 1, 0, 0)\n"
             "good = [hdr(%d), bytes(4 * %d), bytes(8 * %d), bytes(%d)]\n"
             "bad = [[b'x'], [hdr(%d)], [hdr(%d)[:60]] + good[1:], [hdr(%d, 9)] + good[1:], good + [b'extra'],\n"
             "       [os.urandom(64)] + good[1:], [hdr(%d)] + good[1:3] + [bytes(7)]]\n"
             "for m in bad: s.send_multipart(m)\n"
             "s.send_multipart(good); time.sleep(0.5)\n"
             "\"",
             stream_receiver_endpoint(r), H, W, C, N, N, N, N * H * W * C, N, N, N, N);
    cr_assert_eq(system(cmd), 0, "python sender failed");
    struct stream_batch *b;
    cr_assert_eq(stream_receiver_next(r, &b, 5000), STATUS_OK, "%s", status_msg());
    cr_assert_eq(b->header.seq, 7);
    cr_assert_eq(b->n, N);
    stream_receiver_release(r, b);
    struct stream_stats st;
    stream_receiver_stats(r, &st);
    cr_assert_eq(st.dropped, 7, "dropped %llu", (unsigned long long)st.dropped);
    stream_receiver_free(&r);
}

Test(stream, zero_copy_receive)
{
    struct stream_config cfg = stream_config_default();
    cfg.endpoint = "tcp://127.0.0.1:*";
    cfg.max_n = N; cfg.h = H; cfg.w = W; cfg.c = C; cfg.pool_size = 2; cfg.zero_copy = 1;
    struct stream_receiver *r = NULL;
    cr_assert_eq(stream_receiver_new(&cfg, &r), STATUS_OK, "%s", status_msg());
    struct sender_config sc = { .endpoint = stream_receiver_endpoint(r), .max_n = N, .h = H, .w = W, .c = C };
    struct sender *s = NULL;
    cr_assert_eq(sender_new(&sc, &s), STATUS_OK);
    for (uint64_t seq = 0; seq < 6; seq++) {
        struct send_buf *b;
        cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK);
        fill(b, 0, 1, seq, seq == 5 ? 1 : N);
        cr_assert_eq(sender_send(s, b, NULL), STATUS_OK);
    }
    /* a too-short pixels frame is still dropped in this mode */
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_PUSH);
    cr_assert_eq(zmq_connect(sock, stream_receiver_endpoint(r)), 0);
    uint8_t hdr[WIRE_HEADER_SIZE];
    struct wire_header h;
    wire_header_init(&h, 0, 1, 99, 0, N, H, W, C, 0, 1);
    wire_header_pack(&h, hdr);
    int32_t labels[N] = { 0 };
    uint64_t ids[N] = { 0 };
    uint8_t pix[10] = { 0 };
    zmq_send(sock, hdr, sizeof hdr, ZMQ_SNDMORE);
    zmq_send(sock, labels, sizeof labels, ZMQ_SNDMORE);
    zmq_send(sock, ids, sizeof ids, ZMQ_SNDMORE);
    zmq_send(sock, pix, sizeof pix, 0);
    for (uint64_t seq = 0; seq < 6; seq++) {
        struct stream_batch *got;
        cr_assert_eq(stream_receiver_next(r, &got, 5000), STATUS_OK, "%s", status_msg());
        check(got, seq, seq == 5 ? 1 : N);
        stream_receiver_release(r, got);
    }
    for (int i = 0; i < 50; i++) {
        struct stream_stats st;
        stream_receiver_stats(r, &st);
        if (st.dropped == 1) break;
        usleep(20000);
    }
    struct stream_stats st;
    stream_receiver_stats(r, &st);
    cr_assert_eq(st.dropped, 1);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    sender_free(&s);
    stream_receiver_free(&r);
}
