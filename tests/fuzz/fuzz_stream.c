/*
 * fuzz_stream — messages on a real socket into the batch-stream receiver
 * (shared/stream.c), the trainer's door to augment workers.
 *
 * Two receivers are bound once on ipc:// endpoints in a temporary folder,
 * one copying pixels into its pool and one keeping them zero-copy; both
 * expect batches of at most 4 images of 4x4x1 and labels in [0, 10).  A
 * PUSH socket in a separate ZeroMQ context sends each input as one
 * multipart message, then a valid sentinel batch.  Input layout: byte 0 bit
 * 0 picks the receiver; byte 1 the frame count (0-6); then per frame a
 * length byte (0-64, taken modulo 65, the largest frame the receiver
 * accepts so the peer is never disconnected) and that many bytes.  Checks:
 * the sentinel always arrives within 5 s (a bad message never stalls the
 * receiver nor eats the next one); the fuzzed message is either dropped
 * and counted or delivered as a batch with the expected shape, n <= 4,
 * labels in range and END_OF_PASS exactly when n = 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "shared/stream.h"
#include "shared/wire.h"
#include "tests/fuzz/fuzz_util.h"

#define MAX_N 4
#define SIDE 4
#define NUM_CLASSES 10
#define SENTINEL_SEED 0x5e471e7ull
#define FRAME_MAX 64

static struct stream_receiver *recv_[2];
static void *push_[2];
static uint64_t counter;

static void setup(void)
{
    char dir[] = "/tmp/deeper-fuzz-stream-XXXXXX";
    if (!mkdtemp(dir)) fuzz_fail("mkdtemp failed");
    void *ctx = zmq_ctx_new();
    for (int i = 0; i < 2; i++) {
        char ep[128];
        snprintf(ep, sizeof ep, "ipc://%s/s%d", dir, i);
        struct stream_config cfg = stream_config_default();
        cfg.endpoint = ep;
        cfg.max_n = MAX_N;
        cfg.h = cfg.w = SIDE;
        cfg.c = 1;
        cfg.num_classes = NUM_CLASSES;
        cfg.log_drops = 0;
        cfg.zero_copy = i;
        if (stream_receiver_new(&cfg, &recv_[i]) != STATUS_OK) fuzz_fail("stream_receiver_new: %s", status_msg());
        push_[i] = zmq_socket(ctx, ZMQ_PUSH);
        int linger = 0, hwm = 1000;
        zmq_setsockopt(push_[i], ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(push_[i], ZMQ_SNDHWM, &hwm, sizeof hwm);
        if (zmq_connect(push_[i], ep) != 0) fuzz_fail("zmq_connect %s: %s", ep, zmq_strerror(zmq_errno()));
    }
}

static void send_sentinel(void *sock)
{
    struct wire_header h;
    wire_header_init(&h, 0, 1, counter, 0, 1, SIDE, SIDE, 1, 0, SENTINEL_SEED);
    uint8_t hb[WIRE_HEADER_SIZE], px[SIDE * SIDE];
    wire_header_pack(&h, hb);
    int32_t label = 3;
    uint64_t id = counter;
    for (int k = 0; k < SIDE * SIDE; k++) px[k] = (uint8_t)(k * 7 + counter);
    if (zmq_send(sock, hb, sizeof hb, ZMQ_SNDMORE) < 0 || zmq_send(sock, &label, 4, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, &id, 8, ZMQ_SNDMORE) < 0 || zmq_send(sock, px, sizeof px, 0) < 0)
        fuzz_fail("send sentinel: %s", zmq_strerror(zmq_errno()));
}

static int is_sentinel(const struct stream_batch *b)
{
    return b->header.seed == SENTINEL_SEED && b->n == 1 && b->ids[0] == counter;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!recv_[0]) setup();
    if (size < 2) return 0;
    int which = data[0] & 1;
    int nframes = data[1] % 7;
    size_t pos = 2;
    counter++;
    for (int f = 0; f < nframes; f++) {
        size_t len = pos < size ? data[pos++] % (FRAME_MAX + 1) : 0;
        if (len > size - pos) len = size - pos;
        if (zmq_send(push_[which], data + pos, len, f + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
            fuzz_fail("send: %s", zmq_strerror(zmq_errno()));
        pos += len;
    }
    send_sentinel(push_[which]);

    struct stream_receiver *r = recv_[which];
    int extra = 0;
    for (;;) {
        struct stream_batch *b = NULL;
        status st = stream_receiver_next(r, &b, 5000);
        if (st != STATUS_OK) fuzz_fail("the valid batch after the fuzzed message never came: %s", status_msg());
        if (is_sentinel(b)) {
            if (b->labels[0] != 3 || b->pixels[5] != (uint8_t)(35 + counter))
                fuzz_fail("the valid batch after the fuzzed message arrived altered");
            stream_receiver_release(r, b);
            break;
        }
        if (++extra > 1) fuzz_fail("one message delivered as %d batches", extra);
        if (nframes != WIRE_NUM_FRAMES) fuzz_fail("a %d-frame message was delivered", nframes);
        if (b->n > MAX_N || b->h != SIDE || b->w != SIDE || b->c != 1)
            fuzz_fail("delivered a %ux%ux%ux%u batch", b->n, b->h, b->w, b->c);
        if (b->end_of_pass != (b->n == 0)) fuzz_fail("end_of_pass %d with n = %u", b->end_of_pass, b->n);
        for (uint32_t k = 0; k < b->n; k++)
            if (b->labels[k] < 0 || b->labels[k] >= NUM_CLASSES) fuzz_fail("delivered label %d", b->labels[k]);
        volatile uint8_t sum = 0;
        for (size_t k = 0; k < (size_t)b->n * SIDE * SIDE; k++) sum += b->pixels[k];
        (void)sum;
        stream_receiver_release(r, b);
    }
    return 0;
}
