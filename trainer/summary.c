/*
 * summary.c — image and histogram summaries (see summary.h).  Parameters
 * are copied to the host one at a time (graph_param_read), so this works
 * the same on the CPU and the GPU backends.
 */
#include "trainer/summary.h"

#include <stdio.h>
#include <stdlib.h>

status summary_write(struct tfevents *ev, int64_t step, const uint8_t *pixels, int n, int h, int w, int c,
                     const struct graph *g)
{
    status st = STATUS_OK;
    float *host = NULL;
    char tag[512];
    size_t img = (size_t)h * w * c;
    for (int i = 0; i < n && i < SUMMARY_IMAGES; i++) {
        snprintf(tag, sizeof tag, "images/%d", i);
        if ((st = tfevents_image(ev, step, tag, pixels + i * img, h, w, c)) != STATUS_OK) goto done;
    }
    size_t most = 0;
    for (int i = 0; i < graph_num_params(g); i++)
        if (graph_param(g, i)->numel > most) most = graph_param(g, i)->numel;
    host = malloc((most ? most : 1) * sizeof *host);
    if (!host) { st = FAIL(STATUS_NOMEM, "summaries: out of memory"); goto done; }
    for (int i = 0; i < graph_num_params(g); i++) {
        const struct graph_param *p = graph_param(g, i);
        if (p->kind == PARAM_STAT) continue;
        if ((st = graph_param_read(g, i, SLOT_W, host)) != STATUS_OK) goto done;
        if ((st = tfevents_histogram(ev, step, p->name, host, p->numel)) != STATUS_OK) goto done;
        if (graph_param_read(g, i, SLOT_GRAD, host) != STATUS_OK) continue;   /* no gradient slot */
        snprintf(tag, sizeof tag, "%s/gradients", p->name);
        if ((st = tfevents_histogram(ev, step, tag, host, p->numel)) != STATUS_OK) goto done;
    }
done:
    free(host);
    return st;
}
