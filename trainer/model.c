/*
 * model.c — the model registry (`--model NAME`) and the trainer's step API,
 * thin wrappers over tower.c that fill in model defaults.
 *
 * Built-in entries are listed in `builtin` below; a model living in its own
 * file (Inception v3) can either be added to that list or registered at
 * startup with model_register.
 */
#include <string.h>

#include "trainer/inception_v3.h"
#include "trainer/model.h"

#define MODEL_MAX 16

static struct model_desc table[MODEL_MAX] = {
    { "nielsennet", "NielsenNet: 2 conv + 3 FC layers (28x28 gray, e.g. Fashion-MNIST)",
      nielsennet_build, 28, 1, 0.5f, &nielsennet_defaults },
    { "inception_v3", "Inception v3, torchvision's architecture and names, TF's training recipe (299x299 RGB; >= 75)",
      inception_v3_build, 299, 3, 0.8f, &inception_v3_defaults },
};
static int table_n = 2;

const struct model_desc *model_find(const char *name)
{
    for (int i = 0; i < table_n; i++) if (name && !strcmp(table[i].name, name)) return &table[i];
    return NULL;
}

const struct model_desc *model_list(int *n)
{
    *n = table_n;
    return table;
}

const struct model_defaults *model_defaults_of(const struct model_desc *d)
{
    return d && d->defaults ? d->defaults : &inception_v3_defaults;
}

status model_register(const struct model_desc *d)
{
    if (model_find(d->name)) return STATUS_OK;
    if (table_n == MODEL_MAX) return FAIL(STATUS_STATE, "model registry full (%d)", MODEL_MAX);
    table[table_n++] = *d;
    return STATUS_OK;
}

struct model_options model_options_default(void)
{
    struct model_options o = {
        .model = "nielsennet", .classes = 10, .batch_size = 32, .num_towers = 1,
        .backend = "cpu", .training = 1, .seed = 1, .label_smoothing = 0.1f,
        .optim = optim_config_default(),
    };
    return o;
}

status model_towers_new(struct tower_set **out, const struct model_options *o)
{
    *out = NULL;
    const struct model_desc *d = model_find(o->model);
    if (!d) {
        char names[256] = "";
        for (int i = 0; i < table_n; i++) {
            strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
            strncat(names, table[i].name, sizeof names - strlen(names) - 1);
        }
        return FAIL(STATUS_USAGE, "--model %s: unknown model (known: %s)", o->model ? o->model : "(none)", names);
    }
    struct tower_options t = {
        .build = d->build, .classes = o->classes,
        .image_size = o->image_size > 0 ? o->image_size : d->default_image_size,
        .channels = o->channels > 0 ? o->channels : d->default_channels,
        .batch_size = o->batch_size, .num_towers = o->num_towers > 0 ? o->num_towers : 1,
        .backend = o->backend, .threads = o->threads, .training = o->training, .seed = o->seed,
        .label_smoothing = o->label_smoothing, .dropout_keep = o->dropout_keep, .optim = o->optim,
    };
    return tower_set_new(out, &t);
}

void model_towers_free(struct tower_set **ts) { tower_set_free(ts); }

status model_step_train(struct tower_set *ts, const uint8_t *pixels, int channels,
                        const int32_t *labels, int n, struct tower_step_result *r)
{
    return tower_step(ts, pixels, channels, labels, n, r);
}

status model_forward_eval(struct tower_set *ts, const uint8_t *pixels, int channels, int n,
                          float *probs)
{
    return tower_forward_eval(ts, pixels, channels, n, probs);
}
