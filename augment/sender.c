/*
 * sender.c — PUSH socket + zero-copy batch pool (see sender.h).
 *
 * Each pool buffer carries a reference count of the data frames ZeroMQ still
 * holds; frame_free (ZeroMQ's free callback, any thread) drops it and returns
 * the buffer to the free stack at zero.  The header frame is 64 bytes and is
 * copied (zmq_send), so only the data frames are zero-copy.
 */
#include "augment/sender.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "shared/endian.h"
#include "shared/log.h"
#include "shared/stream.h"

struct pool_entry {
    struct send_buf buf;
    void *mem;
    atomic_int refs;
    struct sender *owner;
};

struct sender {
    struct sender_config cfg;
    void *ctx, *sock, *mon;
    struct curve_server *curve;   /* binding with keys: ZAP handler (it also counts the peers) */
    int peers;
    int refusals;                 /* CURVE handshakes the consumer refused */
    double refusal_logged;
    struct pool_entry *entries;
    int *free_stack, nfree;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void release_entry(struct pool_entry *e)
{
    struct sender *s = e->owner;
    pthread_mutex_lock(&s->mu);
    s->free_stack[s->nfree++] = e->buf.index_;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void frame_free(void *data, void *hint)
{
    (void)data;
    struct pool_entry *e = hint;
    if (atomic_fetch_sub(&e->refs, 1) == 1) release_entry(e);
}

status sender_new(const struct sender_config *cfg, struct sender **out)
{
    *out = NULL;
    if (!cfg->endpoint || !cfg->endpoint[0]) return FAIL(STATUS_USAGE, "sender: no endpoint");
    if (!cfg->max_n || !cfg->h || !cfg->w || !cfg->c) return FAIL(STATUS_USAGE, "sender: shape not set");
    status st = STATUS_OK;
    struct sender *s = calloc(1, sizeof *s);
    if (!s) return FAIL(STATUS_NOMEM, "sender");
    s->cfg = *cfg;
    if (s->cfg.sndhwm <= 0) s->cfg.sndhwm = 2;
    if (s->cfg.pool <= 0) s->cfg.pool = s->cfg.sndhwm + 2;
    if (s->cfg.linger_ms < 0) s->cfg.linger_ms = 1000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int pool = s->cfg.pool;
    s->entries = calloc((size_t)pool, sizeof *s->entries);
    s->free_stack = calloc((size_t)pool, sizeof *s->free_stack);
    if (!s->entries || !s->free_stack) { st = FAIL(STATUS_NOMEM, "sender: pool"); goto fail; }
    size_t lab = stream_round64((size_t)cfg->max_n * 4), ids = stream_round64((size_t)cfg->max_n * 8);
    size_t pix = stream_round64((size_t)cfg->max_n * cfg->h * cfg->w * cfg->c);
    for (int i = 0; i < pool; i++) {
        struct pool_entry *e = &s->entries[i];
        if (posix_memalign(&e->mem, 64, lab + ids + pix) != 0) { e->mem = NULL; st = FAIL(STATUS_NOMEM, "sender: buffer"); goto fail; }
        e->buf.labels = (int32_t *)e->mem;
        e->buf.ids = (uint64_t *)((uint8_t *)e->mem + lab);
        e->buf.pixels = (uint8_t *)e->mem + lab + ids;
        e->buf.index_ = i;
        e->owner = s;
        s->free_stack[s->nfree++] = pool - 1 - i;
    }
    s->ctx = zmq_ctx_new();
    if (!s->ctx) { st = FAIL(STATUS_ZMQ, "sender: zmq_ctx_new: %s", zmq_strerror(zmq_errno())); goto fail; }
    if (curve_opts_enabled(cfg->curve) && cfg->bind &&
        (st = curve_server_new(s->ctx, cfg->curve, "sender", 0, &s->curve)) != STATUS_OK)
        goto fail;
    s->sock = zmq_socket(s->ctx, ZMQ_PUSH);
    if (!s->sock) { st = FAIL(STATUS_ZMQ, "sender: zmq_socket: %s", zmq_strerror(zmq_errno())); goto fail; }
    int hwm = s->cfg.sndhwm, linger = s->cfg.linger_ms ? s->cfg.linger_ms : 1000, tmo = 100;
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    if (s->curve) st = curve_server_apply(s->curve, s->sock);     /* its monitor counts the peers */
    else if (curve_opts_enabled(cfg->curve)) st = curve_client_apply(s->sock, cfg->curve);
    if (st != STATUS_OK) goto fail;
    if (!s->curve) {
        /* socket monitor: counts connected consumers (sender_peers/drain) */
        char mon_ep[64];
        snprintf(mon_ep, sizeof mon_ep, "inproc://deeper-sender-monitor-%p", (void *)s);
        int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                     (curve_opts_enabled(cfg->curve) ? ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                      ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH : 0);
        if (zmq_socket_monitor(s->sock, mon_ep, events) != 0 ||
            !(s->mon = zmq_socket(s->ctx, ZMQ_PAIR)) || zmq_connect(s->mon, mon_ep) != 0) {
            st = FAIL(STATUS_ZMQ, "sender: socket monitor: %s", zmq_strerror(zmq_errno()));
            goto fail;
        }
        int zero = 0;
        zmq_setsockopt(s->mon, ZMQ_LINGER, &zero, sizeof zero);
    }
    if ((st = stream_socket_attach(s->sock, cfg->endpoint, cfg->bind, "sender", NULL, 0)) != STATUS_OK)
        goto fail;
    *out = s;
    return STATUS_OK;
fail:
    sender_free(&s);
    return st;
}

status sender_acquire(struct sender *s, struct send_buf **out, volatile sig_atomic_t *stop)
{
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    while (s->nfree == 0 && !(stop && *stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    int idx = s->nfree > 0 ? s->free_stack[--s->nfree] : -1;
    pthread_mutex_unlock(&s->mu);
    if (idx < 0) return FAIL(STATUS_INTERRUPTED, "interrupted");
    *out = &s->entries[idx].buf;
    return STATUS_OK;
}

void sender_discard(struct sender *s, struct send_buf *b)
{
    if (b) release_entry(&s->entries[b->index_]);
}

int sender_in_flight(struct sender *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->cfg.pool - s->nfree;
    pthread_mutex_unlock(&s->mu);
    return n;
}

status sender_send(struct sender *s, struct send_buf *b, volatile sig_atomic_t *stop)
{
    struct pool_entry *e = &s->entries[b->index_];
    uint8_t hdr[WIRE_HEADER_SIZE];
    wire_header_pack(&b->header, hdr);
    /* The first frame decides whether the message is accepted (HWM); retry
     * it until it is, watching *stop.  Later frames are then always taken. */
    for (;;) {
        if (zmq_send(s->sock, hdr, sizeof hdr, ZMQ_SNDMORE) == (int)sizeof hdr) break;
        int err = zmq_errno();
        if (err == EAGAIN) (void)sender_peers(s);   /* says so when the consumer refuses our keys */
        if (err != EAGAIN && err != EINTR) {
            sender_discard(s, b);
            return FAIL(STATUS_ZMQ, "send: %s", zmq_strerror(err));
        }
        if (stop && *stop) {
            sender_discard(s, b);
            return FAIL(STATUS_INTERRUPTED, "interrupted");
        }
    }
    struct { void *p; size_t n; } parts[3] = {
        { b->labels, wire_labels_bytes(&b->header) },
        { b->ids, wire_ids_bytes(&b->header) },
        { b->pixels, wire_pixels_bytes(&b->header) },
    };
    atomic_store(&e->refs, 3);
    for (int i = 0; i < 3; i++) {
        zmq_msg_t m;
        zmq_msg_init_data(&m, parts[i].p, parts[i].n, frame_free, e);
        int rc;
        do {
            rc = zmq_msg_send(&m, s->sock, i < 2 ? ZMQ_SNDMORE : 0);
        } while (rc < 0 && (zmq_errno() == EAGAIN || zmq_errno() == EINTR));
        if (rc < 0) {
            int err = zmq_errno();
            /* frames i..2 are still ours: drop their references */
            zmq_msg_close(&m);                 /* runs frame_free for frame i */
            for (int j = i + 1; j < 3; j++) frame_free(NULL, e);
            return FAIL(STATUS_ZMQ, "send: %s", zmq_strerror(err));
        }
    }
    return STATUS_OK;
}

int sender_peers(struct sender *s)
{
    if (s->curve) return curve_server_peers(s->curve);
    for (;;) {
        uint8_t ev[6];
        int n = zmq_recv(s->mon, ev, sizeof ev, ZMQ_DONTWAIT);
        if (n < 0) break;
        int more = 0;
        size_t sz = sizeof more;
        char addr[256];
        while (zmq_getsockopt(s->mon, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
            (void)zmq_recv(s->mon, addr, sizeof addr, ZMQ_DONTWAIT);
            sz = sizeof more;
        }
        if (n < 2) continue;
        uint16_t e = le_get_u16(ev);
        if (e & (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) {
            double now = log_now();   /* the first refusal, then one line a minute */
            if (s->refusals++ == 0 || now - s->refusal_logged >= 60) {
                s->refusal_logged = now;
                log_warn("sender: %s refused our CURVE handshake (%s; %d so far); retrying", s->cfg.endpoint,
                         e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? "our key is not in its --authorized_keys"
                                                              : "is --curve_server_key its public key?", s->refusals);
            }
        }
        if (e == ZMQ_EVENT_CONNECTED || e == ZMQ_EVENT_ACCEPTED) s->peers++;
        else if (e == ZMQ_EVENT_DISCONNECTED && s->peers > 0) s->peers--;
    }
    return s->peers;
}

void sender_drain(struct sender *s, double timeout_s, volatile sig_atomic_t *stop)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (stop && *stop) return;
        if (sender_in_flight(s) == 0 && sender_peers(s) == 0) return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) * 1e-9 > timeout_s) return;
        struct timespec nap = { 0, 20000000L };
        nanosleep(&nap, NULL);
    }
}

void sender_free(struct sender **sp)
{
    struct sender *s = sp ? *sp : NULL;
    if (!s) return;
    if (s->sock) zmq_socket_monitor(s->sock, NULL, 0);
    if (s->mon) zmq_close(s->mon);
    if (s->sock) zmq_close(s->sock);
    curve_server_free(&s->curve);
    if (s->ctx) zmq_ctx_term(s->ctx);   /* waits up to LINGER, then every frame is freed */
    if (s->entries)
        for (int i = 0; i < s->cfg.pool; i++) free(s->entries[i].mem);
    free(s->entries);
    free(s->free_stack);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    *sp = NULL;
}
