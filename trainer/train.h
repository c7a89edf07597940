/*
 * train.h — the training loop behind `deeper train` (trainer/main_train.c
 * holds only the flags).
 *
 * train_run: read the dataset manifest, settle the hyperparameters (a flag
 * wins, then the checkpoint for the batch and image size of a resumed run,
 * then the model's defaults, model.h) and log them with their source as the
 * first line, build the towers, resume from the newest checkpoint in
 * train_dir (unless fresh: then checkpoints and event files go, as TF's
 * deletion of train_dir), start local augment workers with the distortion
 * switches given (or listen for remote ones), then step until max_steps:
 * TF's log line every log_every steps with queue depth, input-wait fraction
 * and the epoch (batches consumed x batch / examples: never goes back),
 * TensorBoard scalars, images and histograms (trainer/summary.h), a
 * checkpoint every save_interval_steps and at the end.  SIGINT / SIGTERM:
 * finish the current step, save, stop the workers, return
 * STATUS_INTERRUPTED.  A non-finite loss: STATUS_NAN with one message
 * "Model diverged with loss = NaN at step N; the last good checkpoint, ...,
 * is kept" and no checkpoint written.  A loss still within
 * TRAIN_STALL_FRACTION of ln(classes) at stall_check_steps: one warning that
 * suggests a lower --initial_learning_rate.
 */
#ifndef DEEPER_TRAIN_H
#define DEEPER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "shared/augment_flags.h"
#include "shared/curve.h"
#include "shared/status.h"

/* Bits of train_config.given: which model-default hyperparameters were
 * given on the command line (the first log line says where each came from). */
enum {
    TRAIN_GIVEN_LR = 1 << 0, TRAIN_GIVEN_DECAY_EPOCHS = 1 << 1, TRAIN_GIVEN_DECAY_FACTOR = 1 << 2,
    TRAIN_GIVEN_BATCH = 1 << 3, TRAIN_GIVEN_IMAGE_SIZE = 1 << 4, TRAIN_GIVEN_WEIGHT_DECAY = 1 << 5,
    TRAIN_GIVEN_KEEP = 1 << 6, TRAIN_GIVEN_SMOOTHING = 1 << 7,
};

/* Hyperparameters with a per-model default (model.h struct model_defaults)
 * start at TRAIN_MODEL_DEFAULT (-1); train_config_apply_model fills them in.
 * image_size and dropout_keep_prob also take 0 for the model's own. */
#define TRAIN_MODEL_DEFAULT (-1)

/* The not-learning check: the mean loss of the 50 steps up to
 * stall_check_steps within this fraction of ln(classes). */
#define TRAIN_STALL_FRACTION 0.05

struct train_config {
    const char *data_dir, *train_dir, *model;
    int64_t max_steps;
    int batch_size, image_size, num_towers, num_gpus;
    const char *device;                 /* cpu | cuda | auto */
    const char *precision;              /* fp32 (default; NULL = fp32) | bf16 (refused: not implemented) */
    float initial_learning_rate, num_epochs_per_decay, learning_rate_decay_factor;
    int num_preprocess_threads;         /* local workers; 0 with listen: remote */
    const char *listen;                 /* endpoint to bind for remote workers */
    double worker_timeout;              /* seconds a worker may be silent before its lease goes (0: 5) */
    struct curve_opts curve;            /* --curve_secret_key/--authorized_keys/--insecure for listen */
    int max_connections;                /* the dispatcher's cap on open connections (0: 128) */
    int save_interval_steps;
    int64_t seed;
    int fresh;
    int input_queue_memory_factor;      /* batches the consumer holds ahead at most (the credit window) */
    int log_every;
    int summary_every;                  /* image and histogram summaries every N steps (0: none) */
    int stall_check_steps;              /* warn when the loss is still near ln(classes) here (0: never) */
    int threads;                        /* CPU threads for the backend (0 = all) */
    int keep_checkpoints;
    float weight_decay;
    float ema_decay;
    float label_smoothing;              /* 0.1 as TF's inception loss; 0 for none */
    float dropout_keep_prob;            /* 0: the model's own */
    float batchnorm_decay;              /* TF's BATCHNORM_MOVING_AVERAGE_DECAY, 0.9997 */
    int batchnorm_zero_debias;          /* TF 1.x's zero_debias of the BN statistics (default on) */
    struct augment_flags augment;       /* switches passed on to the workers as given */
    unsigned given;                     /* TRAIN_GIVEN_* bits: set on the command line */
    const char *pretrained_model_checkpoint_path; /* torchvision-named safetensors (fresh runs) */
    int fine_tune;                      /* re-initialise the classifier (fc, AuxLogits.fc) */
};

struct train_config train_config_default(void);

struct model_desc;
/* Replace every TRAIN_MODEL_DEFAULT (and 0 image size / keep) by the model's
 * default; values already set stay. */
void train_config_apply_model(struct train_config *c, const struct model_desc *md);
/* "model default", "flag" or "checkpoint" for one TRAIN_GIVEN_* bit. */
const char *train_config_source(const struct train_config *c, unsigned bit);

status train_run(const struct train_config *c);

struct manifest;
/* "crc32c:XXXXXXXX:LEN" of DATA_DIR/manifest.json into out. */
status train_manifest_digest(const char *data_dir, char *out, size_t size);
/* JSON array of class names indexed by label (malloc'd; caller frees). */
char *train_class_names_json(const struct manifest *m);

#endif
