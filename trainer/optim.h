/*
 * optim.h — TF's training semantics: RMSProp, staircase learning-rate decay,
 * L2 weight decay, exponential moving average of the weights.
 *
 * Everything follows inception_train.py with TF 1.x's RMSPropOptimizer and
 * ExponentialMovingAverage (docs/design.md, "TF semantics"):
 *   ms  = decay*ms + (1-decay)*g^2           (ms initialised to 1)
 *   mom = momentum*mom + lr*g/sqrt(ms + eps)  (mom initialised to 0)
 *   w  -= mom
 * with g = grad_scale*grad + weight_decay*w for PARAM_WEIGHT (conv and FC
 * weights, wd 4e-5: the gradient of 4e-5 * sum(w^2)/2) and without the decay
 * term for biases and BN parameters.  BN running statistics are not
 * optimised.
 *   lr(step) = initial * factor^floor(step / decay_steps),
 *   decay_steps = int(examples_per_epoch / batch_size * num_epochs_per_decay)
 *   EMA decay = min(0.9999, (1+step)/(10+step)), applied to every parameter
 *   (trainable and BN statistics) after the update, with step = the step
 *   count before this update (TF's num_updates = global_step).
 */
#ifndef DEEPER_OPTIM_H
#define DEEPER_OPTIM_H

#include <stdint.h>

#include "shared/status.h"
#include "trainer/graph.h"

struct optim_config {
    float initial_learning_rate;     /* 0.1 */
    float num_epochs_per_decay;      /* 30 */
    float learning_rate_decay_factor;/* 0.16 */
    int64_t examples_per_epoch;      /* from the manifest */
    int batch_size;                  /* global batch (all towers) */
    float rmsprop_decay;             /* 0.9 */
    float rmsprop_momentum;          /* 0.9 */
    float rmsprop_epsilon;           /* 1.0 */
    float weight_decay;              /* 4e-5 */
    float ema_decay;                 /* 0.9999; 0 disables the EMA */
    float batchnorm_decay;           /* 0.9997 (TF's BATCHNORM_MOVING_AVERAGE_DECAY) */
    int batchnorm_zero_debias;       /* 1: TF 1.x assign_moving_average(zero_debias=True) */
};

/* TF defaults above; examples_per_epoch 1, batch_size 32. */
struct optim_config optim_config_default(void);

/* BN running-statistics momentum for the update made by training step
 * `step` (0-based; the t = step + 1'th update):
 *     plain EMA (TF 0.x, PyTorch):   m = 1 - d
 *     zero_debias (TF 1.x default):  m = (1 - d) / (1 - d^t)
 * With zero_debias TF keeps a hidden `biased` EMA that starts at 0 and sets
 * the statistic to biased / (1 - d^t); that equals the recursion
 * running = (1 - m) * running + m * batch with the m above, so no hidden
 * state is needed: the first update copies the batch statistics (m = 1)
 * and later ones average all batches seen, weighted d^(t-i), until d^t
 * becomes small.  Without it a short run's statistics stay near their
 * initial 0 / 1 (after 300 steps at d = 0.9997 they have moved 8.6% of the
 * way), and evaluation with them is meaningless. */
float optim_bn_momentum(const struct optim_config *c, int64_t step);

/* Learning rate for `step` (staircase). */
float optim_learning_rate(const struct optim_config *c, int64_t step);
/* decay_steps (at least 1). */
int64_t optim_decay_steps(const struct optim_config *c);
/* EMA decay for `step`. */
float optim_ema_decay(const struct optim_config *c, int64_t step);

/* Initialise the slots of a finalised graph with GRAPH_OPT_SLOTS: ms = 1,
 * mom = 0, ema = current weights.  (graph_finalize already does this; call
 * again after loading new weights into a fresh run.) */
status optim_init_slots(struct graph *g);

/* One update of every trainable parameter of g from its gradient arena
 * (grad_scale multiplies the gradients first, e.g. 1/num_towers), then the
 * EMA of all parameters.  `step` is the global step before this update.
 * Writes the learning rate used to *lr_out (may be NULL). */
status optim_apply(struct graph *g, const struct optim_config *c, int64_t step, float grad_scale,
                   float *lr_out);

/* The L2 regularisation loss weight_decay * sum(w^2) / 2 over PARAM_WEIGHT
 * parameters (added to the reported total loss, as TF does). */
status optim_l2_loss(const struct graph *g, const struct optim_config *c, double *out);

#endif
