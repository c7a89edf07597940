/*
 * eval.c — one exact evaluation pass (see eval.h).
 *
 * Exactly once: each example id seen is put in an open-addressing hash set
 * (sized from the manifest's count); a repeated id is counted as a
 * duplicate and not scored.  The pass ends when the receiver reports that
 * every worker's END_OF_PASS marker arrived (stream.h, pass_complete).  A
 * worker that dies before its marker is reported and the pass fails: a
 * partial pass would give a wrong precision.  Records the workers skip as
 * bad are not in the pass: the END_OF_PASS counts say how many were sent, and
 * the result line says how many of the subset's records were skipped.
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

#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/signals.h"
#include "shared/stream.h"
#include "shared/tfevents.h"
#include "trainer/checkpoint.h"
#include "trainer/model.h"
#include "trainer/train_state.h"
#include "trainer/workers.h"

static volatile sig_atomic_t g_stop;

struct eval_config eval_config_default(void)
{
    struct eval_config c = { 0 };
    c.eval_dir = "/tmp/deeper_eval";
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

struct idle { struct workers *w; int died, exited, W; double all_exited_at; };

/* A worker that fails invalidates the pass; one that exits cleanly may still
 * have its last batches and marker in flight, so wait a while for them. */
static void eval_reap(struct idle *ic)
{
    if (!ic->w) return;
    int dead[256], clean[256];
    int nd = workers_poll(ic->w, dead, clean);
    for (int k = 0; k < nd; k++) {
        if (!clean[k]) ic->died = 1;
        else if (++ic->exited == ic->W) ic->all_exited_at = log_now();
    }
    if (ic->exited == ic->W && log_now() - ic->all_exited_at > 30) ic->died = 1;
}

status eval_once(const struct eval_config *c, struct eval_result *res)
{
    status st = STATUS_OK;
    struct manifest *man = NULL;
    struct st_file *ck = NULL;
    struct tower_set *ts = NULL;
    struct stream_receiver *rx = NULL;
    struct workers *workers = NULL;
    struct tfevents *ev = NULL;
    char *ckpt_path = NULL, *exe = NULL;
    float *probs = NULL;
    struct idset seen = { 0 };
    char endpoint[256];
    memset(res, 0, sizeof(*res));

    if (!c->data_dir) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (!c->checkpoint_dir) return FAIL(STATUS_USAGE, "--checkpoint_dir is required");
    if (c->num_preprocess_threads < 1) return FAIL(STATUS_USAGE, "--num_preprocess_threads must be >= 1");
    /* loading: a stop ends the process at once (nothing to save) */
    signals_stop_now("deeper eval", "loading");
    if ((st = manifest_load(c->data_dir, &man)) != STATUS_OK) goto done;
    const struct manifest_subset *sub = manifest_subset_find(man, c->subset);
    if (!sub || sub->count == 0) { st = FAIL(STATUS_FORMAT, "%s: dataset has no %s subset", c->data_dir, c->subset); goto done; }
    if ((st = manifest_check_records(man, c->data_dir)) != STATUS_OK) goto done;

    int64_t step;
    if ((st = checkpoint_latest(c->checkpoint_dir, &ckpt_path, &step)) != STATUS_OK) {
        if (st == STATUS_NOT_FOUND && strstr(status_msg(), "no usable checkpoint")) goto done;   /* says why */
        if (st == STATUS_NOT_FOUND) st = FAIL(STATUS_NOT_FOUND, "No checkpoint file found in %s", c->checkpoint_dir);
        goto done;
    }
    struct ckpt_meta meta;
    if ((st = checkpoint_open(ckpt_path, &ck, &meta)) != STATUS_OK) goto done;
    int classes = manifest_num_labels(man);
    if (meta.num_classes != classes) {
        st = FAIL(STATUS_USAGE, "%s has %d classes, dataset %s has %d", ckpt_path, meta.num_classes, c->data_dir, classes);
        goto done;
    }
    int data_c = man->image.channels;
    const struct model_desc *md = model_find(meta.model);
    if (!md) { st = FAIL(STATUS_FORMAT, "%s: unknown model %s", ckpt_path, meta.model); goto done; }
    struct model_options mo = model_options_default();
    mo.model = meta.model;
    mo.classes = classes;
    mo.image_size = meta.image_size;
    mo.channels = md->default_channels == 3 ? 3 : data_c;
    mo.batch_size = c->batch_size;
    mo.num_towers = 1;
    mo.backend = c->device;
    mo.threads = c->threads;
    mo.training = 0;
    mo.seed = meta.seed;
    if ((st = model_towers_new(&ts, &mo)) != STATUS_OK) goto done;
    if ((st = train_state_restore(ts, ck, RESTORE_EMA_AS_WEIGHTS)) != STATUS_OK) goto done;
    safetensors_close(&ck);
    log_info("Successfully loaded model from %s at step=%" PRId64 ".", ckpt_path, step);

    signals_stop_now(NULL, NULL);
    if (g_stop) { st = FAIL(STATUS_INTERRUPTED, "evaluation interrupted"); goto done; }
    int W = c->num_preprocess_threads;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || strlen(tmp) > 60) tmp = "/tmp";
    snprintf(endpoint, sizeof endpoint, "ipc://%s/deeper-eval-%d.ipc", tmp, (int)getpid());
    int stale = 0;
    if (stream_ipc_remove_stale(tmp, "deeper-eval-", &stale) == STATUS_OK && stale)
        log_info("removed %d stale socket file(s) of killed runs from %s", stale, tmp);
    struct stream_config sc = stream_config_default();
    sc.endpoint = endpoint;
    sc.max_n = (uint32_t)c->batch_size;
    sc.h = sc.w = (uint32_t)meta.image_size;
    sc.c = (uint32_t)data_c;
    sc.pool_size = 2 * W + 2;
    sc.num_classes = classes;
    sc.expect_workers = (uint16_t)W;
    if ((st = stream_receiver_new(&sc, &rx)) != STATUS_OK) goto done;
    if ((st = workers_sibling_exe("augment", &exe)) != STATUS_OK) goto done;
    char bs[16], is[16];
    snprintf(bs, sizeof bs, "%d", c->batch_size);
    snprintf(is, sizeof is, "%d", meta.image_size);
    const char *common[] = { "--data_dir", c->data_dir, "--subset", c->subset, "--eval", "--num_passes", "1", "--batch_size", bs,
                             "--image_size", is, NULL };
    if ((st = workers_start(&workers, exe, common, W, endpoint, 0, NULL, NULL)) != STATUS_OK) goto done;

    if ((st = idset_init(&seen, sub->count)) != STATUS_OK) goto done;
    probs = malloc((size_t)c->batch_size * (size_t)classes * sizeof(float));
    if (!probs) { st = FAIL(STATUS_NOMEM, "eval: out of memory"); goto done; }
    struct idle ic = { workers, 0, 0, W, 0 };
    double t0 = log_now(), tl = t0;
    uint64_t batches = 0, sent = 0;
    for (;;) {
        if (g_stop) { st = FAIL(STATUS_INTERRUPTED, "evaluation interrupted"); goto done; }
        struct stream_batch *b;
        st = stream_receiver_next(rx, &b, 200);
        if (st == STATUS_TIMEOUT) {
            eval_reap(&ic);
            if (ic.died) { st = FAIL(STATUS_STATE, "an augment worker died before finishing the pass; no result"); goto done; }
            continue;
        }
        if (st != STATUS_OK) goto done;
        if (b->end_of_pass) {
            int complete = b->pass_complete;
            sent += b->header.count;
            stream_receiver_release(rx, b);
            if (complete) break;
            continue;
        }
        st = model_forward_eval(ts, b->pixels, (int)b->c, (int)b->n, probs);
        if (st != STATUS_OK) { stream_receiver_release(rx, b); goto done; }
        for (uint32_t i = 0; i < b->n; i++) {
            int added = idset_add(&seen, b->ids[i]);
            if (added < 0) { stream_receiver_release(rx, b); st = FAIL(STATUS_STATE, "eval: more ids than the manifest lists"); goto done; }
            if (added == 0) { res->duplicates++; continue; }
            const float *p = probs + (size_t)i * classes;
            int label = b->labels[i];
            float pl = p[label];
            int higher = 0;
            for (int k = 0; k < classes; k++)
                if (p[k] > pl || (p[k] == pl && k < label)) higher++;
            res->examples++;
            if (higher == 0) res->top1++;
            if (higher < 5) res->top5++;
        }
        stream_receiver_release(rx, b);
        batches++;
        if (batches % 20 == 0) {
            double now = log_now();
            log_info("[%" PRIu64 " batches out of %" PRIu64 "] (%.1f examples/sec; %.3fsec/batch)", batches,
                     (sub->count + (uint64_t)c->batch_size - 1) / (uint64_t)c->batch_size,
                     20.0 * c->batch_size / (now - tl), (now - tl) / 20);
            tl = now;
        }
    }
    res->step = step;
    res->precision1 = res->examples ? (double)res->top1 / (double)res->examples : 0;
    res->recall5 = res->examples ? (double)res->top5 / (double)res->examples : 0;
    if (res->duplicates) log_warn("ignored %" PRIu64 " duplicate examples (counted once)", res->duplicates);
    /* every example the workers sent must have arrived; what they did not
       send are bad records they skipped (each named in their log) */
    if (res->examples != sent || sent > sub->count) {
        st = FAIL(STATUS_STATE, "the pass covered %" PRIu64 " examples, the workers sent %" PRIu64
                  " and the %s subset has %" PRIu64, res->examples, sent, c->subset, sub->count);
        goto done;
    }
    res->skipped = sub->count - sent;
    if (res->skipped)
        log_warn("%" PRIu64 " of the %s subset's %" PRIu64 " records were skipped as bad (the augment workers "
                 "name each); precision is over the %" PRIu64 " evaluated", res->skipped, c->subset, sub->count,
                 res->examples);
    char when[40], skipped[80] = "";
    log_timestamp(when, sizeof when);
    if (res->skipped) snprintf(skipped, sizeof skipped, ", %" PRIu64 " bad records skipped", res->skipped);
    printf("%s: precision @ 1 = %.4f recall @ 5 = %.4f [%" PRIu64 " examples%s]\n", when, res->precision1,
           res->recall5, res->examples, skipped);
    fflush(stdout);
    log_info("evaluated in %.1f s", log_now() - t0);
    if (c->eval_dir) {
        if ((st = tfevents_open(&ev, c->eval_dir)) != STATUS_OK) goto done;
        const char *tags[2] = { "Precision @ 1", "Recall @ 5" };
        float vals[2] = { (float)res->precision1, (float)res->recall5 };
        if ((st = tfevents_scalars(ev, step, 2, tags, vals)) != STATUS_OK) goto done;
    }
done:
    signals_stop_now(NULL, NULL);
    workers_stop(&workers);
    stream_receiver_free(&rx);
    tfevents_close(&ev);
    model_towers_free(&ts);
    safetensors_close(&ck);
    manifest_free(man);
    free(seen.v); free(probs); free(ckpt_path); free(exe);
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
