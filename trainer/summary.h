/*
 * summary.h — the TensorBoard summaries `deeper train` writes besides its
 * scalars, as TF's inception_train.py does:
 *   images           the first SUMMARY_IMAGES distorted training inputs of
 *                    the batch, as the workers sent them (tags images/0,
 *                    images/1, images/2; PNG, gray or RGB)
 *   NAME             a histogram of each trainable parameter (torchvision
 *                    names: conv1.weight, fc.bias, Mixed_5b.branch1x1.conv.weight ...)
 *   NAME/gradients   a histogram of its gradient in the last step
 * train.c calls summary_write every --summary_every steps.
 */
#ifndef DEEPER_SUMMARY_H
#define DEEPER_SUMMARY_H

#include <stdint.h>

#include "shared/status.h"
#include "shared/tfevents.h"
#include "trainer/graph.h"

#define SUMMARY_IMAGES 3

/* Images of the first min(n, SUMMARY_IMAGES) examples of an NHWC uint8
 * batch, then the parameter and gradient histograms of g. */
status summary_write(struct tfevents *ev, int64_t step, const uint8_t *pixels, int n, int h, int w, int c,
                     const struct graph *g);

#endif
