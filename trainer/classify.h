/*
 * classify.h — `deeper classify`: the top classes with probabilities for
 * image files, with the newest checkpoint's EMA weights and the eval
 * preprocessing (trainer/classify.c says how).
 */
#ifndef DEEPER_CLASSIFY_H
#define DEEPER_CLASSIFY_H

#include "shared/status.h"

struct classify_config {
    const char *checkpoint_dir;     /* the training run's --train_dir */
    const char *device;             /* cpu, cuda or auto */
    int top;                        /* classes printed per file (at most the model's) */
};

/* One block per file on stdout; a file that cannot be read or decoded gets
 * one error line on stderr and sets *bad, the others are still classified.
 * The status is that of loading the model. */
status classify_files(const struct classify_config *cfg, char **files, int nfiles, int *bad);

#endif
