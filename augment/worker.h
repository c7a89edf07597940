/*
 * worker.h — one augment worker's example stream: which records it reads,
 * in what order, and how they become batches.
 *
 * Train stream (endless).  Epoch e orders the subset as: shards in a random
 * permutation keyed by (seed, e), records of a shard in key order.  Worker I
 * of W takes the contiguous range [N*I/W, N*(I+1)/W) of that sequence, so the
 * W workers together read every record exactly once per epoch.  Its records
 * pass through a shuffle buffer of min(input_queue_memory_factor * 1024, the
 * worker's records per epoch) entries (TF's RandomShuffleQueue with
 * min_after_dequeue): full before the first dequeue, each dequeue takes a
 * uniformly random entry and refills the hole with the next record.  The
 * buffer holds record references (shard, index, epoch), not bytes: the
 * records stay in the LMDB map, which is what makes a 16 Ki buffer cheap.
 * The batch header carries the epoch its first example was read in; every
 * example is distorted with the epoch it was read in.
 *
 * The stream of worker I is a pure function of (dataset, seed, I, W), so
 * `--start_batch S` fast-forwards by replaying the shuffle over references
 * only (no record is read or decoded) and the next batch is exactly batch S
 * of a run that started at 0.  (A record that fails its CRC is skipped and
 * replaced by the next draw; a fast-forward cannot see that, so an exact
 * resume assumes the skipped part had no corrupt records.)
 *
 * Eval stream.  Records in manifest order (shards in order, keys ascending);
 * worker I takes the same contiguous range; no shuffle, central crop, batches
 * of batch_size except the last, then an END_OF_PASS marker with the count.
 * Pass p carries epoch = p.  Endless passes unless num_passes > 0.
 *
 * Bad records (CRC, header, undecodable JPEG) are skipped, counted and logged
 * once each; they never stop the worker.
 */
#ifndef DEEPER_AUGMENT_WORKER_H
#define DEEPER_AUGMENT_WORKER_H

#include <signal.h>
#include <stdint.h>

#include "augment/distort.h"
#include "augment/sender.h"
#include "shared/manifest.h"
#include "shared/status.h"

/* Exit statuses of `deeper-augment` for errors that a restart cannot heal,
 * found while the worker starts: bad usage (2, as every deeper program), and
 * a dataset that is missing, damaged or contradicts its manifest (3).  A
 * supervisor stops at once on them instead of retrying; status 1 stays
 * "failed, a restart may help" (I/O, memory, ZeroMQ). */
#define WORKER_EXIT_USAGE 2
#define WORKER_EXIT_PERMANENT 3

struct worker_config {
    const char *data_dir;
    const char *subset;         /* "train", "validation" */
    int worker, num_workers;
    int batch_size;
    int eval;                   /* eval stream (see above) */
    int num_passes;             /* eval: stop after this many passes (0: endless) */
    uint64_t start_batch;       /* train: fast-forward to this batch seq */
    int queue_factor;           /* shuffle buffer = queue_factor * 1024 records */
    int jpeg_scale;             /* 1: region + DCT-scaled JPEG decode (augment/jpeg.h); 0: full decode */
    struct distort_config dc;   /* out_h/out_w/out_c, switches, seed */
};

struct worker_stats {
    uint64_t batches, examples;
    uint64_t bad_records;
    uint64_t epoch;             /* train: epoch being read; eval: pass */
    uint64_t passes_done;
    uint32_t shuffle_capacity;
    double avg_record_bytes;
};

struct worker;

/* Load DIR's manifest, check the subset and every shard it lists (present,
 * record counts as listed), and position the stream (fast-forwarding to
 * cfg->start_batch).  Caller frees with worker_free. */
status worker_open(const struct worker_config *cfg, struct worker **out);

/* The dataset's manifest (borrowed; valid until worker_free). */
const struct manifest *worker_manifest(const struct worker *w);
/* Channels of the subset's records (1 or 3). */
int worker_data_channels(const struct worker *w);

/* Fill b with the next message: a batch, or (eval) an END_OF_PASS marker.
 * STATUS_NOT_FOUND when an eval worker has finished its num_passes.
 * Every header field is set (seq counts from start_batch). */
status worker_next(struct worker *w, struct send_buf *b);

void worker_get_stats(const struct worker *w, struct worker_stats *out);

void worker_free(struct worker **w);

#endif
