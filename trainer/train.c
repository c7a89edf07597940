/*
 * train.c — the training loop (see train.h).
 *
 * Order of things in train_run:
 *   1. manifest (classes, examples per epoch, channels, digest);
 *   2. newest checkpoint in train_dir unless --fresh: its metadata fixes the
 *      model, class count, image size, seed and the stream position;
 *   3. towers (trainer/model.h), state restored from the checkpoint;
 *   4. the dispatcher (dispatcher.h) bound on a private ipc:// endpoint
 *      (and --listen), local workers started with --dispatcher;
 *   5. steps; logging, events, checkpoints; clean stop.
 * Input wait: the fraction of step time the device waits for batches.  On
 * the CPU that is the time spent in dispatcher_next; on GPUs, whose backward
 * pass and update still run while the host waits there, only the part of
 * it after the GPUs went idle (tower_mark / tower_idle_wait).
 * Determinism: batch k is a function of (seed, k) whichever worker made it
 * (proto/dispatch.md), and the checkpoint stores the position, so 10 +
 * resume + 10 steps replay exactly the batches of one 20-step run, with any
 * number of workers, local or remote.
 */
#include "trainer/train.h"

#include <cjson/cJSON.h>
#include <dirent.h>
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
#include "shared/dispatch_proto.h"
#include "trainer/checkpoint.h"
#include "trainer/dispatcher.h"
#include "trainer/model.h"
#include "trainer/pretrained.h"
#include "trainer/summary.h"
#include "trainer/train_state.h"
#include "trainer/workers.h"

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
    c.batch_size = TRAIN_MODEL_DEFAULT;
    c.num_towers = 1;
    c.num_gpus = 0;
    c.device = "cpu";
    c.precision = "fp32";
    c.initial_learning_rate = TRAIN_MODEL_DEFAULT;
    c.num_epochs_per_decay = TRAIN_MODEL_DEFAULT;
    c.learning_rate_decay_factor = TRAIN_MODEL_DEFAULT;
    c.num_preprocess_threads = 2;
    c.save_interval_steps = 5000;
    c.seed = 1;
    c.input_queue_memory_factor = 16;
    c.log_every = 10;
    c.summary_every = 100;
    c.keep_checkpoints = CKPT_KEEP_DEFAULT;
    c.weight_decay = TRAIN_MODEL_DEFAULT;
    c.ema_decay = 0.9999f;
    c.label_smoothing = TRAIN_MODEL_DEFAULT;
    c.stall_check_steps = 300;
    c.augment = augment_flags_none();
    c.batchnorm_decay = 0.9997f;
    c.batchnorm_zero_debias = 1;
    return c;
}

void train_config_apply_model(struct train_config *c, const struct model_desc *md)
{
    const struct model_defaults *d = model_defaults_of(md);
    /* a negative value given on the command line stays, for the range checks to name */
#define UNSET(field, bit) ((c->field) < 0 && !(c->given & (bit)))
    if (UNSET(initial_learning_rate, TRAIN_GIVEN_LR)) c->initial_learning_rate = d->initial_learning_rate;
    if (UNSET(num_epochs_per_decay, TRAIN_GIVEN_DECAY_EPOCHS)) c->num_epochs_per_decay = d->num_epochs_per_decay;
    if (UNSET(learning_rate_decay_factor, TRAIN_GIVEN_DECAY_FACTOR))
        c->learning_rate_decay_factor = d->learning_rate_decay_factor;
    if (UNSET(batch_size, TRAIN_GIVEN_BATCH)) c->batch_size = d->batch_size;
    if (c->image_size == 0 || UNSET(image_size, TRAIN_GIVEN_IMAGE_SIZE))
        c->image_size = md && md->defaults ? d->image_size : md ? md->default_image_size : d->image_size;
    if (UNSET(weight_decay, TRAIN_GIVEN_WEIGHT_DECAY)) c->weight_decay = d->weight_decay;
    /* 0 keeps meaning "the model's own"; a registered model without defaults keeps its graph's */
    if ((c->dropout_keep_prob == 0 || UNSET(dropout_keep_prob, TRAIN_GIVEN_KEEP)))
        c->dropout_keep_prob = md && !md->defaults ? 0 : d->dropout_keep_prob;
    if (UNSET(label_smoothing, TRAIN_GIVEN_SMOOTHING)) c->label_smoothing = d->label_smoothing;
#undef UNSET
}

const char *train_config_source(const struct train_config *c, unsigned bit)
{
    return (c->given & bit) ? "flag" : "model default";
}

/* Remove DIR/events.out.tfevents.* (a missing DIR is fine); *removed counts. */
static status remove_event_files(const char *dir, int *removed)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? STATUS_OK : FAIL(STATUS_IO, "%s: %s", dir, strerror(errno));
    status st = STATUS_OK;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "events.out.tfevents.", 20) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) { st = FAIL(STATUS_IO, "%s: unlink: %s", path, strerror(errno)); break; }
        (*removed)++;
    }
    closedir(d);
    return st;
}

/* mkdir -p */
static status make_dirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return FAIL(STATUS_USAGE, "%s: path too long", dir);
    for (char *q = p + 1; ; q++) {
        if (*q != '/' && *q) continue;
        char keep = *q;
        *q = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return FAIL(STATUS_IO, "%s: mkdir: %s", p, strerror(errno));
        *q = keep;
        if (!keep) break;
    }
    return STATUS_OK;
}

/* The first log line: every hyperparameter with a model default, its value
 * and where it came from.  ckpt_bits: the ones the checkpoint fixed. */
static void log_settings(const struct train_config *c, const char *model, unsigned ckpt_bits)
{
    static const struct { const char *name; unsigned bit; } f[] = {
        { "initial_learning_rate", TRAIN_GIVEN_LR }, { "num_epochs_per_decay", TRAIN_GIVEN_DECAY_EPOCHS },
        { "learning_rate_decay_factor", TRAIN_GIVEN_DECAY_FACTOR }, { "batch_size", TRAIN_GIVEN_BATCH },
        { "image_size", TRAIN_GIVEN_IMAGE_SIZE }, { "weight_decay", TRAIN_GIVEN_WEIGHT_DECAY },
        { "dropout_keep_prob", TRAIN_GIVEN_KEEP }, { "label_smoothing", TRAIN_GIVEN_SMOOTHING },
    };
    double v[8] = { c->initial_learning_rate, c->num_epochs_per_decay, c->learning_rate_decay_factor,
                    c->batch_size, c->image_size, c->weight_decay, c->dropout_keep_prob, c->label_smoothing };
    char line[1024], sw[160];
    int o = snprintf(line, sizeof line, "%s settings:", model);
    for (int i = 0; i < 8 && o < (int)sizeof line; i++) {
        const char *src = (ckpt_bits & f[i].bit) ? "checkpoint" : train_config_source(c, f[i].bit);
        o += snprintf(line + o, sizeof line - (size_t)o, "%s %s %g (%s)", i ? "," : "", f[i].name, v[i], src);
    }
    augment_flags_describe(&c->augment, sw, sizeof sw);
    log_info("%s; %s", line, sw);
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
    char name[32];
    const char *argv[4];
};

static const char *const *worker_extra(int i, void *ctx)
{
    struct worker_args *a = ctx;
    snprintf(a->name, sizeof a->name, "local-%d", i);
    a->argv[0] = "--name";
    a->argv[1] = a->name;
    a->argv[2] = NULL;
    return a->argv;
}

struct idle_ctx { struct workers *w; struct dispatcher *d; status st; };

/* A local worker that exited: its lease goes back at once, a new one
 * registers in its place. */
static void reap_workers(void *ctx)
{
    struct idle_ctx *ic = ctx;
    if (!ic->w) return;
    int dead[256];
    int nd = workers_poll(ic->w, dead, NULL);
    for (int k = 0; k < nd && !g_stop; k++) {
        char name[32];
        snprintf(name, sizeof name, "local-%d", dead[k]);
        dispatcher_forget(ic->d, name);
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
        log_warn("augment worker %d stopped; starting another", dead[k]);
        if (workers_respawn(ic->w, dead[k]) != STATUS_OK) log_warn("%s", status_msg());
    }
}

static status save(struct tower_set *ts, struct ckpt_meta *meta, const struct train_config *c,
                   struct dispatcher *disp, uint64_t epoch, struct tfevents *ev)
{
    meta->position = (int64_t)dispatcher_position(disp);
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

status train_run(const struct train_config *cin)
{
    struct train_config cv = *cin;
    const struct train_config *c = &cv;
    status st = STATUS_OK;
    struct manifest *man = NULL;
    struct st_file *ck = NULL;
    struct tower_set *ts = NULL;
    struct dispatcher *disp = NULL;
    struct workers *workers = NULL;
    struct tfevents *ev = NULL;
    char *ckpt_path = NULL, *names_json = NULL, *exe = NULL;
    char endpoint[1024] = "", ipc_dir[256] = "", ipc_ep[320] = "", digest[64] = "", buf[64];
    struct worker_args wargs = { 0 };
    struct idle_ctx ic = { 0 };

    if (!c->data_dir) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (!c->train_dir) return FAIL(STATUS_USAGE, "--train_dir is required");
    const struct model_desc *md = model_find(c->model);
    if (!md) {
        char names[256] = "";
        int nm = 0;
        const struct model_desc *ml = model_list(&nm);
        for (int i = 0; i < nm; i++) {
            strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
            strncat(names, ml[i].name, sizeof names - strlen(names) - 1);
        }
        return FAIL(STATUS_USAGE, "--model %s: unknown model (known: %s)", c->model ? c->model : "(none)", names);
    }
    unsigned ckpt_bits = 0;
    if (cv.batch_size == 0) return FAIL(STATUS_USAGE, "--batch_size must be positive");
    if ((cv.batch_size < 0 && !(cv.given & TRAIN_GIVEN_BATCH)) || cv.image_size <= 0) {
        /* a resumed run keeps the checkpoint's batch size and image size unless given */
        char *p = NULL;
        int64_t s_;
        struct st_file *f = NULL;
        struct ckpt_meta m0 = { 0 };
        if (!cv.fresh && checkpoint_latest(cv.train_dir ? cv.train_dir : ".", &p, &s_) == STATUS_OK &&
            safetensors_open(&f, p) == STATUS_OK && checkpoint_meta_read(f, &m0) == STATUS_OK &&
            m0.model && strcmp(m0.model, cv.model) == 0) {
            if (cv.batch_size < 0 && !(cv.given & TRAIN_GIVEN_BATCH) && m0.batch_size > 0) { cv.batch_size = m0.batch_size; ckpt_bits |= TRAIN_GIVEN_BATCH; }
            if (cv.image_size <= 0 && m0.image_size > 0) { cv.image_size = m0.image_size; ckpt_bits |= TRAIN_GIVEN_IMAGE_SIZE; }
        }
        safetensors_free(&f);
        free(p);
        status_clear();
    }
    train_config_apply_model(&cv, md);
    if (c->batch_size <= 0) return FAIL(STATUS_USAGE, "--batch_size must be positive");
    if (!(c->initial_learning_rate > 0)) return FAIL(STATUS_USAGE, "--initial_learning_rate %g must be positive", c->initial_learning_rate);
    if (!(c->batchnorm_decay >= 0 && c->batchnorm_decay < 1))
        return FAIL(STATUS_USAGE, "--batchnorm_decay %g must be in [0, 1)", c->batchnorm_decay);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return FAIL(STATUS_USAGE, "--label_smoothing %g must be in [0, 1)", c->label_smoothing);
    if (!(c->dropout_keep_prob >= 0 && c->dropout_keep_prob <= 1))
        return FAIL(STATUS_USAGE, "--dropout_keep_prob %g must be in (0, 1] (0: the model's own)", c->dropout_keep_prob);
    if (c->num_preprocess_threads < 0) return FAIL(STATUS_USAGE, "--num_preprocess_threads must be >= 0");
    if ((st = augment_flags_check(&c->augment)) != STATUS_OK) return st;
    if (c->num_preprocess_threads == 0 && !c->listen)
        return FAIL(STATUS_USAGE, "--num_preprocess_threads 0 needs --listen ENDPOINT (remote workers)");
    if (c->listen) {
        TRY(curve_opts_check(&c->curve, 1));
        TRY(curve_policy_check(c->listen, curve_opts_enabled(&c->curve), c->curve.insecure));
        if (c->curve.insecure) log_warn("--insecure: %s accepts batches from anyone who reaches it", c->listen);
    } else if (curve_opts_enabled(&c->curve) || c->curve.insecure) {
        return FAIL(STATUS_USAGE, "--curve_secret_key/--insecure go with --listen");
    }
    if (c->precision && strcmp(c->precision, "fp32") != 0) {
        if (strcmp(c->precision, "bf16") == 0)
            return FAIL(STATUS_UNSUPPORTED, "--precision bf16 is not implemented yet; only fp32 (TF32 tensor cores "
                        "on GPUs, DEEPER_TF32=0 for exact fp32)");
        return FAIL(STATUS_USAGE, "--precision %s: expected fp32 or bf16", c->precision);
    }

    /* before any thread exists (backend pool, ZeroMQ, receiver): see shared/signals.h */
    const char *device = backend_name_resolve(c->device);   /* "auto": cuda when a GPU exists */
    if (c->num_gpus > 0 && backend_name_on_host(device))
        return FAIL(STATUS_USAGE, "--num_gpus %d: this run trains on the CPU (--device %s found no GPU); "
                    "use --num_towers %d for CPU towers", c->num_gpus, c->device ? c->device : "cpu", c->num_gpus);
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

    log_settings(c, c->model, ckpt_bits);
    if ((st = make_dirs(c->train_dir)) != STATUS_OK) goto done;

    if (c->fresh) {
        /* as TF's deletion of train_dir: checkpoints and event files go, so
         * TensorBoard draws only the new run (also in the default eval_dir) */
        int removed = 0, events = 0;
        if ((st = checkpoint_remove_all(c->train_dir, &removed)) != STATUS_OK) goto done;
        if ((st = remove_event_files(c->train_dir, &events)) != STATUS_OK) goto done;
        char evdir[4200];
        snprintf(evdir, sizeof evdir, "%s/eval", c->train_dir);
        if ((st = remove_event_files(evdir, &events)) != STATUS_OK) goto done;
        if (removed || events)
            log_info("--fresh: removed %d old checkpoint(s) and %d event file(s) from %s", removed, events, c->train_dir);
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
        } else if (st == STATUS_NOT_FOUND) {
            st = STATUS_OK;
        } else goto done;
    }

    if (image_size == 0) image_size = md->default_image_size;
    int data_c = man->image.channels;
    int model_c = md->default_channels == 3 ? 3 : data_c;

    struct model_options mo = model_options_default();
    mo.model = model_name;
    mo.classes = classes;
    mo.image_size = image_size;
    mo.channels = model_c;
    mo.batch_size = c->batch_size;
    mo.num_towers = backend_name_on_host(device) ? c->num_towers : (c->num_gpus > 0 ? c->num_gpus : 1);
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
        safetensors_free(&ck);
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

    /* from here on a stop is taken at the next step, after saving */
    signals_stop_now(NULL, NULL);
    /* the dispatcher: local workers over a private ipc endpoint, remote ones on --listen */
    int W = c->num_preprocess_threads;
    if ((st = dispatcher_ipc_dir_make("deeper-train", ipc_dir, sizeof ipc_dir, ipc_ep, sizeof ipc_ep)) != STATUS_OK)
        goto done;
    snprintf(endpoint, sizeof endpoint, "%s%s%s", ipc_ep, c->listen ? "," : "", c->listen ? c->listen : "");
    struct dispatcher_config dc = dispatcher_config_default();
    dc.endpoints = endpoint;
    dc.subset = "train";
    dc.batch_size = (uint32_t)c->batch_size;
    dc.image_size = (uint32_t)image_size;
    dc.channels = (uint32_t)data_c;
    dc.seed = seed;
    dc.examples = train->count;
    dc.id_limit = manifest_subset_id_limit(train);
    dc.start_batch = (uint64_t)position;
    augment_flags_tristate(&c->augment, &dc.flip, &dc.color, &dc.crop);
    dc.num_classes = classes;
    if (c->worker_timeout > 0) dc.worker_timeout_ms = (int)(c->worker_timeout * 1000);
    dc.dump_ids = getenv("DEEPER_DUMP_IDS");
    dc.curve = c->listen ? &c->curve : NULL;
    if ((st = dproto_dataset_identity(c->data_dir, &dc.manifest_crc, &dc.manifest_len, &dc.records)) != STATUS_OK)
        goto done;
    struct stream_allocator host_mem;   /* the backend's host buffers (pinned on GPUs) */
    dc.alloc = tower_input_allocator(ts, &host_mem);
    if ((st = dispatcher_new(&dc, &disp)) != STATUS_OK) goto done;
    ic.d = disp;

    signal(SIGPIPE, SIG_IGN);

    if (W > 0) {
        if ((st = workers_sibling_exe("augment", &exe)) != STATUS_OK) goto done;
        /* with CURVE the dispatcher's socket takes only keyed peers: local workers hold the consumer's own pair */
        const char *common[] = { "--data_dir", c->data_dir, "--quiet", NULL, NULL, NULL, NULL, NULL };
        if (dc.curve && curve_opts_enabled(dc.curve)) {
            common[3] = "--curve_secret_key"; common[4] = dc.curve->secret_key;
            common[5] = "--curve_server_key"; common[6] = dc.curve->secret_key;
        }
        if ((st = workers_start_dispatched(&workers, exe, common, W, ipc_ep, worker_extra, &wargs)) != STATUS_OK)
            goto done;
        ic.w = workers;
        log_info("started %d augment workers on %s", W, ipc_ep);
    }
    if (c->listen) log_info("waiting for remote augment workers on %s", c->listen);

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
    int win_steps = 0, stall_warned = 0;
    float loss_sum = 0;
    double chance = log((double)classes);          /* the loss of a uniform guess */
    double stall_sum = 0;
    int stall_n = 0;
    uint64_t epoch = (uint64_t)meta.epoch;
    double epochs = 0;                             /* the trainer's position in the data, in epochs */
    while (ts->step < c->max_steps && !g_stop) {
        struct dispatch_batch b;
        double wait = 0, t_feed = log_now();
        st = dispatcher_next(disp, &b, &g_stop, reap_workers, &ic, &wait);
        double idle_wait = tower_idle_wait(ts, t_feed, wait);   /* GPUs: only after they went idle */
        win_compute += wait - idle_wait;
        wait = idle_wait;
        win_wait += wait;
        if (st == STATUS_INTERRUPTED) { st = STATUS_OK; break; }
        if (st != STATUS_OK) goto done;
        double t0 = log_now();
        struct tower_step_result r;
        st = model_step_train(ts, b.pixels, b.c, b.labels, b.n, &r);
        if (st == STATUS_OK) st = tower_mark(ts);
        double dt = log_now() - t0;
        if (st == STATUS_NAN || (st == STATUS_OK && !isfinite(r.loss))) {
            const char *what = (st == STATUS_OK && isinf(r.loss)) ? "inf" : "NaN";
            if (tty) fprintf(stderr, "\r\033[K");
            if (last_saved > 0 || ckpt_path)
                st = FAIL(STATUS_NAN, "Model diverged with loss = %s at step %" PRId64 "; the last good checkpoint, "
                          "%s/model.ckpt-%" PRId64 ".safetensors, is kept", what, ts->step + 1, c->train_dir, last_saved);
            else
                st = FAIL(STATUS_NAN, "Model diverged with loss = %s at step %" PRId64 "; no checkpoint was saved "
                          "before it", what, ts->step + 1);
            goto done;
        }
        if (st != STATUS_OK) goto done;
        win_compute += dt;
        win_steps++;
        loss_sum += r.loss;
        int64_t step = ts->step;
        /* batches consumed x batch size: the trainer's position, monotone */
        epochs = (double)dispatcher_position(disp) * c->batch_size / (double)train->count;
        epoch = (uint64_t)epochs;
        if (c->summary_every > 0 && step % c->summary_every == 0 &&
            (st = summary_write(ev, step, b.pixels, b.n, image_size, image_size, b.c, ts->g[0])) != STATUS_OK)
            goto done;
        /* not learning: the mean loss of the last 50 steps before the check step still near chance */
        if (c->stall_check_steps > 0 && step > c->stall_check_steps - 50 && step <= c->stall_check_steps) {
            stall_sum += r.loss;
            stall_n++;
        }
        if (c->stall_check_steps > 0 && step == c->stall_check_steps && !stall_warned && stall_n > 0) {
            double mean = stall_sum / stall_n;
            stall_warned = 1;
            if (fabs(mean - chance) <= TRAIN_STALL_FRACTION * chance) {
                if (tty) fprintf(stderr, "\r\033[K");
                log_warn("not learning: mean loss %.3f over steps %" PRId64 "-%" PRId64 " is within %.0f%% of "
                         "ln(%d classes) = %.3f, a uniform guess; try a lower --initial_learning_rate (e.g. %g)",
                         mean, step - stall_n + 1, step, 100 * TRAIN_STALL_FRACTION, classes, chance,
                         c->initial_learning_rate / 10);
            }
        }
        if (c->log_every > 0 && (step % c->log_every == 0 || step == c->max_steps)) {
            char ts_[40];
            log_timestamp(ts_, sizeof ts_);
            double per = win_compute / win_steps;
            double waitfrac = win_wait / (win_wait + win_compute + 1e-12);
            int depth = dispatcher_depth(disp);
            struct dispatcher_stats ds;
            dispatcher_stats(disp, &ds);
            double el = log_now() - t_start;
            double eta = (step > start_step) ? el / (double)(step - start_step) * (double)(c->max_steps - step) : 0;
            if (tty) fprintf(stderr, "\r\033[K");
            fprintf(stderr, "%s: step %" PRId64 ", loss = %.2f (%.1f examples/sec; %.3f sec/batch) "
                    "queue %d, input wait %.0f%%, lr %.4g, epoch %.2f, workers %d, dropped %" PRIu64 ", ETA %.0fs\n",
                    ts_, step, r.loss, c->batch_size / per, per, depth, 100 * waitfrac, r.learning_rate,
                    epochs, ds.workers, ds.dropped, eta);
            /* "loss": mean over the steps since the last line; "loss (raw)": the one step the line shows */
            const char *tags[9] = { "loss", "loss (raw)", "learning_rate", "examples/sec", "input_wait_fraction",
                                    "queue_depth", "epoch", "workers_alive", "messages_dropped" };
            float vals[9] = { loss_sum / win_steps, r.loss, r.learning_rate, (float)(c->batch_size / per),
                              (float)waitfrac, (float)depth, (float)epochs, (float)ds.workers, (float)ds.dropped };
            if ((st = tfevents_scalars(ev, step, 9, tags, vals)) != STATUS_OK) goto done;
            win_wait = win_compute = 0; win_steps = 0; loss_sum = 0;
        }
        if (tty) progress_update(&prog, step);
        if (c->save_interval_steps > 0 && step % c->save_interval_steps == 0 && step < c->max_steps) {
            if ((st = save(ts, &meta, c, disp, epoch, ev)) != STATUS_OK) goto done;
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
            if ((st = save(ts, &meta, c, disp, epoch, ev)) != STATUS_OK) goto done;
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
    dispatcher_free(&disp);
    dispatcher_ipc_dir_remove(ipc_dir);
    tfevents_free(&ev);
    model_towers_free(&ts);
    safetensors_free(&ck);
    manifest_free(&man);
    free(ckpt_path); free(names_json); free(exe);
    (void)buf;
    return st;
}
