/*
 * dispatcher.c — consumer side of the dispatcher protocol (see dispatcher.h
 * and proto/dispatch.md): the ROUTER socket and its thread, peers
 * (registration, checks, heartbeats, timeouts, rate-limited log lines) and
 * the consumer's window of batches.  The state is described in
 * dispatch_impl.h; which worker makes which split is dispatch_lease.c.
 *
 * Peers, ranges and the socket belong to whoever holds `sock_mu`: the
 * consumer while it is in dispatcher_next (it receives its own batches, so
 * a consumer that waits for every batch pays no thread hand-off), the
 * thread while the consumer is away longer than DISPATCH_GRACE_S (a
 * training step: heartbeats, registrations and batches go on).  Both run
 * the same pump().  Slots, `next` and the consumer's waiting time are
 * shared under `mu`.  A consumer that needs the socket while the thread
 * holds it wakes the thread through an eventfd.
 */
#include "trainer/dispatcher.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "shared/curve.h"
#include "shared/dispatch_proto.h"
#include "shared/endian.h"
#include "shared/log.h"
#include "trainer/dispatch_check.h"
#include "trainer/dispatch_conns.h"
#include "trainer/dispatch_impl.h"

static void *plain_alloc(size_t size, void *ctx) { (void)ctx; return malloc(size); }
static void plain_free(void *p, size_t size, void *ctx) { (void)size; (void)ctx; free(p); }

struct dispatcher_config dispatcher_config_default(void)
{
    struct dispatcher_config c = { 0 };
    c.subset = "train";
    c.flip = c.color = c.crop = -1;
    c.split_batches = 4;
    c.worker_timeout_ms = 5000;
    c.stall_secs = 10;
    c.max_workers = 64;
    c.max_connections = 128;
    return c;
}

/* ------------------------------------------------------------- logging */

/* Peer log lines: a burst of LOG_BURST, then one per second; lines that were
 * held back are counted in the next one. */
static int log_allowed(struct dispatcher *d)
{
    double now = log_now();
    d->tokens += now - d->tokens_at;
    d->tokens_at = now;
    if (d->tokens > LOG_BURST) d->tokens = LOG_BURST;
    if (d->tokens >= 1) { d->tokens -= 1; return 1; }
    d->suppressed++;
    return 0;
}

static const char *held_back(struct dispatcher *d, char *buf, size_t n)
{
    buf[0] = 0;
    if (d->suppressed) snprintf(buf, n, " (%" PRIu64 " similar lines held back)", d->suppressed);
    d->suppressed = 0;
    return buf;
}

static const char *peer_label(const struct peer *p, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s%s", p->name[0] ? p->name : "unregistered peer", p->addr[0] ? " (" : "",
             p->addr, p->addr[0] ? ")" : "");
    return buf;
}

/* -------------------------------------------------------------- sending */

void dispatch_send_to(struct dispatcher *d, const struct peer *p, struct dproto_msg *m)
{
    uint8_t buf[512];
    m->session = d->session;
    size_t n = dproto_encode(m, buf, sizeof buf);
    if (!n) return;
    if (zmq_send(d->sock, p->id, p->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return;
    zmq_send(d->sock, buf, n, ZMQ_DONTWAIT);
}


/* ----------------------------------------------------------------- peers */

static struct peer *peer_find(struct dispatcher *d, const uint8_t *id, size_t n, int add)
{
    struct peer *spare = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *p = &d->peers[i];
        if (p->used && p->idlen == n && memcmp(p->id, id, n) == 0) return p;
        if (!p->used && !spare) spare = p;
        if (p->used && !p->registered && !p->banned && (!oldest || p->last_heard < oldest->last_heard)) oldest = p;
    }
    if (!add) return NULL;
    struct peer *p = spare ? spare : oldest;
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->used = 1;
    memcpy(p->id, id, n);
    p->idlen = n;
    p->last_heard = log_now();
    return p;
}

static int workers_alive(struct dispatcher *d)
{
    int n = 0;
    for (int i = 0; i < MAX_PEERS; i++) n += d->peers[i].used && d->peers[i].registered;
    return n;
}

static void peer_drop(struct dispatcher *d, struct peer *p, const char *how)
{
    char lb[160], hb[64];
    char what[96] = "";
    uint64_t first, end;
    if (dispatch_lease_release_range(d, p, 1, &first, &end))
        snprintf(what, sizeof what, "; split [%" PRIu64 ", %" PRIu64 ") goes back to the queue", first, end);
    p->registered = 0;
    int alive = workers_alive(d);
    pthread_mutex_lock(&d->mu);
    d->st.workers = alive;
    pthread_mutex_unlock(&d->mu);
    log_info("worker %s %s%s; %d worker%s left%s", peer_label(p, lb, sizeof lb), how, what, alive, alive == 1 ? "" : "s",
             held_back(d, hb, sizeof hb));
    if (!p->banned) p->used = 0;
}

static void malformed(struct dispatcher *d, struct peer *p, const char *why)
{
    char lb[160], hb[64];
    pthread_mutex_lock(&d->mu);
    uint64_t total = ++d->st.dropped;
    pthread_mutex_unlock(&d->mu);
    if (!p) return;
    p->bad++;
    if (p->bad >= BAN_AFTER && !p->banned) {
        p->banned = 1;
        /* our own worker over the private ipc endpoint: a bug that no retry heals */
        if (strncmp(p->addr, "localhost:", 10) == 0) {
            pthread_mutex_lock(&d->mu);
            snprintf(d->fatal, sizeof d->fatal, "local worker %s keeps sending malformed batches (%s); stopping",
                     peer_label(p, lb, sizeof lb), why);
            pthread_mutex_unlock(&d->mu);
        }
        if (p->registered) peer_drop(d, p, "is ignored from now on: too many malformed messages");
        else log_warn("ignoring %s from now on: %u malformed messages (%" PRIu64 " dropped in all)",
                      peer_label(p, lb, sizeof lb), p->bad, total);
        return;
    }
    if (log_allowed(d))
        log_warn("dropped a malformed message from %s: %s [%u from this peer, %" PRIu64 " in all]%s",
                 peer_label(p, lb, sizeof lb), why, p->bad, total, held_back(d, hb, sizeof hb));
}

/* REFUSED has the same layout in every protocol version: a worker of
 * another version gets it with its own version in the header, so it can
 * read why (version 0: ours). */
static void refuse_as(struct dispatcher *d, struct peer *p, uint16_t version, const char *field, const char *ours,
                      const char *theirs)
{
    struct dproto_msg m = { .type = DPROTO_REFUSED, .session = d->session };
    snprintf(m.u.refused.field, sizeof m.u.refused.field, "%s", field);
    snprintf(m.u.refused.ours, sizeof m.u.refused.ours, "%s", ours);
    snprintf(m.u.refused.theirs, sizeof m.u.refused.theirs, "%s", theirs);
    uint8_t buf[256];
    size_t n = dproto_encode(&m, buf, sizeof buf);
    if (n && version) le_put_u16(buf + 4, version);
    if (n && zmq_send(d->sock, p->id, p->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) zmq_send(d->sock, buf, n, ZMQ_DONTWAIT);
    pthread_mutex_lock(&d->mu);
    d->st.refused++;
    pthread_mutex_unlock(&d->mu);
    char lb[160], hb[64];
    if (log_allowed(d))
        log_warn("refused worker %s: %s differs (ours %s, theirs %s)%s", peer_label(p, lb, sizeof lb), field, ours,
                 theirs, held_back(d, hb, sizeof hb));
}

static void refuse(struct dispatcher *d, struct peer *p, const char *field, const char *ours, const char *theirs)
{
    refuse_as(d, p, 0, field, ours, theirs);
}

static void on_register(struct dispatcher *d, struct peer *p, const struct dproto_register *r)
{
    const struct dispatcher_config *c = &d->cfg;
    char field[DPROTO_FIELD_MAX], ours[DPROTO_NAME_MAX], theirs[DPROTO_NAME_MAX];
    snprintf(p->name, sizeof p->name, "%s", r->name[0] ? r->name : "unnamed");
    if (dispatch_register_differs(c, r, field, ours, theirs)) {
        refuse(d, p, field, ours, theirs);
        p->registered = 0;
        return;
    }
#define DIFF(field, ...) do { snprintf(ours, sizeof ours, __VA_ARGS__); refuse(d, p, field, ours, theirs); \
                              p->registered = 0; return; } while (0)
    int was = p->registered;
    if (!was && workers_alive(d) >= c->max_workers) {
        snprintf(theirs, sizeof theirs, "one more");
        DIFF("workers", "at most %d", c->max_workers);
    }
#undef DIFF
    dispatch_lease_release(d, p, 1);   /* a worker that registers again has dropped its lease */
    p->registered = 1;
    p->wants = 0;
    p->last_hb = 0;
    struct dproto_msg m = { .type = DPROTO_REGISTERED };
    struct dproto_registered *o = &m.u.ok;
    o->batch_size = c->batch_size; o->image_size = c->image_size; o->channels = c->channels;
    o->split_batches = (uint32_t)c->split_batches;
    o->heartbeat_ms = (uint32_t)(d->hb_s * 1000);
    o->timeout_ms = (uint32_t)c->worker_timeout_ms;
    o->eval = (uint32_t)c->eval;
    o->window = (uint32_t)c->window;
    o->seed = c->seed;
    o->examples = c->examples;
    o->flip = c->flip; o->color = c->color; o->crop = c->crop;
    snprintf(o->subset, sizeof o->subset, "%s", c->subset);
    dispatch_send_to(d, p, &m);
    if (!was) {
        int alive = workers_alive(d);
        pthread_mutex_lock(&d->mu);
        d->st.joined++;
        d->st.workers = alive;
        pthread_mutex_unlock(&d->mu);
        char lb[160];
        log_info("worker %s joined; %d worker%s", peer_label(p, lb, sizeof lb), alive, alive == 1 ? "" : "s");
    }
}

static void on_batch(struct dispatcher *d, struct peer *p, zmq_msg_t *body, const struct dproto_msg *m)
{
    char why[160];
    const char *bad = dispatch_batch_wrong(&d->cfg, &m->u.batch, why, sizeof why);
    if (bad) { malformed(d, p, bad); return; }
    uint64_t k = m->u.batch.index, W = (uint64_t)d->cfg.window;
    int taken = 0;
    pthread_mutex_lock(&d->mu);
    struct slot *s = &d->slots[k % W];
    if (k >= d->next && k < d->next + W && !s->full) {
        zmq_msg_init(&s->msg);
        zmq_msg_move(&s->msg, body);
        s->b = m->u.batch;
        const uint8_t *base = zmq_msg_data(&s->msg);
        s->b.labels = base + dproto_batch_labels_off();
        s->b.ids = base + dproto_batch_ids_off(s->b.header.n);
        s->b.pixels = base + dproto_batch_pixels_off(s->b.header.n);
        s->full = 1;
        s->index = k;
        d->st.batches++;
        taken = 1;
    } else {
        d->st.stale++;
    }
    pthread_mutex_unlock(&d->mu);
    if (!taken) return;
    p->batches++;
    p->last_batch = k;
    p->last_batch_at = log_now();
    uint64_t lease = m->u.batch.lease;
    int ri = lease ? dispatch_range_of_lease(d, lease) : -1;
    if (ri >= 0 && d->ranges[ri].peer == (int)(p - d->peers) &&
        dispatch_lowest_missing(d, d->ranges[ri].first, d->ranges[ri].end) >= d->ranges[ri].end) {
        dispatch_range_remove(d, ri);
        dispatch_lease_finished(d, p, lease);
    }
}

static void on_message(struct dispatcher *d, struct peer *p, zmq_msg_t *body)
{
    const uint8_t *buf = zmq_msg_data(body);
    size_t len = zmq_msg_size(body);
    struct dproto_msg m;
    if (len >= 8 && le_get_u32(buf) == DPROTO_MAGIC && le_get_u16(buf + 4) != DPROTO_VERSION) {
        char theirs[16], ours[16];
        snprintf(theirs, sizeof theirs, "%u", le_get_u16(buf + 4));
        snprintf(ours, sizeof ours, "%u", DPROTO_VERSION);
        if (!p->name[0]) snprintf(p->name, sizeof p->name, "unregistered peer");
        refuse_as(d, p, le_get_u16(buf + 4), "protocol version", ours, theirs);
        return;
    }
    if (dproto_parse(buf, len, &m) != STATUS_OK) { malformed(d, p, status_msg()); return; }
    double now = log_now();
    if (m.type == DPROTO_REGISTER) { p->last_heard = now; on_register(d, p, &m.u.reg); return; }
    if (!p->registered || m.session != d->session) {
        pthread_mutex_lock(&d->mu);
        d->st.stale++;
        pthread_mutex_unlock(&d->mu);
        if (now - p->last_reset > 0.5 && m.type != DPROTO_BYE) {
            struct dproto_msg r = { .type = DPROTO_RESET };
            dispatch_send_to(d, p, &r);
            p->last_reset = now;
        }
        return;
    }
    p->last_heard = now;
    switch (m.type) {
    case DPROTO_REQUEST:
        /* it finished (or dropped) a lease: what is missing of it goes back;
         * a request sent before our LEASE arrived names an older one and
         * changes nothing */
        dispatch_lease_dropped(d, p, m.u.done);
        if (m.u.want && !m.u.holds && !p->wants) { p->wants = 1; p->want_since = now; }
        if (m.u.want && m.u.holds && m.u.holds == p->lease && !p->queued && !p->wants_next) {
            p->wants_next = 1;
            p->next_since = now;
        }
        break;
    case DPROTO_HEARTBEAT: p->hb = m.u.hb; p->have_hb = 1; break;
    case DPROTO_BATCH: on_batch(d, p, body, &m); break;
    case DPROTO_BYE:
        peer_drop(d, p, "left");
        conn_watch_goodbye(d->conns);
        pthread_mutex_lock(&d->mu);
        d->st.left++;
        pthread_mutex_unlock(&d->mu);
        break;
    default: malformed(d, p, "a message type only a consumer sends"); break;
    }
}

/* One message off the socket; 0 when there is none. */
static int recv_one(struct dispatcher *d)
{
    zmq_msg_t idm, body;
    zmq_msg_init(&idm);
    if (zmq_msg_recv(&idm, d->sock, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&idm); return 0; }
    int more = zmq_msg_more(&idm);
    zmq_msg_init(&body);
    int have_body = more && zmq_msg_recv(&body, d->sock, 0) >= 0;
    int extra = 0;
    more = have_body && zmq_msg_more(&body);
    while (more) {   /* frames beyond one: each is bounded by ZMQ_MAXMSGSIZE and dropped at once */
        zmq_msg_t x;
        zmq_msg_init(&x);
        if (zmq_msg_recv(&x, d->sock, 0) < 0) { zmq_msg_close(&x); break; }
        more = zmq_msg_more(&x);
        zmq_msg_close(&x);
        extra++;
    }
    struct peer *p = peer_find(d, zmq_msg_data(&idm), zmq_msg_size(&idm), 1);
    if (p && have_body && !p->addr[0]) {
        const char *a = zmq_msg_gets(&body, "Peer-Address");
        snprintf(p->addr, sizeof p->addr, "%s", a && a[0] ? a : "local");
    }
    if (p && p->banned) {
        pthread_mutex_lock(&d->mu);
        d->st.dropped++;
        pthread_mutex_unlock(&d->mu);
    } else if (!have_body) {
        malformed(d, p, "an empty message");
    } else if (extra) {
        char why[64];
        snprintf(why, sizeof why, "a message of %d frames (one expected)", extra + 1);
        malformed(d, p, why);
    } else if (p) {
        on_message(d, p, &body);
    } else {
        malformed(d, NULL, "peer table full");
    }
    zmq_msg_close(&body);
    zmq_msg_close(&idm);
    return 1;
}

/* ------------------------------------------------------------- periodic */

static void say_stall(struct dispatcher *d, uint64_t next, double waited)
{
    char lb[160], what[256] = "";
    int ri = -1;
    for (int i = 0; i < d->nranges; i++)
        if (d->ranges[i].first <= next && next < d->ranges[i].end) { ri = i; break; }
    int alive = workers_alive(d);
    if (ri >= 0 && d->ranges[ri].peer >= 0) {
        struct peer *p = &d->peers[d->ranges[ri].peer];
        const char *state = !p->have_hb ? "" : p->hb.state == DPROTO_COMPUTING ? ", then making batches" :
                            p->hb.state == DPROTO_WAITING_CREDIT ? ", then waiting for credit" : ", then idle";
        char last[96] = "no batch sent yet";
        if (p->batches) snprintf(last, sizeof last, "last sent batch %" PRIu64 " %.1f s ago", p->last_batch, log_now() - p->last_batch_at);
        snprintf(what, sizeof what, "split [%" PRIu64 ", %" PRIu64 ") is leased to %s, last heard %.1f s ago (%s%s)",
                 d->ranges[ri].first, d->ranges[ri].end, peer_label(p, lb, sizeof lb), log_now() - p->last_heard, last, state);
    } else if (alive == 0) {
        snprintf(what, sizeof what, "no worker is registered (listening on %.200s)", d->endpoints);
    } else {
        snprintf(what, sizeof what, "no worker holds it (%d registered, none asking for work)", alive);
    }
    log_warn("no batch for %.0f s: waiting for batch %" PRIu64 "; %s; %d worker%s", waited, next, what, alive,
             alive == 1 ? "" : "s");
}

static void periodic(struct dispatcher *d)
{
    double now = log_now();
    char forget[8][DPROTO_NAME_MAX];
    int nf;
    pthread_mutex_lock(&d->mu);
    nf = d->nforget;
    memcpy(forget, d->forget, sizeof forget);
    d->nforget = 0;
    uint64_t next = d->next;
    double waiting = d->waiting_since;
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *p = &d->peers[i];
        if (!p->used || !p->registered) continue;
        for (int k = 0; k < nf; k++)
            if (strcmp(p->name, forget[k]) == 0) {
                peer_drop(d, p, "exited");
                pthread_mutex_lock(&d->mu); d->st.left++; pthread_mutex_unlock(&d->mu);
                break;
            }
        if (!p->registered) continue;
        if (now - p->last_heard > d->timeout_s) {
            char how[64];
            snprintf(how, sizeof how, "timed out (silent for %.1f s)", now - p->last_heard);
            peer_drop(d, p, how);
            pthread_mutex_lock(&d->mu); d->st.timed_out++; pthread_mutex_unlock(&d->mu);
        }
    }
    /* consumed ranges */
    while (d->nranges > 0 && d->ranges[0].end <= next) {
        if (d->ranges[0].peer >= 0) dispatch_lease_finished(d, &d->peers[d->ranges[0].peer], d->ranges[0].lease);
        dispatch_range_remove(d, 0);
    }
    dispatch_lease_assign(d);
    /* credit */
    for (int i = 0; i < d->nranges; i++) {
        struct range *r = &d->ranges[i];
        if (r->peer < 0) continue;
        uint64_t l = dispatch_credit_limit(d, r, next);
        if (l > r->granted) {
            r->granted = l;
            struct dproto_msg m = { .type = DPROTO_CREDIT };
            m.u.credit = (struct dproto_credit){ r->lease, l };
            dispatch_send_to(d, &d->peers[r->peer], &m);
        }
    }
    for (int i = 0; i < MAX_PEERS; i++) {
        struct peer *p = &d->peers[i];
        if (!p->used || !p->registered || now - p->last_hb < d->hb_s) continue;
        struct dproto_msg m = { .type = DPROTO_HEARTBEAT };
        dispatch_send_to(d, p, &m);
        p->last_hb = now;
    }
    if (waiting > 0 && now - waiting >= d->cfg.stall_secs) {
        double every = d->cfg.stall_secs * 3 > 30 ? 30 : d->cfg.stall_secs * 3;
        if (d->last_stall_log < waiting || now - d->last_stall_log >= every) {
            say_stall(d, next, now - waiting);
            d->last_stall_log = now;
        }
    }
}

#define DISPATCH_GRACE_S 0.005

/* One round of the socket's work; the caller holds sock_mu. */
static void pump(struct dispatcher *d, int timeout_ms)
{
    zmq_pollitem_t items[3] = { { d->sock, 0, ZMQ_POLLIN, 0 }, { NULL, d->wake_fd, ZMQ_POLLIN, 0 },
                                { conn_watch_socket(d->conns), 0, ZMQ_POLLIN, 0 } };
    int rc = zmq_poll(items, 3, timeout_ms);
    if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) {
        uint64_t v;
        if (read(d->wake_fd, &v, sizeof v) < 0) { /* nothing to do */ }
    }
    /* messages before connection events: a worker's BYE comes before its close */
    if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
        for (int k = 0; k < 256 && recv_one(d); k++) {}
    if (rc > 0 && (items[2].revents & ZMQ_POLLIN)) conn_watch_drain(d->conns);
    conn_watch_tick(d->conns);
    periodic(d);
}

static void *thread_main(void *arg)
{
    struct dispatcher *d = arg;
    while (!atomic_load(&d->quit)) {
        double away = log_now() - atomic_load(&d->consumer_left);
        if (atomic_load(&d->consumer_in) || away < DISPATCH_GRACE_S) {
            double s = atomic_load(&d->consumer_in) ? DISPATCH_GRACE_S : DISPATCH_GRACE_S - away;
            struct timespec ts = { 0, (long)(s * 1e9) + 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        pthread_mutex_lock(&d->sock_mu);
        if (!atomic_load(&d->consumer_in)) pump(d, 50);
        pthread_mutex_unlock(&d->sock_mu);
    }
    return NULL;
}

/* ---------------------------------------------------------------- public */

status dispatcher_new(const struct dispatcher_config *cfg, struct dispatcher **out)
{
    *out = NULL;
    if (!cfg->endpoints || !cfg->endpoints[0]) return FAIL(STATUS_USAGE, "dispatcher: no endpoint");
    if (cfg->batch_size < 1 || cfg->image_size < 1 || cfg->channels < 1 || cfg->examples < 1)
        return FAIL(STATUS_USAGE, "dispatcher: batch size, image size, channels and examples must be set");
    status st = STATUS_OK;
    struct dispatcher *d = calloc(1, sizeof *d);
    if (!d) return FAIL(STATUS_NOMEM, "dispatcher");
    d->cfg = *cfg;
    d->wake_fd = -1;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->sock_mu, NULL);
    struct dispatcher_config *c = &d->cfg;
    if (c->split_batches < 1) c->split_batches = 4;
    if (c->window < 1) c->window = 4 * c->split_batches;
    if (c->window < c->split_batches) c->window = c->split_batches;
    if (c->worker_timeout_ms < 200) c->worker_timeout_ms = 200;
    if (c->stall_secs <= 0) c->stall_secs = 10;
    if (c->max_workers < 1) c->max_workers = 64;
    if (c->max_connections < 1) c->max_connections = 2 * c->max_workers;
    d->timeout_s = c->worker_timeout_ms / 1000.0;
    d->hb_s = d->timeout_s / 5 > 1.0 ? 1.0 : d->timeout_s / 5;
    d->tokens = LOG_BURST;
    d->tokens_at = log_now();
    d->next = d->fresh = c->start_batch;
    d->alloc = c->alloc ? *c->alloc : (struct stream_allocator){ plain_alloc, plain_free, NULL };
    d->max_msg = dproto_batch_size(c->batch_size, c->image_size, c->image_size, c->channels);
    if (!d->max_msg) { st = FAIL(STATUS_USAGE, "dispatcher: batch too large"); goto fail; }
    d->pix_cap = (size_t)c->batch_size * c->image_size * c->image_size * c->channels;
    d->peers = calloc(MAX_PEERS, sizeof *d->peers);
    d->slots = calloc((size_t)c->window, sizeof *d->slots);
    d->labels = d->alloc.alloc((size_t)c->batch_size * sizeof(int32_t), d->alloc.ctx);
    d->ids = malloc((size_t)c->batch_size * sizeof(uint64_t));
    if (c->alloc) d->pixels = d->alloc.alloc(d->pix_cap + 1, d->alloc.ctx);
    if (!d->peers || !d->slots || !d->labels || !d->ids || (c->alloc && !d->pixels)) { st = FAIL(STATUS_NOMEM, "dispatcher buffers"); goto fail; }
    for (;;) {
        if (getentropy(&d->session, sizeof d->session) != 0) d->session = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(log_now() * 1e6);
        if (d->session) break;
    }
    if (c->dump_ids && c->dump_ids[0] && !(d->dump = fopen(c->dump_ids, "a"))) {
        st = FAIL(STATUS_IO, "%s: %s", c->dump_ids, strerror(errno));
        goto fail;
    }
    d->trace = getenv("DEEPER_DISPATCH_TRACE") && atoi(getenv("DEEPER_DISPATCH_TRACE")) > 0;
    const char *pause = getenv("DEEPER_DISPATCH_PAUSE");
    if (pause && sscanf(pause, "%" SCNu64 ":%lf", &d->pause_at, &d->pause_s) != 2) d->pause_s = 0;
    d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->wake_fd < 0) { st = FAIL(STATUS_IO, "eventfd: %s", strerror(errno)); goto fail; }
    d->zctx = zmq_ctx_new();
    if (!d->zctx) { st = FAIL(STATUS_ZMQ, "zmq_ctx_new: %s", zmq_strerror(errno)); goto fail; }
    /* the ZAP handler is bound before the socket exists: it can never fail open */
    int curve = c->curve && curve_opts_enabled(c->curve);
    if (curve && (st = curve_server_new(d->zctx, c->curve, "dispatcher", 1, &d->cs)) != STATUS_OK) goto fail;
    d->sock = zmq_socket(d->zctx, ZMQ_ROUTER);
    if (!d->sock) { st = FAIL(STATUS_ZMQ, "zmq_socket: %s", zmq_strerror(errno)); goto fail; }
    int one = 1, zero = 0, hwm = 8;
    int64_t maxmsg = (int64_t)d->max_msg + (curve ? CURVE_FRAME_MARGIN : 0);
    zmq_setsockopt(d->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(d->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(d->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if ((st = conn_watch_new(d->zctx, d->sock, c->max_connections, &d->conns)) != STATUS_OK) goto fail;
    if (curve && (st = curve_server_secure(d->cs, d->sock)) != STATUS_OK) goto fail;
    char last[256];
    if ((st = stream_socket_attach(d->sock, c->endpoints, 1, "dispatcher", last, sizeof last)) != STATUS_OK) goto fail;
    /* every endpoint as bound (wildcard ports resolved) */
    size_t sz = sizeof d->endpoints;
    if (zmq_getsockopt(d->sock, ZMQ_LAST_ENDPOINT, d->endpoints, &sz) != 0) snprintf(d->endpoints, sizeof d->endpoints, "%s", last);
    if (strchr(c->endpoints, ','))
        snprintf(d->endpoints, sizeof d->endpoints, "%.500s (last: %.400s)", c->endpoints, last);
    if (pthread_create(&d->thread, NULL, thread_main, d) != 0) { st = FAIL(STATUS_IO, "dispatcher: pthread_create"); goto fail; }
    d->started = 1;
    *out = d;
    return STATUS_OK;
fail:
    dispatcher_free(&d);
    return st;
}

status dispatcher_next(struct dispatcher *d, struct dispatch_batch *out, volatile sig_atomic_t *stop,
                       void (*on_idle)(void *ctx), void *ctx, double *wait_s)
{
    if (d->pause_s > 0 && dispatcher_position(d) == d->pause_at) {
        log_info("pausing the consumer for %.0f s before batch %" PRIu64 " (DEEPER_DISPATCH_PAUSE)", d->pause_s, d->pause_at);
        struct timespec ts = { (time_t)d->pause_s, (long)((d->pause_s - (double)(time_t)d->pause_s) * 1e9) };
        nanosleep(&ts, NULL);
        d->pause_s = 0;
    }
    double t0 = log_now();
    uint64_t W = (uint64_t)d->cfg.window;
    status st = STATUS_OK;
    if (d->out_held) { zmq_msg_close(&d->out); d->out_held = 0; }   /* the previous batch's pixels */
    /* take the socket: from the thread, if it is driving it, with a nudge out of its poll */
    atomic_store(&d->consumer_in, 1);
    if (pthread_mutex_trylock(&d->sock_mu) != 0) {
        uint64_t one = 1;
        if (write(d->wake_fd, &one, sizeof one) < 0) { /* its poll ends within 50 ms anyway */ }
        pthread_mutex_lock(&d->sock_mu);
    }
    pump(d, 0);   /* what came in meanwhile; credit for the batch taken last time */
    struct slot *s = &d->slots[d->next % W];
    double idle_at = t0;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int ready = s->full && s->index == d->next;
        if (!ready && d->fatal[0]) st = FAIL(STATUS_STATE, "%s", d->fatal);
        if (!ready && st == STATUS_OK && d->waiting_since == 0) d->waiting_since = t0;
        pthread_mutex_unlock(&d->mu);
        if (ready || st != STATUS_OK) break;
        pump(d, 200);
        if (log_now() - idle_at >= 0.2) {
            idle_at = log_now();
            if (on_idle) on_idle(ctx);
            if (stop && *stop) { st = STATUS_INTERRUPTED; break; }
        }
    }
    pthread_mutex_lock(&d->mu);
    d->waiting_since = 0;
    pthread_mutex_unlock(&d->mu);
    if (st != STATUS_OK) goto done;
    /* the slot stays full (the thread does not touch full slots) while we copy */
    const struct wire_header *h = &s->b.header;
    for (uint32_t i = 0; i < h->n; i++) {
        d->labels[i] = (int32_t)le_get_u32(s->b.labels + 4 * i);
        d->ids[i] = le_get_u64(s->b.ids + 8 * (size_t)i);
    }
    const uint8_t *pixels = s->b.pixels;
    if (d->pixels) {
        memcpy(d->pixels, s->b.pixels, (size_t)h->n * h->h * h->w * h->c);
        pixels = d->pixels;
    }
    *out = (struct dispatch_batch){ (int)h->n, (int)h->h, (int)h->w, (int)h->c, d->labels, d->ids, pixels,
                                    h->epoch, s->index };
    if (d->dump) {
        fprintf(d->dump, "%" PRIu64 " %" PRIu64, s->index, h->epoch);
        for (uint32_t i = 0; i < h->n; i++) fprintf(d->dump, " %" PRIu64, d->ids[i]);
        fputc('\n', d->dump);
        fflush(d->dump);
    }
    pthread_mutex_lock(&d->mu);
    if (d->pixels) {
        zmq_msg_close(&s->msg);
    } else {   /* the message moves out of the window (its credit goes back) and lives until the next call */
        zmq_msg_init(&d->out);
        zmq_msg_move(&d->out, &s->msg);
        zmq_msg_close(&s->msg);
        d->out_held = 1;
    }
    s->full = 0;
    d->next++;
    pthread_mutex_unlock(&d->mu);
done:
    atomic_store(&d->consumer_left, log_now());
    atomic_store(&d->consumer_in, 0);
    pthread_mutex_unlock(&d->sock_mu);
    if (wait_s) *wait_s += log_now() - t0;
    return st;
}

uint64_t dispatcher_position(struct dispatcher *d) { return dispatch_next_snapshot(d); }

int dispatcher_depth(struct dispatcher *d)
{
    int n = 0;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->cfg.window; i++) n += d->slots[i].full;
    pthread_mutex_unlock(&d->mu);
    return n;
}

int dispatcher_window(struct dispatcher *d) { return d->cfg.window; }

void dispatcher_stats(struct dispatcher *d, struct dispatcher_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    pthread_mutex_unlock(&d->mu);
}

const char *dispatcher_endpoints(struct dispatcher *d) { return d->endpoints; }

void dispatcher_forget(struct dispatcher *d, const char *name)
{
    pthread_mutex_lock(&d->mu);
    if (d->nforget < 8) snprintf(d->forget[d->nforget++], DPROTO_NAME_MAX, "%s", name);
    pthread_mutex_unlock(&d->mu);
}

void dispatcher_free(struct dispatcher **pd)
{
    struct dispatcher *d = pd ? *pd : NULL;
    if (!d) return;
    if (d->started) {
        atomic_store(&d->quit, 1);
        pthread_join(d->thread, NULL);
    }
    if (d->slots)
        for (int i = 0; i < d->cfg.window; i++)
            if (d->slots[i].full) zmq_msg_close(&d->slots[i].msg);
    if (d->out_held) zmq_msg_close(&d->out);
    if (d->sock) zmq_close(d->sock);
    conn_watch_free(&d->conns);
    curve_server_free(&d->cs);
    if (d->zctx) zmq_ctx_term(d->zctx);
    if (d->wake_fd >= 0) close(d->wake_fd);
    if (d->dump) fclose(d->dump);
    if (d->labels) d->alloc.free(d->labels, (size_t)d->cfg.batch_size * sizeof(int32_t), d->alloc.ctx);
    if (d->pixels) d->alloc.free(d->pixels, d->pix_cap + 1, d->alloc.ctx);
    free(d->ids);
    free(d->peers);
    free(d->ranges);
    free(d->slots);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->sock_mu);
    free(d);
    *pd = NULL;
}
