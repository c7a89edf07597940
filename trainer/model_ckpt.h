/*
 * model_ckpt.h — model towers from a checkpoint: the one path train, eval,
 * classify and export take from a checkpoint directory to a model.
 *
 *   model_ckpt_open     the newest valid checkpoint in a directory (or one
 *                       file), opened, its metadata read and every tensor
 *                       checked (checkpoint_open);
 *   model_ckpt_options  the model its metadata names, as model options
 *                       (classes, image size, channels, seed; one tower,
 *                       batch 1, inference) for the caller to adjust;
 *   model_ckpt_towers   the towers built and the checkpoint restored into
 *                       them (RESTORE_TRAINING for a resumed run, the EMA
 *                       shadows for eval and classify), after which the file
 *                       is closed;
 *   model_ckpt_close    what is left.
 */
#ifndef DEEPER_MODEL_CKPT_H
#define DEEPER_MODEL_CKPT_H

#include <stdint.h>

#include "shared/safetensors.h"
#include "shared/status.h"
#include "trainer/checkpoint.h"
#include "trainer/model.h"
#include "trainer/train_state.h"

struct model_ckpt {
    char *path;                 /* the checkpoint file (owned) */
    int64_t step;               /* from its name (checkpoint_latest); 0 for a file given */
    struct st_file *file;       /* open until model_ckpt_towers restores it or model_ckpt_close */
    struct ckpt_meta meta;      /* strings point into file: NULL once it is closed */
};

/* file NULL: the newest valid checkpoint in dir (STATUS_NOT_FOUND with
 * checkpoint_latest's message when there is none); else that file.  *mc is
 * zeroed first, so model_ckpt_close is safe after a failure. */
status model_ckpt_open(struct model_ckpt *mc, const char *dir, const char *file);

/* Options for the model the metadata names ("PATH: unknown model NAME"
 * otherwise): its classes, image size and seed; channels 3 for an RGB model,
 * else data_channels (> 0: the dataset's) or the checkpoint's own. */
status model_ckpt_options(const struct model_ckpt *mc, int data_channels, struct model_options *mo);

/* model_towers_new(mo), then the checkpoint restored into it with mode,
 * then the file closed. */
status model_ckpt_towers(struct model_ckpt *mc, const struct model_options *mo,
                         enum train_state_restore_mode mode, struct tower_set **out);

/* Close the file, free the path; NULL-safe, idempotent. */
void model_ckpt_close(struct model_ckpt *mc);

#endif
