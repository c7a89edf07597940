/*
 * checkpoint.h — train_dir/model.ckpt-STEP.safetensors and the `checkpoint` index.
 *
 * A checkpoint is one safetensors file (proto/checkpoint.md) holding every
 * float tensor the trainer needs to continue: parameters under torchvision's
 * names ("conv1.weight", "fc.bias"), BN running statistics
 * ("bn1.running_mean"), EMA shadows ("ema/<name>"), RMSProp slots
 * ("rmsprop_ms/<name>", "rmsprop_mom/<name>"), plus a __metadata__ block
 * (struct ckpt_meta below, every value a string) that also holds a CRC-32C
 * of every tensor ("crc32c/<name>", format 2).  Loaders call
 * checkpoint_open(), which range-checks the metadata and verifies every
 * checksum before anything is used.  This module does not know
 * the model: the caller passes a list of named host tensors; the trainer
 * builds it from the engine's parameter table.
 *
 * Save is complete-or-absent: the file is written to a temporary name,
 * fsynced and renamed (shared/safetensors.c), then the `checkpoint` index
 * (TF's text format, model_checkpoint_path: "...") is replaced the same way,
 * then checkpoints beyond the newest `keep` are deleted.  A crash at any point
 * leaves the previous complete checkpoint findable.  checkpoint_latest()
 * trusts the index only when the file it names opens and validates; otherwise
 * it scans the directory for the newest valid model.ckpt-*.safetensors.
 */
#ifndef DEEPER_CHECKPOINT_H
#define DEEPER_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "shared/safetensors.h"
#include "shared/status.h"

#define CKPT_KEEP_DEFAULT 5
#define CKPT_FORMAT_VERSION "2"     /* 2: a CRC-32C per tensor in __metadata__ */
#define CKPT_CRC_PREFIX "crc32c/"   /* __metadata__["crc32c/<tensor>"] = 8 hex digits */
#define CKPT_MAX_IMAGE_SIZE 4096
#define CKPT_MAX_CLASSES 1000000

/* One named float32 tensor in host memory (borrowed). */
struct ckpt_tensor {
    const char *name;
    float *data;
    int ndim;
    int64_t shape[4];
};

/* What __metadata__ holds.  Strings are borrowed on save, owned by the
 * checkpoint_meta_* readers' output (freed with checkpoint_meta_free). */
struct ckpt_meta {
    int64_t step;               /* global step (updates applied) */
    const char *model;          /* "nielsennet", "inception_v3" */
    int num_classes;            /* logits */
    const char *class_names;    /* JSON array of strings, index = label */
    int image_size;
    int channels;               /* channels of the input images (dataset); the model may expand gray to RGB */
    const char *manifest_digest;/* dataset identity (manifest.json digest) */
    uint64_t seed;
    int64_t epoch;              /* epoch of the next batch to consume */
    int64_t position;           /* batches consumed so far in the stream (resume point) */
    int num_workers;            /* augment workers the stream was split over */
    int batch_size;
    double learning_rate;       /* at the time of saving (informational) */
};

/* Write train_dir/model.ckpt-STEP.safetensors, update the index, prune to
 * `keep` (<= 0: keep all).  *out_path (optional) gets the file path (caller
 * frees). */
status checkpoint_save(const char *train_dir, const struct ckpt_meta *meta,
                       const struct ckpt_tensor *t, int n, int keep, char **out_path);

/* Path of the newest valid checkpoint in dir (caller frees) and its step.
 * STATUS_NOT_FOUND (with a message naming dir) when there is none. */
status checkpoint_latest(const char *dir, char **out_path, int64_t *out_step);

/* Remove every model.ckpt-*.safetensors (and leftover temporaries) and the
 * index from dir, for a fresh run (TF deletes train_dir instead); *removed
 * gets the number of checkpoints deleted. */
status checkpoint_remove_all(const char *dir, int *removed);

/* Parse and range-check the __metadata__ of an open checkpoint: every
 * number must be a whole decimal integer in its range (step >= 0,
 * image_size 1..CKPT_MAX_IMAGE_SIZE, num_classes 1..CKPT_MAX_CLASSES,
 * channels 1 or 3, ...); anything else is one STATUS_FORMAT line naming the
 * file, the key and the value.  String fields point into the file (valid
 * until safetensors_free). */
status checkpoint_meta_read(const struct st_file *f, struct ckpt_meta *meta);

/* Check every tensor against its CRC-32C in __metadata__: a mismatch is
 * STATUS_CORRUPT naming the file and the tensor; so is a checksum without
 * its tensor, or (format_version >= 2) a tensor without a checksum.  A
 * format 1 file has no checksums: it passes, with one notice on stderr. */
status checkpoint_verify(const struct st_file *f);

/* safetensors_open + checkpoint_meta_read + checkpoint_verify: what every
 * program that loads a checkpoint calls.  *out is closed on failure. */
status checkpoint_open(const char *path, struct st_file **out, struct ckpt_meta *meta);

/* Restore tensors from f into the caller's buffers.  For each entry,
 * `prefix` + name is looked up ("" for parameters, "ema/" for EMA weights);
 * when `fallback_plain` is set and prefix+name is absent, the plain name is
 * used (BN running stats have no EMA copy in an old file).  A missing tensor
 * or a size mismatch is one error naming it and both shapes. */
status checkpoint_restore(const struct st_file *f, const struct ckpt_tensor *t, int n,
                          const char *prefix, int fallback_plain);

/* Class names from meta.class_names (a JSON array); *out is an array of
 * num strings, caller frees with checkpoint_names_free. */
status checkpoint_class_names(const char *json, char ***out, int *num);
void checkpoint_names_free(char **names, int num);

#endif
