/*
 * train_state.h — moving a tower set's state into and out of checkpoints.
 *
 * The bridge between the engine (graph parameters of tower 0, see graph.h)
 * and trainer/checkpoint.h: every parameter is saved under its torchvision
 * name, its EMA shadow as "ema/<name>", and, for trainable parameters, the
 * RMSProp slots as "rmsprop_ms/<name>" and "rmsprop_mom/<name>".  Values are
 * copied through host buffers (graph_param_read/_write), so it works for any
 * backend.
 */
#ifndef DEEPER_TRAIN_STATE_H
#define DEEPER_TRAIN_STATE_H

#include "shared/safetensors.h"
#include "trainer/checkpoint.h"
#include "trainer/tower.h"

enum train_state_restore_mode {
    RESTORE_TRAINING = 0,   /* weights, EMA, optimizer slots (resume) */
    RESTORE_EMA_AS_WEIGHTS, /* eval / classify: EMA shadows loaded as the weights */
    RESTORE_WEIGHTS,        /* the raw weights only */
};

/* Save tower 0 of ts with `meta` (meta->step is taken from ts->step). */
status train_state_save(struct tower_set *ts, struct ckpt_meta *meta, const char *train_dir,
                        int keep, char **out_path);

/* Strict names (as torchvision's load_state_dict(strict=True)): every tensor
 * of f must be a parameter of g, bare or under "ema/", "rmsprop_ms/" or
 * "rmsprop_mom/", and every parameter of g must be in f under its bare
 * name.  Otherwise one STATUS_FORMAT line naming the file and the tensor. */
status train_state_check_names(const struct graph *g, const struct st_file *f);

/* Load an open checkpoint into tower 0 and broadcast to every tower
 * (names checked with train_state_check_names first). */
status train_state_restore(struct tower_set *ts, const struct st_file *f,
                           enum train_state_restore_mode mode);

#endif
