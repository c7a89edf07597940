/*
 * train_state.c — tower 0's parameters, EMA and RMSProp slots <-> checkpoint
 * tensors (see train_state.h).  Host staging: one malloc'd block holding
 * every slot, freed before returning.
 */
#include "trainer/train_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/graph.h"

struct staged {
    struct ckpt_tensor *t;
    char **names;
    enum graph_slot *slot;
    int *param;
    int n;
    float *host;
};

static void staged_free(struct staged *s)
{
    for (int i = 0; i < s->n; i++) free(s->names[i]);
    free(s->t); free(s->names); free(s->slot); free(s->param); free(s->host);
    memset(s, 0, sizeof(*s));
}

/* Lay out every (param, slot) pair that exists in g. */
static status stage(const struct graph *g, int with_opt, struct staged *s)
{
    int np = graph_num_params(g);
    int cap = np * 4;
    size_t total = 0;
    memset(s, 0, sizeof(*s));
    s->t = calloc((size_t)cap + 1, sizeof(*s->t));
    s->names = calloc((size_t)cap + 1, sizeof(char *));
    s->slot = calloc((size_t)cap + 1, sizeof(*s->slot));
    s->param = calloc((size_t)cap + 1, sizeof(int));
    if (!s->t || !s->names || !s->slot || !s->param) { staged_free(s); return FAIL(STATUS_NOMEM, "checkpoint: out of memory"); }
    static const struct { enum graph_slot slot; const char *prefix; } slots[] = {
        { SLOT_W, "" }, { SLOT_EMA, "ema/" }, { SLOT_MS, "rmsprop_ms/" }, { SLOT_MOM, "rmsprop_mom/" },
    };
    for (int k = 0; k < 4; k++) {
        if (k > 0 && !with_opt) break;
        for (int i = 0; i < np; i++) {
            const struct graph_param *p = graph_param(g, i);
            const float *ptr = slots[k].slot == SLOT_W ? p->w : slots[k].slot == SLOT_EMA ? p->ema
                             : slots[k].slot == SLOT_MS ? p->ms : p->mom;
            if (!ptr) continue;
            struct ckpt_tensor *t = &s->t[s->n];
            if (asprintf(&s->names[s->n], "%s%s", slots[k].prefix, p->name) < 0) {
                s->names[s->n] = NULL; staged_free(s); return FAIL(STATUS_NOMEM, "checkpoint: out of memory");
            }
            t->name = s->names[s->n];
            t->ndim = p->ndim;
            for (int d = 0; d < p->ndim; d++) t->shape[d] = p->shape[d];
            t->data = (float *)(uintptr_t)total;   /* offset for now */
            s->slot[s->n] = slots[k].slot;
            s->param[s->n] = i;
            total += p->numel;
            s->n++;
        }
    }
    s->host = malloc((total ? total : 1) * sizeof(float));
    if (!s->host) { staged_free(s); return FAIL(STATUS_NOMEM, "checkpoint: out of memory (%zu floats)", total); }
    for (int i = 0; i < s->n; i++) s->t[i].data = s->host + (uintptr_t)s->t[i].data;
    return STATUS_OK;
}

status train_state_save(struct tower_set *ts, struct ckpt_meta *meta, const char *train_dir,
                        int keep, char **out_path)
{
    struct staged s;
    TRY(stage(ts->g[0], 1, &s));
    status st = STATUS_OK;
    for (int i = 0; i < s.n && st == STATUS_OK; i++)
        st = graph_param_read(ts->g[0], s.param[i], s.slot[i], s.t[i].data);
    meta->step = ts->step;
    if (st == STATUS_OK) st = checkpoint_save(train_dir, meta, s.t, s.n, keep, out_path);
    staged_free(&s);
    return st;
}

status train_state_check_names(const struct graph *g, const struct st_file *f)
{
    static const char *const prefixes[] = { "ema/", "rmsprop_ms/", "rmsprop_mom/" };
    const char *path = safetensors_path(f);
    int n = safetensors_count(f);
    for (int i = 0; i < n; i++) {
        const char *name = safetensors_at(f, i)->name, *base = name;
        for (size_t k = 0; k < sizeof prefixes / sizeof *prefixes; k++)
            if (strncmp(name, prefixes[k], strlen(prefixes[k])) == 0) { base = name + strlen(prefixes[k]); break; }
        if (graph_param_find(g, base) < 0)
            return FAIL(STATUS_FORMAT, "%s: tensor %s is not a parameter of this model (unknown name; strict load)",
                        path, name);
    }
    for (int i = 0; i < graph_num_params(g); i++) {
        const char *name = graph_param(g, i)->name;
        if (!safetensors_find(f, name))
            return FAIL(STATUS_FORMAT, "%s: tensor %s of the model is missing (strict load)", path, name);
    }
    return STATUS_OK;
}

status train_state_restore(struct tower_set *ts, const struct st_file *f,
                           enum train_state_restore_mode mode)
{
    struct graph *g = ts->g[0];
    TRY(train_state_check_names(g, f));
    struct staged s;
    TRY(stage(g, mode == RESTORE_TRAINING, &s));
    status st = STATUS_OK;
    for (int i = 0; i < s.n && st == STATUS_OK; i++) {
        const char *prefix = (mode == RESTORE_EMA_AS_WEIGHTS && s.slot[i] == SLOT_W) ? "ema/" : "";
        /* an EMA shadow missing from the file falls back to the weights */
        st = checkpoint_restore(f, &s.t[i], 1, prefix, 1);
        if (st == STATUS_OK) {
            enum graph_slot dst = s.slot[i];
            st = graph_param_write(g, s.param[i], dst, s.t[i].data);
            /* eval graphs have no EMA slot; training graphs keep EMA = loaded */
            if (st == STATUS_OK && mode != RESTORE_TRAINING && dst == SLOT_W && graph_param(g, s.param[i])->ema)
                st = graph_param_write(g, s.param[i], SLOT_EMA, s.t[i].data);
        }
    }
    staged_free(&s);
    TRY(st);
    return tower_broadcast(ts);
}
