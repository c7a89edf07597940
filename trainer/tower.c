/*
 * tower.c — N towers, one backend and one graph each; split batch, averaged
 * gradients, one update, identical parameters (the step is described in
 * tower.h).
 *
 * Towers on the CPU run one after the other, each using every core (two CPU
 * towers in parallel would only fight over the same cores).  Towers on GPUs
 * run their forward/backward from one host thread each.  The default
 * reduction and broadcast go through host memory, which is free on the CPU
 * (the "copies" are memcpy between host arenas); the CUDA backend replaces
 * the reduction with NCCL through tower_set.reduce (tower_cuda.c).
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/rng.h"
#include "trainer/tower.h"
#ifdef DEEPER_HAVE_CUDA
#include "trainer/tower_cuda.h"
#endif

void tower_set_free(struct tower_set **tsp)
{
    if (!tsp || !*tsp) return;
    struct tower_set *ts = *tsp;
#ifdef DEEPER_HAVE_CUDA
    if (ts->reduce == tower_nccl_reduce) tower_nccl_free((struct tower_nccl **)&ts->reduce_ctx);
#endif
    for (int i = 0; i < ts->n; i++) {
        if (ts->g) graph_free(&ts->g[i]);
        if (ts->be) backend_free(&ts->be[i]);
    }
    free(ts->g); free(ts->be); free(ts->host_scratch); free(ts->probs_scratch);
    free(ts);
    *tsp = NULL;
}

static int all_cpu(const struct tower_set *ts)
{
    for (int i = 0; i < ts->n; i++) if (strcmp(ts->be[i]->ops->name, "cpu")) return 0;
    return 1;
}

/* Copy n floats between arenas of two towers (through host memory unless both are CPU). */
static status tower_copy(struct tower_set *ts, int dst_t, float *dst, int src_t, const float *src,
                         size_t n)
{
    if (n == 0 || dst == src) return STATUS_OK;
    struct backend *d = ts->be[dst_t], *s = ts->be[src_t];
    if (all_cpu(ts)) return d->ops->copy_d2d(d, dst, src, n * 4);
    TRY(s->ops->copy_d2h(s, ts->host_scratch, src, n * 4));
    return d->ops->copy_h2d(d, dst, ts->host_scratch, n * 4);
}

status tower_broadcast(struct tower_set *ts)
{
#ifdef DEEPER_HAVE_CUDA
    if (ts->reduce == tower_nccl_reduce) return tower_nccl_broadcast_weights(ts);
#endif
    size_t nw = graph_weights_numel(ts->g[0]);
    for (int i = 1; i < ts->n; i++)
        TRY(tower_copy(ts, i, graph_arena(ts->g[i], SLOT_W), 0, graph_arena(ts->g[0], SLOT_W), nw));
    return STATUS_OK;
}

status tower_set_new(struct tower_set **out, const struct tower_options *o)
{
    *out = NULL;
    if (o->num_towers < 1) return FAIL(STATUS_USAGE, "--num_towers %d: need at least 1", o->num_towers);
    if (o->batch_size < o->num_towers || o->batch_size % o->num_towers)
        return FAIL(STATUS_USAGE, "--batch_size %d does not split into %d equal towers", o->batch_size,
                    o->num_towers);
    struct tower_set *ts = calloc(1, sizeof *ts);
    if (!ts) return FAIL(STATUS_NOMEM, "towers: out of memory");
    status st = STATUS_OK;
    ts->n = o->num_towers;
    ts->batch = o->batch_size;
    ts->per_tower = o->batch_size / o->num_towers;
    ts->seed = o->seed;
    ts->optim = o->optim;
    ts->optim.batch_size = o->batch_size;
    ts->in_c = o->channels; ts->in_h = ts->in_w = o->image_size;
    ts->be = calloc(ts->n, sizeof *ts->be);
    ts->g = calloc(ts->n, sizeof *ts->g);
    if (!ts->be || !ts->g) { st = FAIL(STATUS_NOMEM, "towers: out of memory"); goto fail; }
    for (int i = 0; i < ts->n; i++) {
        const char *bn = o->backend ? o->backend : "cpu";
        st = backend_new(&ts->be[i], bn, i, o->threads);
        if (st != STATUS_OK) goto fail;
        struct graph_config gc = graph_config_default();
        gc.batch = ts->per_tower;
        gc.seed = o->seed;
        gc.label_smoothing = o->label_smoothing;
        gc.dropout_keep = o->dropout_keep;
        gc.flags = o->training ? GRAPH_TRAIN | (i == 0 ? GRAPH_OPT_SLOTS : 0) : 0;
        if ((st = graph_new(&ts->g[i], ts->be[i], &gc)) != STATUS_OK) goto fail;
        if ((st = o->build(ts->g[i], o->classes, o->image_size, o->channels)) != STATUS_OK) goto fail;
        if ((st = graph_finalize(ts->g[i])) != STATUS_OK) goto fail;
    }
#ifdef DEEPER_HAVE_CUDA
    /* GPU towers: gradients summed by NCCL all-reduce on the towers' streams
     * (trainer/tower_cuda.c) instead of through host memory. */
    if (ts->n > 1 && !strcmp(ts->be[0]->ops->name, "cuda") && !(getenv("DEEPER_NCCL") && !strcmp(getenv("DEEPER_NCCL"), "0"))) {
        struct tower_nccl *nc = NULL;
        if ((st = tower_nccl_new(&nc, ts->be, ts->n)) != STATUS_OK) goto fail;
        ts->reduce = tower_nccl_reduce;
        ts->reduce_ctx = nc;
    }
#endif
    ts->classes = graph_num_classes(ts->g[0]);
    if (ts->classes <= 0) { st = FAIL(STATUS_FORMAT, "towers: the model registered no loss"); goto fail; }
    ts->host_scratch = malloc(graph_weights_numel(ts->g[0]) * 4 + 64);
    ts->probs_scratch = malloc((size_t)ts->per_tower * ts->classes * 4 + 64);
    if (!ts->host_scratch || !ts->probs_scratch) { st = FAIL(STATUS_NOMEM, "towers: out of memory"); goto fail; }
    if ((st = tower_broadcast(ts)) != STATUS_OK) goto fail;
    *out = ts;
    return STATUS_OK;
fail:
    tower_set_free(&ts);
    return st;
}

/* ---------------------------------------------------------------------- */
/* one step */

struct tower_job {
    struct tower_set *ts;
    int i;
    const uint8_t *pixels;
    int c;
    const int32_t *labels;
    float loss;
    status st;
    char msg[256];
};

static status tower_run(struct tower_job *j)
{
    struct tower_set *ts = j->ts;
    int i = j->i, per = ts->per_tower;
    size_t img = (size_t)ts->in_h * ts->in_w * j->c;
    struct graph *g = ts->g[i];
    TRY(graph_set_input(g, j->pixels + (size_t)i * per * img, per, ts->in_h, ts->in_w, j->c,
                        j->labels + (size_t)i * per));
    uint64_t dseed = rng_mix(rng_mix(ts->seed, RNG_WHAT_DROPOUT), (uint64_t)ts->step);
    TRY(graph_forward(g, 1, dseed, (int64_t)i * per));
    TRY(graph_loss_forward(g, &j->loss, 1.0f));
    if (!isfinite(j->loss)) return STATUS_OK;     /* reported by the caller */
    return graph_backward(g);
}

static void *tower_thread(void *arg)
{
    struct tower_job *j = arg;
    j->st = tower_run(j);
    if (j->st != STATUS_OK) snprintf(j->msg, sizeof j->msg, "%s", status_msg());
    return NULL;
}

static status tower_reduce_host(struct tower_set *ts)
{
    struct graph *g0 = ts->g[0];
    size_t nt = graph_trainable_numel(g0);
    struct backend *b0 = ts->be[0];
    float *g0g = graph_arena(g0, SLOT_GRAD);
    if (all_cpu(ts)) {
        for (int i = 1; i < ts->n; i++)
            TRY(b0->ops->axpby(b0, g0g, graph_arena(ts->g[i], SLOT_GRAD), nt, 1.0f, 1.0f));
        return STATUS_OK;
    }
    float *acc = malloc(nt * 4 + 4);
    if (!acc) return FAIL(STATUS_NOMEM, "towers: reduction buffer");
    status st = b0->ops->copy_d2h(b0, acc, g0g, nt * 4);
    for (int i = 1; i < ts->n && st == STATUS_OK; i++) {
        st = ts->be[i]->ops->copy_d2h(ts->be[i], ts->host_scratch, graph_arena(ts->g[i], SLOT_GRAD), nt * 4);
        for (size_t k = 0; k < nt && st == STATUS_OK; k++) acc[k] += ts->host_scratch[k];
    }
    if (st == STATUS_OK) st = b0->ops->copy_h2d(b0, g0g, acc, nt * 4);
    free(acc);
    return st;
}

status tower_step(struct tower_set *ts, const uint8_t *pixels, int c, const int32_t *labels, int n,
                  struct tower_step_result *r)
{
    if (n != ts->batch) return FAIL(STATUS_USAGE, "towers: step with %d samples, batch is %d", n, ts->batch);
    if (!(graph_get_config(ts->g[0])->flags & GRAPH_TRAIN))
        return FAIL(STATUS_STATE, "towers: built for inference only");
    struct tower_job jobs[ts->n];
    float bn_m = optim_bn_momentum(&ts->optim, ts->step);
    for (int i = 0; i < ts->n; i++) graph_set_bn_momentum(ts->g[i], bn_m);
    for (int i = 0; i < ts->n; i++)
        jobs[i] = (struct tower_job){ .ts = ts, .i = i, .pixels = pixels, .c = c, .labels = labels };
    if (ts->n > 1 && !all_cpu(ts)) {
        pthread_t th[ts->n];
        for (int i = 0; i < ts->n; i++)
            if (pthread_create(&th[i], NULL, tower_thread, &jobs[i]))
                return FAIL(STATUS_NOMEM, "towers: cannot start a thread");
        for (int i = 0; i < ts->n; i++) pthread_join(th[i], NULL);
        for (int i = 0; i < ts->n; i++)
            if (jobs[i].st != STATUS_OK) return FAIL(jobs[i].st, "tower %d: %s", i, jobs[i].msg);
    } else {
        for (int i = 0; i < ts->n; i++) TRY(tower_run(&jobs[i]));
    }
    double data = 0;
    for (int i = 0; i < ts->n; i++) {
        if (!isfinite(jobs[i].loss))
            return FAIL(STATUS_NAN, "Model diverged with loss = NaN (tower %d, step %lld)", i,
                        (long long)ts->step);
        data += jobs[i].loss;
    }
    data /= ts->n;
    double l2 = 0;
    TRY(optim_l2_loss(ts->g[0], &ts->optim, &l2));

    struct graph *g0 = ts->g[0];
    size_t nt = graph_trainable_numel(g0), nw = graph_weights_numel(g0);
    if (ts->n > 1) {
        TRY(ts->reduce ? ts->reduce(ts, ts->reduce_ctx) : tower_reduce_host(ts));
        /* BN statistics from the last tower (the NCCL reduction broadcasts them itself) */
        int stats_done = 0;
#ifdef DEEPER_HAVE_CUDA
        stats_done = ts->reduce == tower_nccl_reduce;
#endif
        struct graph *gl = ts->g[ts->n - 1];
        if (!stats_done)
            TRY(tower_copy(ts, 0, graph_arena(g0, SLOT_W) + nt, ts->n - 1, graph_arena(gl, SLOT_W) + nt, nw - nt));
    }
    float lr = 0;
    TRY(optim_apply(g0, &ts->optim, ts->step, 1.0f / ts->n, &lr));
    if (ts->n > 1) TRY(tower_broadcast(ts));
    ts->step++;
    if (r) {
        r->data_loss = (float)data;
        r->loss = (float)(data + l2);
        r->learning_rate = lr;
        r->step = ts->step;
    }
    return STATUS_OK;
}

status tower_forward_eval(struct tower_set *ts, const uint8_t *pixels, int c, int n, float *probs)
{
    struct graph *g = ts->g[0];
    struct backend *be = ts->be[0];
    int per = ts->per_tower, C = ts->classes;
    size_t img = (size_t)ts->in_h * ts->in_w * c;
    int lid = graph_logits(g);
    for (int s = 0; s < n; s += per) {
        int m = n - s < per ? n - s : per;
        TRY(graph_set_input(g, pixels + (size_t)s * img, m, ts->in_h, ts->in_w, c, NULL));
        TRY(graph_forward(g, 0, 0, 0));
        struct tensor lg = graph_value(g, lid);
        TRY(be->ops->softmax(be, &lg, &lg));
        TRY(be->ops->copy_d2h(be, probs + (size_t)s * C, lg.data, (size_t)m * C * 4));
    }
    return STATUS_OK;
}
