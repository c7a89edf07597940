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
#include "shared/dispatch_proto.h"
#include "shared/stream.h"
#include "shared/tfevents.h"
#include "trainer/checkpoint.h"
#include "trainer/dispatcher.h"
#include "trainer/model.h"
#include "trainer/train_state.h"
#include "trainer/workers.h"

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

struct idle { struct workers *w; struct dispatcher *d; };

static const char *const *eval_worker_name(int i, void *ctx)
{
    static char name[32];
    static const char *argv[3];
    (void)ctx;
    snprintf(name, sizeof name, "local-%d", i);
    argv[0] = "--name"; argv[1] = name; argv[2] = NULL;
    return argv;
}

/* A local worker that exited: its split goes to another at once; a new
 * worker takes its place. */
static void eval_reap(void *ctx)
{
    struct idle *ic = ctx;
    if (!ic->w) return;
    int dead[256];
    int nd = workers_poll(ic->w, dead, NULL);
    for (int k = 0; k < nd && !g_stop; k++) {
        char name[32];
        snprintf(name, sizeof name, "local-%d", dead[k]);
        dispatcher_forget(ic->d, name);
        if (workers_restarts(ic->w) < 10 && workers_respawn(ic->w, dead[k]) != STATUS_OK) log_warn("%s", status_msg());
    }
}

status eval_once(const struct eval_config *c, struct eval_result *res)
{
    status st = STATUS_OK;
    struct manifest *man = NULL;
    struct st_file *ck = NULL;
    struct tower_set *ts = NULL;
    struct dispatcher *disp = NULL;
    struct workers *workers = NULL;
    struct tfevents *ev = NULL;
    char *ckpt_path = NULL, *exe = NULL;
    float *probs = NULL;
    struct idset seen = { 0 };
    char endpoint[1024], ipc_dir[256] = "", ipc_ep[320];
    memset(res, 0, sizeof(*res));

    if (!c->data_dir) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (!c->checkpoint_dir) return FAIL(STATUS_USAGE, "--checkpoint_dir is required");
    if (c->num_preprocess_threads < 0 || (c->num_preprocess_threads == 0 && !c->listen))
        return FAIL(STATUS_USAGE, "--num_preprocess_threads must be >= 1 (0 only with --listen)");
    TRY(augment_flags_check(&c->augment));
    if (c->listen) {
        TRY(curve_opts_check(&c->curve, 1));
        TRY(curve_policy_check(c->listen, curve_opts_enabled(&c->curve), c->curve.insecure));
        if (c->curve.insecure) log_warn("--insecure: %s accepts batches from anyone who reaches it", c->listen);
    } else if (curve_opts_enabled(&c->curve) || c->curve.insecure) {
        return FAIL(STATUS_USAGE, "--curve_secret_key/--insecure go with --listen");
    }
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
    safetensors_free(&ck);
    log_info("Successfully loaded model from %s at step=%" PRId64 ".", ckpt_path, step);

    signals_stop_now(NULL, NULL);
    if (g_stop) { st = FAIL(STATUS_INTERRUPTED, "evaluation interrupted"); goto done; }
    int W = c->num_preprocess_threads;
    uint64_t nb = (sub->count + (uint64_t)c->batch_size - 1) / (uint64_t)c->batch_size;
    if ((st = dispatcher_ipc_dir_make("deeper-eval", ipc_dir, sizeof ipc_dir, ipc_ep, sizeof ipc_ep)) != STATUS_OK)
        goto done;
    snprintf(endpoint, sizeof endpoint, "%s%s%s", ipc_ep, c->listen ? "," : "", c->listen ? c->listen : "");
    struct dispatcher_config dc = dispatcher_config_default();
    dc.endpoints = endpoint;
    dc.eval = 1;
    dc.subset = c->subset;
    dc.batch_size = (uint32_t)c->batch_size;
    dc.image_size = (uint32_t)meta.image_size;
    dc.channels = (uint32_t)data_c;
    dc.seed = meta.seed;
    dc.examples = sub->count;
    dc.id_limit = manifest_subset_id_limit(sub);
    dc.end_batch = nb;
    dc.num_classes = classes;
    augment_flags_tristate(&c->augment, &dc.flip, &dc.color, &dc.crop);
    if (c->worker_timeout > 0) dc.worker_timeout_ms = (int)(c->worker_timeout * 1000);
    dc.dump_ids = getenv("DEEPER_DUMP_IDS");
    dc.curve = c->listen ? &c->curve : NULL;
    if ((st = dproto_dataset_identity(c->data_dir, &dc.manifest_crc, &dc.manifest_len, &dc.records)) != STATUS_OK)
        goto done;
    if ((st = dispatcher_new(&dc, &disp)) != STATUS_OK) goto done;
    if (W > 0) {
        if ((st = workers_sibling_exe("augment", &exe)) != STATUS_OK) goto done;
        /* with CURVE the dispatcher's socket takes only keyed peers: local workers hold the consumer's own pair */
        const char *common[] = { "--data_dir", c->data_dir, "--quiet", NULL, NULL, NULL, NULL, NULL };
        if (dc.curve && curve_opts_enabled(dc.curve)) {
            common[3] = "--curve_secret_key"; common[4] = dc.curve->secret_key;
            common[5] = "--curve_server_key"; common[6] = dc.curve->secret_key;
        }
        if ((st = workers_start_dispatched(&workers, exe, common, W, ipc_ep, eval_worker_name, NULL)) != STATUS_OK)
            goto done;
    }
    if (c->listen) log_info("waiting for remote augment workers on %s", c->listen);

    if ((st = idset_init(&seen, sub->count)) != STATUS_OK) goto done;
    probs = malloc((size_t)c->batch_size * (size_t)classes * sizeof(float));
    if (!probs) { st = FAIL(STATUS_NOMEM, "eval: out of memory"); goto done; }
    struct idle ic = { workers, disp };
    double t0 = log_now(), tl = t0;
    for (uint64_t batches = 0; batches < nb;) {
        struct dispatch_batch b;
        st = dispatcher_next(disp, &b, &g_stop, eval_reap, &ic, NULL);
        if (st == STATUS_INTERRUPTED) { st = FAIL(STATUS_INTERRUPTED, "evaluation interrupted"); goto done; }
        if (st != STATUS_OK) goto done;
        if ((st = model_forward_eval(ts, b.pixels, b.c, b.n, probs)) != STATUS_OK) goto done;
        for (int i = 0; i < b.n; i++) {
            int added = idset_add(&seen, b.ids[i]);
            if (added < 0) { st = FAIL(STATUS_STATE, "eval: more ids than the manifest lists"); goto done; }
            if (added == 0) { res->duplicates++; continue; }
            const float *p = probs + (size_t)i * classes;
            int label = b.labels[i];
            float pl = p[label];
            int higher = 0;
            for (int k = 0; k < classes; k++)
                if (p[k] > pl || (p[k] == pl && k < label)) higher++;
            res->examples++;
            if (higher == 0) res->top1++;
            if (higher < 5) res->top5++;
        }
        batches++;
        if (batches % 20 == 0) {
            double now = log_now();
            log_info("[%" PRIu64 " batches out of %" PRIu64 "] (%.1f examples/sec; %.3fsec/batch)", batches, nb,
                     20.0 * c->batch_size / (now - tl), (now - tl) / 20);
            tl = now;
        }
    }
    res->step = step;
    res->precision1 = res->examples ? (double)res->top1 / (double)res->examples : 0;
    res->recall5 = res->examples ? (double)res->top5 / (double)res->examples : 0;
    if (res->duplicates) log_warn("ignored %" PRIu64 " duplicate examples (counted once)", res->duplicates);
    /* the pass is every batch of the subset, each once (re-leased when its worker
       died): what is missing are bad records the workers skipped */
    if (res->examples > sub->count) {
        st = FAIL(STATUS_STATE, "the pass covered %" PRIu64 " examples, the %s subset has %" PRIu64,
                  res->examples, c->subset, sub->count);
        goto done;
    }
    res->skipped = sub->count - res->examples;
    if (res->skipped)
        log_warn("%" PRIu64 " of the %s subset's %" PRIu64 " records were skipped as bad (the augment workers "
                 "name each); precision is over the %" PRIu64 " evaluated", res->skipped, c->subset, sub->count,
                 res->examples);
    char when[40], skipped[80] = "";
    log_timestamp(when, sizeof when);
    if (res->skipped) snprintf(skipped, sizeof skipped, ", %" PRIu64 " bad records skipped", res->skipped);
    /* with 5 classes or fewer every label is in the top 5: say so instead of reporting a perfect score */
    char trivial[64] = "";
    if (classes <= 5) snprintf(trivial, sizeof trivial, " (trivially 1: %d classes <= 5)", classes);
    printf("%s: precision @ 1 = %.4f recall @ 5 = %.4f%s [%" PRIu64 " examples%s]\n", when, res->precision1,
           res->recall5, trivial, res->examples, skipped);
    fflush(stdout);
    log_info("evaluated in %.1f s", log_now() - t0);
    {
        char dflt[4200];
        snprintf(dflt, sizeof dflt, "%s/eval", c->checkpoint_dir);
        if ((st = tfevents_open(&ev, c->eval_dir ? c->eval_dir : dflt)) != STATUS_OK) goto done;
        const char *tags[2] = { "Precision @ 1", "Recall @ 5" };
        float vals[2] = { (float)res->precision1, (float)res->recall5 };
        if ((st = tfevents_scalars(ev, step, 2, tags, vals)) != STATUS_OK) goto done;
    }
done:
    signals_stop_now(NULL, NULL);
    workers_stop(&workers);
    dispatcher_free(&disp);
    dispatcher_ipc_dir_remove(ipc_dir);
    tfevents_free(&ev);
    model_towers_free(&ts);
    safetensors_free(&ck);
    manifest_free(&man);
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
