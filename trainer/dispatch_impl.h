/*
 * dispatch_impl.h — the dispatcher's state, shared by its own files only
 * (trainer/dispatcher.c: socket, peers, messages, the consumer's side;
 * trainer/dispatch_lease.c: splits and leases).  Nothing outside the
 * dispatcher includes this; its interface is trainer/dispatcher.h.
 *
 *   peers   everyone who sent us a message (registered workers, and others
 *           while they are counted or ignored), keyed by ROUTER routing id;
 *   ranges  the splits between the consumer's position and the fresh cursor
 *           that are leased or waiting for a worker, sorted by first index;
 *   slots   the window: slot k % window holds batch k (the received ZeroMQ
 *           message itself, no copy) for next <= k < next + window.
 * The dispatcher's thread owns peers, ranges and the socket; slots, `next`
 * and the consumer's waiting time are shared under `mu`.
 */
#ifndef DEEPER_TRAINER_DISPATCH_IMPL_H
#define DEEPER_TRAINER_DISPATCH_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <zmq.h>

#include "shared/curve.h"
#include "shared/dispatch_proto.h"
#include "trainer/dispatch_conns.h"
#include "trainer/dispatcher.h"

#define MAX_PEERS 512
#define BAN_AFTER 20                 /* malformed messages before a peer is ignored */
#define LOG_BURST 5                  /* peer log lines: a burst of 5, then one per second */

struct peer {
    int used, registered, banned;
    uint8_t id[256];
    size_t idlen;
    char addr[64];
    char name[DPROTO_NAME_MAX];
    double last_heard, last_hb, last_reset, want_since;
    int wants;                       /* idle and asking for a lease */
    int wants_next;                  /* near the end of `lease`, asking for the one to follow it */
    double next_since;
    uint64_t lease;                  /* lease id it works on, 0 none */
    uint64_t queued;                 /* lease id it starts after `lease`, 0 none (only with a lease) */
    uint32_t bad;
    uint64_t batches, last_batch;
    double last_batch_at;
    struct dproto_heartbeat hb;
    int have_hb;
};

struct range {
    uint64_t first, end, lease, granted;
    int peer;                        /* -1: waiting for a worker */
    int orphan;                      /* was leased before (a re-lease is logged) */
    char was[DPROTO_NAME_MAX];
};

struct slot { int full; uint64_t index; zmq_msg_t msg; struct dproto_batch b; };

struct dispatcher {
    struct dispatcher_config cfg;
    char endpoints[1024];
    void *zctx, *sock;
    struct curve_server *cs;        /* CURVE: the ZAP handler, NULL when plain */
    struct conn_watch *conns;
    char fatal[320];                /* set under mu: a local worker that cannot be right; next() stops with it */
    int wake_fd;
    pthread_t thread;
    int started;
    atomic_int quit;
    /* Who drives the socket (and peers, ranges, the connection monitor):
     * whoever holds sock_mu.  The consumer takes it inside dispatcher_next
     * and receives its batches itself; the thread takes it only when the
     * consumer has been out of dispatcher_next for DISPATCH_GRACE_S (a
     * training step), so a consumer that keeps asking pays no hand-off. */
    pthread_mutex_t sock_mu;
    atomic_int consumer_in;          /* 1 while the consumer is in dispatcher_next */
    _Atomic double consumer_left;    /* log_now() when it last left */
    uint64_t session, lease_seq, fresh;
    struct peer *peers;
    struct range *ranges;
    int nranges, cap_ranges;
    double hb_s, timeout_s;
    size_t max_msg;
    /* log rate limit */
    double tokens, tokens_at;
    uint64_t suppressed;
    /* shared with the consumer under mu */
    pthread_mutex_t mu;
    struct slot *slots;
    uint64_t next;
    double waiting_since, last_stall_log;
    struct dispatcher_stats st;
    char forget[8][DPROTO_NAME_MAX];
    int nforget;
    /* the batch handed out: labels and ids converted to host order; the
     * pixels either copied into `pixels` (cfg.alloc given: the backend's
     * buffers) or left in the received message, held in `out` until the
     * next call (no copy) */
    int32_t *labels;
    uint64_t *ids;
    uint8_t *pixels;
    size_t pix_cap;
    zmq_msg_t out;
    int out_held;
    struct stream_allocator alloc;
    FILE *dump;
    int trace;                       /* DEEPER_DISPATCH_TRACE=1: a line per lease */
    uint64_t pause_at;               /* DEEPER_DISPATCH_PAUSE=K:S (benchmarks): the consumer */
    double pause_s;                  /* sleeps S s before taking batch K; the thread runs on */
};
/* dispatcher.c */
void dispatch_send_to(struct dispatcher *d, const struct peer *p, struct dproto_msg *m);

/* dispatch_lease.c */
/* How far range r may be sent with the consumer at next: the window's end, at most r's end. */
uint64_t dispatch_credit_limit(const struct dispatcher *d, const struct range *r, uint64_t next);
/* The consumer's position (`next`), read under mu. */
uint64_t dispatch_next_snapshot(struct dispatcher *d);
/* First index of [first, end) that is neither consumed nor held. */
uint64_t dispatch_lowest_missing(struct dispatcher *d, uint64_t first, uint64_t end);
/* Index in ranges of the range leased as `lease`, -1 when none. */
int dispatch_range_of_lease(struct dispatcher *d, uint64_t lease);
void dispatch_range_remove(struct dispatcher *d, int i);
/* Insert [first, end) waiting for a worker; its index, -1 when out of memory. */
int dispatch_range_add(struct dispatcher *d, uint64_t first, uint64_t end);
/* The worker's leases go back to the queue (what it has not delivered; its
 * queued lease silently); 1 and [*first, *end) when something of the lease
 * it works on did.  orphan: log that part's re-lease. */
int dispatch_lease_release_range(struct dispatcher *d, struct peer *p, int orphan, uint64_t *first, uint64_t *end);
void dispatch_lease_release(struct dispatcher *d, struct peer *p, int orphan);
/* The worker says it finished or dropped `lease`: what is missing of it goes
 * back to the queue; its queued lease becomes the current one. */
void dispatch_lease_dropped(struct dispatcher *d, struct peer *p, uint64_t lease);
/* Every batch of `lease` is in (or consumed): the queued lease becomes the
 * current one. */
void dispatch_lease_finished(struct dispatcher *d, struct peer *p, uint64_t lease);
/* Lease ranges[ri] to p with credit up to next + window, to start now
 * (after = 0) or after p's current lease (after = p->lease); sends LEASE. */
void dispatch_lease_to(struct dispatcher *d, int ri, struct peer *p, uint64_t next, uint64_t after);
/* Hand out leases to the workers that asked (see dispatch_lease.c). */
void dispatch_lease_assign(struct dispatcher *d);

#endif
