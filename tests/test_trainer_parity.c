/*
 * test_trainer_parity.c — deeper's NielsenNet against PyTorch.
 *
 * scripts/ref/nielsennet_ref.py (run here, at test time, with Debian's
 * python3 + torch; deterministic, ~5 s) writes initial weights, one batch,
 * the step-0 logits, loss and every gradient, the loss of 10 training steps
 * and the weights after 10 updates of an independent implementation of TF's
 * RMSProp; dropout masks follow deeper's Philox rule, reimplemented in the
 * script.  deeper loads the same weights into a 1-tower NielsenNet and must
 * match every tensor within 1e-4 relative: max|ours - ref| / max|ref| per
 * tensor (the largest error is printed).  The test is skipped when
 * /usr/bin/python3 has no torch.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/safetensors.h"
#include "tests/check_util.h"
#include "tests/pyref_util.h"
#include "trainer/model.h"

static double check(const char *what, const float *ours, const struct st_file *f, const char *name,
                    size_t n, double tol)
{
    float *ref = malloc(n * 4);
    cr_assert_eq(safetensors_read_f32(f, name, ref, (int64_t)n), STATUS_OK, "%s", status_msg());
    double e = check_f32(what, ours, ref, n, CHECK_NORM, tol);
    free(ref);
    return e;
}

/* every parameter's gradient (grad = 1) or weights against the reference
 * tensor <prefix><name> */
static void check_params(struct graph *g, const struct st_file *f, const char *prefix,
                         const char *label, int grad)
{
    for (int i = 0; i < graph_num_params(g); i++) {
        const struct graph_param *p = graph_param(g, i);
        char name[160], what[160];
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        snprintf(what, sizeof what, "%s %s", label, p->name);
        check(what, grad ? p->grad : p->w, f, name, p->numel, 1e-4);
    }
}

Test(parity, nielsennet_vs_pytorch, .timeout = 300)
{
    pyref_need("torch");
    char dir[] = "/tmp/deeper-parity-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[256], cmd[512];
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    const char *root = getenv("DEEPER_ROOT") ? getenv("DEEPER_ROOT") : ".";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/scripts/ref/nielsennet_ref.py %s", root, path);
    cr_assert_eq(system(cmd), 0, "reference script failed: %s", cmd);
    struct st_file *f = NULL;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK, "%s", status_msg());

    struct model_options o = model_options_default();
    o.batch_size = 32;
    o.seed = 1;
    o.optim.initial_learning_rate = 0.01f;
    o.optim.examples_per_epoch = 1 << 30;   /* no decay within 10 steps */
    struct tower_set *ts = NULL;
    cr_assert_eq(model_towers_new(&ts, &o), STATUS_OK, "%s", status_msg());
    struct graph *g = ts->g[0];
    for (int i = 0; i < graph_num_params(g); i++) {
        const struct graph_param *p = graph_param(g, i);
        float *h = malloc(p->numel * 4);
        cr_assert_eq(safetensors_read_f32(f, p->name, h, (int64_t)p->numel), STATUS_OK, "%s", status_msg());
        cr_assert_eq(graph_param_write(g, i, SLOT_W, h), STATUS_OK);
        free(h);
    }
    cr_assert_eq(optim_init_slots(g), STATUS_OK);
    const struct st_tensor *px = safetensors_find(f, "pixels"), *lb = safetensors_find(f, "labels");
    cr_assert(px && lb && px->nbytes == 32 * 784 && lb->nbytes == 32 * 4);
    int32_t labels[32];
    memcpy(labels, lb->data, sizeof labels);

    struct tower_step_result r;
    cr_assert_eq(model_step_train(ts, px->data, 1, labels, 32, &r), STATUS_OK, "%s", status_msg());
    float ref_loss;
    cr_assert_eq(safetensors_read_f32(f, "loss", &ref_loss, 1), STATUS_OK);
    check_scalar("step 0 loss", r.data_loss, ref_loss, 1e-12, 1e-4);
    struct tensor lg = graph_value(g, graph_logits(g));
    check("step 0 logits", lg.data, f, "logits", 320, 1e-4);
    check_params(g, f, "grad.", "step 0 gradient", 1);
    float losses[10], ref_losses[10];
    losses[0] = r.data_loss;
    for (int s = 1; s < 10; s++) {
        cr_assert_eq(model_step_train(ts, px->data, 1, labels, 32, &r), STATUS_OK, "%s", status_msg());
        losses[s] = r.data_loss;
    }
    cr_assert_eq(safetensors_read_f32(f, "losses", ref_losses, 10), STATUS_OK);
    struct check_acc la = check_begin(1e-12);
    for (int s = 0; s < 10; s++) check_add(&la, losses[s], ref_losses[s]);
    printf("10-step losses %.4f -> %.4f\n", losses[0], losses[9]);
    check_expect(&la, "10-step losses", CHECK_REL, 1e-4);
    check_params(g, f, "step10.", "RMSProp x10", 0);
    model_towers_free(&ts);
    safetensors_free(&f);
    unlink(path);
    rmdir(dir);
}
