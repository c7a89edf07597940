/*
 * test_inception_bn.c — batch-norm moving statistics through the real
 * training step (towers, optimizer, graph, CPU backend).
 *
 * Inception v3 evaluates with BN moving statistics, decay 0.9997.  Updated
 * as a plain EMA from their initial 0 / 1, they move 8.6% of the way in 300
 * steps, so a short run from scratch evaluates at chance.  TF 1.x
 * debiases them (assign_moving_average's zero_debias=True): a hidden
 * `biased` EMA from 0 and a step count, statistic = biased / (1 - d^t).
 * deeper implements this as a per-step momentum (optim_bn_momentum); these
 * tests run a small conv -> BN -> ReLU -> pool -> FC model for 4 steps on
 * distinct batches, take each step's batch statistics from the conv output
 * the BN layer saw, and check the running statistics against
 *   - TF's formula with the hidden biased variable, written out (debias on);
 *   - PyTorch's update, running = (1 - m) running + m batch with momentum
 *     m = 1 - d and the unbiased batch variance (--nobatchnorm_zero_debias);
 * and that the first debiased update copies the batch statistics, so a
 * model evaluated after one step uses them (bug: eval used 0 / 1).
 * Prints the largest relative error.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/check_util.h"
#include "trainer/model.h"
#include "trainer/optim.h"

#define B 4
#define S 8
#define C 3

static int g_conv = -1;   /* value id of the conv output (the BN input) */

static status probe_build(struct graph *g, int classes, int image_size, int channels)
{
    int x = graph_input(g, channels, image_size, image_size);
    int c = graph_conv(g, "conv", x, C, 3, 3, 1, 1, 1, 1, 0);
    g_conv = c;
    int y = graph_relu(g, graph_batchnorm(g, "bn", c));
    int f = graph_fc(g, "fc", graph_global_avgpool(g, y), classes);
    graph_loss(g, f, 1.0f);
    return STATUS_OK;
}

static const struct model_desc probe = { "bn_probe", "test model", probe_build, S, 1, 1.0f, NULL };

static struct tower_set *probe_towers(float decay, int debias)
{
    const struct model_desc *have = model_find("bn_probe");
    if (!have) cr_assert_eq(model_register(&probe), STATUS_OK, "%s", status_msg());
    struct model_options o = model_options_default();
    o.model = "bn_probe";
    o.classes = 4;
    o.image_size = S;
    o.channels = 1;
    o.batch_size = B;
    o.threads = 1;
    o.optim.initial_learning_rate = 0.05f;       /* weights move: every batch differs */
    o.optim.batchnorm_decay = decay;
    o.optim.batchnorm_zero_debias = debias;
    struct tower_set *ts = NULL;
    cr_assert_eq(model_towers_new(&ts, &o), STATUS_OK, "%s", status_msg());
    return ts;
}

static void batch(uint8_t *px, int32_t *lb, int step)
{
    for (int i = 0; i < B; i++) {
        lb[i] = (i + step) % 4;
        for (int p = 0; p < S * S; p++)
            px[i * S * S + p] = (uint8_t)((p * (7 + step) + i * 31 + step * 57 + (p * p) % 13 * step) % 256);
    }
}

/* Per-channel mean and unbiased variance of the BN input of the last step. */
static void batch_stats(struct tower_set *ts, double *mean, double *var)
{
    struct tensor t = graph_value(ts->g[0], g_conv);
    int hw = t.h * t.w;
    double cnt = (double)t.n * hw;
    for (int c = 0; c < t.c; c++) {
        double s = 0, ss = 0;
        for (int n = 0; n < t.n; n++)
            for (int i = 0; i < hw; i++) s += ((const float *)t.data)[n * t.sn + c * t.sc + i];
        mean[c] = s / cnt;
        for (int n = 0; n < t.n; n++)
            for (int i = 0; i < hw; i++) {
                double d = ((const float *)t.data)[n * t.sn + c * t.sc + i] - mean[c];
                ss += d * d;
            }
        var[c] = ss / (cnt - 1);
    }
}

static void read_stat(struct tower_set *ts, const char *name, float *out)
{
    int i = graph_param_find(ts->g[0], name);
    cr_assert(i >= 0, "%s missing", name);
    cr_assert_eq(graph_param_read(ts->g[0], i, SLOT_W, out), STATUS_OK, "%s", status_msg());
}

static double rel(double got, double want)
{
    struct check_acc a = check_begin(1e-3);
    check_add(&a, got, want);
    return check_err(&a, CHECK_REL);     /* NaN or Inf: INFINITY */
}

Test(inception_bn, momentum_schedule)
{
    struct optim_config c = optim_config_default();
    cr_expect_eq(c.batchnorm_decay, 0.9997f);
    cr_expect_eq(c.batchnorm_zero_debias, 1, "TF 1.x debiases by default");
    cr_expect_eq(optim_bn_momentum(&c, 0), 1.0f, "first debiased update copies the batch");
    float m1 = optim_bn_momentum(&c, 1);
    cr_expect(fabs(m1 - 1.0 / (1.0 + (double)0.9997f)) < 1e-6, "m(step 1) = %g, want (1-d)/(1-d^2)", m1);
    float late = optim_bn_momentum(&c, 100000);
    cr_expect(fabsf(late - 0.0003f) < 1e-6f, "debias fades: m(100000) = %g", late);
    c.batchnorm_zero_debias = 0;
    cr_expect(fabsf(optim_bn_momentum(&c, 0) - 0.0003f) < 1e-7f);
    cr_expect(fabsf(optim_bn_momentum(&c, 7) - 0.0003f) < 1e-7f);
}

/* Runs 4 steps and compares the running statistics after each with the
 * reference recursion; returns the largest relative error. */
static double run_and_compare(float decay, int debias)
{
    struct tower_set *ts = probe_towers(decay, debias);
    uint8_t px[B * S * S];
    int32_t lb[B];
    double d = decay;
    double biased_m[C] = { 0 }, biased_v[C] = { 0 };           /* TF's hidden variables */
    double run_m[C] = { 0, 0, 0 }, run_v[C] = { 1, 1, 1 };      /* PyTorch's buffers */
    double worst = 0;
    for (int s = 0; s < 4; s++) {
        batch(px, lb, s);
        struct tower_step_result r;
        cr_assert_eq(model_step_train(ts, px, 1, lb, B, &r), STATUS_OK, "%s", status_msg());
        double bm[C], bv[C];
        batch_stats(ts, bm, bv);
        float gm[C], gv[C];
        read_stat(ts, "bn.running_mean", gm);
        read_stat(ts, "bn.running_var", gv);
        for (int c = 0; c < C; c++) {
            double want_m, want_v;
            if (debias) {
                /* tf.assign_moving_average(v, x, d, zero_debias=True) */
                biased_m[c] -= (biased_m[c] - bm[c]) * (1 - d);
                biased_v[c] -= (biased_v[c] - bv[c]) * (1 - d);
                want_m = biased_m[c] / (1 - pow(d, s + 1));
                want_v = biased_v[c] / (1 - pow(d, s + 1));
            } else {
                /* torch.nn.BatchNorm2d(momentum = 1 - d) */
                run_m[c] = (1 - (1 - d)) * run_m[c] + (1 - d) * bm[c];
                run_v[c] = (1 - (1 - d)) * run_v[c] + (1 - d) * bv[c];
                want_m = run_m[c];
                want_v = run_v[c];
            }
            double e = fmax(rel(gm[c], want_m), rel(gv[c], want_v));     /* never NaN */
            if (!(e <= worst)) worst = e;
            if (debias && s == 0) {
                cr_expect(rel(gm[c], bm[c]) < 1e-5, "step 1 mean %g, batch %g", gm[c], bm[c]);
                cr_expect(rel(gv[c], bv[c]) < 1e-5, "step 1 var %g, batch %g", gv[c], bv[c]);
            }
        }
        if (s == 3)
            printf("decay %.4f debias %d: step 4 running_mean[0] %.5f (batch %.5f), running_var[0] %.5f (batch %.5f)\n",
                   decay, debias, gm[0], bm[0], gv[0], bv[0]);
    }
    model_towers_free(&ts);
    return worst;
}

Test(inception_bn, zero_debias_matches_tf_formula)
{
    double w1 = run_and_compare(0.9997f, 1);
    double w2 = run_and_compare(0.9f, 1);
    printf("largest error %-40s %.3e / %.3e\n", "debiased stats vs TF (0.9997 / 0.9)", w1, w2);
    cr_expect(w1 <= 1e-5 && w2 <= 1e-5, "relative error %.3e / %.3e", w1, w2);
}

Test(inception_bn, plain_ema_matches_pytorch)
{
    double w1 = run_and_compare(0.9997f, 0);
    double w2 = run_and_compare(0.9f, 0);
    printf("largest error %-40s %.3e / %.3e\n", "plain EMA stats vs PyTorch (0.9997 / 0.9)", w1, w2);
    cr_expect(w1 <= 1e-5 && w2 <= 1e-5, "relative error %.3e / %.3e", w1, w2);
}
