/*
 * eval.c — one exact evaluation pass (see eval.h).
 *
 * Exactly once: each example id seen is put in an open-addressing hash set
 * (sized from the manifest's count); a repeated id is counted as a
 * duplicate and not scored.  The batches come from the dispatcher
 * (dispatcher.h) in index order: the pass is batches 0 .. ceil(N/B)-1 of
 * the eval stream, each leased to some worker and re-leased when its worker
 * dies, so a worker killed mid-pass costs time, not examples.
 * Records the workers skip as bad (each named in their log) leave their
 * slot empty: the result line says how many of the subset's records were
 * skipped, and precision is over the examples evaluated.
 */
#include "trainer/eval.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shared/curve.h"
#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/signals.h"
#include "shared/tfevents.h"
#include "trainer/input.h"
#include "trainer/model_ckpt.h"

static volatile sig_atomic_t g_stop;

struct eval_config eval_config_default(void)
{
    struct eval_config c = { 0 };
    c.eval_dir = NULL;   /* CHECKPOINT_DIR/eval */
    c.augment = augment_flags_none();
    c.subset = "validation";
    c.device = "cpu";
    c.eval_interval_secs = 300;
    c.batch_size = 100;
    c.num_preprocess_threads = 2;
    return c;
}

/* ---- a set of uint64 ids (open addressing, id+1 stored so 0 = empty) ---- */
struct idset { uint64_t *v; size_t cap; };

static status idset_init(struct idset *s, uint64_t expect)
{
    size_t cap = 1024;
    while (cap < expect * 2 + 16) cap *= 2;
    s->v = calloc(cap, sizeof(uint64_t));
    s->cap = cap;
    return s->v ? STATUS_OK : FAIL(STATUS_NOMEM, "eval: out of memory");
}

/* 1 if newly added, 0 if present, -1 if full */
static int idset_add(struct idset *s, uint64_t id)
{
    uint64_t key = id + 1, h = id * 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; k < s->cap; k++) {
        size_t i = (size_t)((h + k) & (s->cap - 1));
        if (s->v[i] == key) return 0;
        if (s->v[i] == 0) { s->v[i] = key; return 1; }
    }
    return -1;
}

/* One evaluation pass. */
struct pass {
    const struct eval_config *c;
    struct manifest *man;
    const struct manifest_subset *sub;
    int classes;
    struct model_ckpt ck;
    struct tower_set *ts;
    struct input in;
    struct idset seen;
    float *probs;
    uint64_t batches;               /* in the pass: ceil(examples / batch) */
};

/* A local worker that exited: its split goes to another at once; a new
 * worker takes its place. */
static void eval_reap(void *ctx)
{
    struct pass *p = ctx;
    int dead[256];
    int nd = input_reap(&p->in, dead);
    for (int k = 0; k < nd && !g_stop; k++)
        if (workers_restarts(p->in.workers) < 10 && workers_respawn(p->in.workers, dead[k]) != STATUS_OK)
            log_warn("%s", status_msg());
}

/* The dataset's subset and the newest checkpoint's EMA weights. */
static status eval_load(struct pass *p)
{
    const struct eval_config *c = p->c;
    TRY(manifest_load(c->data_dir, &p->man));
    p->sub = manifest_subset_find(p->man, c->subset);
    if (!p->sub || p->sub->count == 0) return FAIL(STATUS_FORMAT, "%s: dataset has no %s subset", c->data_dir, c->subset);
    TRY(manifest_check_records(p->man, c->data_dir));
    status st = model_ckpt_open(&p->ck, c->checkpoint_dir, NULL);
    if (st == STATUS_NOT_FOUND && !p->ck.path && !strstr(status_msg(), "no usable checkpoint"))
        return FAIL(STATUS_NOT_FOUND, "No checkpoint file found in %s", c->checkpoint_dir);
    if (st != STATUS_OK) return st;   /* "no usable checkpoint" says why */
    p->classes = manifest_num_labels(p->man);
    if (p->ck.meta.num_classes != p->classes)
        return FAIL(STATUS_USAGE, "%s has %d classes, dataset %s has %d", p->ck.path, p->ck.meta.num_classes,
                    c->data_dir, p->classes);
    struct model_options mo;
    TRY(model_ckpt_options(&p->ck, p->man->image.channels, &mo));
    mo.batch_size = c->batch_size;
    mo.backend = c->device;
    mo.threads = c->threads;
    TRY(model_ckpt_towers(&p->ck, &mo, RESTORE_EMA_AS_WEIGHTS, &p->ts));
    log_info("Successfully loaded model from %s at step=%" PRId64 ".", p->ck.path, p->ck.step);
    return STATUS_OK;
}

/* The dispatcher over the pass's batches and the local workers. */
static status eval_input(struct pass *p)
{
    const struct eval_config *c = p->c;
    p->batches = (p->sub->count + (uint64_t)c->batch_size - 1) / (uint64_t)c->batch_size;
    struct input_spec s = {
        .program = "eval", .data_dir = c->data_dir, .subset = c->subset, .listen = c->listen,
        .num_workers = c->num_preprocess_threads, .eval = 1, .batch_size = c->batch_size,
        .image_size = p->ck.meta.image_size, .channels = p->man->image.channels, .num_classes = p->classes,
        .seed = p->ck.meta.seed, .examples = p->sub->count, .end_batch = p->batches,
        .worker_timeout = c->worker_timeout, .max_connections = c->max_connections, .augment = &c->augment,
        .id_limit = manifest_subset_id_limit(p->sub), .curve = &c->curve,
    };
    return input_open(&p->in, &s);
}

/* Score one batch: each example id once; top-1 and top-5 by rank. */
static status eval_score(struct pass *p, const struct dispatch_batch *b, struct eval_result *res)
{
    TRY(model_forward_eval(p->ts, b->pixels, b->c, b->n, p->probs));
    for (int i = 0; i < b->n; i++) {
        int added = idset_add(&p->seen, b->ids[i]);
        if (added < 0) return FAIL(STATUS_STATE, "eval: more ids than the manifest lists");
        if (added == 0) { res->duplicates++; continue; }
        const float *pr = p->probs + (size_t)i * p->classes;
        int label = b->labels[i];
        float pl = pr[label];
        int higher = 0;
        for (int k = 0; k < p->classes; k++)
            if (pr[k] > pl || (pr[k] == pl && k < label)) higher++;
        res->examples++;
        if (higher == 0) res->top1++;
        if (higher < 5) res->top5++;
    }
    return STATUS_OK;
}

/* Every batch of the pass, in index order. */
static status eval_pass(struct pass *p, struct eval_result *res)
{
    const struct eval_config *c = p->c;
    TRY(idset_init(&p->seen, p->sub->count));
    p->probs = malloc((size_t)c->batch_size * (size_t)p->classes * sizeof(float));
    if (!p->probs) return FAIL(STATUS_NOMEM, "eval: out of memory");
    double tl = log_now();
    for (uint64_t batches = 0; batches < p->batches;) {
        struct dispatch_batch b;
        eval_reap(p);   /* also when batches never run out: the other workers may cover for a dead one */
        status st = dispatcher_next(p->in.disp, &b, &g_stop, eval_reap, p, NULL);
        if (st == STATUS_INTERRUPTED) return FAIL(STATUS_INTERRUPTED, "evaluation interrupted");
        if (st != STATUS_OK) return st;
        TRY(eval_score(p, &b, res));
        batches++;
        if (batches % 20 == 0) {
            double now = log_now();
            log_info("[%" PRIu64 " batches out of %" PRIu64 "] (%.1f examples/sec; %.3fsec/batch)", batches,
                     p->batches, 20.0 * c->batch_size / (now - tl), (now - tl) / 20);
            tl = now;
        }
    }
    return STATUS_OK;
}

/* TF's result line on stdout and the two scalars in the eval event file. */
static status eval_report(struct pass *p, struct eval_result *res, double t0)
{
    const struct eval_config *c = p->c;
    res->step = p->ck.step;
    res->precision1 = res->examples ? (double)res->top1 / (double)res->examples : 0;
    res->recall5 = res->examples ? (double)res->top5 / (double)res->examples : 0;
    if (res->duplicates) log_warn("ignored %" PRIu64 " duplicate examples (counted once)", res->duplicates);
    /* the pass is every batch of the subset, each once (re-leased when its worker
       died): what is missing are bad records the workers skipped */
    if (res->examples > p->sub->count)
        return FAIL(STATUS_STATE, "the pass covered %" PRIu64 " examples, the %s subset has %" PRIu64,
                    res->examples, c->subset, p->sub->count);
    res->skipped = p->sub->count - res->examples;
    if (res->skipped)
        log_warn("%" PRIu64 " of the %s subset's %" PRIu64 " records were skipped as bad (the augment workers "
                 "name each); precision is over the %" PRIu64 " evaluated", res->skipped, c->subset, p->sub->count,
                 res->examples);
    char when[40], skipped[80] = "";
    if (res->skipped) snprintf(skipped, sizeof skipped, ", %" PRIu64 " bad records skipped", res->skipped);
    log_timestamp(when, sizeof when);
    /* with 5 classes or fewer every label is in the top 5: say so instead of reporting a perfect score */
    char trivial[64] = "";
    if (p->classes <= 5) snprintf(trivial, sizeof trivial, " (trivially 1: %d classes <= 5)", p->classes);
    printf("%s: precision @ 1 = %.4f recall @ 5 = %.4f%s [%" PRIu64 " examples%s]\n", when, res->precision1,
           res->recall5, trivial, res->examples, skipped);
    fflush(stdout);
    log_info("evaluated in %.1f s", log_now() - t0);
    char dflt[4200];
    snprintf(dflt, sizeof dflt, "%s/eval", c->checkpoint_dir);
    struct tfevents *ev = NULL;
    status st = tfevents_open(&ev, c->eval_dir ? c->eval_dir : dflt);
    const char *tags[2] = { "Precision @ 1", "Recall @ 5" };
    float vals[2] = { (float)res->precision1, (float)res->recall5 };
    if (st == STATUS_OK) st = tfevents_scalars(ev, res->step, 2, tags, vals);
    tfevents_free(&ev);
    return st;
}

static status eval_steps(struct pass *p, struct eval_result *res)
{
    /* loading: a stop ends the process at once (nothing to save) */
    signals_stop_now("deeper eval", "loading");
    TRY(eval_load(p));
    signals_stop_now(NULL, NULL);
    if (g_stop) return FAIL(STATUS_INTERRUPTED, "evaluation interrupted");
    TRY(eval_input(p));
    double t0 = log_now();
    TRY(eval_pass(p, res));
    return eval_report(p, res, t0);
}

status eval_once(const struct eval_config *c, struct eval_result *res)
{
    memset(res, 0, sizeof(*res));
    if (!c->data_dir) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (!c->checkpoint_dir) return FAIL(STATUS_USAGE, "--checkpoint_dir is required");
    if (c->num_preprocess_threads < 0 || (c->num_preprocess_threads == 0 && !c->listen))
        return FAIL(STATUS_USAGE, "--num_preprocess_threads must be >= 1 (0 only with --listen)");
    TRY(augment_flags_check(&c->augment));
    TRY(curve_listen_check(c->listen, &c->curve));
    struct pass p = { .c = c };
    status st = eval_steps(&p, res);
    signals_stop_now(NULL, NULL);
    input_close(&p.in);
    model_towers_free(&p.ts);
    model_ckpt_close(&p.ck);
    manifest_free(&p.man);
    free(p.seen.v);
    free(p.probs);
    return st;
}

status eval_run(const struct eval_config *c)
{
    /* before any thread exists: see shared/signals.h */
    status wst = signals_watch(&g_stop);
    if (wst != STATUS_OK) return wst;
    for (;;) {
        struct eval_result r;
        status st = eval_once(c, &r);
        if (c->run_once) return st;
        if (st == STATUS_INTERRUPTED) return STATUS_OK;
        if (st != STATUS_OK) log_warn("%s", status_msg());
        for (int s = 0; s < c->eval_interval_secs && !g_stop; s++) sleep(1);
        if (g_stop) return STATUS_OK;
    }
}
