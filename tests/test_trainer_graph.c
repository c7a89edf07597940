/*
 * test_trainer_graph.c — the graph, the optimizer schedule and the towers.
 *
 *  - a small Inception-like graph (two conv+BN+ReLU branches concatenated as
 *    channel views, an average-pool branch, FC, loss): every parameter
 *    gradient of the whole graph against central differences of the loss
 *    (h = 1e-3, float forward; the error is measured relative to each
 *    tensor's largest gradient and is dominated by ReLU kinks crossed by the
 *    perturbation and float rounding through batch-3 BN, ~4%: a routing bug
 *    gives O(1) errors, so the tolerance is 8%);
 *  - NielsenNet's parameter registry: torchvision names and shapes, arenas;
 *  - the graph options behind --dropout_keep_prob and --label_smoothing:
 *    keep 1 makes the training loss independent of the dropout seed (the
 *    model's own 0.5 does not), and the loss is linear in the smoothing
 *    (TF's targets (1-s) onehot + s/K), so equal steps of s give equal steps
 *    of loss (within 1e-5);
 *  - staircase learning rate and EMA decay schedule;
 *  - towers: 2 towers x 16 equal 1 tower x 32 (NielsenNet, no BN; dropout
 *    masks are keyed by global sample index so they agree) after 3 steps,
 *    within float rounding; the loss is reported and a NaN stops the step.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/rng.h"
#include "tests/check_util.h"
#include "trainer/graph.h"
#include "trainer/model.h"
#include "trainer/optim.h"

static status mini_build(struct graph *g, int classes, int image_size, int channels)
{
    int x = graph_input(g, channels, image_size, image_size);
    x = graph_conv_bn_relu(g, "stem", x, 4, 3, 3, 1, 1);
    int a = graph_conv_bn_relu(g, "mix.branch1x1", x, 3, 1, 1, 1, 0);
    int b = graph_conv_bn_relu2(g, "mix.branch1x3", x, 2, 1, 3, 1, 1, 0, 1);
    int p = graph_avgpool(g, x, 3, 1, 1, 0);
    int c = graph_conv_bn_relu(g, "mix.branch_pool", p, 2, 1, 1, 1, 0);
    int ids[3] = { a, b, c };
    int cat = graph_concat(g, 3, ids);
    int m = graph_maxpool(g, cat, 2, 2, 0);
    int f = graph_fc(g, "fc", m, classes);
    graph_loss(g, f, 1.0f);
    return STATUS_OK;
}

struct gctx { struct graph *g; };

static double graph_loss_at(struct graph *g)
{
    float l = 0;
    cr_assert_eq(graph_forward(g, 1, 9, 0), STATUS_OK, "%s", status_msg());
    cr_assert_eq(graph_loss_forward(g, &l, 1.0f), STATUS_OK, "%s", status_msg());
    return l;
}

Test(graph, concat_views_whole_graph_gradients)
{
    struct backend *be = NULL;
    cr_assert_eq(backend_new_cpu(&be, 2), STATUS_OK);
    struct graph_config gc = graph_config_default();
    gc.batch = 3;
    gc.flags = GRAPH_TRAIN;
    struct graph *g = NULL;
    cr_assert_eq(graph_new(&g, be, &gc), STATUS_OK);
    cr_assert_eq(mini_build(g, 5, 6, 2), STATUS_OK);
    cr_assert_eq(graph_finalize(g), STATUS_OK, "%s", status_msg());
    /* concat output is 7 channels; its inputs are views into it */
    struct tensor cat = graph_value(g, 0);
    (void)cat;
    uint8_t px[3 * 6 * 6 * 2];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)((i * 37 + 11) % 251);
    int32_t lab[3] = { 1, 4, 0 };
    cr_assert_eq(graph_set_input(g, px, 3, 6, 6, 2, lab), STATUS_OK, "%s", status_msg());
    graph_loss_at(g);
    cr_assert_eq(graph_backward(g), STATUS_OK, "%s", status_msg());
    double worst = 0;
    const char *worst_name = "";
    /* snapshot: every loss evaluation below zeroes the gradient arena */
    size_t nt = graph_trainable_numel(g);
    float *all = malloc(nt * 4);
    memcpy(all, graph_arena(g, SLOT_GRAD), nt * 4);
    for (int i = 0; i < graph_num_params(g); i++) {
        const struct graph_param *p = graph_param(g, i);
        if (p->kind == PARAM_STAT) continue;
        const float *grad = all + p->offset;
        double gmax = 1e-2;     /* errors relative to the tensor's largest gradient */
        for (size_t k = 0; k < p->numel; k++) {
            cr_assert(isfinite(grad[k]), "%s[%zu]: gradient %g", p->name, k, grad[k]);
            if (fabs(grad[k]) > gmax) gmax = fabs(grad[k]);
        }
        for (size_t k = 0; k < p->numel; k++) {
            float keep = p->w[k], h = getenv("GRAPH_H") ? (float)atof(getenv("GRAPH_H")) : 1e-3f;
            p->w[k] = keep + h; double lp = graph_loss_at(g);
            p->w[k] = keep - h; double lm = graph_loss_at(g);
            p->w[k] = keep;
            double num = (lp - lm) / (2 * h);
            struct check_acc e = check_begin(gmax);
            check_add_scaled(&e, num, grad[k], gmax);
            double err = check_err(&e, CHECK_REL);          /* NaN or Inf: INFINITY */
            if (!(err <= worst)) { worst = err; worst_name = p->name; }
        }
        if (getenv("GRAPH_DEBUG")) printf("  %s: worst so far %.3e\n", p->name, worst);
    }
    free(all);
    printf("largest error %-34s %.3e (%s)\n", "whole graph with concat views", worst, worst_name);
    cr_expect(worst <= 8e-2, "largest relative error %.3e in %s", worst, worst_name);
    graph_free(&g);
    backend_free(&be);
}

/* a 1-tower NielsenNet with default options; caller frees with model_towers_free */
static struct tower_set *nielsennet_towers(int batch)
{
    struct model_options o = model_options_default();
    o.batch_size = batch;
    struct tower_set *ts = NULL;
    cr_assert_eq(model_towers_new(&ts, &o), STATUS_OK, "%s", status_msg());
    return ts;
}

Test(graph, nielsennet_registry)
{
    struct tower_set *ts = nielsennet_towers(4);
    struct graph *g = ts->g[0];
    const char *names[] = { "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight",
                            "fc1.bias", "fc2.weight", "fc2.bias", "fc.weight", "fc.bias" };
    int shapes[][4] = { { 20, 1, 5, 5 }, { 20 }, { 40, 20, 5, 5 }, { 40 }, { 1000, 1000 }, { 1000 },
                        { 1000, 1000 }, { 1000 }, { 10, 1000 }, { 10 } };
    cr_assert_eq(graph_num_params(g), 10);
    size_t total = 0;
    for (int i = 0; i < 10; i++) {
        int k = graph_param_find(g, names[i]);
        cr_assert(k >= 0, "%s missing", names[i]);
        const struct graph_param *p = graph_param(g, k);
        for (int d = 0; d < p->ndim; d++) cr_expect_eq(p->shape[d], shapes[i][d], "%s dim %d", names[i], d);
        cr_expect_eq(p->kind, strstr(names[i], "weight") ? PARAM_WEIGHT : PARAM_BIAS);
        cr_expect(p->w && p->grad && p->ms && p->mom && p->ema, "%s slots", names[i]);
        total += p->numel;
    }
    cr_expect_eq(total, (size_t)(500 + 20 + 20000 + 40 + 1000000 + 1000 + 1000000 + 1000 + 10000 + 10));
    cr_expect_eq(graph_trainable_numel(g), total);
    cr_expect_eq(graph_num_classes(g), 10);
    cr_expect(model_find("nielsennet") != NULL);
    cr_expect(model_find("resnet") == NULL);
    struct model_options o = model_options_default();
    o.model = "resnet";
    struct tower_set *bad = NULL;
    cr_expect_eq(model_towers_new(&bad, &o), STATUS_USAGE);
    model_towers_free(&ts);
}

/* training-mode loss of a fresh NielsenNet (seed 1) on a fixed batch of 4 */
static float nielsen_loss(float keep, float smoothing, uint64_t dropout_seed)
{
    struct backend *be = NULL;
    cr_assert_eq(backend_new_cpu(&be, 1), STATUS_OK);
    struct graph_config gc = graph_config_default();
    gc.batch = 4;
    gc.flags = GRAPH_TRAIN;
    gc.dropout_keep = keep;
    gc.label_smoothing = smoothing;
    struct graph *g = NULL;
    cr_assert_eq(graph_new(&g, be, &gc), STATUS_OK);
    cr_assert_eq(nielsennet_build(g, 10, 28, 1), STATUS_OK);
    cr_assert_eq(graph_finalize(g), STATUS_OK, "%s", status_msg());
    uint8_t px[4 * 784];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)((i * 37 + 11) % 251);
    int32_t lab[4] = { 1, 4, 0, 9 };
    cr_assert_eq(graph_set_input(g, px, 4, 28, 28, 1, lab), STATUS_OK, "%s", status_msg());
    float l = 0;
    cr_assert_eq(graph_forward(g, 1, dropout_seed, 0), STATUS_OK, "%s", status_msg());
    cr_assert_eq(graph_loss_forward(g, &l, 1.0f), STATUS_OK, "%s", status_msg());
    graph_free(&g);
    backend_free(&be);
    return l;
}

Test(graph, dropout_keep_and_label_smoothing_options)
{
    float k1a = nielsen_loss(1.0f, 0.1f, 1), k1b = nielsen_loss(1.0f, 0.1f, 2);
    float hda = nielsen_loss(0.0f, 0.1f, 1), hdb = nielsen_loss(0.0f, 0.1f, 2);
    printf("loss, keep 1: %.6f / %.6f (dropout seeds 1 / 2); model's keep 0.5: %.6f / %.6f\n", k1a, k1b, hda, hdb);
    cr_expect_eq(k1a, k1b, "keep 1: the loss must not depend on the dropout seed");
    cr_expect(fabsf(hda - hdb) > 1e-4f, "keep 0.5: two dropout seeds gave the same loss %.6f", hda);
    float s0 = nielsen_loss(1.0f, -1.0f, 1), s2 = nielsen_loss(1.0f, 0.2f, 1);
    printf("loss at smoothing 0 / 0.1 / 0.2: %.6f / %.6f / %.6f; step difference %.2e\n", s0, k1a, s2,
           fabs((double)(k1a - s0) - (s2 - k1a)));
    cr_expect(fabsf(k1a - s0) > 5e-4f, "smoothing 0.1 did not change the loss");
    cr_expect(fabs((double)(k1a - s0) - (s2 - k1a)) < 1e-5, "loss not linear in the smoothing");
}

Test(optim, schedule)
{
    struct optim_config c = optim_config_default();
    c.examples_per_epoch = 3170;    /* flowers, B=32: decay_steps int(3170/32*30) = 2971 */
    c.batch_size = 32;
    cr_expect_eq(optim_decay_steps(&c), 2971);
    cr_expect_float_eq(optim_learning_rate(&c, 0), 0.1f, 1e-7);
    cr_expect_float_eq(optim_learning_rate(&c, 2970), 0.1f, 1e-7);
    cr_expect_float_eq(optim_learning_rate(&c, 2971), 0.016f, 1e-7);
    cr_expect_float_eq(optim_learning_rate(&c, 2 * 2971), 0.00256f, 1e-8);
    cr_expect_float_eq(optim_ema_decay(&c, 0), 0.1f, 1e-7);
    cr_expect_float_eq(optim_ema_decay(&c, 90), 91.0f / 100, 1e-7);
    cr_expect_float_eq(optim_ema_decay(&c, 1000000), 0.9999f, 1e-7);
}

static void batch_data(uint8_t *px, int32_t *lb, int n, int step)
{
    for (int i = 0; i < n; i++) {
        lb[i] = (i * 3 + step) % 10;
        for (int p = 0; p < 784; p++) px[i * 784 + p] = (uint8_t)((p * 7 + i * 13 + step * 5) % 256);
    }
}

Test(towers, two_by_16_equals_one_by_32)
{
    struct model_options o = model_options_default();
    o.batch_size = 32;
    o.optim.initial_learning_rate = 0.01f;
    struct tower_set *one = NULL, *two = NULL;
    cr_assert_eq(model_towers_new(&one, &o), STATUS_OK, "%s", status_msg());
    o.num_towers = 2;
    cr_assert_eq(model_towers_new(&two, &o), STATUS_OK, "%s", status_msg());
    uint8_t *px = malloc(32 * 784);
    int32_t lb[32];
    struct tower_step_result r1, r2;
    for (int s = 0; s < 3; s++) {
        batch_data(px, lb, 32, s);
        cr_assert_eq(model_step_train(one, px, 1, lb, 32, &r1), STATUS_OK, "%s", status_msg());
        cr_assert_eq(model_step_train(two, px, 1, lb, 32, &r2), STATUS_OK, "%s", status_msg());
        printf("step %d: loss 1x32 %.6f, 2x16 %.6f\n", s, r1.loss, r2.loss);
        check_scalar("2x16 vs 1x32 loss", r2.loss, r1.loss, 1e-12, 1e-5);
    }
    cr_expect_eq(r1.step, 3);
    size_t n = graph_weights_numel(one->g[0]);
    const float *a = graph_arena(one->g[0], SLOT_W), *b = graph_arena(two->g[0], SLOT_W),
                *b1 = graph_arena(two->g[1], SLOT_W);
    for (size_t i = 0; i < n; i++) cr_assert_eq(memcmp(&b[i], &b1[i], sizeof *b), 0, "towers' parameters differ at %zu", i);
    check_f32("2x16 vs 1x32 weights after 3 steps", b, a, n, CHECK_ABS, 1e-5);
    /* EMA shadows too */
    const float *ea = graph_arena(one->g[0], SLOT_EMA), *eb = graph_arena(two->g[0], SLOT_EMA);
    check_f32("2x16 vs 1x32 EMA after 3 steps", eb, ea, n, CHECK_ABS, 1e-5);
    /* inference on the trained towers agrees too */
    float *p1 = malloc(32 * 10 * 4), *p2 = malloc(32 * 10 * 4);
    cr_assert_eq(model_forward_eval(one, px, 1, 20, p1), STATUS_OK, "%s", status_msg());
    cr_assert_eq(model_forward_eval(two, px, 1, 20, p2), STATUS_OK, "%s", status_msg());
    double rowsum = 0;
    check_f32("2x16 vs 1x32 eval probabilities", p2, p1, 200, CHECK_ABS, 1e-5);
    for (int k = 0; k < 10; k++) rowsum += p1[k];
    cr_expect(fabs(rowsum - 1) < 1e-5, "probabilities sum to %f", rowsum);
    free(p1); free(p2); free(px);
    model_towers_free(&one);
    model_towers_free(&two);
}

Test(towers, nan_loss_stops_before_update)
{
    struct tower_set *ts = nielsennet_towers(4);
    float *w = graph_arena(ts->g[0], SLOT_W);
    graph_param(ts->g[0], graph_param_find(ts->g[0], "fc.bias"))->w[3] = NAN;   /* one logit NaN */
    float w5 = w[5];
    uint8_t px[4 * 784];
    int32_t lb[4] = { 0, 1, 2, 3 };
    batch_data(px, lb, 4, 0);
    for (int i = 0; i < 4; i++) lb[i] = i;
    status st = model_step_train(ts, px, 1, lb, 4, NULL);
    cr_expect_eq(st, STATUS_NAN);
    cr_expect(strstr(status_msg(), "NaN") != NULL, "message: %s", status_msg());
    cr_expect_eq(w[5], w5, "parameters changed");
    cr_expect_eq(ts->step, 0);
    model_towers_free(&ts);
}

/* Sizes that would wrap int arithmetic (an image_size of 100000 from a
 * hostile checkpoint once asked for 18446740978499217896 bytes) are refused
 * by the builders with one line, before anything is allocated. */
Test(graph, oversized_inputs_refused_not_wrapped)
{
    struct model_options o = model_options_default();
    o.batch_size = 1;
    o.training = 0;
    struct tower_set *ts = NULL;
    o.image_size = 100000;
    status st = model_towers_new(&ts, &o);
    cr_assert_eq(st, STATUS_FORMAT, "%s", status_msg());
    cr_expect(strstr(status_msg(), "input 1x100000x100000"), "%s", status_msg());
    cr_assert_null(ts);
    /* within the side limit, but fc1 would hold 1000 x 40*1022*1022 weights */
    o.image_size = 4096;
    st = model_towers_new(&ts, &o);
    cr_assert_eq(st, STATUS_FORMAT, "%s", status_msg());
    cr_expect(strstr(status_msg(), "fc1.weight"), "%s", status_msg());
    cr_assert_null(ts);
}
