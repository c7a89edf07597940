/*
 * stream.c — batch-stream receiver: PULL socket, fixed buffer pool, receive
 * thread, bounded ready queue (see stream.h for the contract).
 *
 * Pool slot layout (one allocation per slot, 64-byte aligned parts):
 *   [labels int32[max_n]] [ids uint64[max_n]] [pixels uint8[max_n*h*w*c]]
 * Frames are received with zmq_recv() directly into those parts with the
 * part's capacity as the limit; zmq_recv reports the real frame size, so a
 * frame bigger than its slot (truncated) or of the wrong size is detected and
 * the whole message dropped.  ZMQ_MAXMSGSIZE caps any single frame at the
 * largest legitimate one, so a hostile peer cannot make libzmq buffer
 * gigabytes either (it is disconnected instead).
 *
 * Locking: one mutex protects the free stack, the ready ring, the counters and
 * the pass trackers; two condition variables signal "slot free" (to the thread)
 * and "batch ready" (to the consumer).  The receive thread never holds the
 * mutex while it is in zmq calls.
 */
#include "shared/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "shared/log.h"

#define STREAM_PASS_TRACKERS 4
#define STREAM_WORKER_BITS 65536

struct pass_tracker {
    int used;
    uint64_t pass;
    uint32_t seen;                          /* distinct workers seen */
    uint8_t bits[STREAM_WORKER_BITS / 8];
};

struct stream_receiver {
    struct stream_config cfg;
    struct stream_allocator alloc;
    void *ctx;
    struct curve_server *curve;             /* bind with keys: the ZAP handler, bound before any socket */
    void *sock;
    char endpoint[256];
    char *bound;                            /* endpoints we bound: ipc:// files are ours to remove */
    size_t labels_off, ids_off, pixels_off, slot_bytes, pixels_cap;

    struct stream_batch *slots;             /* pool_size */
    zmq_msg_t *pix_msgs;                    /* zero_copy: the pixels frame held per slot */
    int *pix_open;
    void **buffers;                         /* pool_size */
    int *free_stack, nfree;
    int *ready, ready_head, nready;

    pthread_mutex_t mu;
    pthread_cond_t slot_cv, ready_cv;
    pthread_t thread;
    int thread_started;
    atomic_int stop;
    int dead;
    char dead_msg[256];

    struct stream_stats st;
    struct pass_tracker passes[STREAM_PASS_TRACKERS];
    int drops_logged;
};

static void *default_alloc(size_t size, void *ctx)
{
    (void)ctx;
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) return NULL;
    return p;
}
static void default_free(void *p, size_t size, void *ctx) { (void)size; (void)ctx; free(p); }

struct stream_config stream_config_default(void)
{
    struct stream_config c;
    memset(&c, 0, sizeof c);
    c.pool_size = 4;
    c.rcvhwm = 2;
    c.log_drops = 5;
    return c;
}

static void abs_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* Discard the remaining parts of the current multipart message. */
static void drain_message(void *sock)
{
    char scratch[64];
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        if (zmq_recv(sock, scratch, sizeof scratch, ZMQ_DONTWAIT) < 0 && zmq_errno() != EINTR) break;
        sz = sizeof more;
    }
}

static int has_more(void *sock)
{
    int more = 0;
    size_t sz = sizeof more;
    if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) != 0) return 0;
    return more;
}

static void note_drop(struct stream_receiver *r, const char *why)
{
    pthread_mutex_lock(&r->mu);
    r->st.dropped++;
    int log_it = r->drops_logged < r->cfg.log_drops;
    if (log_it) r->drops_logged++;
    pthread_mutex_unlock(&r->mu);
    if (log_it) log_warn("stream: dropped a malformed message: %s", why);
}

/* Receive one frame of exactly `want` bytes into dst (capacity cap).  Returns
 * 0 on success, -1 malformed (message drained), -2 socket error. */
static int recv_frame(void *sock, void *dst, size_t cap, size_t want, const char *name, char *why, size_t whylen)
{
    if (!has_more(sock)) {
        snprintf(why, whylen, "message ended before the %s frame", name);
        return -1;
    }
    int got = zmq_recv(sock, dst, cap, ZMQ_DONTWAIT);
    if (got < 0) {
        if (zmq_errno() == ETERM) return -2;
        snprintf(why, whylen, "%s frame: %s", name, zmq_strerror(zmq_errno()));
        drain_message(sock);
        return -1;
    }
    if ((size_t)got != want) {
        snprintf(why, whylen, "%s frame is %d bytes, header implies %zu", name, got, want);
        drain_message(sock);
        return -1;
    }
    return 0;
}

/* zero_copy: receive the pixels frame as a ZeroMQ message kept in the slot. */
static int recv_frame_msg(struct stream_receiver *r, void *sock, int slot, size_t want, char *why, size_t whylen)
{
    if (!has_more(sock)) {
        snprintf(why, whylen, "message ended before the pixels frame");
        return -1;
    }
    zmq_msg_t *m = &r->pix_msgs[slot];
    zmq_msg_init(m);
    if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
        int err = zmq_errno();
        zmq_msg_close(m);
        if (err == ETERM) return -2;
        snprintf(why, whylen, "pixels frame: %s", zmq_strerror(err));
        drain_message(sock);
        return -1;
    }
    r->pix_open[slot] = 1;
    if (zmq_msg_size(m) != want) {
        snprintf(why, whylen, "pixels frame is %zu bytes, header implies %zu", zmq_msg_size(m), want);
        drain_message(sock);
        return -1;
    }
    r->slots[slot].pixels = zmq_msg_data(m);
    return 0;
}

static void close_pix(struct stream_receiver *r, int slot)
{
    if (r->pix_msgs && r->pix_open[slot]) {
        zmq_msg_close(&r->pix_msgs[slot]);
        r->pix_open[slot] = 0;
        r->slots[slot].pixels = NULL;
    }
}

static void track_end(struct stream_receiver *r, struct stream_batch *b)
{
    /* called with mu held */
    uint64_t pass = b->header.epoch;
    uint32_t need = r->cfg.expect_workers ? r->cfg.expect_workers : b->header.num_workers;
    struct pass_tracker *t = NULL, *oldest = &r->passes[0];
    for (int i = 0; i < STREAM_PASS_TRACKERS; i++) {
        if (r->passes[i].used && r->passes[i].pass == pass) { t = &r->passes[i]; break; }
        if (!r->passes[i].used) oldest = &r->passes[i];
        else if (oldest->used && r->passes[i].pass < oldest->pass) oldest = &r->passes[i];
    }
    if (!t) {
        t = oldest;
        memset(t, 0, sizeof *t);
        t->used = 1;
        t->pass = pass;
    }
    uint16_t wkr = b->header.worker;
    r->st.end_markers++;
    if (!(t->bits[wkr / 8] & (1u << (wkr % 8)))) {
        t->bits[wkr / 8] |= (uint8_t)(1u << (wkr % 8));
        t->seen++;
        if (t->seen == need) {
            b->pass_complete = 1;
            r->st.passes_complete++;
            t->used = 0;
        }
    }
}

/* Receive one message from socket i into slot: 1 appended to the ready
 * queue, 0 nothing kept (nothing there, or a malformed message dropped),
 * -1 the socket failed (dead_msg says why). */
static int receive_one(struct stream_receiver *r, int slot)
{
    void *sock = r->sock;
    char why[200];
    uint8_t hbuf[WIRE_HEADER_SIZE];
    struct wire_expect ex = {
        .max_n = r->cfg.max_n, .h = r->cfg.h, .w = r->cfg.w, .c = r->cfg.c,
        .num_workers = r->cfg.expect_workers, .max_pixels = r->pixels_cap,
    };
    struct stream_batch *b = &r->slots[slot];
    int hn = zmq_recv(sock, hbuf, sizeof hbuf, ZMQ_DONTWAIT);
    if (hn < 0) {
        int err = zmq_errno();
        if (err == EAGAIN || err == EINTR) return 0;
        snprintf(r->dead_msg, sizeof r->dead_msg, "stream: zmq_recv: %s", zmq_strerror(err));
        return -1;
    }
    /* the header, then the data frames straight into the slot */
    int bad = 0;
    if (wire_header_unpack(hbuf, (size_t)hn, &b->header) != STATUS_OK ||
        wire_header_check(&b->header, &ex) != STATUS_OK) {
        snprintf(why, sizeof why, "%s", status_msg());
        bad = 1;
    }
    if (bad) drain_message(sock);
    if (!bad) {
        const struct wire_header *h = &b->header;
        int rc = recv_frame(sock, b->labels, r->cfg.max_n * 4u, wire_labels_bytes(h), "labels", why, sizeof why);
        if (rc == 0) rc = recv_frame(sock, b->ids, r->cfg.max_n * 8u, wire_ids_bytes(h), "ids", why, sizeof why);
        if (rc == 0)
            rc = r->cfg.zero_copy ? recv_frame_msg(r, sock, slot, wire_pixels_bytes(h), why, sizeof why)
                                  : recv_frame(sock, b->pixels, r->pixels_cap, wire_pixels_bytes(h), "pixels", why, sizeof why);
        if (rc == -2) { snprintf(r->dead_msg, sizeof r->dead_msg, "stream: context terminated"); return -1; }
        if (rc == 0 && has_more(sock)) {
            snprintf(why, sizeof why, "more than %d frames", WIRE_NUM_FRAMES);
            drain_message(sock);
            rc = -1;
        }
        if (rc == 0 && r->cfg.num_classes > 0) {
            for (uint32_t k = 0; k < h->n; k++)
                if (b->labels[k] < 0 || b->labels[k] >= r->cfg.num_classes) {
                    snprintf(why, sizeof why, "label %d out of range [0, %d)", b->labels[k], r->cfg.num_classes);
                    rc = -1;
                    break;
                }
        }
        bad = rc != 0;
    }
    if (bad) {
        note_drop(r, why);
        close_pix(r, slot);
        return 0;
    }
    b->n = b->header.n; b->h = b->header.h; b->w = b->header.w; b->c = b->header.c;
    b->end_of_pass = (b->header.flags & WIRE_FLAG_END_OF_PASS) != 0;
    b->pass_complete = 0;
    b->received_at = log_now();
    pthread_mutex_lock(&r->mu);
    if (b->end_of_pass) track_end(r, b);
    r->st.received++;
    r->st.examples += b->n;
    r->st.bytes += wire_labels_bytes(&b->header) + wire_ids_bytes(&b->header) + wire_pixels_bytes(&b->header);
    r->ready[(r->ready_head + r->nready) % r->cfg.pool_size] = slot;
    r->nready++;
    pthread_cond_broadcast(&r->ready_cv);
    pthread_mutex_unlock(&r->mu);
    return 1;
}

/* Wait until the socket has a message: 0, -1 when stopping, -2 on a
 * failure (dead_msg says why). */
static int wait_readable(struct stream_receiver *r)
{
    while (!atomic_load(&r->stop)) {
        zmq_pollitem_t item = { r->sock, 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll(&item, 1, 100);
        if (rc < 0 && zmq_errno() == EINTR) continue;
        if (rc < 0) {
            snprintf(r->dead_msg, sizeof r->dead_msg, "stream: zmq_poll: %s", zmq_strerror(zmq_errno()));
            return -2;
        }
        if (item.revents & ZMQ_POLLIN) return 0;
    }
    return -1;
}

static void *receive_thread(void *arg)
{
    struct stream_receiver *r = arg;
    while (!atomic_load(&r->stop)) {
        /* 1. a free slot (backpressure: do not read while none is free) */
        pthread_mutex_lock(&r->mu);
        while (r->nfree == 0 && !atomic_load(&r->stop)) {
            struct timespec ts;
            abs_deadline(&ts, 100);
            pthread_cond_timedwait(&r->slot_cv, &r->mu, &ts);
        }
        int slot = r->nfree > 0 ? r->free_stack[--r->nfree] : -1;
        pthread_mutex_unlock(&r->mu);
        if (slot < 0) break;
        /* 2. a message into it */
        int i = wait_readable(r);
        int got = i >= 0 ? receive_one(r, slot) : 0;
        if (got != 1) {
            pthread_mutex_lock(&r->mu);
            r->free_stack[r->nfree++] = slot;
            pthread_mutex_unlock(&r->mu);
        }
        if (i == -1) break;
        if (i == -2 || got < 0) goto died;
    }
    return NULL;
died:
    pthread_mutex_lock(&r->mu);
    r->dead = 1;
    pthread_cond_broadcast(&r->ready_cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

status stream_socket_attach(void *sock, const char *endpoints, int bind, const char *who,
                            char *last, size_t last_n)
{
    char eps[1024];
    if (snprintf(eps, sizeof eps, "%s", endpoints) >= (int)sizeof eps)
        return FAIL(STATUS_USAGE, "%s: endpoint list longer than %zu characters", who, sizeof eps - 1);
    char *save = NULL;
    for (char *ep = strtok_r(eps, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
        if ((bind ? zmq_bind(sock, ep) : zmq_connect(sock, ep)) != 0)
            return FAIL(STATUS_ZMQ, "%s: %s %s: %s", who, bind ? "bind" : "connect", ep, zmq_strerror(zmq_errno()));
        size_t len = last_n;
        if (last && zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, last, &len) != 0)
            snprintf(last, last_n, "%s", ep);
    }
    return STATUS_OK;
}

/* libzmq removes the socket file of a bound ipc:// endpoint only for
 * wildcard names; ours are explicit, so the receiver removes them after the
 * socket is closed (abstract "ipc://@name" endpoints have no file). */
static void unlink_ipc_files(const char *endpoints)
{
    char *eps = endpoints ? strdup(endpoints) : NULL, *save = NULL;
    if (!eps) return;
    for (char *ep = strtok_r(eps, ",", &save); ep; ep = strtok_r(NULL, ",", &save))
        if (strncmp(ep, "ipc://", 6) == 0 && ep[6] && ep[6] != '@' && ep[6] != '*') unlink(ep + 6);
    free(eps);
}

/* A PULL socket with the receiver's options, bound or connected to eps. */
static status open_socket(struct stream_receiver *r, const char *eps, void **out)
{
    void *sock = zmq_socket(r->ctx, ZMQ_PULL);
    if (!sock) return FAIL(STATUS_ZMQ, "stream: zmq_socket: %s", zmq_strerror(zmq_errno()));
    int linger = 0, hwm = r->cfg.rcvhwm;
    /* the limit applies to frames as they travel: CURVE handshake commands
     * (up to a few hundred bytes) and encrypted frames (plain size + 33) too */
    int64_t maxmsg = (int64_t)(r->pixels_cap > WIRE_HEADER_SIZE ? r->pixels_cap : WIRE_HEADER_SIZE) + 1024;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    status st = STATUS_OK;
    if (r->curve) st = curve_server_apply(r->curve, sock);
    else if (curve_opts_enabled(r->cfg.curve)) st = curve_client_apply(sock, r->cfg.curve);
    if (st != STATUS_OK) { zmq_close(sock); return st; }
    st = stream_socket_attach(sock, eps, !r->cfg.connect, "stream", r->endpoint, sizeof r->endpoint);
    if (st != STATUS_OK) { zmq_close(sock); return st; }
    *out = sock;
    return STATUS_OK;
}

/* Open the socket and remember what was bound (ipc files to remove). */
static status open_sockets(struct stream_receiver *r)
{
    const struct stream_config *cfg = &r->cfg;
    r->bound = strdup(cfg->connect ? "" : cfg->endpoint);
    if (!r->bound) return FAIL(STATUS_NOMEM, "stream: sockets");
    return open_socket(r, cfg->endpoint, &r->sock);
}

status stream_receiver_new(const struct stream_config *cfg, struct stream_receiver **out)
{
    *out = NULL;
    if (!cfg->endpoint || !cfg->endpoint[0]) return FAIL(STATUS_USAGE, "stream: no endpoint");
    if (cfg->max_n == 0 || cfg->max_n > WIRE_MAX_N) return FAIL(STATUS_USAGE, "stream: max_n %u out of range", cfg->max_n);
    if (!cfg->h || !cfg->w || !cfg->c || cfg->h > WIRE_MAX_SIDE || cfg->w > WIRE_MAX_SIDE || cfg->c > WIRE_MAX_C)
        return FAIL(STATUS_USAGE, "stream: image shape %ux%ux%u out of range", cfg->h, cfg->w, cfg->c);
    if (cfg->pool_size < 1 || cfg->pool_size > 1024) return FAIL(STATUS_USAGE, "stream: pool_size %d", cfg->pool_size);
    status st = STATUS_OK;
    struct stream_receiver *r = calloc(1, sizeof *r);
    if (!r) return FAIL(STATUS_NOMEM, "stream: receiver");
    r->cfg = *cfg;
    if (r->cfg.rcvhwm <= 0) r->cfg.rcvhwm = 2;
    cfg = &r->cfg;
    r->alloc = cfg->allocator ? *cfg->allocator : (struct stream_allocator){ default_alloc, default_free, NULL };
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->slot_cv, NULL);
    pthread_cond_init(&r->ready_cv, NULL);

    int pool = cfg->pool_size;
    r->pixels_cap = (size_t)cfg->max_n * cfg->h * cfg->w * cfg->c;
    r->labels_off = 0;
    r->ids_off = stream_round64((size_t)cfg->max_n * 4);
    r->pixels_off = r->ids_off + stream_round64((size_t)cfg->max_n * 8);
    r->slot_bytes = r->pixels_off + (cfg->zero_copy ? 0 : stream_round64(r->pixels_cap));
    r->slots = calloc((size_t)pool, sizeof *r->slots);
    r->buffers = calloc((size_t)pool, sizeof *r->buffers);
    r->free_stack = calloc((size_t)pool, sizeof *r->free_stack);
    r->ready = calloc((size_t)pool, sizeof *r->ready);
    if (!r->slots || !r->buffers || !r->free_stack || !r->ready) { st = FAIL(STATUS_NOMEM, "stream: pool tables"); goto fail; }
    if (cfg->zero_copy) {
        r->pix_msgs = calloc((size_t)pool, sizeof *r->pix_msgs);
        r->pix_open = calloc((size_t)pool, sizeof *r->pix_open);
        if (!r->pix_msgs || !r->pix_open) { st = FAIL(STATUS_NOMEM, "stream: pool tables"); goto fail; }
    }
    for (int i = 0; i < pool; i++) {
        uint8_t *buf = r->alloc.alloc(r->slot_bytes, r->alloc.ctx);
        if (!buf) { st = FAIL(STATUS_NOMEM, "stream: pool buffer %d of %zu bytes", i, r->slot_bytes); goto fail; }
        r->buffers[i] = buf;
        r->slots[i].labels = (int32_t *)(buf + r->labels_off);
        r->slots[i].ids = (uint64_t *)(buf + r->ids_off);
        r->slots[i].pixels = cfg->zero_copy ? NULL : buf + r->pixels_off;
        r->slots[i].slot_ = i;
        r->free_stack[r->nfree++] = pool - 1 - i;
    }

    r->ctx = zmq_ctx_new();
    if (!r->ctx) { st = FAIL(STATUS_ZMQ, "stream: zmq_ctx_new: %s", zmq_strerror(zmq_errno())); goto fail; }
    if (curve_opts_enabled(cfg->curve) && !cfg->connect &&
        (st = curve_server_new(r->ctx, cfg->curve, "stream", 1, &r->curve)) != STATUS_OK)
        goto fail;
    if ((st = open_sockets(r)) != STATUS_OK) goto fail;
    if (pthread_create(&r->thread, NULL, receive_thread, r) != 0) { st = FAIL(STATUS_NOMEM, "stream: pthread_create"); goto fail; }
    r->thread_started = 1;
    *out = r;
    return STATUS_OK;
fail:
    stream_receiver_free(&r);
    return st;
}

status stream_receiver_next(struct stream_receiver *r, struct stream_batch **out, int timeout_ms)
{
    *out = NULL;
    double t0 = log_now();
    struct timespec ts;
    if (timeout_ms >= 0) abs_deadline(&ts, timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (r->nready == 0 && !r->dead) {
        if (timeout_ms < 0) pthread_cond_wait(&r->ready_cv, &r->mu);
        else if (pthread_cond_timedwait(&r->ready_cv, &r->mu, &ts) == ETIMEDOUT) break;
    }
    status st = STATUS_OK;
    if (r->nready > 0) {
        *out = &r->slots[r->ready[r->ready_head]];
        r->ready_head = (r->ready_head + 1) % r->cfg.pool_size;
        r->nready--;
    } else if (r->dead) {
        st = FAIL(STATUS_ZMQ, "%s", r->dead_msg);
    } else {
        st = FAIL(STATUS_TIMEOUT, "stream: no batch within %d ms on %s", timeout_ms, r->endpoint);
    }
    r->st.wait_seconds += log_now() - t0;
    pthread_mutex_unlock(&r->mu);
    return st;
}

void stream_receiver_release(struct stream_receiver *r, struct stream_batch *b)
{
    if (!b) return;
    ASSERT(b->slot_ >= 0 && b->slot_ < r->cfg.pool_size && b == &r->slots[b->slot_]);
    pthread_mutex_lock(&r->mu);
    ASSERT(r->nfree < r->cfg.pool_size);
    close_pix(r, b->slot_);
    r->free_stack[r->nfree++] = b->slot_;
    pthread_cond_signal(&r->slot_cv);
    pthread_mutex_unlock(&r->mu);
}

void stream_receiver_stats(struct stream_receiver *r, struct stream_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    out->queue_depth = r->nready;
    out->pool_size = r->cfg.pool_size;
    pthread_mutex_unlock(&r->mu);
}

const char *stream_receiver_endpoint(struct stream_receiver *r) { return r->endpoint; }

void stream_receiver_reset_pass(struct stream_receiver *r)
{
    pthread_mutex_lock(&r->mu);
    memset(r->passes, 0, sizeof r->passes);
    pthread_mutex_unlock(&r->mu);
}

void stream_receiver_free(struct stream_receiver **rp)
{
    struct stream_receiver *r = rp ? *rp : NULL;
    if (!r) return;
    if (r->thread_started) {
        atomic_store(&r->stop, 1);
        pthread_mutex_lock(&r->mu);
        pthread_cond_broadcast(&r->slot_cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
    }
    if (r->pix_msgs)
        for (int i = 0; i < r->cfg.pool_size; i++) close_pix(r, i);
    if (r->sock) zmq_close(r->sock);
    curve_server_free(&r->curve);           /* only once no socket can handshake */
    if (r->ctx) zmq_ctx_term(r->ctx);
    unlink_ipc_files(r->bound);
    free(r->bound);
    if (r->buffers)
        for (int i = 0; i < r->cfg.pool_size; i++)
            if (r->buffers[i]) r->alloc.free(r->buffers[i], r->slot_bytes, r->alloc.ctx);
    free(r->buffers);
    free(r->slots);
    free(r->pix_msgs);
    free(r->pix_open);
    free(r->free_stack);
    free(r->ready);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->slot_cv);
    pthread_cond_destroy(&r->ready_cv);
    free(r);
    *rp = NULL;
}
