/*
 * test_inception_parity.c — deeper's Inception v3 against torchvision's.
 *
 * scripts/ref/inception_ref.py (run at test time, see inception_util.h)
 * saves a randomly initialised torchvision inception_v3 (11 classes), input
 * batches and torchvision's outputs computed in float64.  deeper loads the
 * weights through the pretrained loader (so loading by torchvision name is
 * tested too) and must reproduce:
 *   - eval mode, 299x299, batch 2: logits within 1e-4 relative
 *     (max |diff| / max |ref|); gray 75x75 input expanded to RGB likewise;
 *   - train mode, 299x299, batch 2, dropout off: logits, aux logits, the
 *     main loss, the aux loss and the weighted total; the gradients of one
 *     conv (weight, BN gamma, BN beta) per block and of both FC layers
 *     within 1e-3 relative; every BN running mean/var after the step
 *     (momentum 0.0003, unbiased variance) — compared both as values and
 *     as the batch statistic the update implies, (new - (1-m) old) / m.
 * Every check prints its largest error.
 */
#include "tests/inception_util.h"

static void load_ref_weights(struct graph *g, const char *file)
{
    char path[1200];
    const char *d = iref_dir();
    snprintf(path, sizeof path, "%s/%s", d, file);
    struct pretrained_report rep;
    cr_assert_eq(pretrained_load(g, path, 0, &rep), STATUS_OK, "%s", status_msg());
    cr_assert_eq(rep.restored, graph_num_params(g), "restored %d of %d", rep.restored,
                 graph_num_params(g));
    cr_assert_eq(rep.reinitialised, 0);
}

static void eval_case(const char *in_name, const char *out_name, int size, int c, const char *what)
{
    struct st_file *e = iref_open("eval.safetensors");
    const struct st_tensor *in = iref_get(e, in_name), *ref = iref_get(e, out_name);
    int batch = (int)in->shape[0];
    cr_assert_eq(in->shape[1], size);
    cr_assert_eq(in->shape[3], c);
    struct backend *be = NULL;
    struct graph *g = iref_graph(&be, IREF_CLASSES, size, batch, 0, 1.0f, NULL);
    load_ref_weights(g, "weights.safetensors");
    cr_assert_eq(graph_set_input(g, in->data, batch, size, size, c, NULL), STATUS_OK, "%s", status_msg());
    double t0 = log_now();
    cr_assert_eq(graph_forward(g, 0, 0, 0), STATUS_OK, "%s", status_msg());
    double t1 = log_now();
    size_t n;
    float *got = iref_value(g, graph_logits(g), &n);
    cr_assert_eq(n, (size_t)batch * IREF_CLASSES);
    size_t w;
    double err = iref_rel_err(got, ref->data, n, &w);
    printf("inception parity: %s: largest relative error %.3g (logit %zu: %g vs torchvision %g; "
           "forward %.2f s)\n", what, err, w, got[w], ((const float *)ref->data)[w], t1 - t0);
    cr_expect_leq(err, 1e-4, "%s: relative error %g > 1e-4", what, err);
    free(got);
    graph_free(&g);
    backend_free(&be);
    safetensors_free(&e);
}

Test(inception_parity, eval_logits_299_batch2, .timeout = 600)
{
    eval_case("input", "logits", 299, 3, "eval logits 299x299 batch 2");
}

Test(inception_parity, eval_logits_gray_75, .timeout = 600)
{
    eval_case("gray_input", "gray_logits", 75, 1, "eval logits 75x75 gray->RGB");
}

static double check_grad(struct graph *g, const struct st_tensor *t, const char *pname)
{
    int i = graph_param_find(g, pname);
    cr_assert_geq(i, 0, "no parameter %s", pname);
    const struct graph_param *p = graph_param(g, i);
    cr_assert_eq((int64_t)p->numel * 4, (int64_t)t->nbytes, "%s: size", pname);
    float *h = malloc(p->numel * sizeof *h);
    cr_assert_eq(graph_param_read(g, i, SLOT_GRAD, h), STATUS_OK, "%s", status_msg());
    double e = iref_rel_err(h, t->data, p->numel, NULL);
    free(h);
    return e;
}

Test(inception_parity, train_forward_backward_running_stats_299, .timeout = 900)
{
    struct st_file *tr = iref_open("train.safetensors");
    const char *with_aux = safetensors_meta(tr, "with_aux");
    cr_assert(with_aux && strcmp(with_aux, "1") == 0, "reference without aux head");
    const struct st_tensor *in = iref_get(tr, "input"), *lab = iref_get(tr, "labels");
    int batch = (int)in->shape[0], size = (int)in->shape[1];
    const int32_t *labels = lab->data;

    struct backend *be = NULL;
    int aux_id = -1;
    struct graph *g = iref_graph(&be, IREF_CLASSES, size, batch, GRAPH_TRAIN, 1.0f, &aux_id);
    cr_assert_geq(aux_id, 0, "aux head not built at %d", size);
    load_ref_weights(g, "train_weights.safetensors");

    /* running statistics before the step */
    int np = graph_num_params(g);
    float **before = calloc((size_t)np, sizeof *before);
    for (int i = 0; i < np; i++) {
        const struct graph_param *p = graph_param(g, i);
        if (p->kind != PARAM_STAT) continue;
        before[i] = malloc(p->numel * sizeof(float));
        cr_assert_eq(graph_param_read(g, i, SLOT_W, before[i]), STATUS_OK);
    }

    cr_assert_eq(graph_set_input(g, in->data, batch, size, size, 3, labels), STATUS_OK, "%s", status_msg());
    double t0 = log_now();
    cr_assert_eq(graph_forward(g, 1, 0, 0), STATUS_OK, "%s", status_msg());
    float total = 0;
    cr_assert_eq(graph_loss_forward(g, &total, 1.0f), STATUS_OK, "%s", status_msg());
    cr_assert_eq(graph_backward(g), STATUS_OK, "%s", status_msg());
    double t1 = log_now();

    size_t n;
    float *lg = iref_value(g, graph_logits(g), &n);
    float *al = iref_value(g, aux_id, NULL);
    double e_lg = iref_rel_err(lg, iref_get(tr, "logits")->data, n, NULL);
    double e_al = iref_rel_err(al, iref_get(tr, "aux_logits")->data, n, NULL);
    double loss = iref_xent(lg, labels, batch, IREF_CLASSES, 0.1);
    double aux_loss = iref_xent(al, labels, batch, IREF_CLASSES, 0.1);
    float ref_loss = *(const float *)iref_get(tr, "loss")->data;
    float ref_aux = *(const float *)iref_get(tr, "aux_loss")->data;
    float ref_total = *(const float *)iref_get(tr, "total")->data;
    double e_loss = check_scalar("train loss", loss, ref_loss, 1e-12, 1e-3);
    double e_aux = check_scalar("train aux loss", aux_loss, ref_aux, 1e-12, 1e-3);
    double e_tot = check_scalar("train total loss", total, ref_total, 1e-12, 1e-3);
    printf("inception parity: train 299x299 batch %d (forward+backward %.2f s): logits %.3g, aux logits "
           "%.3g, loss %.6f vs %.6f (%.3g), aux loss %.6f vs %.6f (%.3g), total %.6f vs %.6f (%.3g)\n",
           batch, t1 - t0, e_lg, e_al, loss, ref_loss, e_loss, aux_loss, ref_aux, e_aux, total,
           ref_total, e_tot);
    cr_expect_leq(e_lg, 1e-3, "train logits %g", e_lg);
    cr_expect_leq(e_al, 1e-3, "aux logits %g", e_al);

    /* gradients: within 1e-3, or, where PyTorch's own float32 gradient is
     * further than 5e-4 from the float64 reference (an ill-conditioned
     * gradient, see inception_ref.py), within twice PyTorch's error */
    double worst = 0, worst_tol = 0;
    const char *worst_name = "";
    int ngrad = 0, nstrict = 0, nwithin = 0;
    for (int i = 0; i < safetensors_count(tr); i++) {
        const struct st_tensor *t = safetensors_at(tr, i);
        if (strncmp(t->name, "grad.", 5) != 0) continue;
        char key[256];
        snprintf(key, sizeof key, "f32err.%s", t->name + 5);
        double f32err = *(const float *)iref_get(tr, key)->data;
        double tol = f32err > 5e-4 ? 2 * f32err : 1e-3;
        double e = check_grad(g, t, t->name + 5);
        ngrad++;
        nstrict += f32err <= 5e-4;
        cr_expect_leq(e, tol, "gradient of %s: relative error %g > %g (PyTorch float32: %g)", t->name + 5,
                      e, tol, f32err);
        if (e <= 1e-3) nwithin++;
        else printf("inception parity: gradient of %s: %.3g, PyTorch float32 %.3g (tolerance %.3g)%s\n",
                    t->name + 5, e, f32err, tol,
                    f32err > 1 ? ": the exact gradient is ~0 (the next BN cancels this bias)" : "");
        if (f32err <= 5e-4 && !(e <= worst)) { worst = e; worst_name = t->name + 5; }
        if (!(e / tol <= worst_tol)) worst_tol = e / tol;
    }
    printf("inception parity: %d gradients, %d within 1e-3; %d well-conditioned (PyTorch float32 within "
           "5e-4): largest relative error %.3g (%s); largest error/tolerance %.3g\n", ngrad, nwithin,
           nstrict, worst, worst_name, worst_tol);
    cr_assert_geq(ngrad, 18 * 3 + 4);

    /* running statistics after the step */
    const float m = graph_get_config(g)->bn_momentum;
    cr_assert_float_eq(m, 0.0003f, 1e-9);
    double worst_v = 0, worst_b = 0;
    int nstat = 0;
    for (int i = 0; i < np; i++) {
        const struct graph_param *p = graph_param(g, i);
        if (p->kind != PARAM_STAT) continue;
        char key[256];
        snprintf(key, sizeof key, "after.%s", p->name);
        const float *ref = iref_get(tr, key)->data;
        float *h = malloc(p->numel * sizeof *h);
        double *bg = malloc(p->numel * sizeof *bg), *br = malloc(p->numel * sizeof *br);
        cr_assert_eq(graph_param_read(g, i, SLOT_W, h), STATUS_OK);
        /* new = (1-m) old + m batch: allow 1e-3 relative error in the batch
         * statistic (against its largest value in the layer) plus 2 ulp of
         * float32 storage; report the error of the implied statistic */
        double mr = 0;
        for (size_t k = 0; k < p->numel; k++) {
            br[k] = ((double)ref[k] - (1.0 - m) * before[i][k]) / m;
            if (fabs(br[k]) > mr) mr = fabs(br[k]);
        }
        struct check_acc sa = check_begin(0), ba = check_begin(0);
        for (size_t k = 0; k < p->numel; k++) {
            bg[k] = ((double)h[k] - (1.0 - m) * before[i][k]) / m;
            check_add_scaled(&sa, h[k], ref[k], m * 1e-3 * mr + 2.4e-7 * fabs(ref[k]));
            check_add(&ba, bg[k], br[k]);
        }
        /* error / tolerance <= 1 per element (NaN or Inf: infinite) */
        char what[200];
        snprintf(what, sizeof what, "%s after the step (error/tol)", p->name);
        if (!(check_err(&sa, CHECK_REL) <= 1.0)) check_expect(&sa, what, CHECK_REL, 1.0);
        double ev = iref_rel_err(h, ref, p->numel, NULL), eb = check_err(&ba, CHECK_NORM);
        if (!(ev <= worst_v)) worst_v = ev;
        if (!(eb <= worst_b)) worst_b = eb;
        nstat++;
        free(h); free(bg); free(br); free(before[i]);
    }
    printf("inception parity: %d running statistics after one step: largest relative error %.3g; "
           "of the implied batch statistic %.3g (float32 storage of a 0.0003 update limits it)\n",
           nstat, worst_v, worst_b);
    cr_assert_eq(nstat, 2 * 96);
    free(before);
    free(lg);
    free(al);
    graph_free(&g);
    backend_free(&be);
    safetensors_free(&tr);
}
