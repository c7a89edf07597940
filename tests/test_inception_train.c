/*
 * test_inception_train.c — Inception v3 fine-tuning, loader errors and CPU
 * training steps at 75x75.
 *
 *   - fine_tune: the torchvision reference weights (11 classes) into a
 *     5-class model with fine_tune: every tensor but fc.* / AuxLogits.fc.* is
 *     bit-identical to the file, the classifier keeps the graph's fresh
 *     initialisation (sized 5), EMA shadows start at the loaded weights, and
 *     a training step runs and moves the weights;
 *   - without fine_tune the class-count mismatch is one error naming the
 *     tensor and both shapes; a transposed kernel ([160,160,7,1] where the
 *     model has [160,160,1,7], same size) and a missing tensor are refused
 *     the same way, and nothing is written to the graph;
 *   - training from scratch at 75x75 (aux head off at this size, dropout
 *     0.8, TF's RMSProp, weight decay and EMA): 8 steps on a fixed batch at lr 0.01,
 *     the loss falls.
 */
#include "tests/inception_util.h"
#include "trainer/optim.h"

static char *ref_path(const char *name)
{
    const char *d = iref_dir();
    char *p = malloc(1200);
    snprintf(p, 1200, "%s/%s", d, name);
    return p;
}

static uint8_t *synthetic_batch(int n, int size, int c, int32_t *labels, int classes)
{
    uint8_t *px = malloc((size_t)n * size * size * c);
    for (int i = 0; i < n; i++) {
        labels[i] = i % classes;
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int k = 0; k < c; k++) {
                    /* class-dependent stripes plus a little texture */
                    int v = (labels[i] == 0 ? x : labels[i] == 1 ? y : x + y) * 7 + k * 40 +
                            ((x * 13 + y * 7 + i) % 17);
                    px[(((size_t)i * size + y) * size + x) * c + k] = (uint8_t)(v & 255);
                }
    }
    return px;
}

/* TF's optimizer settings with this learning rate, batch and epoch size. */
static struct optim_config step_config(float lr, int batch, int64_t examples_per_epoch)
{
    struct optim_config oc = optim_config_default();
    oc.initial_learning_rate = lr;
    oc.batch_size = batch;
    oc.examples_per_epoch = examples_per_epoch;
    return oc;
}

static float train_step(struct graph *g, const uint8_t *px, const int32_t *labels, int n, int size,
                        int c, const struct optim_config *oc, int64_t step)
{
    cr_assert_eq(graph_set_input(g, px, n, size, size, c, labels), STATUS_OK, "%s", status_msg());
    cr_assert_eq(graph_forward(g, 1, 1234, 0), STATUS_OK, "%s", status_msg());
    float loss = 0;
    cr_assert_eq(graph_loss_forward(g, &loss, 1.0f), STATUS_OK, "%s", status_msg());
    cr_assert_eq(graph_backward(g), STATUS_OK, "%s", status_msg());
    cr_assert_eq(optim_apply(g, oc, step, 1.0f, NULL), STATUS_OK, "%s", status_msg());
    return loss;
}

Test(inception_train, fine_tune_restores_and_reinitialises, .timeout = 600)
{
    char *wpath = ref_path("weights.safetensors");
    const int K = 5, S = 75, B = 4;
    struct backend *be = NULL, *be0 = NULL;
    struct graph *g = iref_graph(&be, K, S, B, GRAPH_TRAIN | GRAPH_OPT_SLOTS, 0.8f, NULL);
    struct graph *g0 = iref_graph(&be0, K, S, B, GRAPH_TRAIN | GRAPH_OPT_SLOTS, 0.8f, NULL);
    struct pretrained_report rep;
    cr_assert_eq(pretrained_load(g, wpath, 1, &rep), STATUS_OK, "%s", status_msg());
    int np = graph_num_params(g);
    cr_assert_eq(rep.reinitialised, 4, "re-initialised %d", rep.reinitialised);
    cr_assert_eq(rep.restored, np - 4);

    struct st_file *f = NULL;
    cr_assert_eq(safetensors_open(&f, wpath), STATUS_OK);
    int identical = 0, fresh = 0;
    for (int i = 0; i < np; i++) {
        const struct graph_param *p = graph_param(g, i);
        float *w = malloc(p->numel * 4), *w0 = malloc(p->numel * 4), *ema = malloc(p->numel * 4);
        cr_assert_eq(graph_param_read(g, i, SLOT_W, w), STATUS_OK);
        cr_assert_eq(graph_param_read(g0, i, SLOT_W, w0), STATUS_OK);
        cr_assert_eq(graph_param_read(g, i, SLOT_EMA, ema), STATUS_OK);
        cr_assert_eq(memcmp(w, ema, p->numel * 4), 0, "%s: EMA shadow not reset to the loaded value", p->name);
        const struct st_tensor *t = safetensors_find(f, p->name);
        cr_assert_not_null(t);
        if (pretrained_is_classifier(p->name)) {
            cr_assert_eq(p->shape[0], K, "%s has %d rows", p->name, p->shape[0]);
            cr_assert_eq(memcmp(w, w0, p->numel * 4), 0, "%s: not the fresh initialisation", p->name);
            cr_assert_neq(t->shape[0], K);
            if (p->kind == PARAM_WEIGHT) {
                double ss = 0;
                for (size_t k = 0; k < p->numel; k++) ss += (double)w[k] * w[k];
                cr_assert_gt(ss, 0, "%s is all zeros", p->name);
            }
            fresh++;
        } else {
            cr_assert_eq(t->nbytes, p->numel * 4);
            cr_assert_eq(memcmp(w, t->data, t->nbytes), 0, "%s differs from the file", p->name);
            identical++;
        }
        free(w); free(w0); free(ema);
    }
    printf("inception fine-tune: %d tensors bit-identical to the file, %d re-initialised for %d classes\n",
           identical, fresh, K);

    /* a training step proceeds and moves the restored weights */
    int32_t labels[4];
    uint8_t *px = synthetic_batch(B, S, 1, labels, K);
    struct optim_config oc = step_config(0.001f, B, 100);
    float loss = train_step(g, px, labels, B, S, 1, &oc, 0);
    cr_assert(isfinite(loss) && loss > 0, "loss %g", loss);
    int i1 = graph_param_find(g, "Mixed_6b.branch7x7_2.conv.weight");
    const struct graph_param *p1 = graph_param(g, i1);
    float *w = malloc(p1->numel * 4);
    cr_assert_eq(graph_param_read(g, i1, SLOT_W, w), STATUS_OK);
    cr_assert_neq(memcmp(w, safetensors_find(f, p1->name)->data, p1->numel * 4), 0,
                  "a training step left %s unchanged", p1->name);
    printf("inception fine-tune: first step loss %.4f\n", loss);
    free(w);
    free(px);
    safetensors_free(&f);
    graph_free(&g); graph_free(&g0);
    backend_free(&be); backend_free(&be0);
    free(wpath);
}

/* Copy of the reference weights with one tensor transposed and one missing. */
static void write_bad_file(const char *src, const char *dst, const char *transpose, const char *drop)
{
    struct st_file *f = NULL;
    struct st_writer *w = NULL;
    cr_assert_eq(safetensors_open(&f, src), STATUS_OK);
    cr_assert_eq(safetensors_writer_new(&w), STATUS_OK);
    for (int i = 0; i < safetensors_count(f); i++) {
        const struct st_tensor *t = safetensors_at(f, i);
        if (drop && strcmp(t->name, drop) == 0) continue;
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (transpose && strcmp(t->name, transpose) == 0) {
            int64_t s = shape[2]; shape[2] = shape[3]; shape[3] = s;
        }
        cr_assert_eq(safetensors_writer_add(w, t->name, t->dtype, shape, t->ndim, t->data), STATUS_OK,
                     "%s", status_msg());
    }
    cr_assert_eq(safetensors_writer_save(w, dst), STATUS_OK, "%s", status_msg());
    safetensors_writer_free(&w);
    safetensors_free(&f);
}

/* Writes a damaged copy of wpath to bad (write_bad_file), loads it with
 * --fine_tune, requires the loader to refuse it; returns its message. */
static const char *load_refused(struct graph *g, const char *wpath, const char *bad, const char *transpose,
                                const char *drop)
{
    write_bad_file(wpath, bad, transpose, drop);
    status st = pretrained_load(g, bad, 1, NULL);
    const char *msg = status_msg();
    printf("inception loader: %s\n", msg);
    cr_assert_eq(st, STATUS_FORMAT);
    return msg;
}

Test(inception_train, loader_errors_name_tensor_and_shapes, .timeout = 600)
{
    char *wpath = ref_path("weights.safetensors");
    struct backend *be = NULL;
    struct graph *g = iref_graph(&be, 5, 75, 2, 0, 0.8f, NULL);
    int i0 = graph_param_find(g, "Conv2d_1a_3x3.conv.weight");
    const struct graph_param *p0 = graph_param(g, i0);
    float *before = malloc(p0->numel * 4), *after = malloc(p0->numel * 4);
    cr_assert_eq(graph_param_read(g, i0, SLOT_W, before), STATUS_OK);

    /* class-count mismatch without --fine_tune */
    status st = pretrained_load(g, wpath, 0, NULL);
    cr_assert_eq(st, STATUS_FORMAT);
    const char *msg = status_msg();
    printf("inception loader: %s\n", msg);
    cr_assert(strstr(msg, "AuxLogits.fc.weight") && strstr(msg, "[11, 768]") && strstr(msg, "[5, 768]") &&
              strstr(msg, "--fine_tune"), "message: %s", msg);

    char bad[1200];
    snprintf(bad, sizeof bad, "%s/deeper-inception-bad-%d.safetensors", iref_tmp(), (int)getpid());
    msg = load_refused(g, wpath, bad, "Mixed_6c.branch7x7_2.conv.weight", NULL);
    cr_assert(strstr(msg, "Mixed_6c.branch7x7_2.conv.weight") && strstr(msg, "[160, 160, 7, 1]") &&
              strstr(msg, "[160, 160, 1, 7]"), "message: %s", msg);

    msg = load_refused(g, wpath, bad, NULL, "Mixed_7c.branch_pool.bn.running_var");
    cr_assert(strstr(msg, "Mixed_7c.branch_pool.bn.running_var") && strstr(msg, "missing") &&
              strstr(msg, "[192]"), "message: %s", msg);
    unlink(bad);

    cr_assert_eq(graph_param_read(g, i0, SLOT_W, after), STATUS_OK);
    cr_assert_eq(memcmp(before, after, p0->numel * 4), 0, "a refused file changed the model");
    free(before); free(after);
    graph_free(&g);
    backend_free(&be);
    free(wpath);
}

Test(inception_train, cpu_steps_75_loss_falls, .timeout = 600)
{
    const int K = 3, S = 75, B = 6, STEPS = 8;
    struct backend *be = NULL;
    struct graph *g = iref_graph(&be, K, S, B, GRAPH_TRAIN | GRAPH_OPT_SLOTS, 0.8f, NULL);
    int32_t labels[6];
    uint8_t *px = synthetic_batch(B, S, 3, labels, K);
    struct optim_config oc = step_config(0.01f, B, 1000);
    float loss[STEPS];
    double t0 = log_now();
    for (int s = 0; s < STEPS; s++) {
        loss[s] = train_step(g, px, labels, B, S, 3, &oc, s);
        cr_assert(isfinite(loss[s]), "step %d: loss %g", s, loss[s]);
    }
    double dt = log_now() - t0;
    printf("inception 75x75 batch %d on CPU: %d steps in %.2f s; loss", B, STEPS, dt);
    for (int s = 0; s < STEPS; s++) printf(" %.4f", loss[s]);
    printf("\n");
    /* single steps are noisy (dropout, RMSProp momentum): compare the mean
     * of the last three steps with the mean of the first two */
    float head = (loss[0] + loss[1]) / 2, tail = (loss[STEPS - 3] + loss[STEPS - 2] + loss[STEPS - 1]) / 3;
    cr_assert_lt(tail, head * 0.75f, "loss did not fall: first two %g, last three %g", head, tail);
    free(px);
    graph_free(&g);
    backend_free(&be);
}
