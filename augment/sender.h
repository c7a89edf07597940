/*
 * sender.h — the sending side of the batch stream: a PUSH socket and a small
 * fixed pool of batch buffers that are sent zero-copy.
 *
 * A worker takes a free buffer (sender_acquire), fills labels/ids/pixels,
 * and hands it to sender_send, which sends the header frame by copy and the
 * three data frames with zmq_msg_init_data (no copy).  ZeroMQ's I/O thread
 * calls our free function when it is done with a frame; when all three frames
 * of a buffer are released the buffer goes back to the pool.  With SNDHWM
 * 1-4 and a pool of SNDHWM + 2 buffers, a worker never holds more than a few
 * batches, however slow the consumer is: sender_acquire blocks instead.
 *
 * Blocking calls poll `*stop` (set by a SIGINT/SIGTERM handler) every 100 ms
 * and return STATUS_INTERRUPTED when it becomes non-zero.  If the consumer
 * goes away, a connected PUSH keeps its queue and reconnects, so the worker
 * simply blocks until the consumer comes back.
 *
 * Threading: one thread uses a sender; the free callback may run on ZeroMQ's
 * I/O thread (it only touches the mutex-protected pool).
 */
#ifndef DEEPER_AUGMENT_SENDER_H
#define DEEPER_AUGMENT_SENDER_H

#include <signal.h>
#include <stdint.h>

#include "shared/curve.h"
#include "shared/status.h"
#include "shared/wire.h"

struct sender_config {
    const char *endpoint;   /* tcp://host:port or ipc://path; several separated by ',' */
    int bind;               /* 1: bind, 0: connect (default; the trainer binds) */
    int sndhwm;             /* messages (default 2) */
    int pool;               /* buffers (default sndhwm + 2) */
    int linger_ms;          /* ZMQ_LINGER at close (default 1000) */
    uint32_t max_n, h, w, c;
    const struct curve_opts *curve; /* with a secret key: CURVE server when binding (ZAP handler
                               admitting curve->authorized_keys), client when connecting
                               (curve->server_key); NULL or no key: plain (shared/curve.h) */
};

struct send_buf {
    struct wire_header header;  /* filled by the caller before sender_send */
    int32_t *labels;            /* int32[max_n] */
    uint64_t *ids;              /* uint64[max_n] */
    uint8_t *pixels;            /* uint8[max_n*h*w*c] */
    int index_;                 /* internal */
};

struct sender;

/* New sender, socket bound or connected.  Caller frees with sender_free. */
status sender_new(const struct sender_config *cfg, struct sender **out);

/* Take a free buffer (blocking).  STATUS_INTERRUPTED when *stop is set. */
status sender_acquire(struct sender *s, struct send_buf **out, volatile sig_atomic_t *stop);

/* Send b (header.n examples; END markers have n = 0) and give it back to the
 * pool once ZeroMQ is done with it.  Consumes b in every case. */
status sender_send(struct sender *s, struct send_buf *b, volatile sig_atomic_t *stop);

/* Put back a buffer that will not be sent. */
void sender_discard(struct sender *s, struct send_buf *b);

/* Buffers currently held by ZeroMQ or the caller. */
int sender_in_flight(struct sender *s);

/* Connected consumers right now (from the socket monitor's
 * CONNECTED/ACCEPTED and DISCONNECTED events). */
int sender_peers(struct sender *s);

/* After the last message of a finite stream: wait until ZeroMQ has written
 * every frame and no consumer is connected any more (the consumer closed its
 * socket, or went away), *stop is set, or timeout_s passes.  Leaving earlier
 * can lose the last batches: libzmq drops the unread tail of a connection
 * whose sender hangs up while the receiver's queue is at its high-water mark. */
void sender_drain(struct sender *s, double timeout_s, volatile sig_atomic_t *stop);

/* Close (with LINGER), free the pool; NULL-safe; sets *s to NULL. */
void sender_free(struct sender **s);

#endif
