/*
 * export.h — `deeper export`: a training checkpoint as a torchvision
 * state_dict in safetensors (trainer/export.c says what is written).
 */
#ifndef DEEPER_EXPORT_H
#define DEEPER_EXPORT_H

#include "shared/status.h"

struct export_opts {
    const char *checkpoint_dir;     /* the newest valid checkpoint in it ... */
    const char *checkpoint_path;    /* ... unless this file is given */
    const char *output;             /* the safetensors file to write */
    int ema;                        /* the EMA shadows (as eval uses); 0: the raw weights */
};

/* Write the export and print one line saying what it holds. */
status export_run(const struct export_opts *o);

#endif
