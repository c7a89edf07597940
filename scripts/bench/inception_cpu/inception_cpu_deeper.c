/*
 * inception_cpu_deeper.c — the deeper half of scripts/bench/inception_cpu/run:
 * Inception v3 training steps (TF recipe: aux head at >= 299, dropout 0.8,
 * RMSProp, weight decay, EMA) on the CPU backend, on a fixed synthetic uint8
 * batch so input handling costs nothing, timed after one warm-up step.
 * Prints one line:
 *   deeper images/s = 3.456 (batch 4, size 299, threads 2, steps 5, 1.16 s/step, loss 6.9 -> 6.8)
 * Usage: inception_cpu_deeper [steps] [batch] [image_size] [threads]
 */
#include <stdio.h>
#include <stdlib.h>

#include "shared/log.h"
#include "trainer/model.h"

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 5;
    int batch = argc > 2 ? atoi(argv[2]) : 4;
    int size = argc > 3 ? atoi(argv[3]) : 299;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    struct model_options o = model_options_default();
    o.model = "inception_v3";
    o.classes = 1001;
    o.image_size = size;
    o.channels = 3;
    o.batch_size = batch;
    o.threads = threads;
    o.optim.initial_learning_rate = 0.01f;
    o.optim.examples_per_epoch = 1281167;
    o.optim.batch_size = batch;
    struct tower_set *ts = NULL;
    status st = model_towers_new(&ts, &o);
    if (st) return status_report("inception_cpu_deeper", st, NULL);
    size_t per = (size_t)size * size * 3;
    uint8_t *px = malloc(batch * per);
    int32_t *lb = malloc(sizeof(int32_t) * batch);
    uint32_t x = 12345;
    for (size_t i = 0; i < batch * per; i++) { x = x * 1664525u + 1013904223u; px[i] = (uint8_t)(x >> 24); }
    for (int i = 0; i < batch; i++) lb[i] = (i * 97) % 1001;
    struct tower_step_result r = { 0 };
    if ((st = model_step_train(ts, px, 3, lb, batch, &r))) return status_report("inception_cpu_deeper", st, NULL);
    float first = r.loss;
    double t0 = log_now();
    for (int s = 0; s < steps; s++)
        if ((st = model_step_train(ts, px, 3, lb, batch, &r))) return status_report("inception_cpu_deeper", st, NULL);
    double dt = log_now() - t0;
    printf("deeper images/s = %.3f (batch %d, size %d, threads %d, steps %d, %.2f s/step, loss %.3f -> %.3f)\n",
           steps * batch / dt, batch, size, threads, steps, dt / steps, first, r.loss);
    model_towers_free(&ts);
    free(px);
    free(lb);
    return 0;
}
