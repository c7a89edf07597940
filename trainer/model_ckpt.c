/*
 * model_ckpt.c — model towers from a checkpoint (see model_ckpt.h).
 */
#include "trainer/model_ckpt.h"

#include <stdlib.h>
#include <string.h>

status model_ckpt_open(struct model_ckpt *mc, const char *dir, const char *file)
{
    memset(mc, 0, sizeof *mc);
    if (file) {
        mc->path = strdup(file);
        if (!mc->path) return FAIL(STATUS_NOMEM, "%s: out of memory", file);
    } else {
        TRY(checkpoint_latest(dir, &mc->path, &mc->step));
    }
    return checkpoint_open(mc->path, &mc->file, &mc->meta);
}

status model_ckpt_options(const struct model_ckpt *mc, int data_channels, struct model_options *mo)
{
    const struct ckpt_meta *m = &mc->meta;
    const struct model_desc *md = model_find(m->model);
    if (!md) return FAIL(STATUS_FORMAT, "%s: unknown model %s", mc->path, m->model);
    int c = data_channels > 0 ? data_channels : m->channels > 0 ? m->channels : md->default_channels;
    *mo = model_options_default();
    mo->model = m->model;
    mo->classes = m->num_classes;
    mo->image_size = m->image_size;
    mo->channels = md->default_channels == 3 ? 3 : c;
    mo->batch_size = 1;
    mo->num_towers = 1;
    mo->training = 0;
    mo->seed = m->seed;
    return STATUS_OK;
}

status model_ckpt_towers(struct model_ckpt *mc, const struct model_options *mo,
                         enum train_state_restore_mode mode, struct tower_set **out)
{
    TRY(model_towers_new(out, mo));
    TRY(train_state_restore(*out, mc->file, mode));
    safetensors_free(&mc->file);
    mc->meta.model = mc->meta.class_names = mc->meta.manifest_digest = NULL;
    return STATUS_OK;
}

void model_ckpt_close(struct model_ckpt *mc)
{
    safetensors_free(&mc->file);
    free(mc->path);
    mc->path = NULL;
}
