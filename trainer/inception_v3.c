/*
 * inception_v3.c — builds torchvision's Inception v3 into a graph (graph.h).
 *
 * Read side by side with torchvision/models/inception.py: every module is
 * built in the order torchvision's __init__ creates it (so parameters are
 * registered in state_dict order), with the same names, channel counts,
 * kernels, strides and paddings:
 *   stem     Conv2d_1a_3x3 .. Conv2d_4a_3x3, two 3x3/2 max pools
 *   A        Mixed_5b/5c/5d  (pool_features 32/64/64)
 *   B        Mixed_6a
 *   C        Mixed_6b..6e    (channels_7x7 128/160/160/192)
 *   aux      AuxLogits: avg 5x5/3 -> conv0 1x1 128 -> conv1 5x5 768 ->
 *            global avg -> fc
 *   D        Mixed_7a
 *   E        Mixed_7b/7c
 *   head     global avg (torchvision's AdaptiveAvgPool2d(1)) -> dropout -> fc
 * Every conv is a BasicConv2d (conv without bias, BN eps from the graph
 * config, 0.001, ReLU).  Average pools inside blocks are 3x3/1 pad 1 with
 * count_include_pad (torchvision's F.avg_pool2d default).  Branches are
 * concatenated by graph_concat, which makes each branch's last layer write
 * straight into its channel slice of the block output.  InceptionE's inner
 * concats (branch3x3_2a/2b, branch3x3dbl_3a/3b) are flattened into the
 * block's one concat: the channel order is the same and nothing is copied.
 *
 * Builders have sticky errors (graph.h): a failure returns -1 and every later
 * builder passes it on; graph_finalize reports the first one.
 */
#include "trainer/inception_v3.h"

#include <stdio.h>

#include "trainer/model.h"

/* TF's inception_train.py / inception_model.py flags, unchanged. */
const struct model_defaults inception_v3_defaults = {
    .initial_learning_rate = 0.1f, .num_epochs_per_decay = 30.0f, .learning_rate_decay_factor = 0.16f,
    .batch_size = 32, .image_size = 299, .weight_decay = 4e-5f, .dropout_keep_prob = 0.8f,
    .label_smoothing = 0.1f,
};

struct inception_v3_options inception_v3_options_default(void)
{
    struct inception_v3_options o = { .dropout_keep = 0.8f, .aux_weight = 0.4f, .aux = -1,
                                      .out_aux_logits = NULL };
    return o;
}

/* Map size after a VALID k x k / stride s layer. */
static int valid(int s, int k, int stride)
{
    return s < k ? 0 : (s - k) / stride + 1;
}

/* Size of Mixed_6e's output (17 at 299). */
static int size_17(int image_size)
{
    int s = valid(image_size, 3, 2);  /* Conv2d_1a_3x3 */
    s = valid(s, 3, 1);               /* Conv2d_2a_3x3 */
    s = valid(s, 3, 2);               /* maxpool1 */
    s = valid(s, 3, 1);               /* Conv2d_4a_3x3 */
    s = valid(s, 3, 2);               /* maxpool2 */
    return valid(s, 3, 2);            /* Mixed_6a */
}

int inception_v3_aux_fits(int image_size)
{
    return valid(valid(size_17(image_size), 5, 3), 5, 1) >= 1;
}

int inception_v3_final_size(int image_size)
{
    return valid(size_17(image_size), 3, 2);
}

/* BasicConv2d "<block>.<name>" (block may be NULL for the stem). */
static int basic(struct graph *g, const char *block, const char *name, int x, int out, int kh,
                 int kw, int stride, int pad_h, int pad_w)
{
    char full[96];
    if (block) snprintf(full, sizeof full, "%s.%s", block, name);
    else snprintf(full, sizeof full, "%s", name);
    return graph_conv_bn_relu2(g, full, x, out, kh, kw, stride, stride, pad_h, pad_w);
}

static int avg3(struct graph *g, int x)
{
    return graph_avgpool(g, x, 3, 1, 1, 1);
}

static int inception_a(struct graph *g, const char *n, int x, int pool_features)
{
    int b1 = basic(g, n, "branch1x1", x, 64, 1, 1, 1, 0, 0);
    int b5 = basic(g, n, "branch5x5_1", x, 48, 1, 1, 1, 0, 0);
    b5 = basic(g, n, "branch5x5_2", b5, 64, 5, 5, 1, 2, 2);
    int d = basic(g, n, "branch3x3dbl_1", x, 64, 1, 1, 1, 0, 0);
    d = basic(g, n, "branch3x3dbl_2", d, 96, 3, 3, 1, 1, 1);
    d = basic(g, n, "branch3x3dbl_3", d, 96, 3, 3, 1, 1, 1);
    int p = basic(g, n, "branch_pool", avg3(g, x), pool_features, 1, 1, 1, 0, 0);
    int parts[4] = { b1, b5, d, p };
    return graph_concat(g, 4, parts);
}

static int inception_b(struct graph *g, const char *n, int x)
{
    int b3 = basic(g, n, "branch3x3", x, 384, 3, 3, 2, 0, 0);
    int d = basic(g, n, "branch3x3dbl_1", x, 64, 1, 1, 1, 0, 0);
    d = basic(g, n, "branch3x3dbl_2", d, 96, 3, 3, 1, 1, 1);
    d = basic(g, n, "branch3x3dbl_3", d, 96, 3, 3, 2, 0, 0);
    int p = graph_maxpool(g, x, 3, 2, 0);
    int parts[3] = { b3, d, p };
    return graph_concat(g, 3, parts);
}

static int inception_c(struct graph *g, const char *n, int x, int c7)
{
    int b1 = basic(g, n, "branch1x1", x, 192, 1, 1, 1, 0, 0);
    int b7 = basic(g, n, "branch7x7_1", x, c7, 1, 1, 1, 0, 0);
    b7 = basic(g, n, "branch7x7_2", b7, c7, 1, 7, 1, 0, 3);
    b7 = basic(g, n, "branch7x7_3", b7, 192, 7, 1, 1, 3, 0);
    int d = basic(g, n, "branch7x7dbl_1", x, c7, 1, 1, 1, 0, 0);
    d = basic(g, n, "branch7x7dbl_2", d, c7, 7, 1, 1, 3, 0);
    d = basic(g, n, "branch7x7dbl_3", d, c7, 1, 7, 1, 0, 3);
    d = basic(g, n, "branch7x7dbl_4", d, c7, 7, 1, 1, 3, 0);
    d = basic(g, n, "branch7x7dbl_5", d, 192, 1, 7, 1, 0, 3);
    int p = basic(g, n, "branch_pool", avg3(g, x), 192, 1, 1, 1, 0, 0);
    int parts[4] = { b1, b7, d, p };
    return graph_concat(g, 4, parts);
}

static int inception_d(struct graph *g, const char *n, int x)
{
    int b3 = basic(g, n, "branch3x3_1", x, 192, 1, 1, 1, 0, 0);
    b3 = basic(g, n, "branch3x3_2", b3, 320, 3, 3, 2, 0, 0);
    int b7 = basic(g, n, "branch7x7x3_1", x, 192, 1, 1, 1, 0, 0);
    b7 = basic(g, n, "branch7x7x3_2", b7, 192, 1, 7, 1, 0, 3);
    b7 = basic(g, n, "branch7x7x3_3", b7, 192, 7, 1, 1, 3, 0);
    b7 = basic(g, n, "branch7x7x3_4", b7, 192, 3, 3, 2, 0, 0);
    int p = graph_maxpool(g, x, 3, 2, 0);
    int parts[3] = { b3, b7, p };
    return graph_concat(g, 3, parts);
}

static int inception_e(struct graph *g, const char *n, int x)
{
    int b1 = basic(g, n, "branch1x1", x, 320, 1, 1, 1, 0, 0);
    int b3 = basic(g, n, "branch3x3_1", x, 384, 1, 1, 1, 0, 0);
    int b3a = basic(g, n, "branch3x3_2a", b3, 384, 1, 3, 1, 0, 1);
    int b3b = basic(g, n, "branch3x3_2b", b3, 384, 3, 1, 1, 1, 0);
    int d = basic(g, n, "branch3x3dbl_1", x, 448, 1, 1, 1, 0, 0);
    d = basic(g, n, "branch3x3dbl_2", d, 384, 3, 3, 1, 1, 1);
    int da = basic(g, n, "branch3x3dbl_3a", d, 384, 1, 3, 1, 0, 1);
    int db = basic(g, n, "branch3x3dbl_3b", d, 384, 3, 1, 1, 1, 0);
    int p = basic(g, n, "branch_pool", avg3(g, x), 192, 1, 1, 1, 0, 0);
    int parts[6] = { b1, b3a, b3b, da, db, p };
    return graph_concat(g, 6, parts);
}

/* Registers one BasicConv2d's parameters without building nodes (the aux
 * head when it cannot or need not run), exactly as graph_conv_bn_relu names
 * and initialises them. */
static void basic_params_only(struct graph *g, const char *name, int in, int out, int k,
                              float stddev)
{
    char full[96];
    int wshape[4] = { out, in, k, k }, vshape[1] = { out };
    struct graph_init tn = { INIT_TRUNC_NORMAL, stddev }, ones = { INIT_ONES, 0 },
                      zeros = { INIT_ZEROS, 0 };
    snprintf(full, sizeof full, "%s.conv.weight", name);
    graph_param_add(g, full, PARAM_WEIGHT, 4, wshape, tn, in * k * k);
    snprintf(full, sizeof full, "%s.bn.weight", name);
    graph_param_add(g, full, PARAM_BIAS, 1, vshape, ones, 0);
    snprintf(full, sizeof full, "%s.bn.bias", name);
    graph_param_add(g, full, PARAM_BIAS, 1, vshape, zeros, 0);
    snprintf(full, sizeof full, "%s.bn.running_mean", name);
    graph_param_add(g, full, PARAM_STAT, 1, vshape, zeros, 0);
    snprintf(full, sizeof full, "%s.bn.running_var", name);
    graph_param_add(g, full, PARAM_STAT, 1, vshape, ones, 0);
}

static void aux_params_only(struct graph *g, int classes)
{
    basic_params_only(g, "AuxLogits.conv0", 768, 128, 1, 0.1f);
    basic_params_only(g, "AuxLogits.conv1", 128, 768, 5, 0.01f);
    int wshape[2] = { classes, 768 }, bshape[1] = { classes };
    graph_param_add(g, "AuxLogits.fc.weight", PARAM_WEIGHT, 2, wshape,
                    (struct graph_init){ INIT_TRUNC_NORMAL, 0.001f }, 768);
    graph_param_add(g, "AuxLogits.fc.bias", PARAM_BIAS, 1, bshape,
                    (struct graph_init){ INIT_ZEROS, 0 }, 0);
}

/* Returns the aux logits value. */
static int aux_head(struct graph *g, int x, int classes)
{
    struct graph_init conv_init = { INIT_TRUNC_NORMAL, 0.1f };
    int a = graph_avgpool(g, x, 5, 3, 0, 1);
    a = basic(g, "AuxLogits", "conv0", a, 128, 1, 1, 1, 0, 0);
    graph_set_weight_init(g, (struct graph_init){ INIT_TRUNC_NORMAL, 0.01f });
    a = basic(g, "AuxLogits", "conv1", a, 768, 5, 5, 1, 0, 0);
    a = graph_global_avgpool(g, a);
    graph_set_weight_init(g, (struct graph_init){ INIT_TRUNC_NORMAL, 0.001f });
    a = graph_fc(g, "AuxLogits.fc", a, classes);
    graph_set_weight_init(g, conv_init);
    return a;
}

status inception_v3_build_opts(struct graph *g, int classes, int image_size, int channels,
                               const struct inception_v3_options *o)
{
    if (image_size < INCEPTION_V3_MIN_SIZE)
        return FAIL(STATUS_USAGE, "inception_v3: --image_size %d is too small (torchvision's minimum is %d)",
                    image_size, INCEPTION_V3_MIN_SIZE);
    if (channels != 0 && channels != 1 && channels != 3)
        return FAIL(STATUS_USAGE, "inception_v3: images with %d channels (1 or 3 expected)", channels);
    if (classes < 2)
        return FAIL(STATUS_USAGE, "inception_v3: %d classes (at least 2 needed)", classes);
    if (o->dropout_keep <= 0.0f || o->dropout_keep > 1.0f)
        return FAIL(STATUS_USAGE, "inception_v3: dropout keep %g outside (0, 1]", o->dropout_keep);

    int training = (graph_get_config(g)->flags & GRAPH_TRAIN) != 0;
    int aux_on = o->aux != 0 && training && inception_v3_aux_fits(image_size);

    graph_set_weight_init(g, (struct graph_init){ INIT_TRUNC_NORMAL, 0.1f });
    int x = graph_input(g, 3, image_size, image_size);
    x = basic(g, NULL, "Conv2d_1a_3x3", x, 32, 3, 3, 2, 0, 0);
    x = basic(g, NULL, "Conv2d_2a_3x3", x, 32, 3, 3, 1, 0, 0);
    x = basic(g, NULL, "Conv2d_2b_3x3", x, 64, 3, 3, 1, 1, 1);
    x = graph_maxpool(g, x, 3, 2, 0);
    x = basic(g, NULL, "Conv2d_3b_1x1", x, 80, 1, 1, 1, 0, 0);
    x = basic(g, NULL, "Conv2d_4a_3x3", x, 192, 3, 3, 1, 0, 0);
    x = graph_maxpool(g, x, 3, 2, 0);
    x = inception_a(g, "Mixed_5b", x, 32);
    x = inception_a(g, "Mixed_5c", x, 64);
    x = inception_a(g, "Mixed_5d", x, 64);
    x = inception_b(g, "Mixed_6a", x);
    x = inception_c(g, "Mixed_6b", x, 128);
    x = inception_c(g, "Mixed_6c", x, 160);
    x = inception_c(g, "Mixed_6d", x, 160);
    x = inception_c(g, "Mixed_6e", x, 192);
    int aux = -1;
    if (aux_on)
        aux = aux_head(g, x, classes);
    else
        aux_params_only(g, classes);
    x = inception_d(g, "Mixed_7a", x);
    x = inception_e(g, "Mixed_7b", x);
    x = inception_e(g, "Mixed_7c", x);
    x = graph_global_avgpool(g, x);
    x = graph_dropout(g, x, o->dropout_keep);
    graph_set_weight_init(g, (struct graph_init){ INIT_TRUNC_NORMAL, 0.01f });
    x = graph_fc(g, "fc", x, classes);
    graph_loss(g, x, 1.0f);
    if (aux_on) graph_loss(g, aux, o->aux_weight);
    if (o->out_aux_logits) *o->out_aux_logits = aux;
    return STATUS_OK;   /* builder errors surface in graph_finalize */
}

status inception_v3_build(struct graph *g, int classes, int image_size, int channels)
{
    struct inception_v3_options o = inception_v3_options_default();
    return inception_v3_build_opts(g, classes, image_size, channels, &o);
}
