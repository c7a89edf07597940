/*
 * main_export.c — `deeper export`: a training checkpoint -> a plain
 * torchvision state_dict in safetensors.
 *
 *   deeper export --checkpoint_dir TRAIN_DIR --output model.safetensors
 *
 * Takes the newest valid checkpoint in --checkpoint_dir (or the file given by
 * --checkpoint_path) and writes every model tensor under its torchvision name,
 * taking the EMA shadow ("ema/<name>") where the checkpoint has one — the
 * weights TF's eval uses — unless --noema.  Optimizer slots and other
 * trainer-only tensors ("<slot>/<name>") are left out.  For every batch norm
 * ("X.running_mean") it adds "X.num_batches_tracked" (I64 scalar = the
 * checkpoint's step), which torchvision's load_state_dict(strict=True)
 * requires.  So, for an Inception v3 checkpoint:
 *
 *   m = torchvision.models.inception_v3(weights=None, aux_logits=True,
 *                                       init_weights=False, num_classes=K)
 *   m.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
 *
 * works (tests/e2e/inception_export.sh checks it).  The metadata block keeps
 * the model name, class count, class names and image size, and
 * "format": "pt" as torch-saved safetensors files have.  Note: torchvision's
 * own pretrained Inception weights expect transform_input=True (ImageNet
 * mean/std input); deeper's models take [-1, 1] input, so use
 * transform_input=False (the default) with an export.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/flags.h"
#include "shared/log.h"
#include "shared/signals.h"
#include "shared/safetensors.h"
#include "shared/status.h"
#include "trainer/checkpoint.h"
#include "trainer/model.h"
#include "trainer/train_state.h"

static volatile sig_atomic_t g_stop;   /* set by the signal watcher (shared/signals.h) */

struct export_opts {
    const char *checkpoint_dir;
    const char *checkpoint_path;
    const char *output;
    int ema;
};

static const char *SUMMARY =
    "Writes the model of a training checkpoint as a torchvision-compatible\n"
    "state_dict in safetensors: torchvision parameter names, EMA weights (as\n"
    "eval uses them), plus the num_batches_tracked counters torchvision's\n"
    "strict loading needs.  Optimizer slots are not exported.";

/* Strict names: the checkpoint's tensors must be exactly those of its model
 * (built here on the CPU, batch 1, only to list its parameters). */
static status export_check_names(const struct st_file *f, const struct ckpt_meta *meta)
{
    const struct model_desc *md = model_find(meta->model);
    if (!md) return FAIL(STATUS_FORMAT, "%s: unknown model %s", safetensors_path(f), meta->model);
    struct model_options mo = model_options_default();
    mo.model = meta->model;
    mo.classes = meta->num_classes;
    mo.image_size = meta->image_size;
    mo.channels = md->default_channels == 3 ? 3 : (meta->channels > 0 ? meta->channels : md->default_channels);
    mo.batch_size = 1;
    mo.num_towers = 1;
    mo.backend = "cpu";
    mo.threads = 1;
    mo.training = 0;
    struct tower_set *ts = NULL;
    status st = model_towers_new(&ts, &mo);
    if (st == STATUS_OK) st = train_state_check_names(ts->g[0], f);
    model_towers_free(&ts);
    return st;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static status export_run(const struct export_opts *o)
{
    char *ckpt = NULL;
    int64_t step = 0;
    struct st_file *f = NULL;
    struct st_writer *w = NULL;
    int64_t *counters = NULL;
    char **names = NULL;
    int nnames = 0, nt = 0, nema = 0;
    status st;

    if (o->checkpoint_path) {
        ckpt = strdup(o->checkpoint_path);
        if (!ckpt) return FAIL(STATUS_NOMEM, "export: path");
    } else {
        st = checkpoint_latest(o->checkpoint_dir, &ckpt, &step);
        if (st != STATUS_OK) goto done;
    }
    struct ckpt_meta meta;
    memset(&meta, 0, sizeof meta);
    st = checkpoint_open(ckpt, &f, &meta);
    if (st != STATUS_OK) goto done;
    st = export_check_names(f, &meta);
    if (st != STATUS_OK) goto done;
    step = meta.step;

    st = safetensors_writer_new(&w);
    if (st != STATUS_OK) goto done;
    int n = safetensors_count(f);
    counters = calloc((size_t)n + 1, sizeof *counters);
    names = calloc((size_t)n + 1, sizeof *names);
    if (!counters || !names) { st = FAIL(STATUS_NOMEM, "export: %d tensors", n); goto done; }
    for (int i = 0; i < n; i++) {
        const struct st_tensor *t = safetensors_at(f, i);
        if (strchr(t->name, '/')) continue;          /* ema/..., rmsprop_ms/..., ... */
        if (t->dtype != ST_F32) continue;            /* model tensors are F32 */
        const struct st_tensor *src = t;
        if (o->ema) {
            char key[512];
            snprintf(key, sizeof key, "ema/%s", t->name);
            const struct st_tensor *e = safetensors_find(f, key);
            if (e) {
                if (e->dtype != ST_F32 || e->nbytes != t->nbytes) {
                    st = FAIL(STATUS_FORMAT, "%s: %s and %s differ in type or size", ckpt, key, t->name);
                    goto done;
                }
                src = e;
                nema++;
            }
        }
        st = safetensors_writer_add(w, t->name, ST_F32, t->shape, t->ndim, src->data);
        if (st != STATUS_OK) goto done;
        nt++;
        if (has_suffix(t->name, ".running_mean")) {
            size_t base = strlen(t->name) - strlen("running_mean");
            names[nnames] = malloc(base + sizeof "num_batches_tracked");
            if (!names[nnames]) { st = FAIL(STATUS_NOMEM, "export: name"); goto done; }
            memcpy(names[nnames], t->name, base);
            strcpy(names[nnames] + base, "num_batches_tracked");
            counters[nnames] = step;
            nnames++;
        }
    }
    if (nt == 0) {
        st = FAIL(STATUS_FORMAT, "%s: no model tensors to export", ckpt);
        goto done;
    }
    for (int i = 0; i < nnames; i++) {
        if (safetensors_find(f, names[i])) continue;
        st = safetensors_writer_add(w, names[i], ST_I64, NULL, 0, &counters[i]);
        if (st != STATUS_OK) goto done;
    }
    char buf[32];
    st = safetensors_writer_meta(w, "format", "pt");
    if (st == STATUS_OK && meta.model) st = safetensors_writer_meta(w, "model", meta.model);
    snprintf(buf, sizeof buf, "%d", meta.num_classes);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "num_classes", buf);
    snprintf(buf, sizeof buf, "%d", meta.image_size);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "image_size", buf);
    snprintf(buf, sizeof buf, "%" PRId64, step);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "step", buf);
    if (st == STATUS_OK && meta.class_names) st = safetensors_writer_meta(w, "class_names", meta.class_names);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "weights", o->ema ? "ema" : "raw");
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "source", ckpt);
    if (st != STATUS_OK) goto done;
    st = safetensors_writer_save(w, o->output);
    if (st != STATUS_OK) goto done;
    printf("exported %d tensors (%d from EMA shadows, %d num_batches_tracked) of %s step %" PRId64
           " to %s\n", nt, nema, nnames, meta.model ? meta.model : "model", step, o->output);
done:
    for (int i = 0; i < nnames; i++) free(names[i]);
    free(names);
    free(counters);
    safetensors_writer_free(&w);
    safetensors_free(&f);
    free(ckpt);
    return st;
}

int main(int argc, char **argv)
{
    struct export_opts o = { .checkpoint_dir = "/tmp/imagenet_train", .checkpoint_path = NULL,
                             .output = NULL, .ema = 1 };
    struct flag flags[] = {
        { "checkpoint_dir", FLAG_STRING, &o.checkpoint_dir,
          "directory with model.ckpt-STEP.safetensors files; the newest valid one is exported", NULL },
        { "checkpoint_path", FLAG_STRING, &o.checkpoint_path,
          "export this checkpoint file instead of the newest in --checkpoint_dir", NULL },
        { "output", FLAG_STRING, &o.output, "the safetensors file to write (required)", NULL },
        { "ema", FLAG_BOOL, &o.ema, "export the EMA shadows (as eval uses); --noema: the raw weights", NULL },
    };
    struct flags_spec spec = { "deeper export", "[flags]", SUMMARY, flags, FLAGS_COUNT(flags), 0, 0 };
    status st = flags_parse(&spec, argc, argv, NULL, NULL);
    if (st == STATUS_OK && (!o.output || !*o.output))
        st = FAIL(STATUS_USAGE, "--output is required (the safetensors file to write)");
    if (st == STATUS_OK) st = signals_watch(&g_stop);
    if (st == STATUS_OK) {
        /* reading and checking: a stop ends the process at once; the output
         * is written to a temporary name and renamed, so it is whole or absent */
        signals_stop_now("deeper export", "exporting");
        st = export_run(&o);
    }
    return status_report("deeper export", st, st == STATUS_USAGE ? "see deeper export --help" : NULL);
}
