/*
 * dispatch_conns.c — connection events of the dispatcher's socket (see
 * dispatch_conns.h).  The monitor's events carry the connection's file
 * descriptor; the peer's address is read with getpeername when the
 * connection is accepted and remembered until it closes, with its state
 * (handshake pending, done, or shut down by us) and when it was accepted.
 */
#include "trainer/dispatch_conns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "shared/curve.h"
#include "shared/endian.h"
#include "shared/log.h"

#define MAX_FDS 65536
#define BURST 5

enum { PENDING = 1, READY, SHUT };

struct conn_watch {
    void *mon;
    char endpoint[64];
    int cap, open;
    uint64_t opened, closed, refused, failed;
    char (*addr)[48];            /* by fd */
    uint8_t *state;              /* by fd: PENDING, READY, SHUT (0: not open) */
    uint64_t *seq;               /* by fd: order of acceptance */
    uint64_t accepted;
    int max_fd;                  /* highest fd seen: the end of the search for the oldest pending one */
    uint64_t evicted;
    char last_refused[48];
    struct bucket { double tokens, at; } note, warn;   /* opened/closed lines; refusals */
    uint64_t held;
    uint64_t goodbyes;           /* workers that said BYE and whose connection has not closed yet */
};

/* Lines of each kind: a burst of BURST, then one per second (so a flood of
 * connections cannot use up the lines that say what was refused). */
static int allowed(struct conn_watch *w, struct bucket *b)
{
    double now = log_now();
    b->tokens += now - b->at;
    b->at = now;
    if (b->tokens > BURST) b->tokens = BURST;
    if (b->tokens >= 1) { b->tokens -= 1; return 1; }
    w->held++;
    return 0;
}

static void peer_of(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(out, n, "a local peer");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return;
    char host[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, n, "[%s]:%u", host, ntohs(a->sin6_port));
    }
}

status conn_watch_new(void *zctx, void *sock, int cap, struct conn_watch **out)
{
    static int seq;
    *out = NULL;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct conn_watch *w = calloc(1, sizeof *w);
    if (!w) return FAIL(STATUS_NOMEM, "connection monitor");
    w->addr = calloc(MAX_FDS, sizeof *w->addr);
    w->state = calloc(MAX_FDS, 1);
    w->seq = calloc(MAX_FDS, sizeof *w->seq);
    w->cap = cap;
    w->note = w->warn = (struct bucket){ BURST, log_now() };
    status st = STATUS_OK;
    if (!w->addr || !w->state || !w->seq) { st = FAIL(STATUS_NOMEM, "connection monitor"); goto fail; }
    snprintf(w->endpoint, sizeof w->endpoint, "inproc://dispatch-monitor-%d-%d", (int)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor(sock, w->endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0) {
        st = FAIL(STATUS_ZMQ, "zmq_socket_monitor: %s", zmq_strerror(errno));
        goto fail;
    }
    w->mon = zmq_socket(zctx, ZMQ_PAIR);
    if (!w->mon || zmq_connect(w->mon, w->endpoint) != 0) {
        st = FAIL(STATUS_ZMQ, "monitor socket: %s", zmq_strerror(errno));
        goto fail;
    }
    *out = w;
    return STATUS_OK;
fail:
    conn_watch_free(&w);
    return st;
}

void *conn_watch_socket(struct conn_watch *w) { return w->mon; }
int conn_watch_open(const struct conn_watch *w) { return w->open; }

void conn_watch_drain(struct conn_watch *w)
{
    for (int k = 0; k < 256; k++) {
        uint8_t ev[6];
        char ep[256];
        int n = zmq_recv(w->mon, ev, sizeof ev, ZMQ_DONTWAIT);
        if (n < 0) return;
        int m = zmq_recv(w->mon, ep, sizeof ep - 1, 0);
        if (n != 6 || m < 0) continue;
        uint16_t event = le_get_u16(ev);
        int32_t value = (int32_t)le_get_u32(ev + 2);
        int fd = value;
        char held[64] = "";
        int known = fd >= 0 && fd < MAX_FDS;
        if (event == ZMQ_EVENT_ACCEPTED) {
            char a[48];
            peer_of(fd, a, sizeof a);
            if (known) {
                snprintf(w->addr[fd], sizeof w->addr[fd], "%s", a);
                w->state[fd] = PENDING;
                w->seq[fd] = ++w->accepted;
                if (fd > w->max_fd) w->max_fd = fd;
            }
            w->open++;
            w->opened++;
            int victim = -1;
            if (w->open > w->cap) {
                for (int i = 0; i <= w->max_fd; i++)   /* the oldest still in its handshake */
                    if (w->state[i] == PENDING && i != fd && (victim < 0 || w->seq[i] < w->seq[victim])) victim = i;
                if (victim < 0) victim = fd;
                shutdown(victim, SHUT_RDWR);   /* libzmq sees the end of stream and closes it */
                if (victim < MAX_FDS && victim >= 0) w->state[victim] = SHUT;
                w->refused++;
                if (victim != fd) w->evicted++;
                snprintf(w->last_refused, sizeof w->last_refused, "%s", victim != fd ? w->addr[victim] : a);
                if (allowed(w, &w->warn)) {
                    if (w->held) snprintf(held, sizeof held, " (%" PRIu64 " similar lines held back)", w->held);
                    w->held = 0;
                    if (victim == fd)
                        log_warn("refused a connection from %s: %d open, the cap is %d [%" PRIu64 " refused in all]%s",
                                 a, w->open - 1, w->cap, w->refused, held);
                    else
                        log_warn("closed the connection from %s, still without a handshake, for one from %s: %d open, "
                                 "the cap is %d [%" PRIu64 " refused in all]%s", w->addr[victim], a, w->open - 1, w->cap,
                                 w->refused, held);
                }
            } else if (allowed(w, &w->note)) {
                log_info("connection from %s (%d open)", a, w->open);
            }
        } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            if (known && w->state[fd] == PENDING) w->state[fd] = READY;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            const char *a = known && w->addr[fd][0] ? w->addr[fd] : "a peer";
            if (w->open > 0) w->open--;
            w->closed++;
            if (allowed(w, &w->note)) {
                if (w->held) snprintf(held, sizeof held, " (%" PRIu64 " similar lines held back)", w->held);
                w->held = 0;
                if (w->goodbyes > 0)
                    log_info("connection from %s closed after its worker left (%d open; %" PRIu64 " closed in all)%s",
                             a, w->open, w->closed, held);
                else
                    log_info("connection from %s closed without a goodbye (%d open; %" PRIu64 " closed in all; a "
                             "peer sending a frame over the size limit is cut off this way)%s", a, w->open, w->closed,
                             held);
            }
            if (w->goodbyes > 0) w->goodbyes--;
            if (known) { w->addr[fd][0] = 0; w->state[fd] = 0; }
        } else {
            w->failed++;
            const char *a = known && w->addr[fd][0] ? w->addr[fd] : "a peer";
            char why[200];
            curve_handshake_describe(event, (uint32_t)value, why, sizeof why);
            /* a key refused by the ZAP handler has its line there, with the key */
            if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && allowed(w, &w->warn))
                log_warn("refused %s: %s [%" PRIu64 " refused handshakes in all]", a, why, w->failed);
        }
    }
}

void conn_watch_goodbye(struct conn_watch *w)
{
    if (w) w->goodbyes++;
}

void conn_watch_tick(struct conn_watch *w)
{
    if (!w->held) return;
    double now = log_now();
    if (w->warn.tokens + (now - w->warn.at) < 1) return;
    (void)allowed(w, &w->warn);
    log_warn("connections: %d open, the cap is %d; %" PRIu64 " accepted, %" PRIu64 " refused over the cap (the last "
             "from %s), %" PRIu64 " closed in all (%" PRIu64 " lines held back)", w->open, w->cap, w->opened, w->refused,
             w->last_refused[0] ? w->last_refused : "-", w->closed, w->held);
    w->held = 0;
}

void conn_watch_free(struct conn_watch **pw)
{
    struct conn_watch *w = pw ? *pw : NULL;
    if (!w) return;
    if (w->mon) zmq_close(w->mon);
    free(w->addr);
    free(w->state);
    free(w->seq);
    free(w);
    *pw = NULL;
}
