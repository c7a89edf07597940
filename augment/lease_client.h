/*
 * lease_client.h — the worker side of the dispatcher protocol
 * (proto/dispatch.md): `deeper augment --dispatcher ENDPOINT`.
 *
 * One DEALER socket connected to the consumer's ROUTER, one thread.  The
 * client registers (dataset identity and whatever settings the command line
 * pinned), learns the run's settings from REGISTERED and opens its example
 * stream through a callback, then loops: ask for a lease, make the lease's
 * batches one at a time (augment/worker.h, worker_batch_at: a batch's content
 * depends only on its index), send each once the consumer has granted credit
 * for it, ask again.  Between examples it answers the socket (heartbeats,
 * credit, a replacing lease), so a slow batch never looks like a dead worker.
 * When the consumer is silent for its timeout (it restarted, the network
 * broke) the client drops its lease and registers again, by itself, for as
 * long as it runs; a REFUSED ends the run with the consumer's reason.
 *
 * Security: with cfg.curve holding keys (shared/curve.h), the DEALER is a
 * CURVE client of the consumer's key before it connects; otherwise plain.
 */
#ifndef DEEPER_AUGMENT_LEASE_CLIENT_H
#define DEEPER_AUGMENT_LEASE_CLIENT_H

#include <signal.h>

#include "augment/worker.h"
#include "shared/curve.h"
#include "shared/dispatch_proto.h"
#include "shared/status.h"

struct lease_client_config {
    const char *endpoint;                 /* tcp://host:port or ipc://path */
    struct dproto_register reg;           /* identity and pinned settings, name */
    /* open (or reopen, when the settings changed) the example stream for a run */
    status (*open)(const struct dproto_registered *run, void *ctx, struct worker **out);
    void *open_ctx;
    const struct curve_opts *curve;       /* NULL or no keys: plain socket */
};

/* Run until *stop is set (STATUS_OK) or the consumer refuses us (STATUS_USAGE,
 * message naming the field and both values). */
status lease_client_run(const struct lease_client_config *cfg, volatile sig_atomic_t *stop);

#endif
