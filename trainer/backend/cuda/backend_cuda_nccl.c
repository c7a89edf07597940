/*
 * tower_cuda.c — NCCL collectives between the CUDA backends of the towers
 * (see tower_cuda.h).  Single process, several GPUs: ncclCommInitAll, and
 * every collective is one ncclGroupStart/End over all towers so a single
 * host thread can issue it without deadlock.  Also the idle stamps the
 * trainer's input-wait fraction reads on GPUs.
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

/* One collective per tower: an in-place all-reduce (sum, or mean with avg)
 * or a broadcast from `root`, over floats [off, off + count) of bufs[i]. */
struct nccl_op { int bcast, avg, root; float **bufs; size_t off, count; };

/* All ops on all towers inside one ncclGroupStart/End, so one host thread
 * issues them without deadlock; each runs on its tower's stream. */
static status nccl_group(struct tower_nccl *t, const struct nccl_op *ops, int nops)
{
    status st = STATUS_OK;
    NC(ncclGroupStart(), "group start");
    for (int i = 0; i < t->n; i++) {
        cudaError_t e = cudaSetDevice(t->be[i]->device);
        if (e != cudaSuccess) {
            ncclGroupEnd();
            return FAIL(STATUS_CUDA, "nccl: cudaSetDevice(%d): %s", t->be[i]->device, cudaGetErrorString(e));
        }
        cudaStream_t s = (cudaStream_t)backend_cuda_stream(t->be[i]);
        for (int k = 0; k < nops; k++) {
            const struct nccl_op *o = &ops[k];
            if (o->count == 0) continue;
            float *buf = o->bufs[i] + o->off;
            ncclResult_t r = o->bcast
                ? ncclBroadcast(o->bufs[o->root] + o->off, buf, o->count, ncclFloat, o->root, t->comms[i], s)
                : ncclAllReduce(buf, buf, o->count, ncclFloat, o->avg ? ncclAvg : ncclSum, t->comms[i], s);
            if (r != ncclSuccess) {
                ncclGroupEnd();
                return FAIL(STATUS_CUDA, "nccl: %s on tower %d: %s", o->bcast ? "broadcast" : "all-reduce", i,
                            ncclGetErrorString(r));
            }
        }
    }
    NC(ncclGroupEnd(), "group end");
done:
    return st;
}

status tower_nccl_allreduce(struct tower_nccl *t, float **bufs, size_t count, int avg)
{
    struct nccl_op op = { 0, avg, 0, bufs, 0, count };
    return nccl_group(t, &op, 1);
}

status tower_nccl_broadcast(struct tower_nccl *t, float **bufs, size_t count, int root)
{
    if (root < 0 || root >= t->n) return FAIL(STATUS_USAGE, "nccl: broadcast root %d of %d towers", root, t->n);
    struct nccl_op op = { 1, 0, root, bufs, 0, count };
    return nccl_group(t, &op, 1);
}

status tower_nccl_reduce(struct tower_set *ts, void *ctx)
{
    struct tower_nccl *t = ctx;
    if (!t || t->n != ts->n) return FAIL(STATUS_STATE, "nccl: communicator does not match the %d towers", ts->n);
    float *stack[2][16];
    float **grads = ts->n <= 16 ? stack[0] : malloc((size_t)ts->n * sizeof *grads);
    float **w = ts->n <= 16 ? stack[1] : malloc((size_t)ts->n * sizeof *w);
    status st = STATUS_OK;
    if (!grads || !w) { st = FAIL(STATUS_NOMEM, "nccl reduce"); goto done; }
    for (int i = 0; i < ts->n; i++) {
        grads[i] = graph_arena(ts->g[i], SLOT_GRAD);
        w[i] = graph_arena(ts->g[i], SLOT_W);
    }
    size_t nt = graph_trainable_numel(ts->g[0]), nw = graph_weights_numel(ts->g[0]);
    /* gradients summed everywhere; BN statistics (the weights arena after
     * the trainable part) from the last tower, as TF takes them */
    struct nccl_op ops[2] = { { 0, 0, 0, grads, 0, nt }, { 1, 0, ts->n - 1, w, nt, nw - nt } };
    st = nccl_group(t, ops, 2);
done:
    if (grads != stack[0]) free(grads);
    if (w != stack[1]) free(w);
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

status tower_cuda_mark(struct tower_set *ts)
{
    for (int i = 0; i < ts->n; i++)
        if (!strcmp(ts->be[i]->ops->name, "cuda")) TRY(backend_cuda_mark(ts->be[i]));
    return STATUS_OK;
}

double tower_cuda_idle_since(struct tower_set *ts)
{
    double t = 0;
    for (int i = 0; i < ts->n; i++) {
        if (strcmp(ts->be[i]->ops->name, "cuda")) continue;
        double s = backend_cuda_idle_since(ts->be[i]);
        if (s <= 0) return 0;
        if (s > t) t = s;
    }
    return t;
}
