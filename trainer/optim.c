/*
 * optim.c — RMSProp with TF semantics, staircase learning rate, EMA, L2 loss
 * (formulas in optim.h).
 *
 * The graph lays trainable parameters out as [conv/FC weights | biases and
 * BN parameters] in every arena, so one update is two backend calls: one
 * with weight decay over the weights block, one without over the rest.  The
 * EMA is one call over the whole weights arena (trainable + BN statistics).
 */
#include <math.h>
#include <stdlib.h>

#include "trainer/optim.h"

struct optim_config optim_config_default(void)
{
    struct optim_config c = {
        .initial_learning_rate = 0.1f, .num_epochs_per_decay = 30.0f,
        .learning_rate_decay_factor = 0.16f, .examples_per_epoch = 1, .batch_size = 32,
        .rmsprop_decay = 0.9f, .rmsprop_momentum = 0.9f, .rmsprop_epsilon = 1.0f,
        .weight_decay = 4e-5f, .ema_decay = 0.9999f,
        .batchnorm_decay = 0.9997f, .batchnorm_zero_debias = 1,
    };
    return c;
}

int64_t optim_decay_steps(const struct optim_config *c)
{
    double per_epoch = (double)c->examples_per_epoch / (c->batch_size > 0 ? c->batch_size : 1);
    int64_t s = (int64_t)(per_epoch * c->num_epochs_per_decay);
    return s < 1 ? 1 : s;
}

float optim_learning_rate(const struct optim_config *c, int64_t step)
{
    int64_t k = step / optim_decay_steps(c);
    return (float)(c->initial_learning_rate * pow(c->learning_rate_decay_factor, (double)k));
}

float optim_bn_momentum(const struct optim_config *c, int64_t step)
{
    double d = c->batchnorm_decay;
    if (!c->batchnorm_zero_debias) return (float)(1.0 - d);
    double debias = 1.0 - pow(d, (double)(step < 0 ? 1 : step + 1));
    return debias > 0 ? (float)((1.0 - d) / debias) : 1.0f;
}

float optim_ema_decay(const struct optim_config *c, int64_t step)
{
    double d = (1.0 + step) / (10.0 + step);
    return (float)(d < c->ema_decay ? d : c->ema_decay);
}

/* Size of the decayed block: PARAM_WEIGHT parameters come first. */
static size_t weights_block(const struct graph *g)
{
    size_t n = 0;
    for (int i = 0; i < graph_num_params(g); i++) {
        const struct graph_param *p = graph_param(g, i);
        if (p->kind == PARAM_WEIGHT) n += p->numel;
    }
    return n;
}

status optim_init_slots(struct graph *g)
{
    struct backend *be = graph_backend(g);
    float *ms = graph_arena(g, SLOT_MS), *mom = graph_arena(g, SLOT_MOM), *ema = graph_arena(g, SLOT_EMA);
    size_t nt = graph_trainable_numel(g), nw = graph_weights_numel(g);
    if (!ms || !mom || !ema) return FAIL(STATUS_STATE, "optim: graph has no optimizer slots");
    float *one = malloc(nt * 4 + 4);
    if (!one) return FAIL(STATUS_NOMEM, "optim: out of memory");
    for (size_t i = 0; i < nt; i++) one[i] = 1.0f;
    status st = be->ops->copy_h2d(be, ms, one, nt * 4);
    free(one);
    TRY(st);
    TRY(be->ops->zero(be, mom, nt * 4));
    return be->ops->copy_d2d(be, ema, graph_arena(g, SLOT_W), nw * 4);
}

status optim_apply(struct graph *g, const struct optim_config *c, int64_t step, float grad_scale,
                   float *lr_out)
{
    struct backend *be = graph_backend(g);
    float *w = graph_arena(g, SLOT_W), *gr = graph_arena(g, SLOT_GRAD);
    float *ms = graph_arena(g, SLOT_MS), *mom = graph_arena(g, SLOT_MOM), *ema = graph_arena(g, SLOT_EMA);
    if (!gr || !ms || !mom) return FAIL(STATUS_STATE, "optim: graph has no gradients or slots");
    size_t nt = graph_trainable_numel(g), nw = weights_block(g);
    float lr = optim_learning_rate(c, step);
    struct rmsprop_params p = { lr, c->rmsprop_decay, c->rmsprop_momentum, c->rmsprop_epsilon,
                                c->weight_decay, grad_scale };
    if (nw) TRY(be->ops->rmsprop_update(be, w, ms, mom, gr, nw, &p));
    p.weight_decay = 0;
    if (nt > nw) TRY(be->ops->rmsprop_update(be, w + nw, ms + nw, mom + nw, gr + nw, nt - nw, &p));
    if (ema && c->ema_decay > 0)
        TRY(be->ops->ema_update(be, ema, w, graph_weights_numel(g), optim_ema_decay(c, step)));
    if (lr_out) *lr_out = lr;
    return STATUS_OK;
}

status optim_l2_loss(const struct graph *g, const struct optim_config *c, double *out)
{
    struct backend *be = graph_backend(g);
    size_t nw = weights_block(g);
    double s = 0;
    if (nw) TRY(be->ops->sumsq(be, &s, graph_arena(g, SLOT_W), nw));
    *out = c->weight_decay * s / 2;
    return STATUS_OK;
}
