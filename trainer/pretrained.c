/*
 * pretrained.c — --pretrained_model_checkpoint_path / --fine_tune: copy
 * torchvision-named tensors from a safetensors file into a graph.
 *
 * Two passes over the graph's parameters: the first checks every one
 * (present, same shape, a float dtype) and stops at the first problem with
 * one message naming the tensor and both shapes; the second converts and
 * writes.  So a bad file never leaves a half-loaded model.  See
 * pretrained.h for the rules (classifier re-initialisation, aux-less files,
 * ignored tensors).
 */
#include "trainer/pretrained.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "shared/safetensors.h"
#include "trainer/optim.h"

int pretrained_is_classifier(const char *name)
{
    const char *last = strrchr(name, '.');
    if (!last) return 0;
    size_t mod_end = (size_t)(last - name);          /* name[0..mod_end) = module path */
    if (mod_end < 2 || strncmp(name + mod_end - 2, "fc", 2) != 0) return 0;
    return mod_end == 2 || name[mod_end - 3] == '.';  /* "fc.x" or "....fc.x" */
}

static int is_aux(const char *name)
{
    return strncmp(name, "AuxLogits.", 10) == 0;
}

static void shape_model(char *buf, size_t n, const struct graph_param *p)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < p->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%d", d ? ", " : "", p->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static void shape_file(char *buf, size_t n, const struct st_tensor *t)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

static int same_shape(const struct graph_param *p, const struct st_tensor *t)
{
    if (p->ndim != t->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if ((int64_t)p->shape[d] != t->shape[d]) return 0;
    return 1;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {   /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void convert(float *dst, const struct st_tensor *t, size_t n)
{
    const unsigned char *s = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case ST_F32: memcpy(&dst[i], s + 4 * i, 4); break;
        case ST_F64: { double d; memcpy(&d, s + 8 * i, 8); dst[i] = (float)d; break; }
        case ST_F16: { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = half_to_float(h); break; }
        case ST_BF16: {
            uint16_t h; memcpy(&h, s + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
            break;
        }
        default: dst[i] = 0; break;
        }
    }
}

status pretrained_load(struct graph *g, const char *path, int fine_tune,
                       struct pretrained_report *rep)
{
    struct st_file *f = NULL;
    float *buf = NULL;
    struct pretrained_report r = { 0 };
    status st = safetensors_open(&f, path);
    if (st != STATUS_OK) goto done;

    int np = graph_num_params(g);
    int file_has_aux = 0;
    for (int i = 0; i < safetensors_count(f); i++)
        if (is_aux(safetensors_at(f, i)->name)) file_has_aux = 1;

    /* pass 1: check */
    size_t maxn = 0;
    for (int i = 0; i < np; i++) {
        const struct graph_param *p = graph_param(g, i);
        if (fine_tune && pretrained_is_classifier(p->name)) continue;
        if (!file_has_aux && is_aux(p->name)) continue;
        const struct st_tensor *t = safetensors_find(f, p->name);
        char ms[64], fs[64];
        shape_model(ms, sizeof ms, p);
        if (!t) {
            st = FAIL(STATUS_FORMAT, "%s: tensor %s is missing (the model has shape %s)", path,
                      p->name, ms);
            goto done;
        }
        shape_file(fs, sizeof fs, t);
        if (t->dtype != ST_F32 && t->dtype != ST_F64 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
            st = FAIL(STATUS_FORMAT, "%s: tensor %s is %s, expected a float type (F32, F64, F16, BF16)",
                      path, p->name, st_dtype_name(t->dtype));
            goto done;
        }
        if (!same_shape(p, t)) {
            st = FAIL(STATUS_FORMAT, "%s: tensor %s has shape %s in the file but %s in the model%s",
                      path, p->name, fs, ms,
                      pretrained_is_classifier(p->name)
                          ? " (a different class count: add --fine_tune to re-initialise the classifier)"
                          : "");
            goto done;
        }
        if (p->numel > maxn) maxn = p->numel;
    }

    /* pass 2: convert and write */
    buf = malloc((maxn ? maxn : 1) * sizeof *buf);
    if (!buf) { st = FAIL(STATUS_NOMEM, "pretrained: %zu floats", maxn); goto done; }
    for (int i = 0; i < np; i++) {
        const struct graph_param *p = graph_param(g, i);
        if (fine_tune && pretrained_is_classifier(p->name)) { r.reinitialised++; continue; }
        if (!file_has_aux && is_aux(p->name)) { r.aux_fresh++; continue; }
        const struct st_tensor *t = safetensors_find(f, p->name);
        convert(buf, t, p->numel);
        st = graph_param_write(g, i, SLOT_W, buf);
        if (st != STATUS_OK) goto done;
        r.restored++;
    }
    for (int i = 0; i < safetensors_count(f); i++)
        if (graph_param_find(g, safetensors_at(f, i)->name) < 0) r.ignored++;
    if (r.aux_fresh)
        log_warn("%s: no AuxLogits.* tensors; the aux head (%d tensors) starts freshly initialised",
                 path, r.aux_fresh);
    if (graph_arena(g, SLOT_EMA)) {
        st = optim_init_slots(g);
        if (st != STATUS_OK) goto done;
    }
    log_info("restored %d tensors from %s%s (%d re-initialised, %d file tensors not used)",
             r.restored, path, fine_tune ? " for fine-tuning" : "", r.reinitialised, r.ignored);
done:
    free(buf);
    safetensors_free(&f);
    if (rep) *rep = r;
    return st;
}
