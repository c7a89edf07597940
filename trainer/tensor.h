/*
 * tensor.h — a 4-D view of backend memory.
 *
 * Every activation, gradient and parameter the models touch is a `struct
 * tensor`: a pointer into memory owned by a backend (host memory for the CPU
 * backend, device memory for CUDA), a dtype, a logical shape (N, C, H, W) and
 * element strides for each axis.  Strides are what make concat free: a branch
 * of an Inception block writes into a channel slice of the block's output,
 * which is a tensor whose `c` is the branch's channel count and whose `sn`
 * is the whole output's per-sample stride (docs/design.md, "Concat
 * outputs are views").  Fully connected data uses H = W = 1; vectors
 * (biases, BN parameters) use N = H = W = 1 and C = length.
 *
 * A tensor never owns memory; arenas do (trainer/graph.c).  The layout a
 * model uses is NCHW on the CPU backend; a backend that prefers NHWC states
 * it through backend_ops.preferred_layout and the graph builds strides for it.
 */
#ifndef DEEPER_TENSOR_H
#define DEEPER_TENSOR_H

#include <stddef.h>
#include <stdint.h>

enum tensor_dtype { DT_F32 = 0, DT_BF16, DT_F16, DT_U8, DT_I32 };

enum tensor_layout { LAYOUT_NCHW = 0, LAYOUT_NHWC = 1 };

struct tensor {
    void *data;                 /* backend memory, first element */
    enum tensor_dtype dtype;
    int n, c, h, w;
    int64_t sn, sc, sh, sw;     /* strides in elements */
};

static inline size_t tensor_dtype_size(enum tensor_dtype t)
{
    switch (t) {
    case DT_F32: case DT_I32: return 4;
    case DT_BF16: case DT_F16: return 2;
    case DT_U8: return 1;
    }
    return 0;
}

static inline int64_t tensor_numel(const struct tensor *t)
{
    return (int64_t)t->n * t->c * t->h * t->w;
}

/* A dense tensor over `data` in the given layout. */
static inline struct tensor tensor_make(void *data, enum tensor_dtype dt, enum tensor_layout lay,
                                        int n, int c, int h, int w)
{
    struct tensor t = { data, dt, n, c, h, w, 0, 0, 0, 0 };
    if (lay == LAYOUT_NCHW) { t.sw = 1; t.sh = w; t.sc = (int64_t)h * w; t.sn = (int64_t)c * h * w; }
    else                    { t.sc = 1; t.sw = c; t.sh = (int64_t)w * c; t.sn = (int64_t)h * w * c; }
    return t;
}

/* Channels [c0, c0+nc) of t, as a view (same strides). */
static inline struct tensor tensor_channels(struct tensor t, int c0, int nc)
{
    t.data = (char *)t.data + (size_t)(c0 * t.sc) * tensor_dtype_size(t.dtype);
    t.c = nc;
    return t;
}

/* Samples [n0, n0+nn) of t, as a view. */
static inline struct tensor tensor_samples(struct tensor t, int n0, int nn)
{
    t.data = (char *)t.data + (size_t)(n0 * t.sn) * tensor_dtype_size(t.dtype);
    t.n = nn;
    return t;
}

/* 1 when the tensor's elements are one dense block in NCHW (or NHWC) order. */
static inline int tensor_is_dense(const struct tensor *t, enum tensor_layout lay)
{
    struct tensor d = tensor_make(t->data, t->dtype, lay, t->n, t->c, t->h, t->w);
    return d.sn == t->sn && d.sc == t->sc && d.sh == t->sh && d.sw == t->sw;
}

#endif
