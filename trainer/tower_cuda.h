/*
 * tower_cuda.h — NCCL for towers on several GPUs of one process (only in
 * builds with DEEPER_HAVE_CUDA).
 *
 * One communicator per CUDA backend (ncclCommInitAll over the backends'
 * devices); collectives run on each backend's own stream, so they order
 * with that tower's backward pass without host syncs.  trainer/tower.c
 * plugs tower_nccl_reduce into tower_set.reduce when every tower is a CUDA
 * backend on a distinct GPU, and then broadcasts the weights after each
 * update with tower_nccl_broadcast_weights; the CPU path stays on the host.
 */
#ifndef DEEPER_TOWER_CUDA_H
#define DEEPER_TOWER_CUDA_H

#include <stddef.h>

#include "shared/status.h"
#include "trainer/backend.h"

struct tower_nccl;
struct tower_set;

/* Communicators over n CUDA backends (distinct devices, n >= 1).  Caller
 * frees with tower_nccl_free (NULL-safe). */
status tower_nccl_new(struct tower_nccl **out, struct backend **be, int n);
void   tower_nccl_free(struct tower_nccl **t);

/* In place on every tower: bufs[i] (count floats on backend i) becomes the
 * sum (avg = 0) or the mean (avg = 1, ncclAvg) over towers.  Asynchronous
 * on the backends' streams. */
status tower_nccl_allreduce(struct tower_nccl *t, float **bufs, size_t count, int avg);

/* bufs[root] copied into every bufs[i] (count floats).  Asynchronous. */
status tower_nccl_broadcast(struct tower_nccl *t, float **bufs, size_t count, int root);

/* tower_reduce_fn for trainer/tower.h (ctx = the struct tower_nccl): the
 * gradient arenas of all towers summed in place, and the BN statistics
 * (the weights arena after its trainable part) broadcast from the last
 * tower, as TF takes them, in the same NCCL group; tower 0 then updates. */
status tower_nccl_reduce(struct tower_set *ts, void *ctx);

/* Tower 0's whole weights arena (trainable + BN statistics) to every tower
 * with ncclBroadcast (ts->reduce_ctx must be the struct tower_nccl). */
status tower_nccl_broadcast_weights(struct tower_set *ts);

/* Input-wait accounting on GPUs (trainer/train.c): tower_cuda_mark
 * stamps every CUDA tower's stream (backend_cuda_mark) after a step is
 * queued; tower_cuda_idle_since is the host time (log_now) at which the
 * last of them went idle, or 0 while any is still busy. */
status tower_cuda_mark(struct tower_set *ts);
double tower_cuda_idle_since(struct tower_set *ts);

#endif
