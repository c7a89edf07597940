/*
 * dispatch_lease.c — the dispatcher's splits and leases (proto/dispatch.md,
 * SPLITS, CREDIT AND ORDER): which worker makes which batch indices.
 *
 * `ranges` holds the splits between the consumer's position and the fresh
 * cursor that are leased or waiting for a worker, sorted by first index.
 * A worker holds at most two leases: the one it works on (`lease`) and the
 * one it starts next (`queued`, asked for when it is at the last batch of
 * the current one, so the worker streams on across split boundaries
 * without waiting for a round trip through its own queued batches).
 *
 * Leasing rule, in this order: the lowest range without a worker goes to
 * the idle worker that asked first; when no worker is idle, a range inside
 * the window goes to the holder of the latest later lease in place of what
 * it holds (its unreceived parts go back), so the batch the consumer waits
 * for is always being made when any worker is alive; then a worker asking
 * for its next lease gets the lowest range, queued.  Fresh splits are cut
 * only for a worker that asks, so no worker holds more than two (a lease
 * beyond the window waits for credit with at most one batch made).  A
 * released lease keeps only the part not yet received; a re-lease of a
 * departed worker's split is logged.
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

/* Lease *which (p->lease or p->queued) goes back to the queue: what of it
 * has not been received. */
static int release_one(struct dispatcher *d, struct peer *p, uint64_t *which, int orphan, uint64_t *first, uint64_t *end)
{
    uint64_t lease = *which;
    *which = 0;
    if (!lease) return 0;
    int i = dispatch_range_of_lease(d, lease);
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

int dispatch_lease_release_range(struct dispatcher *d, struct peer *p, int orphan, uint64_t *first, uint64_t *end)
{
    uint64_t a, b;
    (void)release_one(d, p, &p->queued, 0, &a, &b);   /* never started: no line about it */
    p->wants_next = 0;
    return release_one(d, p, &p->lease, orphan, first, end);
}

void dispatch_lease_release(struct dispatcher *d, struct peer *p, int orphan)
{
    uint64_t a, b;
    (void)dispatch_lease_release_range(d, p, orphan, &a, &b);
}

void dispatch_lease_finished(struct dispatcher *d, struct peer *p, uint64_t lease)
{
    (void)d;
    if (!lease) return;
    if (lease == p->lease) {
        p->lease = p->queued;
        p->queued = 0;
        p->wants_next = 0;
    } else if (lease == p->queued) {
        p->queued = 0;
    }
}

void dispatch_lease_dropped(struct dispatcher *d, struct peer *p, uint64_t lease)
{
    uint64_t a, b;
    if (!lease) return;
    if (lease == p->lease) {
        (void)release_one(d, p, &p->lease, 1, &a, &b);
        p->lease = p->queued;
        p->queued = 0;
        p->wants_next = 0;
    } else if (lease == p->queued) {
        (void)release_one(d, p, &p->queued, 0, &a, &b);
    }
}

uint64_t dispatch_credit_limit(const struct dispatcher *d, const struct range *r, uint64_t next)
{
    uint64_t lim = next + (uint64_t)d->cfg.window;
    return lim < r->end ? lim : r->end;
}

void dispatch_lease_to(struct dispatcher *d, int ri, struct peer *p, uint64_t next, uint64_t after)
{
    struct range *r = &d->ranges[ri];
    r->peer = (int)(p - d->peers);
    r->lease = ++d->lease_seq;
    r->granted = dispatch_credit_limit(d, r, next);
    if (r->granted < r->first) r->granted = r->first;
    if (after) {
        p->queued = r->lease;
        p->wants_next = 0;
    } else {
        p->lease = r->lease;
        p->wants = 0;
    }
    struct dproto_msg m = { .type = DPROTO_LEASE };
    m.u.lease = (struct dproto_lease){ r->lease, r->first, r->end, r->granted, after };
    dispatch_send_to(d, p, &m);
    if (d->trace)
        log_info("lease %" PRIu64 " [%" PRIu64 ", %" PRIu64 ") to %s, credit to %" PRIu64 "%s", r->lease, r->first, r->end,
                 p->name, r->granted, after ? ", queued after its current one" : "");
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
        struct peer *idle = NULL, *ahead = NULL;
        for (int i = 0; i < MAX_PEERS; i++) {
            struct peer *p = &d->peers[i];
            if (!p->used || !p->registered) continue;
            if (p->wants && !p->lease && (!idle || p->want_since < idle->want_since)) idle = p;
            if (p->wants_next && p->lease && !p->queued && (!ahead || p->next_since < ahead->next_since)) ahead = p;
        }
        if (ri < 0) {
            if (!idle && !ahead) return;
            if (d->fresh < next) d->fresh = next;
            if (d->cfg.end_batch && d->fresh >= d->cfg.end_batch) return;
            if (d->fresh >= next + W + K * (uint64_t)d->cfg.max_workers) return;
            uint64_t end = (d->fresh / K + 1) * K;
            if (d->cfg.end_batch && end > d->cfg.end_batch) end = d->cfg.end_batch;
            if ((ri = dispatch_range_add(d, d->fresh, end)) < 0) return;
            d->fresh = end;
        }
        if (idle) { dispatch_lease_to(d, ri, idle, next, 0); continue; }
        /* no idle worker: a range inside the window goes to the holder of the
         * latest lease, if that is later, in place of what it holds */
        struct range *want = &d->ranges[ri];
        int vi = -1;
        if (want->first < next + W)
            for (int i = 0; i < d->nranges; i++)
                if (d->ranges[i].peer >= 0 && d->ranges[i].first > want->first) vi = i;
        if (vi >= 0) {
            struct peer *victim = &d->peers[d->ranges[vi].peer];
            uint64_t want_first = want->first;
            dispatch_lease_release(d, victim, 0);   /* want stays where it is: it is lower */
            for (ri = 0; ri < d->nranges; ri++)
                if (d->ranges[ri].peer < 0 && d->ranges[ri].first == want_first) break;
            if (ri == d->nranges) return;
            dispatch_lease_to(d, ri, victim, next, 0);
            continue;
        }
        /* a worker near the end of its lease gets the next one queued, so it
         * never waits for a round trip between splits */
        if (ahead) { dispatch_lease_to(d, ri, ahead, next, ahead->lease); continue; }
        return;
    }
}
