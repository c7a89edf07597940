/*
 * eval.h — `deeper eval`: precision @ 1 and recall @ 5 over one exact pass.
 *
 * eval_once: newest checkpoint in checkpoint_dir, its EMA weights (TF's
 * variables_to_restore), W local augment workers in eval mode (central crop,
 * no distortion), and one pass: batches are consumed until every worker's
 * END_OF_PASS marker has arrived; every example is counted exactly once
 * (duplicates by example id are ignored and reported), and the total must
 * equal the subset's count in the manifest.  Prints TF's line on stdout
 *     2026-11-25 04:01:02.123456: precision @ 1 = 0.9321 recall @ 5 = 0.9987 [10000 examples]
 * and writes "Precision @ 1" / "Recall @ 5" at the checkpoint's step into an
 * event file in eval_dir (default CHECKPOINT_DIR/eval, created with its
 * parents).  With 5 classes or fewer recall @ 5 is 1 by construction and the
 * line says "(trivially 1: C classes <= 5)" after the number.
 */
#ifndef DEEPER_EVAL_H
#define DEEPER_EVAL_H

#include <stdint.h>

#include "shared/augment_flags.h"
#include "shared/curve.h"
#include "shared/status.h"

struct eval_config {
    const char *data_dir, *checkpoint_dir, *eval_dir, *subset, *device;
    int run_once;
    int eval_interval_secs;
    int batch_size;
    int num_preprocess_threads;
    int threads;
    const char *listen;             /* also accept remote workers here (tcp://...) */
    double worker_timeout;
    int max_connections;            /* the dispatcher's cap on open connections (0: 128) */
    struct curve_opts curve;        /* --curve_secret_key/--authorized_keys/--insecure for listen */          /* seconds (0: 5) */
    struct augment_flags augment;   /* passed on to the workers as given */
};

struct eval_config eval_config_default(void);

struct eval_result {
    int64_t step;
    uint64_t examples, top1, top5, duplicates;
    uint64_t skipped;              /* subset records the workers skipped as bad (not evaluated) */
    double precision1, recall5;
};

status eval_once(const struct eval_config *c, struct eval_result *r);
/* eval_once, then every eval_interval_secs unless run_once (until SIGINT). */
status eval_run(const struct eval_config *c);

#endif
