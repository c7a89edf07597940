/*
 * graph.c — the static model graph (see graph.h for the model).
 *
 * Internals.  `values` are activations: shape (c, h, w) per sample, the node
 * that produces them, and where their storage comes from:
 *   - store: the value whose buffer this one shares (in-place ReLU after
 *     BN/conv writes into its input's buffer), else itself;
 *   - cat / c0: a storage root that is an input of a concat lives at channel
 *     c0 of the concat's buffer (recursively, for concats inside concats).
 * Gradients are never shared in place (backward accumulates, so dx and dy
 * must differ), but a concat input's gradient is a channel slice of the
 * concat's gradient, which makes concat free in both directions.
 *
 * graph_finalize: orders parameters (weights, then biases, then statistics)
 * and gives each an offset in the arenas; decides which values need a
 * gradient (downstream of a trainable parameter); sizes and allocates the
 * activation, gradient, save (BN mean/invstd) and mask (dropout) arenas;
 * builds every tensor; initialises parameters on the host (Philox keyed by
 * seed and parameter index) and copies them over; sets ms = 1, ema = w.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/rng.h"
#include "trainer/graph.h"

enum node_op { OP_CONV, OP_BN, OP_RELU, OP_POOL, OP_FC, OP_DROPOUT, OP_CONCAT };

struct value {
    int c, h, w;
    int node;                 /* producer, -1 for the graph input */
    int store;                /* value whose storage this one uses */
    int scat, sc0;            /* storage: a slice of concat value scat at channel sc0 (-1 none) */
    int gcat, gc0;            /* gradient: a slice of concat gcat's gradient (-1 none) */
    int done, gdone;          /* tensors resolved */
    int grad;                 /* needs a gradient */
    size_t off, goff;         /* arena offsets (floats), roots only */
    struct tensor t, gt;
};

struct node {
    enum node_op op;
    int in, out;
    int p[4];                 /* conv: w, b | bn: gamma, beta, mean, var | fc: w, b */
    struct conv_params cp;
    struct pool_params pp;
    float keep;
    int fc_in, fc_out;
    size_t soff;              /* save arena offset: bn 2*C floats; dropout mask bytes */
};

struct loss_term { int logits; float weight; };

struct graph {
    struct backend *be;
    struct graph_config cfg;
    status err;
    int finalized;
    struct graph_init winit;
    struct value *v; int nv, cv;
    struct node *nd; int nn, cn;
    struct graph_param *p; int np, cp;
    struct loss_term loss[4]; int nloss;
    int input;
    size_t n_weights, n_train;
    float *arena[5];          /* by enum graph_slot */
    float *act, *gact, *save;
    uint8_t *mask;
    int32_t *labels;
    size_t n_act, n_gact, n_save, n_mask;
    int prof;                 /* DEEPER_PROFILE set: time every node */
    double *tf, *tb;          /* seconds per node, forward / backward */
    long prof_steps;
};

static const char *op_name[] = { "conv", "bn", "relu", "pool", "fc", "dropout", "concat" };

static double prof_now(struct graph *g)
{
    g->be->ops->sync(g->be);
    return log_now();
}

static int sticky(struct graph *g, status st)
{
    if (g->err == STATUS_OK) g->err = st;
    return -1;
}
#define BAD(g, ...) sticky((g), FAIL(STATUS_FORMAT, __VA_ARGS__))

struct graph_config graph_config_default(void)
{
    struct graph_config c = { .batch = 32, .flags = GRAPH_TRAIN | GRAPH_OPT_SLOTS, .seed = 1,
                              .bn_eps = 1e-3f, .bn_momentum = 3e-4f, .label_smoothing = 0.1f };
    return c;
}

status graph_new(struct graph **out, struct backend *be, const struct graph_config *cfg)
{
    *out = NULL;
    struct graph *g = calloc(1, sizeof *g);
    if (!g) return FAIL(STATUS_NOMEM, "graph: out of memory");
    g->be = be;
    g->cfg = cfg ? *cfg : graph_config_default();
    if (g->cfg.batch <= 0) {
        int b = g->cfg.batch;
        free(g);
        return FAIL(STATUS_USAGE, "graph: batch %d", b);
    }
    if (g->cfg.label_smoothing < 0) g->cfg.label_smoothing = 0;
    g->winit = (struct graph_init){ INIT_TRUNC_NORMAL, 0.1f };
    g->input = -1;
    *out = g;
    return STATUS_OK;
}

void graph_free(struct graph **gp)
{
    if (!gp || !*gp) return;
    struct graph *g = *gp;
    struct backend *be = g->be;
    if (g->prof && g->tf && g->prof_steps) {
        double tot = 0;
        for (int i = 0; i < g->nn; i++) tot += g->tf[i] + g->tb[i];
        fprintf(stderr, "graph profile (%s, batch %d, %ld steps): ms/step forward backward\n", be->ops->name,
                g->cfg.batch, g->prof_steps);
        for (int i = 0; i < g->nn; i++) {
            struct value *v = &g->v[g->nd[i].out];
            fprintf(stderr, "  %3d %-8s -> %4dx%3dx%3d  %8.3f %8.3f  %5.1f%%\n", i, op_name[g->nd[i].op], v->c, v->h,
                    v->w, 1e3 * g->tf[i] / g->prof_steps, 1e3 * g->tb[i] / g->prof_steps,
                    100 * (g->tf[i] + g->tb[i]) / (tot > 0 ? tot : 1));
        }
    }
    free(g->tf); free(g->tb);
    for (int i = 0; i < 5; i++) if (g->arena[i]) be->ops->free(be, g->arena[i]);
    if (g->act) be->ops->free(be, g->act);
    if (g->gact) be->ops->free(be, g->gact);
    if (g->save) be->ops->free(be, g->save);
    if (g->mask) be->ops->free(be, g->mask);
    if (g->labels) be->ops->free(be, g->labels);
    for (int i = 0; i < g->np; i++) free((char *)g->p[i].name);
    free(g->v); free(g->nd); free(g->p);
    free(g);
    *gp = NULL;
}

/* ---------------------------------------------------------------------- */
/* building */

static int value_new(struct graph *g, int c, int h, int w, int node)
{
    /* every size product is later taken in size_t, times the batch: keep
     * one example's value well inside int so no builder arithmetic wraps */
    if (c <= 0 || h <= 0 || w <= 0 || (size_t)c * (size_t)h * (size_t)w > GRAPH_MAX_VALUE_NUMEL)
        return BAD(g, "graph: a %dx%dx%d activation is too large (at most %zu values per example)", c, h, w,
                   (size_t)GRAPH_MAX_VALUE_NUMEL);
    if (g->nv == g->cv) {
        int n = g->cv ? 2 * g->cv : 64;
        void *q = realloc(g->v, n * sizeof *g->v);
        if (!q) return sticky(g, FAIL(STATUS_NOMEM, "graph: out of memory"));
        g->v = q; g->cv = n;
    }
    struct value *v = &g->v[g->nv];
    memset(v, 0, sizeof *v);
    v->c = c; v->h = h; v->w = w; v->node = node; v->store = g->nv; v->scat = v->gcat = -1;
    return g->nv++;
}

static struct node *node_new(struct graph *g, enum node_op op, int in)
{
    if (g->nn == g->cn) {
        int n = g->cn ? 2 * g->cn : 64;
        void *q = realloc(g->nd, n * sizeof *g->nd);
        if (!q) { sticky(g, FAIL(STATUS_NOMEM, "graph: out of memory")); return NULL; }
        g->nd = q; g->cn = n;
    }
    struct node *d = &g->nd[g->nn++];
    memset(d, 0, sizeof *d);
    d->op = op; d->in = in; d->out = -1;
    d->p[0] = d->p[1] = d->p[2] = d->p[3] = -1;
    return d;
}

static int ok_in(struct graph *g, int x)
{
    if (g->err != STATUS_OK || x < 0) return 0;
    if (g->finalized) { sticky(g, FAIL(STATUS_STATE, "graph: builder called after finalize")); return 0; }
    if (x >= g->nv) { BAD(g, "graph: value %d does not exist", x); return 0; }
    return 1;
}

int graph_param_add(struct graph *g, const char *name, enum graph_param_kind kind, int ndim,
                    const int *shape, struct graph_init init, int fan_in)
{
    if (g->err != STATUS_OK) return -1;
    if (ndim < 1 || ndim > 4) return BAD(g, "graph: parameter %s: %d dimensions", name, ndim);
    if (graph_param_find(g, name) >= 0) return BAD(g, "graph: parameter %s registered twice", name);
    if (g->np == g->cp) {
        int n = g->cp ? 2 * g->cp : 64;
        void *q = realloc(g->p, n * sizeof *g->p);
        if (!q) return sticky(g, FAIL(STATUS_NOMEM, "graph: out of memory"));
        g->p = q; g->cp = n;
    }
    struct graph_param *p = &g->p[g->np];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    if (!p->name) return sticky(g, FAIL(STATUS_NOMEM, "graph: out of memory"));
    p->kind = kind; p->ndim = ndim; p->init = init; p->fan_in = fan_in;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || __builtin_mul_overflow(p->numel, (size_t)shape[i], &p->numel) ||
            p->numel > GRAPH_MAX_PARAM_NUMEL) {
            free((char *)p->name);
            return BAD(g, "graph: parameter %s: shape dimension %d (%d) is zero or too large", name, i, shape[i]);
        }
        p->shape[i] = shape[i];
    }
    return g->np++;
}

static int param_named(struct graph *g, const char *base, const char *suffix,
                       enum graph_param_kind kind, int ndim, const int *shape,
                       struct graph_init init, int fan_in)
{
    char name[256];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    return graph_param_add(g, name, kind, ndim, shape, init, fan_in);
}

int graph_input(struct graph *g, int channels, int height, int width)
{
    if (g->err != STATUS_OK) return -1;
    if (g->input >= 0) return BAD(g, "graph: a second input");
    if (channels <= 0 || height <= 0 || width <= 0 || channels > 4 || height > GRAPH_MAX_SIDE || width > GRAPH_MAX_SIDE)
        return BAD(g, "graph: input %dx%dx%d (channels 1..4, sides 1..%d)", channels, height, width, GRAPH_MAX_SIDE);
    g->input = value_new(g, channels, height, width, -1);
    return g->input;
}

void graph_set_weight_init(struct graph *g, struct graph_init init) { g->winit = init; }

static int out_size(int in, int k, int s, int pad) { return (in + 2 * pad - k) / s + 1; }

int graph_conv(struct graph *g, const char *name, int x, int out_c, int kh, int kw, int stride_h,
               int stride_w, int pad_h, int pad_w, int bias)
{
    if (!ok_in(g, x)) return -1;
    struct value xv = g->v[x];
    int oh = out_size(xv.h, kh, stride_h, pad_h), ow = out_size(xv.w, kw, stride_w, pad_w);
    if (oh <= 0 || ow <= 0 || stride_h <= 0 || stride_w <= 0)
        return BAD(g, "graph: %s: %dx%d input too small for %dx%d kernel", name, xv.h, xv.w, kh, kw);
    int shape[4] = { out_c, xv.c, kh, kw };
    int fan_in = xv.c * kh * kw;
    int pw = param_named(g, name, ".weight", PARAM_WEIGHT, 4, shape, g->winit, fan_in);
    int pb = -1;
    if (bias) pb = param_named(g, name, ".bias", PARAM_BIAS, 1, &out_c, (struct graph_init){ INIT_ZEROS, 0 }, fan_in);
    if (g->err != STATUS_OK) return -1;
    struct node *d = node_new(g, OP_CONV, x);
    if (!d) return -1;
    d->p[0] = pw; d->p[1] = pb;
    d->cp = (struct conv_params){ kh, kw, stride_h, stride_w, pad_h, pad_w };
    d->out = value_new(g, out_c, oh, ow, g->nn - 1);
    return d->out;
}

int graph_batchnorm(struct graph *g, const char *name, int x)
{
    if (!ok_in(g, x)) return -1;
    int c = g->v[x].c;
    struct graph_init z = { INIT_ZEROS, 0 }, o = { INIT_ONES, 0 };
    int pg = param_named(g, name, ".weight", PARAM_BIAS, 1, &c, o, 0);
    int pb = param_named(g, name, ".bias", PARAM_BIAS, 1, &c, z, 0);
    int pm = param_named(g, name, ".running_mean", PARAM_STAT, 1, &c, z, 0);
    int pv = param_named(g, name, ".running_var", PARAM_STAT, 1, &c, o, 0);
    if (g->err != STATUS_OK) return -1;
    struct node *d = node_new(g, OP_BN, x);
    if (!d) return -1;
    d->p[0] = pg; d->p[1] = pb; d->p[2] = pm; d->p[3] = pv;
    d->out = value_new(g, c, g->v[x].h, g->v[x].w, g->nn - 1);
    return d->out;
}

static int relu_impl(struct graph *g, int x, int inplace)
{
    if (!ok_in(g, x)) return -1;
    struct node *d = node_new(g, OP_RELU, x);
    if (!d) return -1;
    d->out = value_new(g, g->v[x].c, g->v[x].h, g->v[x].w, g->nn - 1);
    if (d->out >= 0 && inplace) g->v[d->out].store = g->v[x].store;
    return d->out;
}

int graph_relu(struct graph *g, int x) { return relu_impl(g, x, 0); }

int graph_conv_bn_relu2(struct graph *g, const char *name, int x, int out_c, int kh, int kw,
                        int stride_h, int stride_w, int pad_h, int pad_w)
{
    char n1[256], n2[256];
    snprintf(n1, sizeof n1, "%s.conv", name);
    snprintf(n2, sizeof n2, "%s.bn", name);
    int c = graph_conv(g, n1, x, out_c, kh, kw, stride_h, stride_w, pad_h, pad_w, 0);
    int b = graph_batchnorm(g, n2, c);
    return relu_impl(g, b, 1);
}

int graph_conv_bn_relu(struct graph *g, const char *name, int x, int out_c, int kh, int kw,
                       int stride, int pad)
{
    return graph_conv_bn_relu2(g, name, x, out_c, kh, kw, stride, stride, pad, pad);
}

static int pool_impl(struct graph *g, int x, enum pool_kind kind, int kh, int kw, int stride,
                     int pad, int cip)
{
    if (!ok_in(g, x)) return -1;
    struct value xv = g->v[x];
    int oh = out_size(xv.h, kh, stride, pad), ow = out_size(xv.w, kw, stride, pad);
    if (oh <= 0 || ow <= 0 || stride <= 0) return BAD(g, "graph: pool %dx%d on %dx%d", kh, kw, xv.h, xv.w);
    if (pad * 2 > kh || pad * 2 > kw) return BAD(g, "graph: pool padding %d exceeds half the kernel", pad);
    struct node *d = node_new(g, OP_POOL, x);
    if (!d) return -1;
    d->pp = (struct pool_params){ kind, kh, kw, stride, stride, pad, pad, cip };
    d->out = value_new(g, xv.c, oh, ow, g->nn - 1);
    return d->out;
}

int graph_maxpool(struct graph *g, int x, int k, int stride, int pad)
{
    return pool_impl(g, x, POOL_MAX, k, k, stride, pad, 0);
}

int graph_avgpool(struct graph *g, int x, int k, int stride, int pad, int count_include_pad)
{
    return pool_impl(g, x, POOL_AVG, k, k, stride, pad, count_include_pad);
}

int graph_global_avgpool(struct graph *g, int x)
{
    if (!ok_in(g, x)) return -1;
    return pool_impl(g, x, POOL_AVG, g->v[x].h, g->v[x].w, 1, 0, 1);
}

int graph_fc(struct graph *g, const char *name, int x, int out)
{
    if (!ok_in(g, x)) return -1;
    int in = g->v[x].c * g->v[x].h * g->v[x].w;   /* <= GRAPH_MAX_VALUE_NUMEL (value_new) */
    int shape[2] = { out, in };
    int pw = param_named(g, name, ".weight", PARAM_WEIGHT, 2, shape, g->winit, in);
    int pb = param_named(g, name, ".bias", PARAM_BIAS, 1, &out, (struct graph_init){ INIT_ZEROS, 0 }, in);
    if (g->err != STATUS_OK) return -1;
    struct node *d = node_new(g, OP_FC, x);
    if (!d) return -1;
    d->p[0] = pw; d->p[1] = pb; d->fc_in = in; d->fc_out = out;
    d->out = value_new(g, out, 1, 1, g->nn - 1);
    return d->out;
}

int graph_dropout(struct graph *g, int x, float keep)
{
    if (!ok_in(g, x)) return -1;
    if (g->cfg.dropout_keep > 0) keep = g->cfg.dropout_keep;
    if (!(keep > 0 && keep <= 1)) return BAD(g, "graph: dropout keep %g", keep);
    if (!(g->cfg.flags & GRAPH_TRAIN)) return x;     /* identity in inference graphs */
    struct node *d = node_new(g, OP_DROPOUT, x);
    if (!d) return -1;
    d->keep = keep;
    d->out = value_new(g, g->v[x].c, g->v[x].h, g->v[x].w, g->nn - 1);
    return d->out;
}

int graph_concat(struct graph *g, int n, const int *ids)
{
    if (g->err != STATUS_OK) return -1;
    if (n < 1) return BAD(g, "graph: concat of %d values", n);
    int c = 0;
    for (int i = 0; i < n; i++) {
        if (!ok_in(g, ids[i])) return -1;
        struct value *a = &g->v[ids[i]], *r = &g->v[a->store];
        if (a->h != g->v[ids[0]].h || a->w != g->v[ids[0]].w)
            return BAD(g, "graph: concat input %d is %dx%d, first is %dx%d", i, a->h, a->w,
                       g->v[ids[0]].h, g->v[ids[0]].w);
        if (a->gcat >= 0 || r->scat >= 0) return BAD(g, "graph: value %d is already in a concat", ids[i]);
        if (a->store == g->input) return BAD(g, "graph: the graph input cannot be a concat input");
        for (int j = 0; j < i; j++)
            if (g->v[ids[j]].store == a->store) return BAD(g, "graph: concat input repeated");
        c += a->c;
    }
    struct node *d = node_new(g, OP_CONCAT, ids[0]);
    if (!d) return -1;
    int out = value_new(g, c, g->v[ids[0]].h, g->v[ids[0]].w, g->nn - 1);
    if (out < 0) return -1;
    d->out = out;
    int c0 = 0;
    for (int i = 0; i < n; i++) {
        struct value *a = &g->v[ids[i]];
        a->gcat = out; a->gc0 = c0;                           /* gradient slice */
        g->v[a->store].scat = out; g->v[a->store].sc0 = c0;   /* storage slice */
        c0 += a->c;
    }
    return out;
}

int graph_loss(struct graph *g, int logits, float weight)
{
    if (!ok_in(g, logits)) return -1;
    struct value *v = &g->v[logits];
    if (v->h != 1 || v->w != 1) return BAD(g, "graph: loss on a %dx%d map (need [N, C])", v->h, v->w);
    if (g->nloss == 4) return BAD(g, "graph: more than 4 loss terms");
    g->loss[g->nloss++] = (struct loss_term){ logits, weight };
    return logits;
}

/* ---------------------------------------------------------------------- */
/* finalize */

static struct tensor resolve_t(struct graph *g, int id);

static struct tensor resolve_root(struct graph *g, int r)
{
    struct value *v = &g->v[r];
    enum tensor_layout lay = g->be->ops->preferred_layout;
    if (v->scat >= 0) return tensor_channels(resolve_t(g, v->scat), v->sc0, v->c);
    return tensor_make(g->act + v->off, DT_F32, lay, g->cfg.batch, v->c, v->h, v->w);
}

static struct tensor resolve_t(struct graph *g, int id)
{
    struct value *v = &g->v[id];
    if (!v->done) {
        v->t = resolve_root(g, v->store);
        v->done = 1;
    }
    return v->t;
}

static struct tensor resolve_g(struct graph *g, int id)
{
    struct value *v = &g->v[id];
    if (!v->gdone) {
        enum tensor_layout lay = g->be->ops->preferred_layout;
        if (!v->grad) v->gt = (struct tensor){ 0 };
        else if (v->gcat >= 0) v->gt = tensor_channels(resolve_g(g, v->gcat), v->gc0, v->c);
        else v->gt = tensor_make(g->gact + v->goff, DT_F32, lay, g->cfg.batch, v->c, v->h, v->w);
        v->gdone = 1;
    }
    return v->gt;
}

static float trunc_normal(struct rng *r)
{
    for (;;) {
        float z = rng_normal(r);
        if (z >= -2.0f && z <= 2.0f) return z;
    }
}

static void param_init_host(const struct graph *g, int i, float *h)
{
    const struct graph_param *p = &g->p[i];
    struct rng r;
    rng_init(&r, g->cfg.seed, rng_stream(RNG_WHAT_INIT, (uint64_t)i, 0));
    float fan = p->fan_in > 0 ? (float)p->fan_in : 1.0f;
    for (size_t k = 0; k < p->numel; k++) {
        switch (p->init.kind) {
        case INIT_ZEROS: h[k] = 0; break;
        case INIT_ONES: h[k] = 1; break;
        case INIT_TRUNC_NORMAL: h[k] = p->init.scale * trunc_normal(&r); break;
        case INIT_UNIFORM: h[k] = rng_range(&r, -p->init.scale, p->init.scale); break;
        case INIT_FANIN_UNIFORM: { float b = 1.0f / sqrtf(fan); h[k] = rng_range(&r, -b, b); break; }
        case INIT_HE_NORMAL: h[k] = sqrtf(2.0f / fan) * trunc_normal(&r); break;
        }
    }
}

static int node_has_params(const struct node *d)
{
    return d->op == OP_CONV || d->op == OP_BN || d->op == OP_FC;
}

status graph_finalize(struct graph *g)
{
    if (g->err != STATUS_OK) return g->err;
    if (g->finalized) return FAIL(STATUS_STATE, "graph: finalized twice");
    if (g->input < 0) return FAIL(STATUS_FORMAT, "graph: no input");
    struct backend *be = g->be;
    const struct backend_ops *o = be->ops;
    int train = (g->cfg.flags & GRAPH_TRAIN) != 0, slots = train && (g->cfg.flags & GRAPH_OPT_SLOTS);
    size_t B = (size_t)g->cfg.batch;

    /* parameter offsets: weights, biases, statistics */
    size_t off = 0;
    for (int k = PARAM_WEIGHT; k <= PARAM_STAT; k++) {
        if (k == PARAM_STAT) g->n_train = off;
        for (int i = 0; i < g->np; i++)
            if ((int)g->p[i].kind == k) { g->p[i].offset = off; off += g->p[i].numel; }
    }
    g->n_weights = off;

    /* which values need gradients */
    for (int i = 0; i < g->nn; i++) {
        struct node *d = &g->nd[i];
        int need = train && (node_has_params(d) || g->v[d->in].grad);
        if (d->op == OP_CONCAT) {
            need = 0;
            for (int j = 0; j < g->nv; j++) if (g->v[j].gcat == d->out && g->v[j].grad) need = 1;
        }
        g->v[d->out].grad = need;
    }

    /* arena sizes (each value <= GRAPH_MAX_VALUE_NUMEL per example, see value_new) */
    size_t total = 0;
    for (int j = 0; j < g->nv; j++) {
        struct value *v = &g->v[j];
        size_t n = B * v->c * v->h * v->w;
        if (__builtin_add_overflow(total, n, &total) || total > SIZE_MAX / 64)
            return FAIL(STATUS_TOO_BIG, "graph: activations of batch %d overflow the address space", g->cfg.batch);
        if (v->store == j && v->scat < 0) { v->off = g->n_act; g->n_act += (n + 15) & ~(size_t)15; }
        if (v->grad && v->gcat < 0) { v->goff = g->n_gact; g->n_gact += (n + 15) & ~(size_t)15; }
    }
    for (int i = 0; i < g->nn && train; i++) {
        struct node *d = &g->nd[i];
        if (d->op == OP_BN) { d->soff = g->n_save; g->n_save += 2 * (size_t)g->v[d->in].c; }
        if (d->op == OP_DROPOUT) {
            d->soff = g->n_mask;
            g->n_mask += (B * g->v[d->in].c * g->v[d->in].h * g->v[d->in].w + 63) & ~(size_t)63;
        }
    }

    /* allocate */
#define ALLOC(ptr, bytes) do { if ((bytes) > 0) { ptr = o->alloc(be, (bytes)); if (!ptr) return FAIL(STATUS_NOMEM, "graph: cannot allocate %zu bytes on %s", (size_t)(bytes), o->name); } } while (0)
    ALLOC(g->arena[SLOT_W], g->n_weights * 4);
    if (train) ALLOC(g->arena[SLOT_GRAD], g->n_train * 4);
    if (slots) {
        ALLOC(g->arena[SLOT_MS], g->n_train * 4);
        ALLOC(g->arena[SLOT_MOM], g->n_train * 4);
        ALLOC(g->arena[SLOT_EMA], g->n_weights * 4);
    }
    ALLOC(g->act, g->n_act * 4);
    ALLOC(g->gact, g->n_gact * 4);
    ALLOC(g->save, g->n_save * 4);
    ALLOC(g->mask, g->n_mask);
    ALLOC(g->labels, B * 4);
#undef ALLOC
    for (int i = 0; i < g->np; i++) {
        struct graph_param *p = &g->p[i];
        int tr = p->kind != PARAM_STAT;
        p->w = g->arena[SLOT_W] + p->offset;
        p->grad = tr && g->arena[SLOT_GRAD] ? g->arena[SLOT_GRAD] + p->offset : NULL;
        p->ms = tr && g->arena[SLOT_MS] ? g->arena[SLOT_MS] + p->offset : NULL;
        p->mom = tr && g->arena[SLOT_MOM] ? g->arena[SLOT_MOM] + p->offset : NULL;
        p->ema = g->arena[SLOT_EMA] ? g->arena[SLOT_EMA] + p->offset : NULL;
    }
    for (int j = 0; j < g->nv; j++) { resolve_t(g, j); resolve_g(g, j); }
    g->finalized = 1;
    if (getenv("DEEPER_PROFILE") && *getenv("DEEPER_PROFILE") && strcmp(getenv("DEEPER_PROFILE"), "0")) {
        g->tf = calloc(g->nn + 1, sizeof(double));
        g->tb = calloc(g->nn + 1, sizeof(double));
        g->prof = g->tf && g->tb;
    }

    /* initialise parameters, host side */
    float *h = malloc(g->n_weights * 4 + 4);
    if (!h) return FAIL(STATUS_NOMEM, "graph: init buffer");
    for (int i = 0; i < g->np; i++) param_init_host(g, i, h + g->p[i].offset);
    status st = o->copy_h2d(be, g->arena[SLOT_W], h, g->n_weights * 4);
    if (st == STATUS_OK && slots) st = o->copy_h2d(be, g->arena[SLOT_EMA], h, g->n_weights * 4);
    if (st == STATUS_OK && slots) {
        for (size_t k = 0; k < g->n_train; k++) h[k] = 1.0f;
        st = o->copy_h2d(be, g->arena[SLOT_MS], h, g->n_train * 4);
    }
    free(h);
    return st;
}

/* ---------------------------------------------------------------------- */
/* running */

void graph_set_bn_momentum(struct graph *g, float momentum)
{
    g->cfg.bn_momentum = momentum;
}

status graph_set_input(struct graph *g, const uint8_t *pixels, int n, int h, int w, int c,
                       const int32_t *labels)
{
    if (!g->finalized) return FAIL(STATUS_STATE, "graph: not finalized");
    if (n <= 0 || n > g->cfg.batch)
        return FAIL(STATUS_USAGE, "graph: %d samples for a batch of %d", n, g->cfg.batch);
    struct backend *be = g->be;
    struct tensor x = g->v[g->input].t;
    if (n < g->cfg.batch) {
        struct tensor rest = tensor_samples(x, n, g->cfg.batch - n);
        TRY(be->ops->zero(be, rest.data, (size_t)tensor_numel(&rest) * 4));
    }
    struct tensor head = tensor_samples(x, 0, n);
    TRY(be->ops->input_normalize(be, &head, pixels, n, h, w, c));
    if (labels) {
        for (int i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= graph_num_classes(g))
                return FAIL(STATUS_FORMAT, "graph: label %d of sample %d outside [0, %d)", labels[i],
                            i, graph_num_classes(g));
        TRY(be->ops->copy_h2d(be, g->labels, labels, (size_t)n * 4));
        if (n < g->cfg.batch) TRY(be->ops->zero(be, g->labels + n, (size_t)(g->cfg.batch - n) * 4));
    }
    return STATUS_OK;
}

static struct tensor param_tensor(const struct graph *g, int pi)
{
    const struct graph_param *p = &g->p[pi];
    int s[4] = { 1, 1, 1, 1 };
    if (p->ndim == 4) for (int i = 0; i < 4; i++) s[i] = p->shape[i];
    else if (p->ndim == 2) { s[0] = p->shape[0]; s[1] = p->shape[1]; }
    else s[1] = p->shape[0];
    return tensor_make(p->w, DT_F32, LAYOUT_NCHW, s[0], s[1], s[2], s[3]);
}

status graph_forward(struct graph *g, int training, uint64_t dropout_seed, int64_t sample_offset)
{
    if (!g->finalized) return FAIL(STATUS_STATE, "graph: not finalized");
    if (training && !(g->cfg.flags & GRAPH_TRAIN))
        return FAIL(STATUS_STATE, "graph: training forward on an inference graph");
    struct backend *be = g->be;
    const struct backend_ops *o = be->ops;
    struct bn_params bnp = { g->cfg.bn_eps, g->cfg.bn_momentum };
    double t0 = g->prof ? prof_now(g) : 0;
    if (g->prof && training) g->prof_steps++;
    for (int i = 0; i < g->nn; i++) {
        struct node *d = &g->nd[i];
        struct tensor *x = &g->v[d->in].t, *y = &g->v[d->out].t;
        if (g->prof && i) { double t = prof_now(g); if (training) g->tf[i - 1] += t - t0; t0 = t; }
        switch (d->op) {
        case OP_CONV: {
            struct tensor w = param_tensor(g, d->p[0]);
            TRY(o->conv2d_forward(be, y, x, &w, &d->cp));
            if (d->p[1] >= 0) TRY(o->bias_add_forward(be, y, g->p[d->p[1]].w));
            break;
        }
        case OP_BN:
            if (training)
                TRY(o->batchnorm_train_forward(be, y, g->save + d->soff, g->save + d->soff + x->c, x,
                                               g->p[d->p[0]].w, g->p[d->p[1]].w, g->p[d->p[2]].w,
                                               g->p[d->p[3]].w, &bnp));
            else
                TRY(o->batchnorm_infer_forward(be, y, x, g->p[d->p[0]].w, g->p[d->p[1]].w,
                                               g->p[d->p[2]].w, g->p[d->p[3]].w, &bnp));
            break;
        case OP_RELU: TRY(o->relu_forward(be, y, x)); break;
        case OP_POOL: TRY(o->pool_forward(be, y, x, &d->pp)); break;
        case OP_FC: TRY(o->fc_forward(be, y, x, g->p[d->p[0]].w, g->p[d->p[1]].w, d->fc_in, d->fc_out)); break;
        case OP_DROPOUT:
            if (training) {
                int64_t per = (int64_t)x->c * x->h * x->w;
                TRY(o->dropout_forward(be, y, g->mask + d->soff, x, d->keep, rng_mix(dropout_seed, (uint64_t)i),
                                       (uint64_t)(sample_offset * per)));
            } else {
                TRY(o->dropout_forward(be, y, g->mask + d->soff, x, 1.0f, 0, 0));
            }
            break;
        case OP_CONCAT: break;
        }
    }
    if (g->prof && training && g->nn) g->tf[g->nn - 1] += prof_now(g) - t0;
    return STATUS_OK;
}

status graph_loss_forward(struct graph *g, float *loss, float grad_scale)
{
    if (!(g->cfg.flags & GRAPH_TRAIN)) return FAIL(STATUS_STATE, "graph: loss on an inference graph");
    if (g->nloss == 0) return FAIL(STATUS_STATE, "graph: no loss registered");
    struct backend *be = g->be;
    if (g->n_gact) TRY(be->ops->zero(be, g->gact, g->n_gact * 4));
    if (g->n_train) TRY(be->ops->zero(be, g->arena[SLOT_GRAD], g->n_train * 4));
    float total = 0;
    for (int k = 0; k < g->nloss; k++) {
        struct value *v = &g->v[g->loss[k].logits];
        float l = 0;
        struct tensor *dl = v->grad ? &v->gt : NULL;
        TRY(be->ops->softmax_xent(be, &l, dl, &v->t, g->labels, g->cfg.label_smoothing,
                                  g->loss[k].weight * grad_scale));
        total += g->loss[k].weight * l;
    }
    *loss = total;
    return STATUS_OK;
}

status graph_backward(struct graph *g)
{
    if (!(g->cfg.flags & GRAPH_TRAIN)) return FAIL(STATUS_STATE, "graph: backward on an inference graph");
    struct backend *be = g->be;
    const struct backend_ops *o = be->ops;
    struct bn_params bnp = { g->cfg.bn_eps, g->cfg.bn_momentum };
    for (int i = g->nn - 1; i >= 0; i--) {
        struct node *d = &g->nd[i];
        struct value *xv = &g->v[d->in], *yv = &g->v[d->out];
        double t0 = g->prof ? prof_now(g) : 0;
        if (!yv->grad) continue;
        struct tensor *x = &xv->t, *y = &yv->t, *dy = &yv->gt, *dx = xv->grad ? &xv->gt : NULL;
        switch (d->op) {
        case OP_CONV: {
            struct tensor w = param_tensor(g, d->p[0]);
            struct tensor dw = w;
            dw.data = g->p[d->p[0]].grad;
            if (d->p[1] >= 0) TRY(o->bias_add_backward(be, g->p[d->p[1]].grad, dy));
            TRY(o->conv2d_backward_filter(be, &dw, dy, x, &d->cp));
            if (dx) TRY(o->conv2d_backward_data(be, dx, dy, &w, &d->cp));
            break;
        }
        case OP_BN:
            TRY(o->batchnorm_backward(be, dx, g->p[d->p[0]].grad, g->p[d->p[1]].grad, dy, x,
                                      g->p[d->p[0]].w, g->save + d->soff, g->save + d->soff + x->c, &bnp));
            break;
        case OP_RELU: if (dx) TRY(o->relu_backward(be, dx, dy, y)); break;
        case OP_POOL: if (dx) TRY(o->pool_backward(be, dx, dy, x, y, &d->pp)); break;
        case OP_FC:
            TRY(o->fc_backward(be, dx, g->p[d->p[0]].grad, g->p[d->p[1]].grad, dy, x, g->p[d->p[0]].w,
                               d->fc_in, d->fc_out));
            break;
        case OP_DROPOUT: if (dx) TRY(o->dropout_backward(be, dx, dy, g->mask + d->soff, d->keep)); break;
        case OP_CONCAT: break;
        }
        if (g->prof) g->tb[i] += prof_now(g) - t0;
    }
    return STATUS_OK;
}

/* ---------------------------------------------------------------------- */
/* inspection */

struct backend *graph_backend(const struct graph *g) { return g->be; }
const struct graph_config *graph_get_config(const struct graph *g) { return &g->cfg; }
int graph_num_params(const struct graph *g) { return g->np; }
const struct graph_param *graph_param(const struct graph *g, int i)
{
    return i >= 0 && i < g->np ? &g->p[i] : NULL;
}
int graph_param_find(const struct graph *g, const char *name)
{
    for (int i = 0; i < g->np; i++) if (!strcmp(g->p[i].name, name)) return i;
    return -1;
}
size_t graph_weights_numel(const struct graph *g) { return g->n_weights; }
size_t graph_trainable_numel(const struct graph *g) { return g->n_train; }
float *graph_arena(const struct graph *g, enum graph_slot slot) { return g->arena[slot]; }

static float *slot_ptr(const struct graph *g, int i, enum graph_slot slot)
{
    const struct graph_param *p = &g->p[i];
    switch (slot) {
    case SLOT_W: return p->w;
    case SLOT_GRAD: return p->grad;
    case SLOT_MS: return p->ms;
    case SLOT_MOM: return p->mom;
    case SLOT_EMA: return p->ema;
    }
    return NULL;
}

status graph_param_read(const struct graph *g, int i, enum graph_slot slot, float *host)
{
    if (!g->finalized || i < 0 || i >= g->np) return FAIL(STATUS_STATE, "graph: no parameter %d", i);
    float *s = slot_ptr(g, i, slot);
    if (!s) return FAIL(STATUS_NOT_FOUND, "graph: parameter %s has no slot %d", g->p[i].name, slot);
    return g->be->ops->copy_d2h(g->be, host, s, g->p[i].numel * 4);
}

status graph_param_write(struct graph *g, int i, enum graph_slot slot, const float *host)
{
    if (!g->finalized || i < 0 || i >= g->np) return FAIL(STATUS_STATE, "graph: no parameter %d", i);
    float *s = slot_ptr(g, i, slot);
    if (!s) return FAIL(STATUS_NOT_FOUND, "graph: parameter %s has no slot %d", g->p[i].name, slot);
    return g->be->ops->copy_h2d(g->be, s, host, g->p[i].numel * 4);
}

struct tensor graph_value(const struct graph *g, int id) { return g->v[id].t; }
struct tensor graph_value_grad(const struct graph *g, int id) { return g->v[id].gt; }
int graph_logits(const struct graph *g) { return g->nloss ? g->loss[0].logits : -1; }
int graph_num_classes(const struct graph *g)
{
    return g->nloss ? g->v[g->loss[0].logits].c : 0;
}
