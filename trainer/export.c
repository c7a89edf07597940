/*
 * export.c — a training checkpoint -> a plain torchvision state_dict in
 * safetensors (see export.h; trainer/main_export.c holds the flags).
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
#include "trainer/export.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/safetensors.h"
#include "trainer/model_ckpt.h"

/* Strict names: the checkpoint's tensors must be exactly those of its model
 * (built here on the CPU, batch 1, only to list its parameters). */
static status export_check_names(const struct model_ckpt *ck)
{
    struct model_options mo;
    TRY(model_ckpt_options(ck, 0, &mo));
    mo.backend = "cpu";
    mo.threads = 1;
    struct tower_set *ts = NULL;
    status st = model_towers_new(&ts, &mo);
    if (st == STATUS_OK) st = train_state_check_names(ts->g[0], ck->file);
    model_towers_free(&ts);
    return st;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* What export_tensors collects. */
struct export_tensors {
    int nt, nema;                   /* tensors written, of them from EMA shadows */
    int ncount;                     /* num_batches_tracked counters */
    char **names;
    int64_t *counters;
};

/* Add "X.num_batches_tracked" = step for the batch norm of "X.running_mean". */
static status export_counter(struct export_tensors *x, const char *name, int64_t step)
{
    size_t base = strlen(name) - strlen("running_mean");
    x->names[x->ncount] = malloc(base + sizeof "num_batches_tracked");
    if (!x->names[x->ncount]) return FAIL(STATUS_NOMEM, "export: name");
    memcpy(x->names[x->ncount], name, base);
    strcpy(x->names[x->ncount] + base, "num_batches_tracked");
    x->counters[x->ncount++] = step;
    return STATUS_OK;
}

/* Every model tensor of f (the EMA shadow with ema) into w. */
static status export_tensors(const struct model_ckpt *ck, int ema, struct st_writer *w, struct export_tensors *x)
{
    const struct st_file *f = ck->file;
    int n = safetensors_count(f);
    x->counters = calloc((size_t)n + 1, sizeof *x->counters);
    x->names = calloc((size_t)n + 1, sizeof *x->names);
    if (!x->counters || !x->names) return FAIL(STATUS_NOMEM, "export: %d tensors", n);
    for (int i = 0; i < n; i++) {
        const struct st_tensor *t = safetensors_at(f, i);
        if (strchr(t->name, '/')) continue;          /* ema/..., rmsprop_ms/..., ... */
        if (t->dtype != ST_F32) continue;            /* model tensors are F32 */
        const struct st_tensor *src = t;
        if (ema) {
            char key[512];
            snprintf(key, sizeof key, "ema/%s", t->name);
            const struct st_tensor *e = safetensors_find(f, key);
            if (e) {
                if (e->dtype != ST_F32 || e->nbytes != t->nbytes)
                    return FAIL(STATUS_FORMAT, "%s: %s and %s differ in type or size", ck->path, key, t->name);
                src = e;
                x->nema++;
            }
        }
        TRY(safetensors_writer_add(w, t->name, ST_F32, t->shape, t->ndim, src->data));
        x->nt++;
        if (has_suffix(t->name, ".running_mean")) TRY(export_counter(x, t->name, ck->meta.step));
    }
    if (x->nt == 0) return FAIL(STATUS_FORMAT, "%s: no model tensors to export", ck->path);
    for (int i = 0; i < x->ncount; i++) {
        if (safetensors_find(f, x->names[i])) continue;
        TRY(safetensors_writer_add(w, x->names[i], ST_I64, NULL, 0, &x->counters[i]));
    }
    return STATUS_OK;
}

/* The metadata block: format, model, classes, image size, step, names. */
static status export_meta(const struct model_ckpt *ck, int ema, struct st_writer *w)
{
    const struct ckpt_meta *meta = &ck->meta;
    char buf[32];
    status st = safetensors_writer_meta(w, "format", "pt");
    if (st == STATUS_OK && meta->model) st = safetensors_writer_meta(w, "model", meta->model);
    snprintf(buf, sizeof buf, "%d", meta->num_classes);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "num_classes", buf);
    snprintf(buf, sizeof buf, "%d", meta->image_size);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "image_size", buf);
    snprintf(buf, sizeof buf, "%" PRId64, meta->step);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "step", buf);
    if (st == STATUS_OK && meta->class_names) st = safetensors_writer_meta(w, "class_names", meta->class_names);
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "weights", ema ? "ema" : "raw");
    if (st == STATUS_OK) st = safetensors_writer_meta(w, "source", ck->path);
    return st;
}

status export_run(const struct export_opts *o)
{
    struct model_ckpt ck;
    struct st_writer *w = NULL;
    struct export_tensors x = { 0 };
    status st = model_ckpt_open(&ck, o->checkpoint_dir, o->checkpoint_path);
    if (st == STATUS_OK) st = export_check_names(&ck);
    if (st == STATUS_OK) st = safetensors_writer_new(&w);
    if (st == STATUS_OK) st = export_tensors(&ck, o->ema, w, &x);
    if (st == STATUS_OK) st = export_meta(&ck, o->ema, w);
    if (st == STATUS_OK) st = safetensors_writer_save(w, o->output);
    if (st == STATUS_OK)
        printf("exported %d tensors (%d from EMA shadows, %d num_batches_tracked) of %s step %" PRId64
               " to %s\n", x.nt, x.nema, x.ncount, ck.meta.model ? ck.meta.model : "model", ck.meta.step, o->output);
    for (int i = 0; i < x.ncount; i++) free(x.names[i]);
    free(x.names);
    free(x.counters);
    safetensors_writer_free(&w);
    model_ckpt_close(&ck);
    return st;
}
