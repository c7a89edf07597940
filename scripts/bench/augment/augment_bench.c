/*
 * augment_bench.c — measurement helper for scripts/bench/augment/run (built by
 * that script against build/lib*.a; not part of `make`).
 *
 *   augment_bench distort DATA_DIR BATCHES IMAGE_SIZE [jpeg_scale]
 *       one thread: the augment worker's train path (LMDB read, CRC, decode
 *       if JPEG, crop/resize/flip/colour) for BATCHES batches of 32;
 *       prints "images N cpu_s S wall_s S"
 *   augment_bench stream ENDPOINT BATCHES N H W C
 *       deeper's stream: a forked sender process (augment/sender.c, zero-copy
 *       PUSH) -> this process's stream receiver (shared/stream.c, fixed pool);
 *       prints "batches N bytes B wall_s S"
 *   augment_bench bare ENDPOINT BATCHES N H W C
 *       bare ZeroMQ PUSH/PULL of one frame of the same total size (zmq_send
 *       of a buffer, zmq_msg_recv); same output
 *   augment_bench bare0 ...  the same with a zero-copy send (zmq_msg_init_data)
 *   augment_bench stream0 ... deeper's stream with the receiver's zero_copy option
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "augment/sender.h"
#include "augment/worker.h"
#include "shared/log.h"
#include "shared/stream.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int bench_distort(const char *dir, int batches, int size, int jpeg_scale)
{
    struct worker_config c = { .data_dir = dir, .subset = "train", .worker = 0, .num_workers = 1,
                               .batch_size = 32, .queue_factor = 1, .jpeg_scale = jpeg_scale };
    distort_config_default(&c.dc, size);
    c.dc.seed = 1;
    struct worker *w;
    if (worker_open(&c, &w) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
    struct send_buf b = { 0 };
    b.labels = malloc(32 * sizeof *b.labels);
    b.ids = malloc(32 * sizeof *b.ids);
    b.pixels = malloc((size_t)32 * size * size * 3);
    if (worker_next(w, &b) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }   /* warm-up */
    double c0 = cpu_now(), t0 = log_now();
    for (int i = 0; i < batches; i++)
        if (worker_next(w, &b) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
    printf("images %d cpu_s %.4f wall_s %.4f\n", batches * 32, cpu_now() - c0, log_now() - t0);
    worker_free(&w);
    return 0;
}

static int bench_stream(const char *ep, int batches, uint32_t n, uint32_t h, uint32_t wd, uint32_t c, int bare)
{
    size_t pix = (size_t)n * h * wd * c, total = pix + n * 12u + WIRE_HEADER_SIZE;
    pid_t pid = fork();
    if (pid == 0) {   /* sender */
        if (bare == 1 || bare == 2) {
            void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PUSH);
            int hwm = 2, linger = -1;
            zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
            zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
            zmq_connect(s, ep);
            uint8_t *buf = calloc(1, total);
            for (int i = 0; i < batches; i++) {
                if (bare == 2) {   /* zero-copy: constant buffer, no free function */
                    zmq_msg_t m;
                    zmq_msg_init_data(&m, buf, total, NULL, NULL);
                    zmq_msg_send(&m, s, 0);
                } else {
                    zmq_send(s, buf, total, 0);
                }
            }
            zmq_close(s);
            zmq_ctx_term(ctx);
            _exit(0);
        }
        struct sender_config sc = { .endpoint = ep, .sndhwm = 2, .linger_ms = 60000, .max_n = n, .h = h, .w = wd, .c = c };
        struct sender *s;
        if (sender_new(&sc, &s) != STATUS_OK) _exit(1);
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
    if (bare == 1 || bare == 2) {
        void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PULL);
        int hwm = 2;
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
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
        cfg.zero_copy = bare == 3;
        struct stream_receiver *r;
        if (stream_receiver_new(&cfg, &r) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
        for (int i = 0; i < batches; i++) {
            struct stream_batch *b;
            if (stream_receiver_next(r, &b, 30000) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
            if (i == 0) t0 = log_now();
            stream_receiver_release(r, b);
        }
        stream_receiver_free(&r);
    }
    double dt = log_now() - t0;
    waitpid(pid, NULL, 0);
    /* the first message starts the clock: batches-1 intervals */
    printf("batches %d bytes %zu wall_s %.4f\n", batches - 1, total * (size_t)(batches - 1), dt);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "distort"))
        return bench_distort(argv[2], atoi(argv[3]), atoi(argv[4]), argc > 5 ? atoi(argv[5]) : 1);
    if (argc == 8 && (!strcmp(argv[1], "stream") || !strcmp(argv[1], "stream0") || !strcmp(argv[1], "bare") ||
                      !strcmp(argv[1], "bare0")))
        return bench_stream(argv[2], atoi(argv[3]), (uint32_t)atoi(argv[4]), (uint32_t)atoi(argv[5]),
                            (uint32_t)atoi(argv[6]), (uint32_t)atoi(argv[7]),
                            !strcmp(argv[1], "bare") ? 1 : !strcmp(argv[1], "bare0") ? 2 :
                            !strcmp(argv[1], "stream0") ? 3 : 0);
    fprintf(stderr, "usage: augment_bench distort DIR BATCHES SIZE [jpeg_scale] | stream|stream0|bare|bare0 EP BATCHES N H W C\n");
    return 2;
}
