/*
 * backend_cuda_nccl.c — the CUDA backend's comm_* slots: NCCL collectives
 * between the CUDA backends of the towers (trainer/backend.h, "the
 * reduction between towers").  Single process, several GPUs:
 * ncclCommInitAll, and every group of collectives is one
 * ncclGroupStart/End over all towers so a single host thread can issue it
 * without deadlock; each collective runs on its tower's own stream, so it
 * orders with that tower's backward pass without host syncs.
 *
 * DEEPER_NCCL=0 declines (comm_new gives no communicator): the towers then
 * sum through host memory.
 */
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "trainer/backend/cuda/backend_cuda.h"
#include "trainer/backend/cuda/backend_cuda_internal.h"

struct backend_comm {
    int n;
    ncclComm_t *comms;
    struct backend **be;     /* borrowed */
};

#define NC(call, what) do { ncclResult_t r_ = (call); if (r_ != ncclSuccess) { st = FAIL(STATUS_CUDA, "nccl: %s: %s", what, ncclGetErrorString(r_)); goto done; } } while (0)

status cuda_comm_new(struct backend_comm **out, struct backend **be, int n)
{
    *out = NULL;
    const char *env = getenv("DEEPER_NCCL");
    if (env && !strcmp(env, "0")) return STATUS_OK;
    status st = STATUS_OK;
    if (n < 1) return FAIL(STATUS_USAGE, "nccl: %d towers", n);
    struct backend_comm *t = calloc(1, sizeof *t);
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
    if (st != STATUS_OK) { cuda_comm_free(&t); return st; }
    *out = t;
    return STATUS_OK;
}

void cuda_comm_free(struct backend_comm **t)
{
    if (!t || !*t) return;
    if ((*t)->comms)
        for (int i = 0; i < (*t)->n; i++) if ((*t)->comms[i]) ncclCommDestroy((*t)->comms[i]);
    free((*t)->comms);
    free(*t);
    *t = NULL;
}

/* All ops on all towers inside one ncclGroupStart/End, so one host thread
 * issues them without deadlock; each runs on its tower's stream. */
status cuda_comm_run(struct backend_comm *t, const struct backend_collective *ops, int nops)
{
    status st = STATUS_OK;
    for (int k = 0; k < nops; k++)
        if (ops[k].broadcast && (ops[k].root < 0 || ops[k].root >= t->n))
            return FAIL(STATUS_USAGE, "nccl: broadcast root %d of %d towers", ops[k].root, t->n);
    NC(ncclGroupStart(), "group start");
    for (int i = 0; i < t->n; i++) {
        cudaError_t e = cudaSetDevice(t->be[i]->device);
        if (e != cudaSuccess) {
            ncclGroupEnd();
            return FAIL(STATUS_CUDA, "nccl: cudaSetDevice(%d): %s", t->be[i]->device, cudaGetErrorString(e));
        }
        cudaStream_t s = (cudaStream_t)backend_cuda_stream(t->be[i]);
        for (int k = 0; k < nops; k++) {
            const struct backend_collective *o = &ops[k];
            if (o->count == 0) continue;
            float *buf = o->bufs[i] + o->off;
            ncclResult_t r = o->broadcast
                ? ncclBroadcast(o->bufs[o->root] + o->off, buf, o->count, ncclFloat, o->root, t->comms[i], s)
                : ncclAllReduce(buf, buf, o->count, ncclFloat, ncclSum, t->comms[i], s);
            if (r != ncclSuccess) {
                ncclGroupEnd();
                return FAIL(STATUS_CUDA, "nccl: %s on tower %d: %s", o->broadcast ? "broadcast" : "all-reduce", i,
                            ncclGetErrorString(r));
            }
        }
    }
    NC(ncclGroupEnd(), "group end");
done:
    return st;
}
