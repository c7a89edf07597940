/*
 * train.c — the training loop (see train.h).
 *
 * Order of things in train_run:
 *   1. manifest (classes, examples per epoch, channels, digest);
 *   2. newest checkpoint in train_dir unless --fresh: its metadata fixes the
 *      model, class count, image size, seed and the stream position;
 *   3. towers (trainer/model.h), state restored from the checkpoint;
 *   4. receiver bound on an ipc:// endpoint (or --listen), local workers
 *      spawned with where to start (feed.h explains the ordering);
 *   5. steps; logging, events, checkpoints; clean stop.
 * Input wait: the fraction of step time the device waits for batches.  On
 * the CPU that is the time spent in feed_next; on GPUs, whose backward
 * pass and update still run while the host waits there, only the part of
 * it after the GPUs went idle (tower_cuda_mark / tower_cuda_idle_since).
 * Determinism: with the same seed and worker count, batch k is always
 * worker k%W's batch k/W, each worker's stream is a function of (seed, W,
 * worker), and the checkpoint stores the position, so 10 + resume + 10 steps
 * replay exactly the batches of one 20-step run.
 */
#include "trainer/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "augment/worker.h"
#include "shared/crc32c.h"
#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/signals.h"
#include "shared/stream.h"
#include "shared/tfevents.h"
#include "trainer/checkpoint.h"
#include "trainer/feed.h"
#include "trainer/model.h"
#include "trainer/pretrained.h"
#include "trainer/train_state.h"
#include "trainer/workers.h"
#ifdef DEEPER_HAVE_CUDA
#include "trainer/backend_cuda.h"
#include "trainer/tower_cuda.h"

/* The feed's batch buffers in pinned host memory, so each upload to the GPU
 * is one asynchronous DMA.  Where the machine refuses to pin (a sandbox, a
 * memory lock limit) the buffers fall back to ordinary memory with one
 * warning: uploads are then staged by the driver, slower but correct.  A
 * 64-byte header (keeping the 64-byte alignment) records which it was. */
static void *pinned_alloc(size_t size, void *ctx)
{
    static int warned;
    (void)ctx;
    unsigned char *p = backend_cuda_host_alloc(size + 64);
    int pinned = p != NULL;
    if (!p) {
        if (!warned++) log_warn("pinned host memory unavailable; batches go to the GPU from pageable memory");
        p = aligned_alloc(64, (size + 64 + 63) & ~(size_t)63);
        if (!p) return NULL;
    }
    p[0] = (unsigned char)pinned;
    return p + 64;
}
static void pinned_free(void *ptr, size_t size, void *ctx)
{
    (void)size; (void)ctx;
    unsigned char *p = (unsigned char *)ptr - 64;
    if (p[0]) backend_cuda_host_free(p);
    else free(p);
}
#endif

/* worker restarts: at most TRAIN_MAX_RESTARTS in any TRAIN_RESTART_WINDOW_S
 * seconds (rare deaths over a week-long run never end it; a crash loop does) */
#define TRAIN_MAX_RESTARTS 10
#define TRAIN_RESTART_WINDOW_S 600

static volatile sig_atomic_t g_stop;   /* set by the signal watcher (shared/signals.h) */

struct train_config train_config_default(void)
{
    struct train_config c = { 0 };
    c.model = "nielsennet";
    c.max_steps = 10000000;
    c.batch_size = 32;
    c.num_towers = 1;
    c.num_gpus = 1;
    c.device = "cpu";
    c.precision = "fp32";
    c.initial_learning_rate = 0.1f;
    c.num_epochs_per_decay = 30.0f;
    c.learning_rate_decay_factor = 0.16f;
    c.num_preprocess_threads = 2;
    c.save_interval_steps = 5000;
    c.seed = 1;
    c.input_queue_memory_factor = 16;
    c.log_every = 10;
    c.summary_every = 100;
    c.keep_checkpoints = CKPT_KEEP_DEFAULT;
    c.weight_decay = 4e-5f;
    c.ema_decay = 0.9999f;
    c.label_smoothing = 0.1f;
    c.batchnorm_decay = 0.9997f;
    c.batchnorm_zero_debias = 1;
    return c;
}

/* Digest of manifest.json: CRC32C of its bytes and its length, as hex. */
status train_manifest_digest(const char *data_dir, char *out, size_t size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, MANIFEST_FILE);
    FILE *fp = fopen(path, "rb");
    if (!fp) return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    uint32_t crc = 0;
    uint64_t n = 0;
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, fp)) > 0) { crc = crc32c_update(crc, buf, k); n += k; }
    fclose(fp);
    snprintf(out, size, "crc32c:%08x:%" PRIu64, crc, n);
    return STATUS_OK;
}

/* JSON array of class names indexed by label (caller frees). */
char *train_class_names_json(const struct manifest *m)
{
    cJSON *a = cJSON_CreateArray();
    int nl = manifest_num_labels(m);
    for (int i = 0; i < nl; i++) {
        const char *name = manifest_class_name(m, i);
        cJSON_AddItemToArray(a, cJSON_CreateString(name ? name : "background"));
    }
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

struct worker_args {
    int W;
    int64_t position;
    struct feed *feed;     /* when set, respawns start where the feed expects */
    char start[32];
    const char *argv[4];
};

static const char *const *worker_extra(int i, void *ctx)
{
    struct worker_args *a = ctx;
    uint64_t seq = a->feed ? feed_expected_seq(a->feed, i) : feed_first_seq(a->position, a->W, i);
    snprintf(a->start, sizeof a->start, "%" PRIu64, seq);
    a->argv[0] = "--start_batch";
    a->argv[1] = a->start;
    a->argv[2] = NULL;
    return a->argv;
}

struct idle_ctx { struct workers *w; struct feed *feed; status st; };

static void reap_workers(void *ctx)
{
    struct idle_ctx *ic = ctx;
    if (!ic->w) return;
    int dead[256];
    int nd = workers_poll(ic->w, dead, NULL);
    for (int k = 0; k < nd && !g_stop; k++) {
        int code = workers_exit_code(ic->w, dead[k]);
        if (code == WORKER_EXIT_USAGE || code == WORKER_EXIT_PERMANENT) {
            ic->st = FAIL(STATUS_STATE, "augment worker %d cannot start (exit status %d: %s, see its message above); "
                          "a restart would not help, stopping", dead[k], code,
                          code == WORKER_EXIT_USAGE ? "bad usage" : "the dataset is missing or inconsistent");
            g_stop = SIGTERM;
            return;
        }
        if (workers_restarts_within(ic->w, TRAIN_RESTART_WINDOW_S) >= TRAIN_MAX_RESTARTS) {
            ic->st = FAIL(STATUS_STATE, "augment workers keep dying (%d restarts in the last %d minutes); see their "
                          "messages above", TRAIN_MAX_RESTARTS, TRAIN_RESTART_WINDOW_S / 60);
            g_stop = SIGTERM;
            return;
        }
        log_warn("augment worker %d stopped; restarting it at its batch %" PRIu64, dead[k],
                 feed_expected_seq(ic->feed, dead[k]));
        if (workers_respawn(ic->w, dead[k]) != STATUS_OK) log_warn("%s", status_msg());
    }
}

static status save(struct tower_set *ts, struct ckpt_meta *meta, const struct train_config *c,
                   struct feed *feed, uint64_t epoch, struct tfevents *ev)
{
    meta->position = feed_position(feed);
    meta->epoch = (int64_t)epoch;
    meta->learning_rate = optim_learning_rate(&ts->optim, ts->step);
    char *path = NULL;
    double t0 = log_now();
    TRY(train_state_save(ts, meta, c->train_dir, c->keep_checkpoints, &path));
    log_info("saved checkpoint %s (%.2f s)", path, log_now() - t0);
    free(path);
    (void)ev;
    return STATUS_OK;
}

status train_run(const struct train_config *c)
{
    status st = STATUS_OK;
    struct manifest *man = NULL;
    struct st_file *ck = NULL;
    struct tower_set *ts = NULL;
    struct stream_receiver *rx = NULL;
    struct workers *workers = NULL;
    struct feed *feed = NULL;
    struct tfevents *ev = NULL;
    char *ckpt_path = NULL, *names_json = NULL, *exe = NULL;
    char endpoint[256] = "", digest[64] = "", buf[64];
    struct worker_args wargs = { 0 };
    struct idle_ctx ic = { 0 };

    if (!c->data_dir) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (!c->train_dir) return FAIL(STATUS_USAGE, "--train_dir is required");
    if (c->batch_size <= 0) return FAIL(STATUS_USAGE, "--batch_size must be positive");
    if (!(c->batchnorm_decay >= 0 && c->batchnorm_decay < 1))
        return FAIL(STATUS_USAGE, "--batchnorm_decay %g must be in [0, 1)", c->batchnorm_decay);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return FAIL(STATUS_USAGE, "--label_smoothing %g must be in [0, 1)", c->label_smoothing);
    if (!(c->dropout_keep_prob >= 0 && c->dropout_keep_prob <= 1))
        return FAIL(STATUS_USAGE, "--dropout_keep_prob %g must be in (0, 1] (0: the model's own)", c->dropout_keep_prob);
    if (c->num_preprocess_threads < 0) return FAIL(STATUS_USAGE, "--num_preprocess_threads must be >= 0");
    if (c->num_preprocess_threads == 0 && !c->listen)
        return FAIL(STATUS_USAGE, "--num_preprocess_threads 0 needs --listen ENDPOINT (remote workers)");
    if (c->precision && strcmp(c->precision, "fp32") != 0) {
        if (strcmp(c->precision, "bf16") == 0)
            return FAIL(STATUS_UNSUPPORTED, "--precision bf16 is not implemented yet; only fp32 (TF32 tensor cores "
                        "on GPUs, DEEPER_TF32=0 for exact fp32)");
        return FAIL(STATUS_USAGE, "--precision %s: expected fp32 or bf16", c->precision);
    }

    /* before any thread exists (backend pool, ZeroMQ, receiver): see shared/signals.h */
    if ((st = signals_watch(&g_stop)) != STATUS_OK) return st;
    /* until the stream starts nothing is saved: a stop ends the process at once */
    signals_stop_now("deeper train", "loading");
    if ((st = manifest_load(c->data_dir, &man)) != STATUS_OK) goto done;
    const struct manifest_subset *train = manifest_subset_find(man, "train");
    if (!train || train->count == 0) { st = FAIL(STATUS_FORMAT, "%s: dataset has no train subset", c->data_dir); goto done; }
    /* a manifest that contradicts its records would make every record bad in
       the workers: refuse it here, at once (remote workers check their own) */
    if (c->num_preprocess_threads > 0 && (st = manifest_check_records(man, c->data_dir)) != STATUS_OK) goto done;
    if ((st = train_manifest_digest(c->data_dir, digest, sizeof digest)) != STATUS_OK) goto done;
    names_json = train_class_names_json(man);
    int classes = manifest_num_labels(man);

    if (mkdir(c->train_dir, 0755) != 0 && errno != EEXIST) {
        st = FAIL(STATUS_IO, "%s: mkdir: %s", c->train_dir, strerror(errno)); goto done;
    }

    if (c->fresh) {
        int removed = 0;
        if ((st = checkpoint_remove_all(c->train_dir, &removed)) != STATUS_OK) goto done;
        if (removed) log_info("--fresh: removed %d old checkpoint(s) from %s", removed, c->train_dir);
    }

    /* resume? */
    struct ckpt_meta meta = { 0 };
    const char *model_name = c->model;
    uint64_t seed = (uint64_t)c->seed;
    int64_t position = 0;
    int image_size = c->image_size;
    if (!c->fresh) {
        int64_t ck_step;
        st = checkpoint_latest(c->train_dir, &ckpt_path, &ck_step);
        if (st == STATUS_OK) {
            if ((st = checkpoint_open(ckpt_path, &ck, &meta)) != STATUS_OK) goto done;
            if (strcmp(meta.model, c->model) != 0) {
                st = FAIL(STATUS_USAGE, "%s holds model %s, not %s (use --fresh or another --train_dir)",
                          ckpt_path, meta.model, c->model);
                goto done;
            }
            if (meta.num_classes != classes) {
                st = FAIL(STATUS_USAGE, "%s has %d classes, the dataset %d (use --fresh or another --train_dir)",
                          ckpt_path, meta.num_classes, classes);
                goto done;
            }
            if (meta.manifest_digest && strcmp(meta.manifest_digest, digest) != 0)
                log_warn("%s was trained on another version of the dataset (%s, now %s)", ckpt_path,
                         meta.manifest_digest, digest);
            seed = meta.seed;
            position = meta.position;
            if (image_size == 0) image_size = meta.image_size;
            else if (image_size != meta.image_size) {
                st = FAIL(STATUS_USAGE, "%s was trained at --image_size %d, not %d", ckpt_path, meta.image_size, image_size);
                goto done;
            }
            if (meta.num_workers != c->num_preprocess_threads && c->num_preprocess_threads > 0)
                log_warn("resuming with %d workers, checkpoint had %d: the batch order will differ from an uninterrupted run",
                         c->num_preprocess_threads, meta.num_workers);
        } else if (st == STATUS_NOT_FOUND) {
            st = STATUS_OK;
        } else goto done;
    }

    const struct model_desc *md = model_find(model_name);
    if (!md) { st = FAIL(STATUS_USAGE, "--model %s: unknown model", model_name); goto done; }
    if (image_size == 0) image_size = md->default_image_size;
    int data_c = man->image.channels;
    int model_c = md->default_channels == 3 ? 3 : data_c;

    struct model_options mo = model_options_default();
    mo.model = model_name;
    mo.classes = classes;
    mo.image_size = image_size;
    mo.channels = model_c;
    mo.batch_size = c->batch_size;
    const char *device = backend_name_resolve(c->device);   /* "auto": cuda when a GPU exists */
    mo.num_towers = strcmp(device, "cpu") != 0 ? c->num_gpus : c->num_towers;
    mo.backend = device;
    mo.threads = c->threads;
    mo.training = 1;
    mo.seed = seed;
    mo.label_smoothing = c->label_smoothing;
    mo.dropout_keep = c->dropout_keep_prob;
    mo.optim.initial_learning_rate = c->initial_learning_rate;
    mo.optim.num_epochs_per_decay = c->num_epochs_per_decay;
    mo.optim.learning_rate_decay_factor = c->learning_rate_decay_factor;
    mo.optim.examples_per_epoch = (int64_t)train->count;
    mo.optim.batch_size = c->batch_size;
    mo.optim.weight_decay = c->weight_decay;
    mo.optim.ema_decay = c->ema_decay;
    mo.optim.batchnorm_decay = c->batchnorm_decay;
    mo.optim.batchnorm_zero_debias = c->batchnorm_zero_debias;
    if (mo.num_towers <= 0 || c->batch_size % mo.num_towers != 0) {
        st = FAIL(STATUS_USAGE, "--batch_size %d must divide evenly over %d towers", c->batch_size, mo.num_towers);
        goto done;
    }
    if ((st = model_towers_new(&ts, &mo)) != STATUS_OK) goto done;
    if (ck) {
        if ((st = train_state_restore(ts, ck, RESTORE_TRAINING)) != STATUS_OK) goto done;
        ts->step = meta.step;
        log_info("resuming from %s at step %" PRId64 " (epoch %" PRId64 ", batch %" PRId64 ")", ckpt_path,
                 meta.step, meta.epoch, meta.position);
        safetensors_close(&ck);
        if (c->pretrained_model_checkpoint_path)
            log_info("resuming: --pretrained_model_checkpoint_path %s is not used",
                     c->pretrained_model_checkpoint_path);
    } else if (c->pretrained_model_checkpoint_path) {
        /* TF: a fresh run restores the pretrained variables (all but the
         * classifier with --fine_tune) before the first step */
        if ((st = pretrained_load(ts->g[0], c->pretrained_model_checkpoint_path, c->fine_tune, NULL)) != STATUS_OK)
            goto done;
        if ((st = tower_broadcast(ts)) != STATUS_OK) goto done;
    } else if (c->fine_tune) {
        st = FAIL(STATUS_USAGE, "--fine_tune needs --pretrained_model_checkpoint_path");
        goto done;
    }
    if (ts->step >= c->max_steps) {
        log_info("step %" PRId64 " already reached --max_steps %" PRId64 "; nothing to do", ts->step, c->max_steps);
        goto done;
    }

    /* the stream; from here on a stop is taken at the next step, after saving */
    signals_stop_now(NULL, NULL);
    int W = c->num_preprocess_threads;
    struct stream_config sc = stream_config_default();
    if (c->listen) snprintf(endpoint, sizeof endpoint, "%s", c->listen);
    else {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || strlen(tmp) > 60) tmp = "/tmp";
        snprintf(endpoint, sizeof endpoint, "ipc://%s/deeper-train-%d", tmp, (int)getpid());
        int stale = 0;
        if (stream_ipc_remove_stale(tmp, "deeper-train-", &stale) == STATUS_OK && stale)
            log_info("removed %d stale socket file(s) of killed runs from %s", stale, tmp);
    }
    /* local workers: one socket each (ipc://.../deeper-train-PID-wI), consumed in a fixed order */
    int ordered = W > 0 && !c->listen;
    sc.endpoint = endpoint;
    sc.max_n = (uint32_t)c->batch_size;
    sc.h = sc.w = (uint32_t)image_size;
    sc.c = (uint32_t)data_c;
    sc.pool_size = 2 * (W > 0 ? W : 2) + 2;
    sc.per_worker = ordered ? W : 0;
    sc.num_classes = classes;
    if ((st = stream_receiver_new(&sc, &rx)) != STATUS_OK) goto done;
    const struct stream_allocator *feed_alloc = NULL;
    int on_gpu = strcmp(ts->be[0]->ops->name, "cuda") == 0;
    (void)on_gpu;
#ifdef DEEPER_HAVE_CUDA
    static const struct stream_allocator pinned = { pinned_alloc, pinned_free, NULL };
    if (on_gpu) feed_alloc = &pinned;
#endif
    if ((st = feed_new_alloc(&feed, rx, W, ordered, position, c->batch_size, image_size,
                             image_size, data_c, feed_alloc)) != STATUS_OK)
        goto done;

    signal(SIGPIPE, SIG_IGN);

    if (W > 0) {
        if ((st = workers_sibling_exe("augment", &exe)) != STATUS_OK) goto done;
        char bs[16], is[16], sd[32], qf[16], cc[8];
        snprintf(bs, sizeof bs, "%d", c->batch_size);
        snprintf(is, sizeof is, "%d", image_size);
        snprintf(sd, sizeof sd, "%" PRIu64, seed);
        snprintf(qf, sizeof qf, "%d", c->input_queue_memory_factor);
        snprintf(cc, sizeof cc, "%d", data_c);
        const char *common[24] = { "--data_dir", c->data_dir, "--subset", "train", "--batch_size", bs,
                                   "--image_size", is, "--seed", sd, "--input_queue_memory_factor", qf };
        int nc = 12;
        if (c->no_flip) common[nc++] = "--no_flip";
        if (c->flip) common[nc++] = "--flip";
        common[nc] = NULL;
        wargs.W = W;
        wargs.position = position;
        if ((st = workers_start(&workers, exe, common, W, endpoint, ordered, worker_extra, &wargs)) != STATUS_OK)
            goto done;
        wargs.feed = feed;
        ic.w = workers;
        ic.feed = feed;
        log_info("started %d augment workers on %s", W, endpoint);
    } else {
        log_info("waiting for remote augment workers on %s", stream_receiver_endpoint(rx));
    }

    if ((st = tfevents_open(&ev, c->train_dir)) != STATUS_OK) goto done;
    if (ts->step > 0 && (st = tfevents_session_start(ev, ts->step)) != STATUS_OK) goto done;

    meta.model = model_name;
    meta.num_classes = classes;
    meta.class_names = names_json;
    meta.image_size = image_size;
    meta.channels = data_c;      /* channels of the images fed (the model may expand gray) */
    meta.manifest_digest = digest;
    meta.seed = seed;
    meta.num_workers = W;
    meta.batch_size = c->batch_size;

    log_info("training %s: %d classes, %dx%dx%d, batch %d on %d tower(s) (%s), %" PRIu64 " examples/epoch, "
             "lr %g decaying x%g every %" PRId64 " steps, seed %" PRIu64,
             model_name, classes, image_size, image_size, model_c, c->batch_size, ts->n, device,
             train->count, c->initial_learning_rate, c->learning_rate_decay_factor,
             optim_decay_steps(&ts->optim), seed);

    struct progress prog;
    int tty = isatty(STDERR_FILENO);
    int64_t start_step = ts->step, last_saved = ts->step;
    progress_start(&prog, "train", c->max_steps, "steps");
    prog.done = start_step;
    double win_wait = 0, win_compute = 0, t_start = log_now();
    int win_steps = 0;
    float loss_sum = 0;
    uint64_t epoch = (uint64_t)meta.epoch;
    while (ts->step < c->max_steps && !g_stop) {
        struct feed_batch b;
        double wait = 0, t_feed = log_now();
        st = feed_next(feed, &b, &g_stop, reap_workers, &ic, &wait);
#ifdef DEEPER_HAVE_CUDA
        if (on_gpu) {
            /* the GPU runs the last step's backward pass and update while the
             * host waits here: input wait is only the part after it went idle */
            double fed = log_now(), idle = tower_cuda_idle_since(ts);
            double gpu_wait = idle > 0 ? fed - (idle > t_feed ? idle : t_feed) : 0;
            if (gpu_wait < 0) gpu_wait = 0;
            if (gpu_wait > wait) gpu_wait = wait;
            win_compute += wait - gpu_wait;
            wait = gpu_wait;
        }
#endif
        (void)t_feed;
        win_wait += wait;
        if (st == STATUS_INTERRUPTED) { st = STATUS_OK; break; }
        if (st != STATUS_OK) goto done;
        epoch = b.epoch;
        double t0 = log_now();
        struct tower_step_result r;
        st = model_step_train(ts, b.pixels, b.c, b.labels, b.n, &r);
#ifdef DEEPER_HAVE_CUDA
        if (st == STATUS_OK && on_gpu) st = tower_cuda_mark(ts);
#endif
        double dt = log_now() - t0;
        if (st == STATUS_NAN || (st == STATUS_OK && !isfinite(r.loss))) {
            const char *what = (st == STATUS_OK && isinf(r.loss)) ? "inf" : "NaN";
            if (tty) fprintf(stderr, "\r\033[K");
            log_error("Model diverged with loss = %s at step %" PRId64 "; the last good checkpoint is kept",
                      what, ts->step + 1);
            st = FAIL(STATUS_NAN, "Model diverged with loss = %s", what);
            goto done;
        }
        if (st != STATUS_OK) goto done;
        win_compute += dt;
        win_steps++;
        loss_sum += r.loss;
        int64_t step = ts->step;
        if (c->log_every > 0 && (step % c->log_every == 0 || step == c->max_steps)) {
            char ts_[40];
            log_timestamp(ts_, sizeof ts_);
            double per = win_compute / win_steps;
            double waitfrac = win_wait / (win_wait + win_compute + 1e-12);
            int depth = feed_depth(feed);
            double el = log_now() - t_start;
            double eta = (step > start_step) ? el / (double)(step - start_step) * (double)(c->max_steps - step) : 0;
            if (tty) fprintf(stderr, "\r\033[K");
            fprintf(stderr, "%s: step %" PRId64 ", loss = %.2f (%.1f examples/sec; %.3f sec/batch) "
                    "queue %d, input wait %.0f%%, lr %.4g, epoch %" PRIu64 ", ETA %.0fs\n",
                    ts_, step, r.loss, c->batch_size / per, per, depth, 100 * waitfrac, r.learning_rate,
                    epoch, eta);
            const char *tags[5] = { "loss", "learning_rate", "examples/sec", "input_wait_fraction", "queue_depth" };
            float vals[5] = { loss_sum / win_steps, r.learning_rate, (float)(c->batch_size / per), (float)waitfrac,
                              (float)depth };
            if ((st = tfevents_scalars(ev, step, 5, tags, vals)) != STATUS_OK) goto done;
            win_wait = win_compute = 0; win_steps = 0; loss_sum = 0;
        }
        if (tty) progress_update(&prog, step);
        if (c->save_interval_steps > 0 && step % c->save_interval_steps == 0 && step < c->max_steps) {
            if ((st = save(ts, &meta, c, feed, epoch, ev)) != STATUS_OK) goto done;
            last_saved = step;
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    if (ic.st != STATUS_OK && ts->step == start_step) {
        st = ic.st;   /* the workers could not start: nothing was trained, nothing to save */
        goto done;
    }
    if (ts->step != last_saved || ts->step == start_step) {
        if (ts->step > start_step || !ckpt_path)
            if ((st = save(ts, &meta, c, feed, epoch, ev)) != STATUS_OK) goto done;
    }
    if (g_stop) {
        log_info("stopped by %s at step %" PRId64 " after saving", g_stop == SIGINT ? "SIGINT" : "SIGTERM", ts->step);
        st = ic.st != STATUS_OK ? ic.st : FAIL(STATUS_INTERRUPTED, "interrupted at step %" PRId64 "; checkpoint saved", ts->step);
    } else {
        log_info("done: step %" PRId64 " in %.1f s", ts->step, log_now() - t_start);
    }
done:
    signals_stop_now(NULL, NULL);
    workers_stop(&workers);
    feed_free(&feed);
    stream_receiver_free(&rx);
    tfevents_close(&ev);
    model_towers_free(&ts);
    safetensors_close(&ck);
    manifest_free(man);
    free(ckpt_path); free(names_json); free(exe);
    (void)buf;
    return st;
}
