/*
 * dispatcher.h — the consumer side of the dispatcher protocol
 * (proto/dispatch.md): how `deeper train` and `deeper eval` get batches from
 * augment workers, local and remote, through one code path.
 *
 * The dispatcher binds one ZeroMQ ROUTER on every endpoint given (an ipc://
 * path in a private 0700 directory for the local workers, plus tcp:// with
 * --listen) and runs a thread that:
 *   - registers workers: their protocol version, dataset identity and pinned
 *     settings must match the run, else REFUSED with one line on each side
 *     naming the field and both values;
 *   - cuts the stream of batch indices into splits of split_batches and
 *     leases them to workers as they ask, each worker its current split and
 *     the next one queued behind it (a dead worker's split, and a split the
 *     consumer needs before a worker's later one, are leased again);
 *   - grants credit so that only batches in the window [next, next + window)
 *     are ever sent: the consumer holds at most `window` batches, whatever
 *     the number of workers;
 *   - sends heartbeats and drops a worker silent for worker_timeout_ms;
 *   - checks every message (one frame; ZMQ_MAXMSGSIZE is the largest
 *     legitimate batch), drops and counts malformed ones, and ignores a peer
 *     that keeps sending them, with rate-limited log lines;
 *   - says so when the batch the consumer waits for has not come for
 *     stall_secs, naming the worker it waits for and what it last did.
 * The consumer takes batches strictly in index order (dispatcher_next).
 * A batch's content is a function of (seed, index) only (augment/worker.h,
 * worker_batch_at), so the sequence is the same for any number of workers,
 * whichever made each batch, and a run resumed at position P continues
 * exactly.
 *
 * Threading: dispatcher_next / _position / _stats from one consumer thread;
 * the dispatcher's own thread owns the socket.
 */
#ifndef DEEPER_TRAINER_DISPATCHER_H
#define DEEPER_TRAINER_DISPATCHER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"
#include "shared/stream.h"

struct dispatcher_config {
    const char *endpoints;          /* comma-separated; each is bound */
    int eval;                       /* eval stream: manifest order, central crop */
    const char *subset;             /* "train", "validation" */
    uint32_t batch_size, image_size, channels;
    uint64_t seed;
    uint64_t examples;              /* records in the subset */
    uint64_t start_batch;           /* first index consumed (resume position) */
    uint64_t end_batch;             /* 0: endless; else stop leasing at this index */
    int8_t flip, color, crop;       /* -1: the dataset profile's */
    uint32_t manifest_crc;          /* dataset identity (dproto_dataset_identity) */
    uint64_t manifest_len, records;
    uint64_t id_limit;              /* example ids lie below this (rejected inputs leave gaps); 0: records */
    int32_t num_classes;            /* labels must be in [0, num_classes) */
    int split_batches;              /* default 4 */
    int window;                     /* credits in batches; default 4 x split_batches */
    int worker_timeout_ms;          /* default 5000 */
    double stall_secs;              /* default 10 */
    int max_workers;                /* registered at once; default 64 */
    int max_connections;            /* open connections at once (over it the oldest one without a
                                       handshake is closed, else the new one); default 128 */
    /* the batch handed out: with alloc, its pixels are copied into one
     * buffer from it (e.g. pinned memory for a GPU); NULL: no copy, the
     * pixels point into the received message, kept until the next call */
    const struct stream_allocator *alloc;
    const char *dump_ids;           /* debugging: append "index epoch id..." per batch consumed */
    /* CURVE (shared/curve.h): with keys, only workers whose public keys are
     * in curve->authorized_keys (and holders of the consumer's own pair, its
     * local workers) get past the handshake; NULL or no keys: plain */
    const struct curve_opts *curve;
};

struct dispatcher_config dispatcher_config_default(void);

struct dispatch_batch {
    int n, h, w, c;
    const int32_t *labels;
    const uint64_t *ids;
    const uint8_t *pixels;
    uint64_t epoch;                 /* train: epoch of the first example; eval: pass */
    uint64_t index;
};

struct dispatcher_stats {
    int workers;                    /* registered and alive now */
    uint64_t joined, left, timed_out, refused, released;
    uint64_t dropped;               /* malformed messages */
    uint64_t stale;                 /* well-formed but unwanted (duplicates, old leases) */
    uint64_t batches;               /* accepted */
};

struct dispatcher;

status dispatcher_new(const struct dispatcher_config *cfg, struct dispatcher **out);

/* The next batch in index order.  Blocks; every 200 ms without it calls
 * on_idle(ctx) (NULL: none) and checks *stop (STATUS_INTERRUPTED).  *out
 * (pixels included) is valid until the next call or dispatcher_free.  *wait_s accumulates the time waited. */
status dispatcher_next(struct dispatcher *d, struct dispatch_batch *out, volatile sig_atomic_t *stop,
                       void (*on_idle)(void *ctx), void *ctx, double *wait_s);

/* Index of the next batch to be consumed (the checkpoint's position). */
uint64_t dispatcher_position(struct dispatcher *d);
/* Batches held (received, not yet consumed). */
int dispatcher_depth(struct dispatcher *d);
/* The credit window as settled at dispatcher_new: at most this many batches held or granted ahead. */
int dispatcher_window(struct dispatcher *d);
void dispatcher_stats(struct dispatcher *d, struct dispatcher_stats *out);
/* Endpoints bound, as ZeroMQ resolved them (comma-separated). */
const char *dispatcher_endpoints(struct dispatcher *d);
/* A worker known by this name is gone (e.g. a local child that exited):
 * release its lease now instead of at its timeout. */
void dispatcher_forget(struct dispatcher *d, const char *name);

void dispatcher_free(struct dispatcher **d);

/* A private directory (mode 0700, under $TMPDIR or /tmp) for the local
 * workers' ipc endpoint: dir gets its path, endpoint "ipc://DIR/workers".
 * dispatcher_ipc_dir_remove deletes the socket file and the directory. */
status dispatcher_ipc_dir_make(const char *prefix, char *dir, size_t dir_n, char *endpoint, size_t ep_n);
void dispatcher_ipc_dir_remove(const char *dir);

#endif
