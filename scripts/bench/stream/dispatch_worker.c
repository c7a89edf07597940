/*
 * dispatch_worker.c — the dispatcher half of stream_bench.c (included by it).
 *
 * Workers: forked processes, each one DEALER that follows proto/dispatch.md
 * like augment/lease_client.c (REGISTER every 250 ms until REGISTERED,
 * REQUEST, send a LEASE's batches below its credit limit, ask for the next
 * lease at the last batch of the current one and go on with it, REQUEST
 * when idle, heartbeats, RESET -> register again, BYE on SIGTERM), but
 * sends pre-made batches: a ring of RING full-size messages whose pixels are
 * made once; only the 96-byte fixed part and header are rewritten for each
 * batch, and a buffer is reused only after ZeroMQ released it (zero-copy
 * send, as the bare side).  lease_client.c itself cannot be used: its
 * batches come from worker_batch_at, which reads and augments a dataset.
 *
 * Consumer: dispatcher_new with the run's settings and dispatcher_next in a
 * loop, as the trainer does (CPU backend: plain malloc'd batch buffer).
 * Besides the throughput it prints the mean time between batches at the
 * start of a split and inside one: a gap at split starts is time the
 * connection stood idle between leases.
 */
#include <signal.h>
#include <stdatomic.h>

#include "shared/dispatch_proto.h"

#define RING 8
#define BENCH_SEED 7
#define BENCH_EXAMPLES (1u << 20)

static volatile sig_atomic_t g_worker_stop;
static void on_term(int sig) { (void)sig; g_worker_stop = 1; }

static void ring_release(void *data, void *hint) { (void)data; atomic_store((atomic_int *)hint, 0); }

static void ctrl_send(void *s, struct dproto_msg *m, uint64_t session)
{
    uint8_t buf[512];
    m->session = m->type == DPROTO_REGISTER ? 0 : session;
    size_t len = dproto_encode(m, buf, sizeof buf);
    if (len) zmq_send(s, buf, len, ZMQ_DONTWAIT);
}

static int dispatch_worker(const char *ep, int id, uint32_t n, uint32_t h, uint32_t c, const struct curve_opts *co)
{
    signal(SIGTERM, on_term);
    size_t full = dproto_batch_size(n, h, h, c);
    uint8_t *ring[RING];
    atomic_int busy[RING];
    for (int i = 0; i < RING; i++) {
        if (!(ring[i] = malloc(full))) return 1;
        memset(ring[i], 0, full);                 /* labels 0, ids 0, pixels made once */
        atomic_init(&busy[i], 0);
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 200, hwm = 64, imm = 1;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &imm, sizeof imm);
    if (co && curve_client_apply(s, co) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
    if (zmq_connect(s, ep) != 0) return 1;
    struct dproto_msg reg = { .type = DPROTO_REGISTER };
    reg.u.reg.manifest_crc = 1;
    reg.u.reg.manifest_len = 1;
    reg.u.reg.records = BENCH_EXAMPLES;
    reg.u.reg.flip = reg.u.reg.color = reg.u.reg.crop = reg.u.reg.color_ordering = -1;
    reg.u.reg.fast_jpeg = 1;
    snprintf(reg.u.reg.name, sizeof reg.u.reg.name, "bench-%d", id);
    int registered = 0, requested = 0, slot = 0;
    uint64_t session = 0, lease = 0, first = 0, end = 0, limit = 0, next = 0, done = 0;
    struct dproto_lease queued = { 0 };
    int report = 0;
    double hb_s = 1, last_reg = 0, last_sent = 0, last_req = 0;
    while (!g_worker_stop) {
        /* send what the credit allows */
        while (lease && next < limit && !atomic_load(&busy[slot])) {
            if (!queued.lease && !requested && end - next <= 1) {   /* at the last batch: ask for the next lease */
                struct dproto_msg r = { .type = DPROTO_REQUEST };
                r.u.done = done; r.u.holds = lease; r.u.want = 1;
                ctrl_send(s, &r, session);
                requested = 1; report = 0; last_req = log_now();
            }
            uint8_t *buf = ring[slot];
            struct wire_header wh;
            wire_header_init(&wh, 0, 1, next, next * n / BENCH_EXAMPLES, n, h, h, c, 0, BENCH_SEED);
            dproto_batch_begin(buf, session, lease, next, &wh);
            atomic_store(&busy[slot], 1);
            zmq_msg_t m;
            zmq_msg_init_data(&m, buf, full, ring_release, &busy[slot]);
            if (zmq_msg_send(&m, s, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&m); break; }
            slot = (slot + 1) % RING;
            last_sent = log_now();
            if (++next >= end) {   /* on to the queued lease, if any */
                done = lease; lease = 0; requested = 0;
                if (queued.lease) {
                    lease = queued.lease; first = queued.first; end = queued.end; limit = queued.limit; next = first;
                    queued.lease = 0; report = 1;
                }
                if (!lease) break;
            }
        }
        double now = log_now();
        if (!registered && now - last_reg >= 0.25) { ctrl_send(s, &reg, 0); last_reg = now; }
        int want = !lease || (!queued.lease && end - next <= 1);
        if (registered && (report || (want && (!requested || now - last_req >= hb_s)))) {
            struct dproto_msg m = { .type = DPROTO_REQUEST };
            m.u.done = done; m.u.holds = lease; m.u.want = (uint32_t)want;
            ctrl_send(s, &m, session);
            report = 0;
            if (want) { requested = 1; last_req = now; }
            last_sent = now;
        }
        if (registered && now - last_sent >= hb_s) {
            struct dproto_msg m = { .type = DPROTO_HEARTBEAT };
            m.u.hb.lease = lease; m.u.hb.next = next; m.u.hb.state = lease ? DPROTO_WAITING_CREDIT : DPROTO_IDLE;
            ctrl_send(s, &m, session);
            last_sent = now;
        }
        int can_send = lease && next < limit;
        zmq_pollitem_t it = { s, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&it, 1, can_send ? 1 : 50) <= 0) continue;
        for (;;) {
            zmq_msg_t in;
            zmq_msg_init(&in);
            if (zmq_msg_recv(&in, s, ZMQ_DONTWAIT) < 0) { zmq_msg_close(&in); break; }
            struct dproto_msg m;
            int ok = dproto_parse(zmq_msg_data(&in), zmq_msg_size(&in), &m) == STATUS_OK;
            zmq_msg_close(&in);
            if (!ok) continue;
            if (m.type == DPROTO_REFUSED) { fprintf(stderr, "refused: %s\n", m.u.refused.field); return 1; }
            if (m.type == DPROTO_REGISTERED) {
                if (registered && m.session == session) continue;
                registered = 1; session = m.session; lease = 0; queued.lease = 0; requested = 0; done = 0;
                hb_s = m.u.ok.heartbeat_ms / 1000.0;
            } else if (m.type == DPROTO_RESET) {
                registered = 0; lease = 0; queued.lease = 0; last_reg = 0;
            } else if (registered && m.session == session) {
                const struct dproto_lease *l = &m.u.lease;
                if (m.type == DPROTO_LEASE && l->lease != lease && l->lease != queued.lease) {
                    if (l->after && lease && l->after == lease) {
                        queued = *l; requested = 0;
                    } else if (l->after && !(!lease && l->after == done)) {
                        done = l->lease; report = 1;          /* follows a lease we no longer hold */
                    } else {
                        if (!l->after) queued.lease = 0;
                        lease = l->lease; first = l->first; end = l->end; limit = l->limit; next = first; requested = 0;
                    }
                } else if (m.type == DPROTO_CREDIT) {
                    if (m.u.credit.lease == lease && m.u.credit.limit > limit) limit = m.u.credit.limit;
                    if (m.u.credit.lease == queued.lease && m.u.credit.limit > queued.limit) queued.limit = m.u.credit.limit;
                }
            }
        }
    }
    if (registered) { struct dproto_msg m = { .type = DPROTO_BYE }; ctrl_send(s, &m, session); }
    zmq_close(s);
    zmq_ctx_term(ctx);       /* waits for the ring's messages to be released (linger) */
    for (int i = 0; i < RING; i++) free(ring[i]);
    return 0;
}

static int dispatch_bench(const char *ep, int batches, uint32_t n, uint32_t h, uint32_t w, uint32_t c, int workers,
                          const struct curve_opts *so, const struct curve_opts *co)
{
    if (h != w) { fprintf(stderr, "dispatcher: square images only\n"); return 2; }
    struct dispatcher_config dc = dispatcher_config_default();
    dc.endpoints = ep;
    dc.batch_size = n; dc.image_size = h; dc.channels = c;
    dc.seed = BENCH_SEED;
    dc.examples = dc.records = BENCH_EXAMPLES;
    dc.manifest_crc = 1; dc.manifest_len = 1;
    dc.num_classes = 1000;
    dc.end_batch = (uint64_t)batches;
    dc.curve = so;
    if (getenv("SPLIT")) dc.split_batches = atoi(getenv("SPLIT"));
    if (getenv("WINDOW")) dc.window = atoi(getenv("WINDOW"));
    struct dispatcher *d;
    if (dispatcher_new(&dc, &d) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); return 1; }
    pid_t pids[16];
    if (workers < 1) workers = 1;
    if (workers > 16) workers = 16;
    for (int i = 0; i < workers; i++)
        if ((pids[i] = fork()) == 0) _exit(dispatch_worker(ep, i, n, h, c, co));
    double t0 = 0, prev = 0, gap[2] = { 0, 0 };
    int rc = 0, ngap[2] = { 0, 0 };
    uint64_t K = (uint64_t)dc.split_batches;
    for (int i = 0; i < batches; i++) {
        struct dispatch_batch b;
        if (dispatcher_next(d, &b, NULL, NULL, NULL, NULL) != STATUS_OK) { fprintf(stderr, "%s\n", status_msg()); rc = 1; break; }
        double now = log_now();
        if (i == 0) t0 = now;
        else {   /* the time between batches: the first of a split, or one inside it */
            int first = b.index % K == 0;
            gap[first] += now - prev;
            ngap[first]++;
        }
        prev = now;
    }
    double dt = log_now() - t0;
    for (int i = 0; i < workers; i++) kill(pids[i], SIGTERM);
    for (int i = 0; i < workers; i++) waitpid(pids[i], NULL, 0);
    dispatcher_free(&d);
    size_t total = dproto_batch_size(n, h, w, c);
    if (!rc)
        printf("batches %d bytes %zu wall_s %.4f gap_ms split_start %.1f inside %.1f\n", batches - 1,
               total * (size_t)(batches - 1), dt, ngap[1] ? 1e3 * gap[1] / ngap[1] : 0.0, ngap[0] ? 1e3 * gap[0] / ngap[0] : 0.0);
    return rc;
}
