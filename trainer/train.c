/*
 * train.c — the training loop (see train.h).
 *
 * train_run, in named steps on one struct run:
 *   settle_config  the flags, settled (a resumed run's batch and image size,
 *                  the model's defaults) and range-checked;
 *   open_run       manifest (classes, examples per epoch, channels, digest),
 *                  train_dir (emptied with --fresh) and, unless --fresh, the
 *                  newest checkpoint: its metadata fixes the seed and the
 *                  stream position;
 *   build_towers   towers (trainer/model.h), restored from that checkpoint
 *                  (trainer/model_ckpt.h) or a pretrained file;
 *   open_input     the dispatcher on a private ipc:// endpoint (and --listen)
 *                  and the local workers (trainer/input.h), the event file;
 *   train_loop     steps; logging, events, checkpoints;
 *   finish_run     the last checkpoint; clean stop.
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
#include "shared/dispatch_proto.h"
#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/signals.h"
#include "shared/stream.h"
#include "shared/tfevents.h"
#include "trainer/checkpoint.h"
#include "trainer/input.h"
#include "trainer/model.h"
#include "trainer/model_ckpt.h"
#include "trainer/pretrained.h"
#include "trainer/summary.h"
#include "trainer/train_state.h"

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

/* Digest of manifest.json: CRC32C of its bytes and its length (the
 * dataset identity the workers register with), as text. */
status train_manifest_digest(const char *data_dir, char *out, size_t size)
{
    uint32_t crc;
    uint64_t n, records;
    TRY(dproto_dataset_identity(data_dir, &crc, &n, &records));
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

/* One training run, from the settled flags to the last checkpoint. */
struct run {
    struct train_config cv;             /* the flags, settled (model defaults, checkpoint) */
    const struct model_desc *md;
    unsigned ckpt_bits;                 /* TRAIN_GIVEN_* bits the checkpoint fixed */
    const char *device;                 /* resolved backend name */
    struct manifest *man;
    const struct manifest_subset *train;
    char digest[64];
    char *names_json;
    int classes, image_size, data_c, model_c;
    uint64_t seed;
    int64_t position;                   /* resume position in batches */
    struct model_ckpt ck;               /* the checkpoint resumed from (path NULL: none) */
    struct tower_set *ts;
    struct stream_allocator host_mem;   /* the backend's host buffers (pinned on GPUs) */
    struct input in;
    struct tfevents *ev;
    struct ckpt_meta meta;              /* what each checkpoint saved carries */
    status worker_st;                   /* why the workers stopped the run (reap_workers) */
    int64_t start_step, last_saved;
    uint64_t epoch;
    double t_start;
};

/* A local worker that exited: its lease goes back at once, a new one
 * registers in its place. */
static void reap_workers(void *ctx)
{
    struct run *r = ctx;
    int dead[256];
    int nd = input_reap(&r->in, dead);
    for (int k = 0; k < nd && !g_stop; k++) {
        int code = workers_exit_code(r->in.workers, dead[k]);
        if (code == WORKER_EXIT_USAGE || code == WORKER_EXIT_PERMANENT) {
            r->worker_st = FAIL(STATUS_STATE, "augment worker %d cannot start (exit status %d: %s, see its message "
                                "above); a restart would not help, stopping", dead[k], code,
                                code == WORKER_EXIT_USAGE ? "bad usage" : "the dataset is missing or inconsistent");
            g_stop = SIGTERM;
            return;
        }
        if (workers_restarts_within(r->in.workers, TRAIN_RESTART_WINDOW_S) >= TRAIN_MAX_RESTARTS) {
            r->worker_st = FAIL(STATUS_STATE, "augment workers keep dying (%d restarts in the last %d minutes); see "
                                "their messages above", TRAIN_MAX_RESTARTS, TRAIN_RESTART_WINDOW_S / 60);
            g_stop = SIGTERM;
            return;
        }
        log_warn("augment worker %d stopped; starting another", dead[k]);
        if (workers_respawn(r->in.workers, dead[k]) != STATUS_OK) log_warn("%s", status_msg());
    }
}

static status save(struct run *r)
{
    r->meta.position = (int64_t)dispatcher_position(r->in.disp);
    r->meta.epoch = (int64_t)r->epoch;
    r->meta.learning_rate = optim_learning_rate(&r->ts->optim, r->ts->step);
    char *path = NULL;
    double t0 = log_now();
    TRY(train_state_save(r->ts, &r->meta, r->cv.train_dir, r->cv.keep_checkpoints, &path));
    log_info("saved checkpoint %s (%.2f s)", path, log_now() - t0);
    free(path);
    r->last_saved = r->ts->step;
    return STATUS_OK;
}

/* "--model X: unknown model (known: ...)" */
static status unknown_model(const char *model)
{
    char names[256] = "";
    int nm = 0;
    const struct model_desc *ml = model_list(&nm);
    for (int i = 0; i < nm; i++) {
        strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
        strncat(names, ml[i].name, sizeof names - strlen(names) - 1);
    }
    return FAIL(STATUS_USAGE, "--model %s: unknown model (known: %s)", model ? model : "(none)", names);
}

/* A resumed run keeps the checkpoint's batch size and image size unless
 * given (a checkpoint that does not open, or of another model, is left to
 * open_resume to refuse). */
static void settle_from_checkpoint(struct run *r)
{
    struct train_config *c = &r->cv;
    char *p = NULL;
    int64_t s_;
    struct st_file *f = NULL;
    struct ckpt_meta m0 = { 0 };
    if (!c->fresh && checkpoint_latest(c->train_dir ? c->train_dir : ".", &p, &s_) == STATUS_OK &&
        safetensors_open(&f, p) == STATUS_OK && checkpoint_meta_read(f, &m0) == STATUS_OK &&
        m0.model && strcmp(m0.model, c->model) == 0) {
        if (c->batch_size < 0 && !(c->given & TRAIN_GIVEN_BATCH) && m0.batch_size > 0) {
            c->batch_size = m0.batch_size;
            r->ckpt_bits |= TRAIN_GIVEN_BATCH;
        }
        if (c->image_size <= 0 && m0.image_size > 0) {
            c->image_size = m0.image_size;
            r->ckpt_bits |= TRAIN_GIVEN_IMAGE_SIZE;
        }
    }
    safetensors_free(&f);
    free(p);
    status_clear();
}

/* Settle the flags (checkpoint, model defaults) and check their ranges. */
static status settle_config(struct run *r)
{
    struct train_config *c = &r->cv;
    if (!c->data_dir) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (!c->train_dir) return FAIL(STATUS_USAGE, "--train_dir is required");
    if (!(r->md = model_find(c->model))) return unknown_model(c->model);
    if (c->batch_size == 0) return FAIL(STATUS_USAGE, "--batch_size must be positive");
    if ((c->batch_size < 0 && !(c->given & TRAIN_GIVEN_BATCH)) || c->image_size <= 0) settle_from_checkpoint(r);
    train_config_apply_model(c, r->md);
    if (c->batch_size <= 0) return FAIL(STATUS_USAGE, "--batch_size must be positive");
    if (!(c->initial_learning_rate > 0))
        return FAIL(STATUS_USAGE, "--initial_learning_rate %g must be positive", c->initial_learning_rate);
    if (!(c->batchnorm_decay >= 0 && c->batchnorm_decay < 1))
        return FAIL(STATUS_USAGE, "--batchnorm_decay %g must be in [0, 1)", c->batchnorm_decay);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        return FAIL(STATUS_USAGE, "--label_smoothing %g must be in [0, 1)", c->label_smoothing);
    if (!(c->dropout_keep_prob >= 0 && c->dropout_keep_prob <= 1))
        return FAIL(STATUS_USAGE, "--dropout_keep_prob %g must be in (0, 1] (0: the model's own)", c->dropout_keep_prob);
    if (c->num_preprocess_threads < 0) return FAIL(STATUS_USAGE, "--num_preprocess_threads must be >= 0");
    TRY(augment_flags_check(&c->augment));
    if (c->num_preprocess_threads == 0 && !c->listen)
        return FAIL(STATUS_USAGE, "--num_preprocess_threads 0 needs --listen ENDPOINT (remote workers)");
    TRY(curve_listen_check(c->listen, &c->curve));
    if (c->precision && strcmp(c->precision, "fp32") != 0) {
        if (strcmp(c->precision, "bf16") == 0)
            return FAIL(STATUS_UNSUPPORTED, "--precision bf16 is not implemented yet; only fp32 (TF32 tensor cores "
                        "on GPUs, DEEPER_TF32=0 for exact fp32)");
        return FAIL(STATUS_USAGE, "--precision %s: expected fp32 or bf16", c->precision);
    }
    r->device = backend_name_resolve(c->device);   /* "auto": cuda when a GPU exists */
    if (c->num_gpus > 0 && backend_name_on_host(r->device))
        return FAIL(STATUS_USAGE, "--num_gpus %d: this run trains on the CPU (--device %s found no GPU); "
                    "use --num_towers %d for CPU towers", c->num_gpus, c->device ? c->device : "cpu", c->num_gpus);
    return STATUS_OK;
}

/* The dataset: manifest, train subset, digest, class names. */
static status open_dataset(struct run *r)
{
    const struct train_config *c = &r->cv;
    TRY(manifest_load(c->data_dir, &r->man));
    r->train = manifest_subset_find(r->man, "train");
    if (!r->train || r->train->count == 0) return FAIL(STATUS_FORMAT, "%s: dataset has no train subset", c->data_dir);
    /* a manifest that contradicts its records would make every record bad in
       the workers: refuse it here, at once (remote workers check their own) */
    if (c->num_preprocess_threads > 0) TRY(manifest_check_records(r->man, c->data_dir));
    TRY(train_manifest_digest(c->data_dir, r->digest, sizeof r->digest));
    r->names_json = train_class_names_json(r->man);
    r->classes = manifest_num_labels(r->man);
    r->data_c = r->man->image.channels;
    return STATUS_OK;
}

/* --fresh: as TF's deletion of train_dir, checkpoints and event files go,
 * so TensorBoard draws only the new run (also in the default eval_dir). */
static status remove_old_run(const char *train_dir)
{
    int removed = 0, events = 0;
    TRY(checkpoint_remove_all(train_dir, &removed));
    TRY(remove_event_files(train_dir, &events));
    char evdir[4200];
    snprintf(evdir, sizeof evdir, "%s/eval", train_dir);
    TRY(remove_event_files(evdir, &events));
    if (removed || events)
        log_info("--fresh: removed %d old checkpoint(s) and %d event file(s) from %s", removed, events, train_dir);
    return STATUS_OK;
}

/* The newest checkpoint in train_dir, when there is one, must be of this
 * model, class count and image size; it fixes the seed and position. */
static status open_resume(struct run *r)
{
    const struct train_config *c = &r->cv;
    status st = model_ckpt_open(&r->ck, c->train_dir, NULL);
    if (st == STATUS_NOT_FOUND && !r->ck.path) return STATUS_OK;
    if (st != STATUS_OK) return st;
    const struct ckpt_meta *m = &r->ck.meta;
    const char *path = r->ck.path;
    if (strcmp(m->model, c->model) != 0)
        return FAIL(STATUS_USAGE, "%s holds model %s, not %s (use --fresh or another --train_dir)", path, m->model,
                    c->model);
    if (m->num_classes != r->classes)
        return FAIL(STATUS_USAGE, "%s has %d classes, the dataset %d (use --fresh or another --train_dir)", path,
                    m->num_classes, r->classes);
    if (m->manifest_digest && strcmp(m->manifest_digest, r->digest) != 0)
        log_warn("%s was trained on another version of the dataset (%s, now %s)", path, m->manifest_digest,
                 r->digest);
    r->seed = m->seed;
    r->position = m->position;
    if (r->image_size == 0) r->image_size = m->image_size;
    else if (r->image_size != m->image_size)
        return FAIL(STATUS_USAGE, "%s was trained at --image_size %d, not %d", path, m->image_size, r->image_size);
    return STATUS_OK;
}

/* Step 1: the settled flags logged, the dataset, train_dir (emptied with
 * --fresh) and the checkpoint to resume from. */
static status open_run(struct run *r)
{
    const struct train_config *c = &r->cv;
    TRY(open_dataset(r));
    log_settings(c, c->model, r->ckpt_bits);
    TRY(make_dirs(c->train_dir));
    if (c->fresh) TRY(remove_old_run(c->train_dir));
    r->seed = (uint64_t)c->seed;
    r->image_size = c->image_size;
    if (!c->fresh) TRY(open_resume(r));
    if (r->image_size == 0) r->image_size = r->md->default_image_size;
    r->model_c = r->md->default_channels == 3 ? 3 : r->data_c;
    return STATUS_OK;
}

/* The model options of this run (its flags and the resumed seed). */
static struct model_options run_model_options(const struct run *r)
{
    const struct train_config *c = &r->cv;
    struct model_options mo = model_options_default();
    mo.model = c->model;
    mo.classes = r->classes;
    mo.image_size = r->image_size;
    mo.channels = r->model_c;
    mo.batch_size = c->batch_size;
    mo.num_towers = backend_name_on_host(r->device) ? c->num_towers : (c->num_gpus > 0 ? c->num_gpus : 1);
    mo.backend = r->device;
    mo.threads = c->threads;
    mo.training = 1;
    mo.seed = r->seed;
    mo.label_smoothing = c->label_smoothing;
    mo.dropout_keep = c->dropout_keep_prob;
    mo.optim.initial_learning_rate = c->initial_learning_rate;
    mo.optim.num_epochs_per_decay = c->num_epochs_per_decay;
    mo.optim.learning_rate_decay_factor = c->learning_rate_decay_factor;
    mo.optim.examples_per_epoch = (int64_t)r->train->count;
    mo.optim.batch_size = c->batch_size;
    mo.optim.weight_decay = c->weight_decay;
    mo.optim.ema_decay = c->ema_decay;
    mo.optim.batchnorm_decay = c->batchnorm_decay;
    mo.optim.batchnorm_zero_debias = c->batchnorm_zero_debias;
    return mo;
}

/* Step 2: the towers, from the resumed checkpoint, a pretrained file or
 * fresh. */
static status build_towers(struct run *r)
{
    const struct train_config *c = &r->cv;
    struct model_options mo = run_model_options(r);
    if (mo.num_towers <= 0 || c->batch_size % mo.num_towers != 0)
        return FAIL(STATUS_USAGE, "--batch_size %d must divide evenly over %d towers", c->batch_size, mo.num_towers);
    if (r->ck.path) {
        r->meta = r->ck.meta;
        TRY(model_ckpt_towers(&r->ck, &mo, RESTORE_TRAINING, &r->ts));
        r->ts->step = r->meta.step;
        log_info("resuming from %s at step %" PRId64 " (epoch %" PRId64 ", batch %" PRId64 ")", r->ck.path,
                 r->meta.step, r->meta.epoch, r->meta.position);
        if (c->pretrained_model_checkpoint_path)
            log_info("resuming: --pretrained_model_checkpoint_path %s is not used",
                     c->pretrained_model_checkpoint_path);
        return STATUS_OK;
    }
    TRY(model_towers_new(&r->ts, &mo));
    if (c->pretrained_model_checkpoint_path) {
        /* TF: a fresh run restores the pretrained variables (all but the
         * classifier with --fine_tune) before the first step */
        TRY(pretrained_load(r->ts->g[0], c->pretrained_model_checkpoint_path, c->fine_tune, NULL));
        TRY(tower_broadcast(r->ts));
    } else if (c->fine_tune) {
        return FAIL(STATUS_USAGE, "--fine_tune needs --pretrained_model_checkpoint_path");
    }
    return STATUS_OK;
}

/* Step 3: the input (dispatcher and local workers), the event file, the
 * checkpoints' metadata and the run's summary line. */
static status open_input(struct run *r)
{
    const struct train_config *c = &r->cv;
    struct input_spec s = {
        .program = "train", .data_dir = c->data_dir, .subset = "train", .listen = c->listen,
        .num_workers = c->num_preprocess_threads, .announce = 1, .batch_size = c->batch_size,
        .image_size = r->image_size, .channels = r->data_c, .num_classes = r->classes, .seed = r->seed,
        .examples = r->train->count, .start_batch = (uint64_t)r->position, .worker_timeout = c->worker_timeout,
        .max_connections = c->max_connections, .window = c->input_queue_memory_factor,
        .augment = &c->augment, .alloc = tower_input_allocator(r->ts, &r->host_mem),
        .id_limit = manifest_subset_id_limit(r->train), .curve = &c->curve,
    };
    signal(SIGPIPE, SIG_IGN);
    TRY(input_open(&r->in, &s));
    TRY(tfevents_open(&r->ev, c->train_dir));
    if (r->ts->step > 0) TRY(tfevents_session_start(r->ev, r->ts->step));

    r->meta.model = c->model;
    r->meta.num_classes = r->classes;
    r->meta.class_names = r->names_json;
    r->meta.image_size = r->image_size;
    r->meta.channels = r->data_c;      /* channels of the images fed (the model may expand gray) */
    r->meta.manifest_digest = r->digest;
    r->meta.seed = r->seed;
    r->meta.num_workers = c->num_preprocess_threads;
    r->meta.batch_size = c->batch_size;
    r->epoch = (uint64_t)r->meta.epoch;

    log_info("training %s: %d classes, %dx%dx%d, batch %d on %d tower(s) (%s), %" PRIu64 " examples/epoch, "
             "lr %g decaying x%g every %" PRId64 " steps, seed %" PRIu64,
             c->model, r->classes, r->image_size, r->image_size, r->model_c, c->batch_size, r->ts->n, r->device,
             r->train->count, c->initial_learning_rate, c->learning_rate_decay_factor,
             optim_decay_steps(&r->ts->optim), r->seed);
    return STATUS_OK;
}

/* What the loop accumulates between log lines and for the stall check. */
struct window {
    double wait, compute;
    int steps;
    float loss_sum;
    double stall_sum;
    int stall_n, stall_warned;
    int tty;
};

/* "Model diverged with loss = NaN at step N; ..." */
static status diverged(const struct run *r, status st, float loss, const struct window *w)
{
    const char *what = (st == STATUS_OK && isinf(loss)) ? "inf" : "NaN";
    if (w->tty) fprintf(stderr, "\r\033[K");
    if (r->last_saved > 0 || r->ck.path)
        return FAIL(STATUS_NAN, "Model diverged with loss = %s at step %" PRId64 "; the last good checkpoint, "
                    "%s/model.ckpt-%" PRId64 ".safetensors, is kept", what, r->ts->step + 1, r->cv.train_dir,
                    r->last_saved);
    return FAIL(STATUS_NAN, "Model diverged with loss = %s at step %" PRId64 "; no checkpoint was saved before it",
                what, r->ts->step + 1);
}

/* Not learning: the mean loss of the last 50 steps before the check step
 * still near chance (the loss of a uniform guess). */
static void check_stall(const struct run *r, struct window *w, int64_t step, float loss)
{
    int64_t at = r->cv.stall_check_steps;
    if (at <= 0) return;
    if (step > at - 50 && step <= at) {
        w->stall_sum += loss;
        w->stall_n++;
    }
    if (step != at || w->stall_warned || w->stall_n == 0) return;
    double mean = w->stall_sum / w->stall_n, chance = log((double)r->classes);
    w->stall_warned = 1;
    if (fabs(mean - chance) > TRAIN_STALL_FRACTION * chance) return;
    if (w->tty) fprintf(stderr, "\r\033[K");
    log_warn("not learning: mean loss %.3f over steps %" PRId64 "-%" PRId64 " is within %.0f%% of "
             "ln(%d classes) = %.3f, a uniform guess; try a lower --initial_learning_rate (e.g. %g)",
             mean, step - w->stall_n + 1, step, 100 * TRAIN_STALL_FRACTION, r->classes, chance,
             r->cv.initial_learning_rate / 10);
}

/* TF's log line and the TensorBoard scalars of the steps since the last. */
static status log_step(const struct run *r, struct window *w, int64_t step, const struct tower_step_result *res,
                       double epochs)
{
    const struct train_config *c = &r->cv;
    char ts_[40];
    log_timestamp(ts_, sizeof ts_);
    double per = w->compute / w->steps;
    double waitfrac = w->wait / (w->wait + w->compute + 1e-12);
    int depth = dispatcher_depth(r->in.disp);
    struct dispatcher_stats ds;
    dispatcher_stats(r->in.disp, &ds);
    double el = log_now() - r->t_start;
    double eta = (step > r->start_step) ? el / (double)(step - r->start_step) * (double)(c->max_steps - step) : 0;
    if (w->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s: step %" PRId64 ", loss = %.2f (%.1f examples/sec; %.3f sec/batch) "
            "queue %d, input wait %.0f%%, lr %.4g, epoch %.2f, workers %d, dropped %" PRIu64 ", ETA %.0fs\n",
            ts_, step, res->loss, c->batch_size / per, per, depth, 100 * waitfrac, res->learning_rate,
            epochs, ds.workers, ds.dropped, eta);
    /* "loss": mean over the steps since the last line; "loss (raw)": the one step the line shows */
    const char *tags[9] = { "loss", "loss (raw)", "learning_rate", "examples/sec", "input_wait_fraction",
                            "queue_depth", "epoch", "workers_alive", "messages_dropped" };
    float vals[9] = { w->loss_sum / w->steps, res->loss, res->learning_rate, (float)(c->batch_size / per),
                      (float)waitfrac, (float)depth, (float)epochs, (float)ds.workers, (float)ds.dropped };
    TRY(tfevents_scalars(r->ev, step, 9, tags, vals));
    w->wait = w->compute = 0;
    w->steps = 0;
    w->loss_sum = 0;
    return STATUS_OK;
}

/* One step: the next batch, forward/backward/update, its accounting. */
static status train_step(struct run *r, struct window *w, struct dispatch_batch *b, struct tower_step_result *res)
{
    double wait = 0, t_feed = log_now();
    /* also when batches never run out: the other workers may cover for a dead one */
    reap_workers(r);
    status st = dispatcher_next(r->in.disp, b, &g_stop, reap_workers, r, &wait);
    double idle_wait = tower_idle_wait(r->ts, t_feed, wait);   /* GPUs: only after they went idle */
    w->compute += wait - idle_wait;
    w->wait += idle_wait;
    if (st != STATUS_OK) return st;
    double t0 = log_now();
    st = model_step_train(r->ts, b->pixels, b->c, b->labels, b->n, res);
    if (st == STATUS_OK) st = tower_mark(r->ts);
    if (st == STATUS_NAN || (st == STATUS_OK && !isfinite(res->loss))) return diverged(r, st, res->loss, w);
    if (st != STATUS_OK) return st;
    w->compute += log_now() - t0;
    w->steps++;
    w->loss_sum += res->loss;
    return STATUS_OK;
}

/* Step 4: steps until max_steps or a stop; logs, summaries, checkpoints. */
static status train_loop(struct run *r)
{
    const struct train_config *c = &r->cv;
    struct window w = { .tty = isatty(STDERR_FILENO) };
    struct progress prog;
    progress_start(&prog, "train", c->max_steps, "steps");
    prog.done = r->start_step;
    while (r->ts->step < c->max_steps && !g_stop) {
        struct dispatch_batch b;
        struct tower_step_result res;
        status st = train_step(r, &w, &b, &res);
        if (st == STATUS_INTERRUPTED) break;
        if (st != STATUS_OK) return st;
        int64_t step = r->ts->step;
        /* batches consumed x batch size: the trainer's position, monotone */
        double epochs = (double)dispatcher_position(r->in.disp) * c->batch_size / (double)r->train->count;
        r->epoch = (uint64_t)epochs;
        if (c->summary_every > 0 && step % c->summary_every == 0)
            TRY(summary_write(r->ev, step, b.pixels, b.n, r->image_size, r->image_size, b.c, r->ts->g[0]));
        check_stall(r, &w, step, res.loss);
        if (c->log_every > 0 && (step % c->log_every == 0 || step == c->max_steps))
            TRY(log_step(r, &w, step, &res, epochs));
        if (w.tty) progress_update(&prog, step);
        if (c->save_interval_steps > 0 && step % c->save_interval_steps == 0 && step < c->max_steps) TRY(save(r));
    }
    if (w.tty) fprintf(stderr, "\r\033[K");
    return STATUS_OK;
}

/* Step 5: the last checkpoint and the closing line. */
static status finish_run(struct run *r)
{
    struct tower_set *ts = r->ts;
    if (r->worker_st != STATUS_OK && ts->step == r->start_step)
        return r->worker_st;   /* the workers could not start: nothing was trained, nothing to save */
    if ((ts->step != r->last_saved || ts->step == r->start_step) && (ts->step > r->start_step || !r->ck.path))
        TRY(save(r));
    if (g_stop) {
        log_info("stopped by %s at step %" PRId64 " after saving", g_stop == SIGINT ? "SIGINT" : "SIGTERM", ts->step);
        return r->worker_st != STATUS_OK ? r->worker_st
                                         : FAIL(STATUS_INTERRUPTED, "interrupted at step %" PRId64 "; checkpoint saved", ts->step);
    }
    log_info("done: step %" PRId64 " in %.1f s", ts->step, log_now() - r->t_start);
    return STATUS_OK;
}

static status run_steps(struct run *r)
{
    /* before any thread exists (backend pool, ZeroMQ, receiver): see shared/signals.h */
    TRY(signals_watch(&g_stop));
    /* until the stream starts nothing is saved: a stop ends the process at once */
    signals_stop_now("deeper train", "loading");
    TRY(open_run(r));
    TRY(build_towers(r));
    if (r->ts->step >= r->cv.max_steps) {
        log_info("step %" PRId64 " already reached --max_steps %" PRId64 "; nothing to do", r->ts->step,
                 r->cv.max_steps);
        return STATUS_OK;
    }
    /* from here on a stop is taken at the next step, after saving */
    signals_stop_now(NULL, NULL);
    TRY(open_input(r));
    r->start_step = r->last_saved = r->ts->step;
    r->t_start = log_now();
    TRY(train_loop(r));
    return finish_run(r);
}

status train_run(const struct train_config *c)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r) return FAIL(STATUS_NOMEM, "train: out of memory");
    r->cv = *c;
    status st = settle_config(r);
    if (st == STATUS_OK) st = run_steps(r);
    signals_stop_now(NULL, NULL);
    input_close(&r->in);
    tfevents_free(&r->ev);
    model_towers_free(&r->ts);
    model_ckpt_close(&r->ck);
    manifest_free(&r->man);
    free(r->names_json);
    free(r);
    return st;
}
