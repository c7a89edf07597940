/*
 * test_curve.c — CURVE authentication of the batch stream with real ZeroMQ
 * sockets on loopback TCP: key files (modes, no overwrite, parsing), the
 * listen policy, and the ZAP handler: a listed client key gets its batches
 * through; an unlisted key, a wrong server key and a client without CURVE
 * are refused, each with one log line naming the peer's address and the
 * reason.  One test shows the trap the handler closes: a CURVE server on a
 * context with no ZAP handler admits any client that knows its key.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "augment/sender.h"
#include "shared/curve.h"
#include "shared/stream.h"
#include "shared/wire.h"
#include "tests/tmpdir_util.h"

#define N 2
#define H 4
#define W 4
#define C 3

static char keys[300], auth[300], logpath[300];
static char srv_sec[400], srv_pub[400], w1_sec[400], w1_pub[400], w2_sec[400], w2_pub[400], x_pub[400], x_sec[400];

/* Keys: srv (the server), w1 (authorized), w2 (not), x (another "server");
 * stderr goes to a file the tests read back. */
static void setup(void)
{
    tmpdir_make();
    snprintf(keys, sizeof keys, "%s/keys", tmpdir);
    snprintf(auth, sizeof auth, "%s/auth", tmpdir);
    cr_assert_eq(mkdir(keys, 0700), 0);
    cr_assert_eq(mkdir(auth, 0700), 0);
    cr_assert_eq(curve_keypair_write(keys, "srv", srv_pub, srv_sec, 400), STATUS_OK, "%s", status_msg());
    cr_assert_eq(curve_keypair_write(keys, "w1", w1_pub, w1_sec, 400), STATUS_OK, "%s", status_msg());
    cr_assert_eq(curve_keypair_write(keys, "w2", w2_pub, w2_sec, 400), STATUS_OK, "%s", status_msg());
    cr_assert_eq(curve_keypair_write(keys, "x", x_pub, x_sec, 400), STATUS_OK, "%s", status_msg());
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/w1.key'", w1_pub, auth);
    cr_assert_eq(system(cmd), 0);
    snprintf(logpath, sizeof logpath, "%s/stderr.log", tmpdir);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    dup2(fd, 2);
    close(fd);
}

static void teardown(void) { tmpdir_remove(); }

TestSuite(curve, .init = setup, .fini = teardown, .timeout = 60);

/* Everything logged so far (stderr). */
static const char *logged(void)
{
    static char buf[16384];
    fflush(stderr);
    FILE *f = fopen(logpath, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return buf;
}

static int count_lines(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

// ---------------------------------------------------------------- key files

Test(curve, keygen_modes_and_no_overwrite)
{
    struct stat sb;
    cr_assert_eq(stat(w1_sec, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0600, "secret file mode %o", sb.st_mode & 0777);
    cr_assert_eq(stat(w1_pub, &sb), 0);
    cr_assert_eq(sb.st_mode & 077, 044 & (sb.st_mode & 077));
    char pub[41], sec[41], pub2[41];
    cr_assert_eq(curve_secret_key_load(w1_sec, pub, sec), STATUS_OK, "%s", status_msg());
    cr_assert_eq(curve_public_key_load(w1_pub, pub2), STATUS_OK, "%s", status_msg());
    cr_assert_str_eq(pub, pub2);
    cr_assert_eq(curve_public_key_load(w1_sec, pub2), STATUS_OK);   /* a secret file has the public line */
    cr_assert_str_eq(pub, pub2);
    /* never overwritten */
    cr_assert_eq(curve_keypair_write(keys, "w1", NULL, NULL, 0), STATUS_IO);
    cr_assert(strstr(status_msg(), "not overwriting"), "%s", status_msg());
    cr_assert_eq(curve_secret_key_load(w1_sec, pub2, sec), STATUS_OK);
    cr_assert_str_eq(pub, pub2, "the existing pair was changed");
    /* a secret key others may read is refused */
    chmod(w2_sec, 0644);
    cr_assert_eq(curve_secret_key_load(w2_sec, pub, sec), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "chmod 600"), "%s", status_msg());
    /* a bare Z85 public key file; garbage is refused naming the file */
    char bare[400];
    snprintf(bare, sizeof bare, "%s/bare.key", tmpdir);
    FILE *f = fopen(bare, "w");
    fprintf(f, "%s\n", pub2);
    fclose(f);
    cr_assert_eq(curve_public_key_load(bare, pub), STATUS_OK, "%s", status_msg());
    cr_assert_str_eq(pub, pub2);
    f = fopen(bare, "w");
    fprintf(f, "public-key = \"short\"\n");
    fclose(f);
    cr_assert_eq(curve_public_key_load(bare, pub), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), bare), "%s", status_msg());
}

Test(curve, policy)
{
    cr_assert_eq(curve_policy_check("tcp://0.0.0.0:5555", 0, 0), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "tcp://0.0.0.0:5555") && strstr(status_msg(), "--insecure"), "%s", status_msg());
    cr_assert_eq(curve_policy_check("ipc:///tmp/x,tcp://127.0.0.1:1", 0, 0), STATUS_USAGE);
    cr_assert_eq(curve_policy_check("tcp://0.0.0.0:5555", 0, 1), STATUS_OK);
    cr_assert_eq(curve_policy_check("tcp://0.0.0.0:5555", 1, 0), STATUS_OK);
    cr_assert_eq(curve_policy_check("tcp://0.0.0.0:5555", 1, 1), STATUS_USAGE);
    cr_assert_eq(curve_policy_check("ipc:///tmp/x", 0, 0), STATUS_OK);
    struct curve_opts o = { .secret_key = srv_sec };
    cr_assert_eq(curve_opts_check(&o, 1), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "--authorized_keys"), "%s", status_msg());
    o.authorized_keys = auth;
    cr_assert_eq(curve_opts_check(&o, 1), STATUS_OK);
    cr_assert_eq(curve_opts_check(&o, 0), STATUS_USAGE);
    /* an authorized_keys dir without keys would admit nobody: refused at start */
    char empty[400];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    mkdir(empty, 0700);
    o.authorized_keys = empty;
    void *ctx = zmq_ctx_new();
    struct curve_server *cs = NULL;
    cr_assert_eq(curve_server_new(ctx, &o, "t", 0, &cs), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "no NAME.key"), "%s", status_msg());
    /* one handler per context: a second one cannot take over the first's decisions */
    o.authorized_keys = auth;
    struct curve_server *cs2 = NULL;
    cr_assert_eq(curve_server_new(ctx, &o, "t", 0, &cs), STATUS_OK, "%s", status_msg());
    cr_assert_eq(curve_server_new(ctx, &o, "t", 0, &cs2), STATUS_ZMQ);
    cr_assert(strstr(status_msg(), "zeromq.zap.01"), "%s", status_msg());
    curve_server_free(&cs);
    cr_assert_null(cs);
    zmq_ctx_term(ctx);
}

Test(curve, ipc_dir)
{
    char d[400];
    snprintf(d, sizeof d, "%s/ipc", tmpdir);
    cr_assert_eq(curve_ipc_dir_make(d), STATUS_OK, "%s", status_msg());
    struct stat sb;
    cr_assert_eq(stat(d, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0700);
    cr_assert_eq(curve_ipc_dir_make(d), STATUS_OK);
    chmod(d, 0755);
    cr_assert_eq(curve_ipc_dir_make(d), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "0700"), "%s", status_msg());
}

// ------------------------------------------------- the receiver under CURVE

static struct stream_receiver *curve_receiver(const struct curve_opts *o)
{
    struct stream_config cfg = stream_config_default();
    cfg.endpoint = "tcp://127.0.0.1:*";
    cfg.max_n = N; cfg.h = H; cfg.w = W; cfg.c = C;
    cfg.curve = o;
    struct stream_receiver *r = NULL;
    cr_assert_eq(stream_receiver_new(&cfg, &r), STATUS_OK, "%s", status_msg());
    return r;
}

static struct sender *curve_sender(const char *ep, const struct curve_opts *o)
{
    struct sender_config sc = { .endpoint = ep, .sndhwm = 2, .linger_ms = 0, .max_n = N, .h = H, .w = W, .c = C,
                                .curve = o };
    struct sender *s = NULL;
    cr_assert_eq(sender_new(&sc, &s), STATUS_OK, "%s", status_msg());
    return s;
}

static void send_batch(struct sender *s, uint64_t seq)
{
    struct send_buf *b;
    cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK);
    wire_header_init(&b->header, 0, 1, seq, 0, N, H, W, C, 0, 9);
    for (int i = 0; i < N; i++) { b->labels[i] = i; b->ids[i] = seq * 10 + (uint64_t)i; }
    memset(b->pixels, (int)seq, N * H * W * C);
    cr_assert_eq(sender_send(s, b, NULL), STATUS_OK, "%s", status_msg());
}

Test(curve, listed_key_batches_flow)
{
    struct curve_opts so = { .secret_key = srv_sec, .authorized_keys = auth };
    struct stream_receiver *r = curve_receiver(&so);
    struct curve_opts co = { .secret_key = w1_sec, .server_key = srv_pub };
    struct sender *s = curve_sender(stream_receiver_endpoint(r), &co);
    for (uint64_t k = 0; k < 5; k++) send_batch(s, k);
    for (uint64_t k = 0; k < 5; k++) {
        struct stream_batch *b;
        cr_assert_eq(stream_receiver_next(r, &b, 5000), STATUS_OK, "batch %llu: %s", (unsigned long long)k, status_msg());
        cr_assert_eq(b->header.seq, k);
        cr_assert_eq(b->pixels[0], (uint8_t)k);
        stream_receiver_release(r, b);
    }
    cr_assert_eq(count_lines(logged(), "refused peer"), 0, "%s", logged());
    sender_free(&s);
    stream_receiver_free(&r);
}

/* A refused sender: nothing reaches the receiver, and one line with the
 * peer's address and `reason` (or `reason2`) is logged.  A refusal seen by
 * the ZAP handler always has the address; one that fails the handshake
 * before ZAP names it when the connection is still open when the monitor
 * event is read (on a loaded machine it may already be gone). */
static void expect_refused(const struct curve_opts *co, int plain, const char *reason, const char *reason2, int need_addr)
{
    struct curve_opts so = { .secret_key = srv_sec, .authorized_keys = auth };
    struct stream_receiver *r = curve_receiver(&so);
    struct sender *s = plain ? curve_sender(stream_receiver_endpoint(r), NULL)
                             : curve_sender(stream_receiver_endpoint(r), co);
    struct send_buf *b;
    cr_assert_eq(sender_acquire(s, &b, NULL), STATUS_OK);
    wire_header_init(&b->header, 0, 1, 0, 0, N, H, W, C, 0, 9);
    memset(b->labels, 0, N * 4);
    memset(b->ids, 0, N * 8);
    /* queued on the sender side only: PUSH holds it for a peer that never completes the handshake */
    (void)sender_send(s, b, NULL);
    struct stream_batch *got = NULL;
    cr_assert_eq(stream_receiver_next(r, &got, 1500), STATUS_TIMEOUT, "a refused peer's batch arrived");
    const char *log = logged();
    cr_assert(strstr(log, need_addr ? "refused peer 127.0.0.1" : "refused peer "), "no refusal line:\n%s", log);
    cr_assert(strstr(log, reason) || (reason2 && strstr(log, reason2)), "reason '%s' missing:\n%s", reason, log);
    sender_free(&s);
    stream_receiver_free(&r);
}

Test(curve, unlisted_key_refused)
{
    struct curve_opts co = { .secret_key = w2_sec, .server_key = srv_pub };
    expect_refused(&co, 0, "is not in --authorized_keys", NULL, 1);
    /* libzmq retries the handshake; the lines stay rate-limited */
    cr_assert_leq(count_lines(logged(), "refused peer"), 5, "%s", logged());
}

Test(curve, wrong_server_key_refused)
{
    struct curve_opts co = { .secret_key = w1_sec, .server_key = x_pub };
    expect_refused(&co, 0, "is not this server's public key", NULL, 0);
}

Test(curve, no_key_refused)
{
    /* which side notices the mechanism mismatch first is a race */
    expect_refused(NULL, 1, "does not use CURVE", "hung up during the CURVE handshake", 0);
}

/* The trap: a CURVE server whose context has no ZAP handler admits an
 * unlisted key (libzmq 4.3 fails open).  With the handler (the test above)
 * the same client is refused. */
Test(curve, without_handler_libzmq_fails_open)
{
    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    char pub[41], sec[41];
    cr_assert_eq(curve_secret_key_load(srv_sec, pub, sec), STATUS_OK);
    int one = 1, zero = 0;
    zmq_setsockopt(pull, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(pull, ZMQ_CURVE_SECRETKEY, sec, 40);
    zmq_setsockopt(pull, ZMQ_ZAP_DOMAIN, "deeper", 6);
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_bind(pull, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t len = sizeof ep;
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, ep, &len);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    struct curve_opts co = { .secret_key = w2_sec, .server_key = srv_pub };
    cr_assert_eq(curve_client_apply(push, &co), STATUS_OK, "%s", status_msg());
    cr_assert_eq(zmq_connect(push, ep), 0);
    cr_assert_eq(zmq_send(push, "x", 1, 0), 1);
    int tmo = 3000;
    zmq_setsockopt(pull, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    char buf[4];
    cr_assert_eq(zmq_recv(pull, buf, sizeof buf, 0), 1, "libzmq no longer fails open without a handler");
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

// ---------------------------------------------------- augment --bind side

static void *send_one(void *s)
{
    send_batch(s, 1);
    return NULL;
}

Test(curve, binding_sender_admits_only_listed_consumers)
{
    struct curve_opts so = { .secret_key = srv_sec, .authorized_keys = auth };
    struct sender_config sc = { .endpoint = "tcp://127.0.0.1:*", .bind = 1, .sndhwm = 2, .linger_ms = 0,
                                .max_n = N, .h = H, .w = W, .c = C, .curve = &so };
    /* the sender resolves no wildcard for us: pick a port from a probe socket */
    void *ctx = zmq_ctx_new(), *probe = zmq_socket(ctx, ZMQ_PULL);
    cr_assert_eq(zmq_bind(probe, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t len = sizeof ep;
    zmq_getsockopt(probe, ZMQ_LAST_ENDPOINT, ep, &len);
    zmq_close(probe);
    zmq_ctx_term(ctx);
    sc.endpoint = ep;
    struct sender *s = NULL;
    cr_assert_eq(sender_new(&sc, &s), STATUS_OK, "%s", status_msg());
    /* an unlisted consumer connects first: it gets nothing, and a line is logged */
    struct curve_opts bad = { .secret_key = w2_sec, .server_key = srv_pub };
    struct stream_config rc = stream_config_default();
    rc.endpoint = ep; rc.connect = 1; rc.max_n = N; rc.h = H; rc.w = W; rc.c = C; rc.curve = &bad;
    struct stream_receiver *thief = NULL;
    cr_assert_eq(stream_receiver_new(&rc, &thief), STATUS_OK, "%s", status_msg());
    pthread_t th;     /* PUSH blocks until a consumer completes the handshake: send from a thread */
    cr_assert_eq(pthread_create(&th, NULL, send_one, s), 0);
    struct stream_batch *b = NULL;
    cr_assert_eq(stream_receiver_next(thief, &b, 1500), STATUS_TIMEOUT, "an unlisted consumer got a batch");
    cr_assert(strstr(logged(), "is not in --authorized_keys"), "%s", logged());
    stream_receiver_free(&thief);
    /* a listed one gets it */
    struct curve_opts good = { .secret_key = w1_sec, .server_key = srv_pub };
    rc.curve = &good;
    struct stream_receiver *r = NULL;
    cr_assert_eq(stream_receiver_new(&rc, &r), STATUS_OK, "%s", status_msg());
    cr_assert_eq(stream_receiver_next(r, &b, 5000), STATUS_OK, "%s", status_msg());
    cr_assert_eq(b->header.seq, 1);
    stream_receiver_release(r, b);
    pthread_join(th, NULL);
    stream_receiver_free(&r);
    sender_free(&s);
}
