/*
 * model.h — the model registry and the trainer's step API.
 *
 * A model is a function that builds itself into an empty graph
 * (graph.h builders): build(graph, classes, image_size, channels).  The
 * registry maps `--model NAME` to it.  Model parameters carry torchvision
 * names, so checkpoints are walks over graph_param() of tower 0.
 *
 * The trainer programs (trainer/main*.c) use only this header and graph.h's
 * inspection functions:
 *     struct tower_set *ts;
 *     TRY(model_towers_new(&ts, &opts));          // builds N towers
 *     TRY(model_step_train(ts, pixels, 1, labels, n, &res));   // res.loss, .learning_rate
 *     TRY(model_forward_eval(ts, pixels, 1, n, probs));        // eval / classify
 *     model_towers_free(&ts);
 */
#ifndef DEEPER_MODEL_H
#define DEEPER_MODEL_H

#include "shared/status.h"
#include "trainer/graph.h"
#include "trainer/tower.h"

/* The training hyperparameters a model trains well with when the command
 * line does not say otherwise (`deeper train --help --model M` lists them).
 * The learning rate decays in steps (staircase) by learning_rate_decay_factor
 * every num_epochs_per_decay epochs. */
struct model_defaults {
    float initial_learning_rate;
    float num_epochs_per_decay;
    float learning_rate_decay_factor;
    int batch_size;
    int image_size;
    float weight_decay;
    float dropout_keep_prob;
    float label_smoothing;
};

/* TF's inception_train.py recipe: lr 0.1 x0.16 every 30 epochs, batch 32,
 * 299x299, weight decay 4e-5, dropout keep 0.8, label smoothing 0.1. */
extern const struct model_defaults inception_v3_defaults;
/* Measured on Fashion-MNIST and the sklearn digits (docs/defaults.md). */
extern const struct model_defaults nielsennet_defaults;

struct model_desc {
    const char *name;            /* "nielsennet", "inception_v3" */
    const char *summary;         /* one line for --help */
    tower_build_fn build;
    int default_image_size;      /* 28, 299 */
    int default_channels;        /* 1, 3 */
    float dropout_keep;          /* informational */
    const struct model_defaults *defaults;  /* NULL: inception_v3_defaults (TF's) */
};

/* d->defaults, or TF's when the model has none. */
const struct model_defaults *model_defaults_of(const struct model_desc *d);

/* NULL when unknown. */
const struct model_desc *model_find(const char *name);
/* The registry (static); *n receives its length. */
const struct model_desc *model_list(int *n);

/* Register another model at startup (e.g. inception_v3 from its own file):
 * call before model_find.  Returns STATUS_STATE when the table is full. */
status model_register(const struct model_desc *d);

struct model_options {
    const char *model;           /* registry name */
    int classes;
    int image_size;              /* 0 = model default */
    int channels;                /* 0 = model default */
    int batch_size;              /* global */
    int num_towers;              /* 1 default */
    const char *backend;         /* "cpu" (default), "cuda", "auto" */
    int threads;                 /* 0 = all cores */
    int training;                /* 1: gradients + optimizer; 0: eval/classify */
    uint64_t seed;
    float label_smoothing;       /* 0.1 */
    float dropout_keep;          /* 0: the model's own (NielsenNet 0.5, Inception v3 0.8) */
    struct optim_config optim;
};

/* TF defaults: batch 32, 1 tower, cpu, training, seed 1, smoothing 0.1,
 * optim_config_default(). */
struct model_options model_options_default(void);

status model_towers_new(struct tower_set **out, const struct model_options *o);
void   model_towers_free(struct tower_set **ts);

/* See tower_step / tower_forward_eval. */
status model_step_train(struct tower_set *ts, const uint8_t *pixels_nhwc, int channels,
                        const int32_t *labels, int n, struct tower_step_result *r);
status model_forward_eval(struct tower_set *ts, const uint8_t *pixels_nhwc, int channels, int n,
                          float *probs_host);

/* NielsenNet (trainer/nielsennet.c): conv1 20 5x5 same + max pool 2, conv2
 * 40 5x5 valid + max pool 2, fc1 1000 + dropout, fc2 1000 + dropout, fc
 * classes; ReLU.  Names: conv1.weight/.bias, conv2.*, fc1.*, fc2.*, fc.*. */
status nielsennet_build(struct graph *g, int classes, int image_size, int channels);

#endif
