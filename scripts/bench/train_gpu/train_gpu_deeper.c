/*
 * train_gpu_deeper.c — deeper's half of scripts/bench/train_gpu/run: training
 * steps of a registered model (default Inception v3, 299x299x3, 1000
 * classes, batch 128) on synthetic input, on the CUDA backend, timed after
 * warm-up (the first steps include cuDNN's algorithm search).  The pixels
 * and labels are fixed host buffers, so this measures the trainer alone:
 * upload + normalise, forward, backward, (NCCL), RMSProp, EMA.  The host
 * batch is pinned memory on GPUs (as the trainer's feed), and each timed
 * run ends with a sync so the last step's backward pass is counted.
 *
 *   train_gpu_deeper [--model M] [--batch_size B] [--image_size S]
 *                    [--num_gpus N] [--steps K] [--warmup W] [--device cuda|cpu]
 * prints one line:
 *   deeper inception_v3 cuda batch 128 size 299 gpus 1: 1234.5 images/s (median of 5 x 10 steps; loss 6.9)
 *
 * scripts/gpu-build compiles it into build/gpu/bin/; scripts/bench/train_gpu/run
 * runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/log.h"
#include "trainer/backend.h"
#include "trainer/model.h"
#ifdef DEEPER_HAVE_CUDA
#include "trainer/backend_cuda.h"
#endif

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *model = "inception_v3", *device = "cuda";
    int batch = 128, size = 299, gpus = 1, steps = 10, warmup = 5, repeats = 5, classes = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--model")) model = v;
        else if (!strcmp(k, "--device")) device = v;
        else if (!strcmp(k, "--batch_size")) batch = atoi(v);
        else if (!strcmp(k, "--image_size")) size = atoi(v);
        else if (!strcmp(k, "--num_gpus")) gpus = atoi(v);
        else if (!strcmp(k, "--steps")) steps = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--repeats")) repeats = atoi(v);
        else if (!strcmp(k, "--classes")) classes = atoi(v);
        else { fprintf(stderr, "train_gpu_deeper: unknown flag %s\n", k); return 2; }
    }
    if (!strcmp(device, "cuda") && backend_cuda_device_count() < gpus) {
        printf("deeper: skipped: %d GPU(s) needed, %d present\n", gpus, backend_cuda_device_count());
        return 0;
    }
    struct model_options o = model_options_default();
    o.model = model;
    o.backend = device;
    o.batch_size = batch;
    o.image_size = size;
    o.channels = 3;
    o.classes = classes;
    o.num_towers = gpus;
    o.optim.examples_per_epoch = 1281167;
    struct tower_set *ts = NULL;
    status st = model_towers_new(&ts, &o);
    if (st) return status_report("train_gpu_deeper", st, NULL);
    size_t img = (size_t)size * size * 3;
    /* pinned on GPUs, as the trainer's feed hands batches out */
    int pinned = 0;
    uint8_t *px = NULL;
#ifdef DEEPER_HAVE_CUDA
    if (!strcmp(ts->be[0]->ops->name, "cuda")) { px = backend_cuda_host_alloc((size_t)batch * img); pinned = px != NULL; }
#endif
    if (!px) px = malloc((size_t)batch * img);
    int32_t *lb = malloc(sizeof(int32_t) * batch);
    double *rate = calloc((size_t)repeats, sizeof *rate);
    if (!px || !lb || !rate) return status_report("train_gpu_deeper", FAIL(STATUS_NOMEM, "buffers"), NULL);
    for (int i = 0; i < batch; i++) lb[i] = (i * 7) % classes;
    for (size_t p = 0; p < (size_t)batch * img; p++) px[p] = (uint8_t)((p * 2654435761u) >> 24);
    struct tower_step_result r = { 0 };
    double t0 = log_now();
    for (int s = 0; s < warmup; s++)
        if ((st = model_step_train(ts, px, 3, lb, batch, &r))) return status_report("train_gpu_deeper", st, NULL);
    fprintf(stderr, "deeper: warm-up %d steps %.1f s (includes cuDNN algorithm search)\n", warmup, log_now() - t0);
    for (int k = 0; k < repeats; k++) {
        t0 = log_now();
        for (int s = 0; s < steps; s++)   /* each step ends with the loss copied to the host (a sync) */
            if ((st = model_step_train(ts, px, 3, lb, batch, &r))) return status_report("train_gpu_deeper", st, NULL);
        for (int i = 0; i < ts->n; i++)   /* the last step's backward pass and update are still queued */
            if ((st = ts->be[i]->ops->sync(ts->be[i]))) return status_report("train_gpu_deeper", st, NULL);
        rate[k] = steps * batch / (log_now() - t0);
    }
    qsort(rate, (size_t)repeats, sizeof *rate, cmp_d);
    printf("deeper %s %s batch %d size %d gpus %d: %.1f images/s (median of %d x %d steps; loss %.3f)\n", model,
           device, batch, size, gpus, rate[repeats / 2], repeats, steps, r.loss);
#ifdef DEEPER_HAVE_CUDA
    if (!strcmp(ts->be[0]->ops->name, "cuda")) {
        long long direct, packed;
        int shapes;
        backend_cuda_conv_stats(ts->be[0], &direct, &packed, &shapes);
        fprintf(stderr, "deeper: convolutions: %lld calls on the views as given (strided descriptors), %lld through "
                "packed copies; %d shapes cuDNN refused as strided views\n", direct, packed, shapes);
    }
    if (pinned) { backend_cuda_host_free(px); px = NULL; }
#endif
    (void)pinned;
    model_towers_free(&ts);
    free(px); free(lb); free(rate);
    return 0;
}
