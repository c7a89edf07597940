/*
 * train_cpu_deeper.c — the deeper half of scripts/bench/train_cpu/run: NielsenNet
 * training steps on synthetic 28x28x1 batches (fixed pixels and labels, so
 * input handling costs nothing), timed after warm-up.  Prints one line:
 *   deeper: batch 64, 2 threads, 200 steps, 3456.7 images/s (18.5 ms/step), loss 2.30 -> 1.20
 * Usage: train_cpu_deeper [steps] [batch] [threads] [towers]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "shared/log.h"
#include "trainer/model.h"

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 200;
    int batch = argc > 2 ? atoi(argv[2]) : 64;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    int towers = argc > 4 ? atoi(argv[4]) : 1;
    struct model_options o = model_options_default();
    o.batch_size = batch;
    o.threads = threads;
    o.num_towers = towers;
    o.optim.initial_learning_rate = 0.01f;
    o.optim.examples_per_epoch = 60000;
    struct tower_set *ts = NULL;
    status st = model_towers_new(&ts, &o);
    if (st) return status_report("train_cpu_deeper", st, NULL);
    uint8_t *px = malloc((size_t)batch * 28 * 28);
    int32_t *lb = malloc(sizeof(int32_t) * batch);
    /* learnable synthetic data: class k has a bright kth row band */
    for (int i = 0; i < batch; i++) {
        lb[i] = i % 10;
        for (int p = 0; p < 28 * 28; p++) px[i * 784 + p] = (uint8_t)((p * 7 + i * 13) % 50);
        for (int p = 0; p < 28; p++) px[i * 784 + (2 + 2 * lb[i]) * 28 + p] = 255;
    }
    struct tower_step_result r = { 0 };
    float first = 0;
    for (int s = 0; s < 5; s++) {
        if ((st = model_step_train(ts, px, 1, lb, batch, &r))) return status_report("train_cpu_deeper", st, NULL);
        if (s == 0) first = r.loss;
    }
    double t0 = log_now(), c0 = (double)clock() / CLOCKS_PER_SEC;
    for (int s = 0; s < steps; s++)
        if ((st = model_step_train(ts, px, 1, lb, batch, &r))) return status_report("train_cpu_deeper", st, NULL);
    double dt = log_now() - t0, cpu = (double)clock() / CLOCKS_PER_SEC - c0;
    printf("deeper: batch %d, %d threads, %d towers, %d steps, %.1f images/s (%.2f ms/step, %.2f cpu-ms/step), loss %.3f -> %.3f\n",
           batch, threads, towers, steps, steps * batch / dt, 1000 * dt / steps, 1000 * cpu / steps, first, r.loss);
    model_towers_free(&ts);
    free(px); free(lb);
    return 0;
}
