/*
 * graph.h — the static model graph: parameters, arenas, nodes.
 *
 * A model is plain C that calls the builders below once (trainer/nielsennet.c,
 * trainer/inception_v3.c); the result is a node list that graph_forward runs in
 * order and graph_backward runs in exact reverse.  Nothing is allocated per
 * step.
 *
 * Values.  Every builder returns an int value id (>= 0): the activation it
 * produced, with shape [batch, c, h, w].  Errors are sticky: a builder that
 * fails records the message in the graph and returns -1, every later
 * builder given -1 returns -1 too, and graph_finalize reports the first
 * failure.  So model code reads like the architecture table, without a TRY
 * on every line.
 *
 * Parameters.  Each parameter has a torchvision-style name ("conv1.weight",
 * "Mixed_5b.branch1x1.bn.running_mean"), a shape, a kind and an
 * initialiser.  graph_finalize carves them out of one arena per category,
 * in registration order:
 *     weights  every parameter's value (trainable ones and BN statistics)
 *     grads    trainable parameters only (training graphs)
 *     ms, mom  RMSProp slots, trainable only (graphs with GRAPH_OPT_SLOTS)
 *     ema      shadows of every parameter (GRAPH_OPT_SLOTS)
 * Each category is one contiguous float block in backend memory, and each
 * parameter's slot is at the same offset in every arena where it exists, so
 * the optimizer is one call over one block and a checkpoint is a walk over
 * graph_param(g, i).  Activations and their gradients get their own arena.
 *
 * Concat.  graph_concat(g, n, ids) makes a value whose storage is shared by
 * its inputs: each input becomes a channel-slice view of the output (and
 * its gradient a slice of the output's gradient), so concat costs nothing
 * forward or backward.  An input may be the input of one concat only and
 * must be produced by a node (not a graph input or another view).
 *
 * Conventions: layout NCHW (the CPU backend's; a backend preferring NHWC
 * gets NHWC strides from graph_finalize — model code never sees strides).
 * Forward ops overwrite, backward ops accumulate (backend.h);
 * graph_loss_forward zeroes every gradient before seeding the logits'
 * gradient.  ReLU inside graph_conv_bn_relu runs in place.
 */
#ifndef DEEPER_GRAPH_H
#define DEEPER_GRAPH_H

/* Size limits the builders enforce (one clear error instead of wrapped
 * arithmetic): input sides, one example's activation, one parameter. */
#define GRAPH_MAX_SIDE 4096
#define GRAPH_MAX_VALUE_NUMEL ((size_t)1 << 30)
#define GRAPH_MAX_PARAM_NUMEL ((size_t)1 << 31)

#include <stddef.h>
#include <stdint.h>

#include "shared/status.h"
#include "trainer/backend.h"
#include "trainer/tensor.h"

struct graph;

enum graph_param_kind {
    PARAM_WEIGHT = 0,   /* conv / FC weight: trainable, L2 weight decay */
    PARAM_BIAS,         /* bias, BN beta/gamma: trainable, no decay */
    PARAM_STAT,         /* BN running mean/var: not trainable; EMA'd and saved */
};

enum graph_init_kind {
    INIT_ZEROS = 0,
    INIT_ONES,
    INIT_TRUNC_NORMAL,  /* N(0, scale^2) redrawn outside +-2 scale (TF truncated_normal) */
    INIT_UNIFORM,       /* U(-scale, scale) */
    INIT_FANIN_UNIFORM, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default; scale ignored) */
    INIT_HE_NORMAL,     /* N(0, 2/fan_in) truncated at 2 sigma (scale ignored) */
};

struct graph_init {
    enum graph_init_kind kind;
    float scale;
};

/* Slot selector for graph_param_read / graph_param_write. */
enum graph_slot { SLOT_W = 0, SLOT_GRAD, SLOT_MS, SLOT_MOM, SLOT_EMA };

struct graph_param {
    const char *name;            /* torchvision-style, owned by the graph */
    enum graph_param_kind kind;
    int ndim;
    int shape[4];                /* e.g. conv [out, in, kh, kw]; fc [out, in]; vector [n] */
    size_t numel;
    size_t offset;               /* in floats, within every arena holding it */
    struct graph_init init;
    int fan_in;
    /* backend pointers after graph_finalize (NULL where the arena does not exist) */
    float *w, *grad, *ms, *mom, *ema;
};

/* graph_config.flags */
#define GRAPH_TRAIN      1u   /* allocate gradients, saved tensors, dropout masks */
#define GRAPH_OPT_SLOTS  2u   /* allocate RMSProp slots and EMA shadows (tower 0) */

struct graph_config {
    int batch;               /* samples per forward (per tower) */
    unsigned flags;          /* GRAPH_TRAIN | GRAPH_OPT_SLOTS */
    uint64_t seed;           /* initialisation and dropout */
    float bn_eps;            /* default 0.001 */
    float bn_momentum;       /* default 0.0003 (TF decay 0.9997) */
    float label_smoothing;   /* default 0.1; set < 0 for 0 */
    float dropout_keep;      /* > 0: overrides every graph_dropout's keep; 0: the model's own */
};

/* Defaults: batch 32, GRAPH_TRAIN | GRAPH_OPT_SLOTS, seed 1, eps 1e-3,
 * momentum 3e-4, smoothing 0.1. */
struct graph_config graph_config_default(void);

/* A new empty graph on `be` (borrowed; must outlive the graph).  Caller frees
 * with graph_free. */
status graph_new(struct graph **out, struct backend *be, const struct graph_config *cfg);
void   graph_free(struct graph **g);

/* ---------------------------------------------------------------------- */
/* Building (sticky errors, see top).  `name` is the module's name; the
 * builders append ".weight", ".bias", ... */

/* The image input: uint8 NHWC pixels are normalised into it by
 * graph_set_input.  channels is what the model wants (3 from a gray image
 * repeats it). */
int graph_input(struct graph *g, int channels, int height, int width);

/* Default initialiser for conv / FC weights created after this call
 * (like slim's arg_scope).  Initially INIT_TRUNC_NORMAL 0.1 (TF Inception). */
void graph_set_weight_init(struct graph *g, struct graph_init init);

/* Convolution "<name>.weight" [out_c, in_c, kh, kw]; with bias != 0 also
 * "<name>.bias" [out_c] (zeros). */
int graph_conv(struct graph *g, const char *name, int x, int out_c, int kh, int kw,
               int stride_h, int stride_w, int pad_h, int pad_w, int bias);
/* Batch norm "<name>.weight" (ones), ".bias" (zeros), ".running_mean"
 * (zeros), ".running_var" (ones).  Training graphs use batch statistics. */
int graph_batchnorm(struct graph *g, const char *name, int x);
int graph_relu(struct graph *g, int x);
/* torchvision BasicConv2d: "<name>.conv.weight", "<name>.bn.*", then ReLU
 * (in place).  Square stride and symmetric padding; for 1x7 kernels use
 * graph_conv_bn_relu2. */
int graph_conv_bn_relu(struct graph *g, const char *name, int x, int out_c, int kh, int kw,
                       int stride, int pad);
int graph_conv_bn_relu2(struct graph *g, const char *name, int x, int out_c, int kh, int kw,
                        int stride_h, int stride_w, int pad_h, int pad_w);
int graph_maxpool(struct graph *g, int x, int k, int stride, int pad);
/* count_include_pad: 1 = torchvision (divide by k*k), 0 = TF SAME */
int graph_avgpool(struct graph *g, int x, int k, int stride, int pad, int count_include_pad);
/* avg pool over the whole map (kernel = h x w) -> [batch, c, 1, 1] */
int graph_global_avgpool(struct graph *g, int x);
/* Fully connected "<name>.weight" [out, in], "<name>.bias" [out] (zeros);
 * x is flattened in C,H,W order. */
int graph_fc(struct graph *g, const char *name, int x, int out);
/* Inverted dropout with keep probability `keep` (or the graph's
 * cfg.dropout_keep when that is set); identity when not training. */
int graph_dropout(struct graph *g, int x, float keep);
/* Channel concat of n values with equal n, h, w (views, see top). */
int graph_concat(struct graph *g, int n, const int *ids);

/* Register a loss term: softmax cross-entropy (label smoothing from the
 * config) of logits value `x` ([batch, classes, 1, 1]) with weight `weight`
 * (1.0 main head, 0.4 aux head).  The first loss registered is the main
 * head: graph_logits() returns it. */
int graph_loss(struct graph *g, int logits, float weight);

/* Register a parameter directly (for layers outside the builders).  Returns
 * its index or -1 (sticky error). */
int graph_param_add(struct graph *g, const char *name, enum graph_param_kind kind, int ndim,
                    const int *shape, struct graph_init init, int fan_in);

/* Plan storage, allocate every arena on the backend and initialise the
 * parameters (deterministic from cfg.seed).  Returns the first builder
 * error if any. */
status graph_finalize(struct graph *g);

/* ---------------------------------------------------------------------- */
/* Running */

/* Normalise a uint8 NHWC host batch of n <= batch samples into the input
 * (samples n..batch-1 are zeroed) and copy labels (may be NULL in eval). */
status graph_set_input(struct graph *g, const uint8_t *pixels_nhwc, int n, int h, int w, int c,
                       const int32_t *labels);
/* Momentum of the BN running-statistics update in the following training
 * forwards (the trainer sets optim_bn_momentum() before each step). */
void graph_set_bn_momentum(struct graph *g, float momentum);
/* Forward pass.  training: batch-stat BN with running-stat update, dropout
 * on (needs GRAPH_TRAIN); else inference.  dropout_seed keys this step's masks;
 * sample_offset is the global index of this graph's first sample (towers). */
status graph_forward(struct graph *g, int training, uint64_t dropout_seed, int64_t sample_offset);
/* Losses of the last forward: zeroes all gradients (activations and
 * parameters), writes the weighted sum of the data losses (each a mean over
 * the batch) to *loss, and seeds the logits' gradients with
 * grad_scale * weight * d(mean loss).  Call after graph_forward(training). */
status graph_loss_forward(struct graph *g, float *loss, float grad_scale);
/* Run every node's backward in reverse order (after graph_loss_forward). */
status graph_backward(struct graph *g);

/* ---------------------------------------------------------------------- */
/* Inspection */

struct backend *graph_backend(const struct graph *g);
const struct graph_config *graph_get_config(const struct graph *g);
int graph_num_params(const struct graph *g);
const struct graph_param *graph_param(const struct graph *g, int i);
int graph_param_find(const struct graph *g, const char *name);    /* index or -1 */
/* Totals in floats: all parameters (weights arena) and trainable ones
 * (grads, ms, mom arenas). */
size_t graph_weights_numel(const struct graph *g);
size_t graph_trainable_numel(const struct graph *g);
/* Arena base pointers (backend memory; NULL when absent).  Trainable
 * parameters come first in every arena, so grads/ms/mom cover
 * [0, trainable_numel) and weights/ema cover [0, weights_numel). */
float *graph_arena(const struct graph *g, enum graph_slot slot);

/* Copy one parameter slot to / from host floats (numel of the param). */
status graph_param_read(const struct graph *g, int i, enum graph_slot slot, float *host);
status graph_param_write(struct graph *g, int i, enum graph_slot slot, const float *host);

/* A value's tensor (backend memory) and its gradient (zero tensor if none). */
struct tensor graph_value(const struct graph *g, int id);
struct tensor graph_value_grad(const struct graph *g, int id);
/* The main head's logits value id (-1 if no loss registered). */
int graph_logits(const struct graph *g);
int graph_num_classes(const struct graph *g);

#endif
