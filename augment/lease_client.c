/*
 * lease_client.c — worker side of the dispatcher protocol (see
 * lease_client.h and proto/dispatch.md).
 *
 * State: registered or not (and the consumer's session); the lease held
 * [first, end) with its credit limit and the next index to make; the lease
 * queued after it (asked for at the current lease's last batch, so the
 * worker goes on to the next split without waiting for the consumer's
 * answer); at most one made batch waiting for credit (`held`, a ZeroMQ
 * message built in place, so sending it copies nothing).  service() is the only place that reads the
 * socket; it runs between batches and, through the worker's tick hook,
 * between examples.
 */
#include "augment/lease_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <zmq.h>

#include "shared/endian.h"
#include "shared/log.h"

#define REGISTER_EVERY_S 0.25
#define MAX_CONSUMER_MSG 4096

struct client {
    const struct lease_client_config *cfg;
    volatile sig_atomic_t *stop;
    void *zctx, *sock;
    void *mon;                  /* CURVE: the DEALER's handshake failures */
    int refusals;
    double refusal_logged;
    int registered;
    uint64_t session;
    struct dproto_registered run;
    struct worker *w;
    uint64_t lease, first, end, limit, next;
    struct dproto_lease queued; /* the lease to start after `lease` (queued.lease 0: none) */
    uint64_t done;              /* the last lease finished or dropped */
    int requested;              /* asked for a lease (now, or to follow `lease`) */
    int report;                 /* tell the consumer about `done` now */
    double last_sent, last_heard, last_reg, last_req;
    double hb_s, timeout_s;
    int held;
    zmq_msg_t msg;
    uint64_t held_index, held_lease, computing_lease;
    int32_t *labels;
    uint64_t *ids;
    status fatal;
    uint64_t sent, leases, bad;
};

/* 1 when sent; a message that finds the queue full (or no connection) is
 * not sent and the caller tries again later. */
static int send_ctrl(struct client *c, struct dproto_msg *m)
{
    uint8_t buf[512];
    m->session = m->type == DPROTO_REGISTER ? 0 : c->session;
    size_t n = dproto_encode(m, buf, sizeof buf);
    if (!n || zmq_send(c->sock, buf, n, ZMQ_DONTWAIT) != (int)n) return 0;
    c->last_sent = log_now();
    return 1;
}

static void drop_held(struct client *c)
{
    if (c->held) zmq_msg_close(&c->msg);
    c->held = 0;
}

static void lose_registration(struct client *c)
{
    c->registered = 0;
    c->lease = 0;
    c->queued.lease = 0;
    c->last_reg = 0;
    drop_held(c);
}

static void start_lease(struct client *c, const struct dproto_lease *l)
{
    c->lease = l->lease;
    c->first = l->first;
    c->end = l->end;
    c->limit = l->limit;
    c->next = c->first;
    c->requested = 0;
    c->leases++;
    if (c->held && c->held_index == c->first) c->held_lease = c->lease;
    else drop_held(c);
}

/* Every batch of the current lease is sent: the queued lease, if any, is
 * the current one now; the consumer hears about the finished one. */
static void finish_lease(struct client *c)
{
    c->done = c->lease;
    c->lease = 0;
    c->requested = 0;
    if (c->queued.lease) {
        struct dproto_lease q = c->queued;
        c->queued.lease = 0;
        start_lease(c, &q);
        c->report = 1;
    }
}

static void handle(struct client *c, const struct dproto_msg *m)
{
    if (m->type == DPROTO_REFUSED) {
        c->fatal = FAIL(STATUS_USAGE, "the consumer at %s refused this worker: %s differs (consumer %s, this worker %s)",
                        c->cfg->endpoint, m->u.refused.field, m->u.refused.ours, m->u.refused.theirs);
        return;
    }
    if (m->type == DPROTO_REGISTERED) {
        if (c->registered && m->session == c->session) return;
        const struct dproto_registered *r = &m->u.ok;
        int same = c->w && c->run.batch_size == r->batch_size && c->run.image_size == r->image_size &&
                   c->run.channels == r->channels && c->run.seed == r->seed && c->run.eval == r->eval &&
                   c->run.flip == r->flip && c->run.color == r->color && c->run.crop == r->crop &&
                   strcmp(c->run.subset, r->subset) == 0;
        if (!same) {
            worker_free(&c->w);
            free(c->labels); free(c->ids);
            c->labels = malloc((size_t)r->batch_size * sizeof *c->labels);
            c->ids = malloc((size_t)r->batch_size * sizeof *c->ids);
            if (!c->labels || !c->ids) { c->fatal = FAIL(STATUS_NOMEM, "worker: batch arrays"); return; }
            status st = c->cfg->open(r, c->cfg->open_ctx, &c->w);
            if (st != STATUS_OK) { c->fatal = st; return; }
        }
        c->run = *r;
        c->session = m->session;
        c->last_heard = log_now();
        c->registered = 1;
        c->lease = 0;
        c->queued.lease = 0;
        c->requested = 0;
        drop_held(c);
        c->hb_s = r->heartbeat_ms / 1000.0;
        c->timeout_s = r->timeout_ms / 1000.0;
        log_info("registered with %s: %s batches of %ux%ux%ux%u, seed %" PRIu64 ", %u batches per split",
                 c->cfg->endpoint, r->eval ? "eval" : "train", r->batch_size, r->image_size, r->image_size,
                 r->channels, r->seed, r->split_batches);
        return;
    }
    if (m->type == DPROTO_RESET) {   /* whoever listens there now does not know us */
        log_info("the consumer at %s asks for a new registration", c->cfg->endpoint);
        lose_registration(c);
        return;
    }
    if (!c->registered || m->session != c->session) return;   /* stale */
    c->last_heard = log_now();
    switch (m->type) {
    case DPROTO_LEASE: {
        const struct dproto_lease *l = &m->u.lease;
        if (l->lease == c->lease || l->lease == c->queued.lease) break;
        if (l->after && c->lease && l->after == c->lease) {   /* to follow the current one */
            c->queued = *l;
            c->requested = 0;
            break;
        }
        if (l->after && !(c->lease == 0 && l->after == c->done)) {   /* follows a lease we no longer hold */
            c->done = l->lease;
            c->report = 1;
            break;
        }
        if (!l->after) c->queued.lease = 0;   /* replaces everything held */
        start_lease(c, l);
        break;
    }
    case DPROTO_CREDIT:
        if (m->u.credit.lease == c->lease && m->u.credit.limit > c->limit) c->limit = m->u.credit.limit;
        if (m->u.credit.lease == c->queued.lease && m->u.credit.limit > c->queued.limit) c->queued.limit = m->u.credit.limit;
        break;
    default:
        break;
    }
}

/* The periodic sends (registration, lease requests, heartbeats). */
static void periodic(struct client *c)
{
    double now = log_now();
    if (!c->registered) {
        if (now - c->last_reg >= REGISTER_EVERY_S) {
            struct dproto_msg m = { .type = DPROTO_REGISTER };
            m.u.reg = c->cfg->reg;
            send_ctrl(c, &m);
            c->last_reg = now;
            c->last_heard = now;
        }
        return;
    }
    if (now - c->last_heard > c->timeout_s) {
        log_warn("the consumer at %s has been silent for %.1f s; registering again", c->cfg->endpoint, now - c->last_heard);
        lose_registration(c);
        return;
    }
    /* a lease: now when idle, or the next one when at the current one's last batch */
    int want = (!c->lease && !c->held) || (c->lease && !c->queued.lease && c->end - c->next <= 1);
    if (c->report || (want && (!c->requested || now - c->last_req >= c->hb_s))) {
        struct dproto_msg m = { .type = DPROTO_REQUEST };
        m.u.done = c->done;
        m.u.holds = c->lease;
        m.u.want = (uint32_t)want;
        if (send_ctrl(c, &m)) {
            c->report = 0;
            if (want) { c->requested = 1; c->last_req = now; }
        }
    }
    if (now - c->last_sent >= c->hb_s) {
        struct dproto_msg m = { .type = DPROTO_HEARTBEAT };
        m.u.hb.lease = c->lease;
        m.u.hb.next = c->next;
        m.u.hb.state = !c->lease ? DPROTO_IDLE : c->held ? DPROTO_WAITING_CREDIT : DPROTO_COMPUTING;
        send_ctrl(c, &m);
    }
}

/* Periodic sends, then read what is there (waiting up to wait_ms for the
 * first message), then the periodic sends again (a message may have changed
 * what is due). */
static void service(struct client *c, int wait_ms)
{
    periodic(c);
    zmq_pollitem_t it = { c->sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll(&it, 1, wait_ms) > 0) {
        for (int k = 0; k < 64; k++) {
            zmq_msg_t in;
            zmq_msg_init(&in);
            if (zmq_msg_recv(&in, c->sock, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&in); break; }
            int more = zmq_msg_more(&in);
            struct dproto_msg m;
            if (!more && dproto_parse(zmq_msg_data(&in), zmq_msg_size(&in), &m) == STATUS_OK) {
                handle(c, &m);
            } else {
                c->bad++;
            }
            zmq_msg_close(&in);
            while (more) {   /* a multi-frame message is never ours: drain it */
                zmq_msg_init(&in);
                if (zmq_msg_recv(&in, c->sock, 0) < 0) { zmq_msg_close(&in); break; }
                more = zmq_msg_more(&in);
                zmq_msg_close(&in);
            }
        }
        periodic(c);
    }
}

static status tick(void *ctx)
{
    struct client *c = ctx;
    service(c, 0);
    if (*c->stop) return STATUS_INTERRUPTED;
    if (c->fatal != STATUS_OK) return c->fatal;
    if (!c->registered || c->lease != c->computing_lease) return STATUS_STATE;   /* lease replaced: abandon */
    return STATUS_OK;
}

/* Make batch c->next of the lease into c->msg. */
static status make_batch(struct client *c)
{
    const struct dproto_registered *r = &c->run;
    uint32_t B = r->batch_size, h = r->image_size, ch = r->channels;
    size_t full = dproto_batch_size(B, h, h, ch);
    if (!full) return FAIL(STATUS_USAGE, "batch of %u x %ux%ux%u is too large", B, h, h, ch);
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, full) != 0) return FAIL(STATUS_NOMEM, "batch message of %zu bytes", full);
    uint8_t *buf = zmq_msg_data(&msg);
    struct wire_header wh;
    c->computing_lease = c->lease;
    worker_set_tick(c->w, tick, c);
    status st = worker_batch_at(c->w, c->next, c->labels, c->ids, buf + dproto_batch_pixels_off(B), &wh);
    worker_set_tick(c->w, NULL, NULL);
    if (st != STATUS_OK) { zmq_msg_close(&msg); return st; }
    if (wh.n != B) {   /* the short last batch of an eval pass */
        zmq_msg_t small;
        size_t sz = dproto_batch_size(wh.n, h, h, ch);
        if (zmq_msg_init_size(&small, sz) != 0) { zmq_msg_close(&msg); return FAIL(STATUS_NOMEM, "batch message"); }
        memcpy((uint8_t *)zmq_msg_data(&small) + dproto_batch_pixels_off(wh.n), buf + dproto_batch_pixels_off(B),
               (size_t)wh.n * h * h * ch);
        zmq_msg_close(&msg);
        msg = small;
        buf = zmq_msg_data(&msg);
    }
    dproto_batch_begin(buf, c->session, c->lease, c->next, &wh);
    for (uint32_t i = 0; i < wh.n; i++) {
        le_put_u32(buf + dproto_batch_labels_off() + 4 * i, (uint32_t)c->labels[i]);
        le_put_u64(buf + dproto_batch_ids_off(wh.n) + 8 * (size_t)i, c->ids[i]);
    }
    c->msg = msg;
    c->held = 1;
    c->held_index = c->next;
    c->held_lease = c->lease;
    return STATUS_OK;
}

/* CURVE: one line when the consumer refuses our handshake, then one a minute. */
static void refusals_drain(struct client *c)
{
    if (!c->mon) return;
    for (;;) {
        uint8_t ev[6];
        char where[256];
        int n = zmq_recv(c->mon, ev, sizeof ev, ZMQ_DONTWAIT);
        if (n < 0) return;
        (void)zmq_recv(c->mon, where, sizeof where, 0);
        if (n < 6) continue;
        uint16_t e = le_get_u16(ev);
        uint32_t value = le_get_u32(ev + 2);
        double now = log_now();
        if (c->refusals++ == 0 || now - c->refusal_logged >= 60) {
            char why[200];
            if (e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) snprintf(why, sizeof why, "our key is not in its --authorized_keys");
            else snprintf(why, sizeof why, "is --curve_server_key its public key, and does it run with keys? event 0x%x, "
                          "value 0x%x", e, value);
            c->refusal_logged = now;
            log_warn("worker %s: the consumer at %s refused our CURVE handshake (%s; %d so far); retrying",
                     c->cfg->reg.name, c->cfg->endpoint, why, c->refusals);
        }
    }
}

static status open_socket(struct client *c)
{
    c->zctx = zmq_ctx_new();
    if (!c->zctx) return FAIL(STATUS_ZMQ, "zmq_ctx_new: %s", zmq_strerror(errno));
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!c->sock) return FAIL(STATUS_ZMQ, "zmq_socket: %s", zmq_strerror(errno));
    uint8_t id[9] = { 'w' };
    if (getrandom(id + 1, 8, 0) != 8) for (int i = 1; i < 9; i++) id[i] = (uint8_t)rand();
    int linger = 200, hwm = 64, imm = 1, ivl = 100, ivl_max = 1000;
    int curve = c->cfg->curve && curve_opts_enabled(c->cfg->curve);
    int64_t maxmsg = MAX_CONSUMER_MSG + (curve ? CURVE_FRAME_MARGIN : 0);
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, id, sizeof id);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(c->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &imm, sizeof imm);
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (curve) {
        TRY(curve_client_apply(c->sock, c->cfg->curve));
        char ep[64];
        snprintf(ep, sizeof ep, "inproc://deeper-lease-monitor-%p", (void *)c);
        int zero = 0;
        if (zmq_socket_monitor(c->sock, ep, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                                ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
            !(c->mon = zmq_socket(c->zctx, ZMQ_PAIR)) || zmq_connect(c->mon, ep) != 0)
            return FAIL(STATUS_ZMQ, "worker: socket monitor: %s", zmq_strerror(zmq_errno()));
        zmq_setsockopt(c->mon, ZMQ_LINGER, &zero, sizeof zero);
    }
    if (zmq_connect(c->sock, c->cfg->endpoint) != 0)
        return FAIL(STATUS_ZMQ, "--dispatcher %s: %s", c->cfg->endpoint, zmq_strerror(errno));
    return STATUS_OK;
}

status lease_client_run(const struct lease_client_config *cfg, volatile sig_atomic_t *stop)
{
    struct client c = { .cfg = cfg, .stop = stop, .hb_s = 1.0, .timeout_s = 5.0 };
    status st = open_socket(&c);
    if (st != STATUS_OK) goto done;
    log_info("worker %s: registering with %s", cfg->reg.name, cfg->endpoint);
    double t0 = log_now(), last_log = t0;
    while (!*stop && c.fatal == STATUS_OK) {
        if (c.registered && c.lease && !c.held && c.next < c.end) {
            st = make_batch(&c);
            if (st == STATUS_STATE || st == STATUS_INTERRUPTED) { st = STATUS_OK; continue; }
            if (st != STATUS_OK) goto done;
        }
        if (c.held && c.held_lease != c.lease) drop_held(&c);
        if (c.held && c.held_index < c.limit) {
            if (zmq_msg_send(&c.msg, c.sock, ZMQ_DONTWAIT) >= 0) {
                c.held = 0;
                c.next = c.held_index + 1;
                c.sent++;
                c.last_sent = log_now();
            }
        }
        if (c.lease && !c.held && c.next >= c.end) finish_lease(&c);
        int busy = c.registered && c.lease && !c.held && c.next < c.end;
        service(&c, busy ? 0 : 50);
        refusals_drain(&c);
        double now = log_now();
        if (now - last_log >= 30) {
            log_info("worker %s: %" PRIu64 " batches sent in %" PRIu64 " leases", cfg->reg.name, c.sent, c.leases);
            last_log = now;
        }
    }
    st = c.fatal;
    if (c.registered && c.sock) {
        struct dproto_msg m = { .type = DPROTO_BYE };
        send_ctrl(&c, &m);
    }
    log_info("worker %s: stopping after %" PRIu64 " batches in %" PRIu64 " leases%s", cfg->reg.name, c.sent, c.leases,
             c.bad ? " (malformed messages from the consumer were ignored)" : "");
done:
    drop_held(&c);
    if (c.mon) zmq_close(c.mon);
    if (c.sock) zmq_close(c.sock);
    if (c.zctx) zmq_ctx_term(c.zctx);
    worker_free(&c.w);
    free(c.labels); free(c.ids);
    return st;
}
