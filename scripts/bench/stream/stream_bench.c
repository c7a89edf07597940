/*
 * stream_bench.c — throughput of deeper's batch stream against bare ZeroMQ
 * PUSH/PULL, tcp loopback, plain or CURVE on both (scripts/bench/stream/run).
 *
 *   stream_bench deeper|deeper_copy|bare ENDPOINT BATCHES N H W C [KEYDIR]
 *
 * A forked child sends BATCHES messages; this process receives them and
 * prints "batches B bytes X wall_s T" (the clock starts at the first message,
 * so B = BATCHES - 1 intervals are timed).
 *   deeper: augment/sender.c (zero-copy PUSH of header + labels + ids +
 *           pixels) -> shared/stream.c receiver with the trainer's settings
 *           (pool of 6 slots, RCVHWM 2, zero_copy: the pixels stay in the
 *           received ZeroMQ message until released; the trainer's feed then
 *           copies them into its own buffer, as a bare consumer would).
 *   deeper_copy: the receiver copying the pixels into its pool (the
 *           default, used by eval; what the trainer did before).
 *   bare:   one frame of the same total size, zero-copy send
 *           (zmq_msg_init_data, constant buffer), zmq_msg_recv; SNDHWM and
 *           RCVHWM 2 as deeper's.
 *   dispatcher: the path `deeper train` uses (trainer/dispatcher.c): the
 *           consumer is dispatcher_new + dispatcher_next (which copies each
 *           batch into the buffer it hands out, as the trainer gets it),
 *           fed by WORKERS forked workers (default 1) that speak
 *           proto/dispatch.md themselves (dispatch_worker.c) and send
 *           pre-made batches zero-copy, so no augmentation is measured.
 * With KEYDIR (server.key_secret, client.key_secret, authorized/), all use
 * CURVE: deeper and the dispatcher through shared/curve.c (ZAP handler),
 * bare with the same keys set directly on the sockets (encryption, no ZAP
 * handler).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "augment/sender.h"
#include "shared/curve.h"
#include "shared/log.h"
#include "shared/stream.h"
#include "trainer/dispatcher.h"

#include "dispatch_worker.c"

static char srv_sec[512], cli_sec[512], srv_pub[512], auth[512];

static void bare_curve(void *s, int server)
{
    char pub[41], sec[41], spub[41];
    curve_secret_key_load(server ? srv_sec : cli_sec, pub, sec);
    curve_public_key_load(srv_pub, spub);
    int one = 1;
    if (server) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    } else {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, spub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: stream_bench deeper|deeper_copy|bare|dispatcher ENDPOINT BATCHES N H W C [KEYDIR]\n");
        return 2;
    }

    int bare = strcmp(argv[1], "bare") == 0, copy = strcmp(argv[1], "deeper_copy") == 0;
    const char *ep = argv[2];
    int batches = atoi(argv[3]);
    uint32_t n = (uint32_t)atoi(argv[4]), h = (uint32_t)atoi(argv[5]), wd = (uint32_t)atoi(argv[6]), c = (uint32_t)atoi(argv[7]);
    int curve = argc > 8;
    if (curve) {
        snprintf(srv_sec, sizeof srv_sec, "%s/server.key_secret", argv[8]);
        snprintf(srv_pub, sizeof srv_pub, "%s/server.key", argv[8]);
        snprintf(cli_sec, sizeof cli_sec, "%s/client.key_secret", argv[8]);
        snprintf(auth, sizeof auth, "%s/authorized", argv[8]);
    }
    struct curve_opts so = { .secret_key = srv_sec, .authorized_keys = auth };
    struct curve_opts co = { .secret_key = cli_sec, .server_key = srv_pub };
    if (strcmp(argv[1], "dispatcher") == 0) {
        const char *w = getenv("WORKERS");
        return dispatch_bench(ep, batches, n, h, wd, c, w ? atoi(w) : 1, curve ? &so : NULL, curve ? &co : NULL);
    }
    size_t pix = (size_t)n * h * wd * c, total = pix + n * 12u + WIRE_HEADER_SIZE;
    pid_t pid = fork();
    if (pid == 0) {   /* sender */
        if (bare) {
            void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PUSH);
            int hwm = 2, linger = -1;
            zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
            if (curve) bare_curve(s, 0);
            zmq_connect(s, ep);
            uint8_t *buf = calloc(1, total);
            for (int i = 0; i < batches; i++) {
                zmq_msg_t m;
                zmq_msg_init_data(&m, buf, total, NULL, NULL);
                zmq_msg_send(&m, s, 0);
            }
            zmq_close(s);
            zmq_ctx_term(ctx);
            _exit(0);
        }
        struct sender_config sc = { .endpoint = ep, .sndhwm = 2, .linger_ms = 60000, .max_n = n, .h = h, .w = wd, .c = c,
                                    .curve = curve ? &co : NULL };
        struct sender *s;
        if (sender_new(&sc, &s) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); _exit(1); }
        for (int i = 0; i < batches; i++) {
            struct send_buf *b;
            sender_acquire(s, &b, NULL);
            wire_header_init(&b->header, 0, 1, (uint64_t)i, 0, n, h, wd, c, 0, 0);
            memset(b->labels, 0, n * 4u);
            if (sender_send(s, b, NULL) != STATUS_OK) _exit(1);
        }
        sender_drain(s, 60, NULL);
        sender_free(&s);
        _exit(0);
    }
    double t0 = 0;
    if (bare) {
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PULL);
        int hwm = 2;
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (curve) bare_curve(s, 1);
        zmq_bind(s, ep);
        zmq_msg_t m;
        zmq_msg_init(&m);
        for (int i = 0; i < batches; i++) {
            zmq_msg_recv(&m, s, 0);
            if (i == 0) t0 = log_now();
        }
        zmq_msg_close(&m);
        zmq_close(s);
        zmq_ctx_term(ctx);
    } else {
        struct stream_config cfg = stream_config_default();
        cfg.endpoint = ep;
        cfg.max_n = n; cfg.h = h; cfg.w = wd; cfg.c = c;
        cfg.pool_size = 6;                      /* as deeper train with --listen */
        cfg.zero_copy = !copy;
        cfg.curve = curve ? &so : NULL;
        struct stream_receiver *r;
        if (stream_receiver_new(&cfg, &r) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
        for (int i = 0; i < batches; i++) {
            struct stream_batch *b;
            if (stream_receiver_next(r, &b, 60000) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
            if (i == 0) t0 = log_now();
            stream_receiver_release(r, b);
        }
        stream_receiver_free(&r);
    }
    double dt = log_now() - t0;
    waitpid(pid, NULL, 0);
    printf("batches %d bytes %zu wall_s %.4f\n", batches - 1, total * (size_t)(batches - 1), dt);
    return 0;
}
