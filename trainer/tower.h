/*
 * tower.h — data-parallel towers: N copies of one model, one per backend.
 *
 * As in inception_train.py: the global batch is split into N equal parts,
 * tower i runs forward/backward on part i, the gradients are averaged, one
 * RMSProp update is applied and every tower ends the step with identical
 * parameters.  Batch-norm running statistics come from the last tower (TF
 * takes the BN update ops from the last tower only).
 *
 * Tower 0 holds the optimizer slots and the EMA shadows.  The step:
 *   1. every tower: set input, forward, loss, backward (towers run in turn on
 *      the CPU, which shares its cores between them; on GPUs one host thread
 *      per tower);
 *   2. reduce: tower 0's gradient arena += every other tower's (the CUDA
 *      backend replaces this with NCCL through tower_set.reduce);
 *   3. tower 0: RMSProp with grad_scale 1/N, EMA;
 *   4. broadcast: tower 0's weights (trainable part) and the last tower's BN
 *      statistics to every tower.
 * With one tower steps 2 and 4 are no-ops.
 */
#ifndef DEEPER_TOWER_H
#define DEEPER_TOWER_H

#include <stdint.h>

#include "shared/status.h"
#include "trainer/backend.h"
#include "trainer/graph.h"
#include "trainer/optim.h"

struct tower_set;

/* Optional replacement for steps 2+4's transport: sum the gradient arenas of
 * all towers into tower 0 (ctx is tower_set.reduce_ctx). */
typedef status (*tower_reduce_fn)(struct tower_set *ts, void *ctx);

struct tower_set {
    int n;                      /* towers */
    int batch;                  /* global batch = n * per_tower */
    int per_tower;
    struct backend **be;        /* [n], owned */
    struct graph **g;           /* [n], owned; g[0] has the optimizer slots */
    tower_reduce_fn reduce;     /* NULL: host-side reduction */
    void *reduce_ctx;
    float *host_scratch;        /* reduction staging for non-CPU backends */
    int64_t step;               /* global step (updates applied so far) */
    uint64_t seed;
    struct optim_config optim;
    int classes;
    int in_c, in_h, in_w;       /* the model's input */
    float *probs_scratch;       /* host [per_tower * classes] for eval */
};

/* Builds one model into an empty graph (trainer/model.h's registry entries
 * have this shape).  It must register at least one loss (graph_loss) and
 * must NOT call graph_finalize: the caller finalises (and reports the
 * builders' sticky errors). */
typedef status (*tower_build_fn)(struct graph *g, int classes, int image_size, int channels);

struct tower_options {
    tower_build_fn build;
    int classes, image_size, channels;
    int batch_size;             /* global; must divide by num_towers */
    int num_towers;             /* >= 1 */
    const char *backend;        /* "cpu", "cuda", "auto" (NULL = "cpu") */
    int threads;                /* CPU threads per backend (0 = all cores) */
    int training;               /* 0: inference-only graphs (eval, classify) */
    uint64_t seed;
    float label_smoothing;      /* < 0 for none */
    float dropout_keep;         /* > 0: overrides the model's dropout keep probability */
    struct optim_config optim;
};

/* Create n backends and n graphs (same seed, so identical initial weights).
 * Caller frees with tower_set_free. */
status tower_set_new(struct tower_set **out, const struct tower_options *o);
void   tower_set_free(struct tower_set **ts);

struct tower_step_result {
    float loss;                 /* total: mean data loss over towers (aux weighted) + L2 */
    float data_loss;            /* without L2 */
    float learning_rate;        /* used for this update */
    int64_t step;               /* global step after the update */
};

/* One training step on n == batch samples: uint8 NHWC host pixels
 * [n, in_h, in_w, c] (c = 1 or 3) and int32 labels.  A NaN loss returns
 * STATUS_NAN before the update (parameters keep their last good values). */
status tower_step(struct tower_set *ts, const uint8_t *pixels_nhwc, int c, const int32_t *labels,
                  int n, struct tower_step_result *r);

/* Inference with tower 0's current weights (BN running statistics, no
 * dropout) on any n: probs_host receives n x classes softmax probabilities. */
status tower_forward_eval(struct tower_set *ts, const uint8_t *pixels_nhwc, int c, int n,
                          float *probs_host);

/* After loading parameters into tower 0 (graph_param_write): copy them to
 * every other tower. */
status tower_broadcast(struct tower_set *ts);

#endif
