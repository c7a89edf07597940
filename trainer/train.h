/*
 * train.h — the training loop behind `deeper train` (trainer/main_train.c
 * holds only the flags).
 *
 * train_run: read the dataset manifest, build the towers, resume from the
 * newest checkpoint in train_dir (unless fresh), start local augment workers
 * (or listen for remote ones), then step until max_steps: TF's log line every
 * log_every steps with queue depth and input-wait fraction, TensorBoard
 * scalars, a checkpoint every save_interval_steps and at the end.  SIGINT /
 * SIGTERM: finish the current step, save, stop the workers, return
 * STATUS_INTERRUPTED.  A NaN loss: STATUS_NAN with "Model diverged with
 * loss = NaN", no checkpoint written (the last good one stays the latest).
 */
#ifndef DEEPER_TRAIN_H
#define DEEPER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "shared/curve.h"
#include "shared/status.h"

struct train_config {
    const char *data_dir, *train_dir, *model;
    int64_t max_steps;
    int batch_size, image_size, num_towers, num_gpus;
    const char *device;                 /* cpu | cuda | auto */
    const char *precision;              /* fp32 (default; NULL = fp32) | bf16 (refused: not implemented) */
    float initial_learning_rate, num_epochs_per_decay, learning_rate_decay_factor;
    int num_preprocess_threads;         /* local workers; 0 with listen: remote */
    const char *listen;                 /* endpoint to bind for remote workers */
    struct curve_opts curve;            /* --curve_secret_key/--authorized_keys/--insecure for listen */
    int save_interval_steps;
    int64_t seed;
    int fresh;
    int input_queue_memory_factor;
    int log_every;
    int summary_every;
    int threads;                        /* CPU threads for the backend (0 = all) */
    int keep_checkpoints;
    float weight_decay;
    float ema_decay;
    float label_smoothing;              /* 0.1 as TF's inception loss; 0 for none */
    float dropout_keep_prob;            /* 0: the model's own */
    float batchnorm_decay;              /* TF's BATCHNORM_MOVING_AVERAGE_DECAY, 0.9997 */
    int batchnorm_zero_debias;          /* TF 1.x's zero_debias of the BN statistics (default on) */
    int no_flip;                        /* pass --no_flip to workers */
    int flip;                           /* pass --flip (force flips on) */
    const char *pretrained_model_checkpoint_path; /* torchvision-named safetensors (fresh runs) */
    int fine_tune;                      /* re-initialise the classifier (fc, AuxLogits.fc) */
};

struct train_config train_config_default(void);

status train_run(const struct train_config *c);

struct manifest;
/* "crc32c:XXXXXXXX:LEN" of DATA_DIR/manifest.json into out. */
status train_manifest_digest(const char *data_dir, char *out, size_t size);
/* JSON array of class names indexed by label (malloc'd; caller frees). */
char *train_class_names_json(const struct manifest *m);

#endif
