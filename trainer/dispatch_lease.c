/*
 * dispatch_lease.c — the dispatcher's splits and leases (proto/dispatch.md,
 * SPLITS, CREDIT AND ORDER): which worker makes which batch indices.
 *
 * `ranges` holds the splits between the consumer's position and the fresh
 * cursor that are leased or waiting for a worker, sorted by first index.
 * Leasing rule: the lowest range without a worker goes to the idle worker
 * that asked first; when no worker is idle and a busy worker holds a later
 * range, that worker's lease is replaced (its unreceived part goes back), so
 * the batch the consumer waits for is always being made when any worker is
 * alive.  Fresh splits are cut only when a worker is idle, so every worker
 * holds one lease at a time (a lease beyond the window waits for credit
 * with at most one batch made).  A released lease keeps only the part not
 * yet received; a re-lease of a departed worker's split is logged.
 *
 * Runs on the dispatcher's thread only (it owns ranges and peers); the
 * window's slots and `next` are read under the shared mutex.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "trainer/dispatch_impl.h"

uint64_t dispatch_next_snapshot(struct dispatcher *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t n = d->next;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* First index of [first, end) that is neither consumed nor held. */
uint64_t dispatch_lowest_missing(struct dispatcher *d, uint64_t first, uint64_t end)
{
    pthread_mutex_lock(&d->mu);
    uint64_t k = first > d->next ? first : d->next;
    uint64_t W = (uint64_t)d->cfg.window;
    while (k < end && k < d->next + W) {
        struct slot *s = &d->slots[k % W];
        if (!(s->full && s->index == k)) break;
        k++;
    }
    pthread_mutex_unlock(&d->mu);
    return k;
}

int dispatch_range_of_lease(struct dispatcher *d, uint64_t lease)
{
    for (int i = 0; i < d->nranges; i++)
        if (d->ranges[i].lease == lease && d->ranges[i].peer >= 0) return i;
    return -1;
}

void dispatch_range_remove(struct dispatcher *d, int i)
{
    memmove(&d->ranges[i], &d->ranges[i + 1], (size_t)(d->nranges - i - 1) * sizeof *d->ranges);
    d->nranges--;
}

int dispatch_range_add(struct dispatcher *d, uint64_t first, uint64_t end)
{
    if (d->nranges == d->cap_ranges) {
        int cap = d->cap_ranges ? 2 * d->cap_ranges : 64;
        struct range *r = realloc(d->ranges, (size_t)cap * sizeof *r);
        if (!r) return -1;
        d->ranges = r;
        d->cap_ranges = cap;
    }
    int i = d->nranges;
    while (i > 0 && d->ranges[i - 1].first > first) i--;
    memmove(&d->ranges[i + 1], &d->ranges[i], (size_t)(d->nranges - i) * sizeof *d->ranges);
    d->ranges[i] = (struct range){ .first = first, .end = end, .peer = -1 };
    d->nranges++;
    return i;
}

/* The worker's lease goes back to the queue (what it has not delivered);
 * 1 and [*first, *end) when something did. */
int dispatch_lease_release_range(struct dispatcher *d, struct peer *p, int orphan, uint64_t *first, uint64_t *end)
{
    if (!p->lease) return 0;
    int i = dispatch_range_of_lease(d, p->lease);
    p->lease = 0;
    if (i < 0) return 0;
    struct range *r = &d->ranges[i];
    r->first = dispatch_lowest_missing(d, r->first, r->end);
    *first = r->first;
    *end = r->end;
    r->peer = -1;
    r->orphan = orphan;
    snprintf(r->was, sizeof r->was, "%s", p->name);
    r->lease = 0;
    if (d->trace) log_info("lease of %s released: [%" PRIu64 ", %" PRIu64 ") waits for a worker", p->name, r->first, r->end);
    if (r->first < r->end) return 1;
    dispatch_range_remove(d, i);
    return 0;
}

void dispatch_lease_release(struct dispatcher *d, struct peer *p, int orphan)
{
    uint64_t a, b;
    (void)dispatch_lease_release_range(d, p, orphan, &a, &b);
}

void dispatch_lease_to(struct dispatcher *d, int ri, struct peer *p, uint64_t next)
{
    struct range *r = &d->ranges[ri];
    r->peer = (int)(p - d->peers);
    r->lease = ++d->lease_seq;
    uint64_t lim = next + (uint64_t)d->cfg.window;
    r->granted = lim < r->end ? lim : r->end;
    if (r->granted < r->first) r->granted = r->first;
    p->lease = r->lease;
    p->wants = 0;
    struct dproto_msg m = { .type = DPROTO_LEASE };
    m.u.lease = (struct dproto_lease){ r->lease, r->first, r->end, r->granted };
    dispatch_send_to(d, p, &m);
    if (d->trace) log_info("lease %" PRIu64 " [%" PRIu64 ", %" PRIu64 ") to %s, credit to %" PRIu64, r->lease, r->first, r->end, p->name, r->granted);
    if (r->orphan) {
        d->st.released++;
        log_info("split [%" PRIu64 ", %" PRIu64 ") re-leased to %s (was %s's)", r->first, r->end, p->name, r->was);
        r->orphan = 0;
    }
}

void dispatch_lease_assign(struct dispatcher *d)
{
    uint64_t next = dispatch_next_snapshot(d), W = (uint64_t)d->cfg.window, K = (uint64_t)d->cfg.split_batches;
    for (int guard = 0; guard < 4 * MAX_PEERS; guard++) {
        /* the lowest range without a worker, or a fresh one */
        int ri = -1;
        for (int i = 0; i < d->nranges; i++)
            if (d->ranges[i].peer < 0) { ri = i; break; }
        struct peer *idle = NULL;
        for (int i = 0; i < MAX_PEERS; i++) {
            struct peer *p = &d->peers[i];
            if (p->used && p->registered && p->wants && !p->lease && (!idle || p->want_since < idle->want_since)) idle = p;
        }
        if (ri < 0) {
            if (!idle) return;
            if (d->fresh < next) d->fresh = next;
            if (d->cfg.end_batch && d->fresh >= d->cfg.end_batch) return;
            if (d->fresh >= next + W + K * (uint64_t)d->cfg.max_workers) return;
            uint64_t end = (d->fresh / K + 1) * K;
            if (d->cfg.end_batch && end > d->cfg.end_batch) end = d->cfg.end_batch;
            if ((ri = dispatch_range_add(d, d->fresh, end)) < 0) return;
            d->fresh = end;
        }
        if (idle) { dispatch_lease_to(d, ri, idle, next); continue; }
        /* no idle worker: take over the latest lease if it is later than this range */
        struct range *want = &d->ranges[ri];
        if (want->first >= next + W) return;
        int vi = -1;
        for (int i = 0; i < d->nranges; i++)
            if (d->ranges[i].peer >= 0 && d->ranges[i].first > want->first) vi = i;
        if (vi < 0) return;
        struct peer *victim = &d->peers[d->ranges[vi].peer];
        uint64_t want_first = want->first;
        dispatch_lease_release(d, victim, 0);   /* want stays where it is: it is lower */
        for (ri = 0; ri < d->nranges; ri++)
            if (d->ranges[ri].peer < 0 && d->ranges[ri].first == want_first) break;
        if (ri == d->nranges) return;
        dispatch_lease_to(d, ri, victim, next);
    }
}