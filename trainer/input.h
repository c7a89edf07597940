/*
 * input.h — where train and eval get their batches: the dispatcher
 * (dispatcher.h) bound on a private ipc:// endpoint folder for the local
 * augment workers, plus --listen for remote ones, and the local workers
 * (workers.h) started with --dispatcher on it.
 *
 * input_dispatcher_config is the one place the run's settings become a
 * dispatcher_config (socket security and other dispatcher settings go
 * there); input_open makes the endpoint folder, starts the dispatcher and
 * the workers, in that order; input_reap hands the lease of a local worker
 * that exited back at once; input_close stops the workers, the dispatcher
 * and removes the folder.
 */
#ifndef DEEPER_TRAINER_INPUT_H
#define DEEPER_TRAINER_INPUT_H

#include <stdint.h>

#include "shared/augment_flags.h"
#include "shared/curve.h"
#include "shared/status.h"
#include "shared/stream.h"
#include "trainer/dispatcher.h"
#include "trainer/workers.h"

struct input_spec {
    const char *program;            /* "train", "eval": the endpoint folder is deeper-PROGRAM-... */
    const char *data_dir, *subset;
    const char *listen;             /* also bind here for remote workers (NULL: none) */
    int num_workers;                /* local workers (0: remote only) */
    int announce;                   /* log "started W augment workers on ENDPOINT" */
    int eval;                       /* the eval stream: batches [0, end_batch) once */
    int batch_size, image_size, channels, num_classes;
    uint64_t seed, examples, start_batch, end_batch;
    uint64_t id_limit;              /* example ids lie below this (manifest_subset_id_limit) */
    double worker_timeout;          /* seconds (0: the dispatcher's default) */
    int max_connections;            /* open connections at most (0: the dispatcher's default) */
    int window;                     /* batches held ahead at most (0: the dispatcher's default) */
    const struct augment_flags *augment;
    const struct stream_allocator *alloc;   /* batch buffers (NULL: malloc) */
    const struct curve_opts *curve; /* with keys: CURVE on the whole socket (local workers get our pair) */
};

struct input {
    struct dispatcher *disp;
    struct workers *workers;
    char *exe;
    char ipc_dir[256], ipc_ep[320], endpoints[1024];
    char name[32];
    const char *argv[3];
};

/* The dispatcher settings of a run: every field of s, endpoints as given. */
status input_dispatcher_config(const struct input_spec *s, const char *endpoints, struct dispatcher_config *dc);

/* *in is zeroed first; input_close is safe after a failure. */
status input_open(struct input *in, const struct input_spec *s);

/* Reap the local workers that exited and tell the dispatcher they are gone;
 * their indices go to dead[] (room for 256), the count is returned. */
int input_reap(struct input *in, int *dead);

void input_close(struct input *in);

#endif
