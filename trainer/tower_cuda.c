/*
 * tower_cuda.c — NCCL collectives between the CUDA backends of the towers
 * (see tower_cuda.h).  Single process, several GPUs: ncclCommInitAll, and
 * every collective is one ncclGroupStart/End over all towers so a single
 * host thread can issue it without deadlock.
 */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "trainer/backend_cuda.h"
#include "trainer/graph.h"
#include "trainer/tower.h"
#include "trainer/tower_cuda.h"

struct tower_nccl {
    int n;
    ncclComm_t *comms;
    struct backend **be;     /* borrowed */
};

#define NC(call, what) do { ncclResult_t r_ = (call); if (r_ != ncclSuccess) { st = FAIL(STATUS_CUDA, "nccl: %s: %s", what, ncclGetErrorString(r_)); goto done; } } while (0)

status tower_nccl_new(struct tower_nccl **out, struct backend **be, int n)
{
    *out = NULL;
    status st = STATUS_OK;
    if (n < 1) return FAIL(STATUS_USAGE, "nccl: %d towers", n);
    struct tower_nccl *t = calloc(1, sizeof *t);
    int *devs = calloc((size_t)n, sizeof *devs);
    if (!t || !devs) { free(t); free(devs); return FAIL(STATUS_NOMEM, "nccl towers"); }
    t->n = n;
    t->be = be;
    t->comms = calloc((size_t)n, sizeof *t->comms);
    if (!t->comms) { st = FAIL(STATUS_NOMEM, "nccl communicators"); goto done; }
    for (int i = 0; i < n; i++) {
        if (!be[i] || strcmp(be[i]->ops->name, "cuda") != 0) {
            st = FAIL(STATUS_USAGE, "nccl: tower %d is not a CUDA backend", i);
            goto done;
        }
        devs[i] = be[i]->device;
        for (int j = 0; j < i; j++)
            if (devs[j] == devs[i]) { st = FAIL(STATUS_USAGE, "nccl: towers %d and %d share GPU %d", j, i, devs[i]); goto done; }
    }
    NC(ncclCommInitAll(t->comms, n, devs), "ncclCommInitAll");
done:
    free(devs);
    if (st != STATUS_OK) { tower_nccl_free(&t); return st; }
    *out = t;
    return STATUS_OK;
}

void tower_nccl_free(struct tower_nccl **t)
{
    if (!t || !*t) return;
    if ((*t)->comms)
        for (int i = 0; i < (*t)->n; i++) if ((*t)->comms[i]) ncclCommDestroy((*t)->comms[i]);
    free((*t)->comms);
    free(*t);
    *t = NULL;
}

status tower_nccl_allreduce(struct tower_nccl *t, float **bufs, size_t count, int avg)
{
    status st = STATUS_OK;
    if (count == 0) return STATUS_OK;
    NC(ncclGroupStart(), "group start");
    for (int i = 0; i < t->n; i++) {
        cudaSetDevice(t->be[i]->device);
        ncclResult_t r = ncclAllReduce(bufs[i], bufs[i], count, ncclFloat, avg ? ncclAvg : ncclSum, t->comms[i],
                                       (cudaStream_t)backend_cuda_stream(t->be[i]));
        if (r != ncclSuccess) { ncclGroupEnd(); return FAIL(STATUS_CUDA, "nccl: all-reduce on tower %d: %s", i, ncclGetErrorString(r)); }
    }
    NC(ncclGroupEnd(), "all-reduce");
done:
    return st;
}

status tower_nccl_broadcast(struct tower_nccl *t, float **bufs, size_t count, int root)
{
    status st = STATUS_OK;
    if (count == 0) return STATUS_OK;
    NC(ncclGroupStart(), "group start");
    for (int i = 0; i < t->n; i++) {
        cudaSetDevice(t->be[i]->device);
        ncclResult_t r = ncclBroadcast(bufs[root], bufs[i], count, ncclFloat, root, t->comms[i],
                                       (cudaStream_t)backend_cuda_stream(t->be[i]));
        if (r != ncclSuccess) { ncclGroupEnd(); return FAIL(STATUS_CUDA, "nccl: broadcast on tower %d: %s", i, ncclGetErrorString(r)); }
    }
    NC(ncclGroupEnd(), "broadcast");
done:
    return st;
}

status tower_nccl_reduce(struct tower_set *ts, void *ctx)
{
    struct tower_nccl *t = ctx;
    if (!t || t->n != ts->n) return FAIL(STATUS_STATE, "nccl: communicator does not match the %d towers", ts->n);
    float *stack[16];
    float **bufs = ts->n <= 16 ? stack : malloc((size_t)ts->n * sizeof *bufs);
    if (!bufs) return FAIL(STATUS_NOMEM, "nccl reduce");
    for (int i = 0; i < ts->n; i++) bufs[i] = graph_arena(ts->g[i], SLOT_GRAD);
    status st = tower_nccl_allreduce(t, bufs, graph_trainable_numel(ts->g[0]), 0);
    if (bufs != stack) free(bufs);
    return st;
}

status tower_nccl_broadcast_weights(struct tower_set *ts)
{
    struct tower_nccl *t = ts->reduce_ctx;
    if (!t || t->n != ts->n) return FAIL(STATUS_STATE, "nccl: communicator does not match the %d towers", ts->n);
    float *stack[16];
    float **bufs = ts->n <= 16 ? stack : malloc((size_t)ts->n * sizeof *bufs);
    if (!bufs) return FAIL(STATUS_NOMEM, "nccl broadcast");
    for (int i = 0; i < ts->n; i++) bufs[i] = graph_arena(ts->g[i], SLOT_W);
    status st = tower_nccl_broadcast(t, bufs, graph_weights_numel(ts->g[0]), 0);
    if (bufs != stack) free(bufs);
    return st;
}
