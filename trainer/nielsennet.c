/*
 * nielsennet.c — NielsenNet, the MNIST network of Nielsen's book chapter 6 as
 * built with slim in the project's seed article (seeds/003):
 *   28x28 input
 *   conv1: 20 kernels 5x5, stride 1, padded to keep the size ("same"), ReLU,
 *          2x2 max pool                                    -> 14x14x20
 *   conv2: 40 kernels 5x5, stride 1, not padded ("valid"), ReLU,
 *          2x2 max pool                                    -> 5x5x40
 *   fc1:   1000 units, ReLU, dropout
 *   fc2:   1000 units, ReLU, dropout
 *   fc:    one unit per class (logits)
 * The convolutions have biases (slim's conv2d without batch norm).  Dropout
 * keeps 0.5 (Nielsen's choice).  Weights start from PyTorch's default
 * initialisation (uniform +-1/sqrt(fan_in)); biases at zero.
 * Parameter names: conv1.weight, conv1.bias, conv2.*, fc1.*, fc2.*, fc.*.
 *
 * Other image sizes work (e.g. 8x8 digits: 8 -> pool 4 -> conv2 needs >= 5,
 * so inputs below 12x12 are padded by conv2 instead of failing: conv2 uses
 * "same" padding when the map is smaller than 9).
 */
#include "trainer/model.h"

#define NIELSEN_KEEP 0.5f

/* Training defaults (docs/defaults.md has the runs behind them): TF's 0.1
 * leaves the small digit sets at chance; 0.05 decaying x0.94 every epoch with
 * dropout keep 0.7 (the graph's own 0.5 is Nielsen's) learned best on
 * Fashion-MNIST in short and long runs; batch 64. */
const struct model_defaults nielsennet_defaults = {
    .initial_learning_rate = 0.05f, .num_epochs_per_decay = 1.0f, .learning_rate_decay_factor = 0.94f,
    .batch_size = 64, .image_size = 28, .weight_decay = 4e-5f, .dropout_keep_prob = 0.7f,
    .label_smoothing = 0.1f,
};

status nielsennet_build(struct graph *g, int classes, int image_size, int channels)
{
    if (classes < 2) return FAIL(STATUS_USAGE, "nielsennet: %d classes", classes);
    if (image_size < 4) return FAIL(STATUS_USAGE, "nielsennet: image size %d too small", image_size);
    graph_set_weight_init(g, (struct graph_init){ INIT_FANIN_UNIFORM, 0 });
    int x = graph_input(g, channels, image_size, image_size);
    x = graph_conv(g, "conv1", x, 20, 5, 5, 1, 1, 2, 2, 1);
    x = graph_relu(g, x);
    x = graph_maxpool(g, x, 2, 2, 0);
    int half = image_size / 2;
    int pad2 = half < 9 ? 2 : 0;
    x = graph_conv(g, "conv2", x, 40, 5, 5, 1, 1, pad2, pad2, 1);
    x = graph_relu(g, x);
    x = graph_maxpool(g, x, 2, 2, 0);
    x = graph_fc(g, "fc1", x, 1000);
    x = graph_relu(g, x);
    x = graph_dropout(g, x, NIELSEN_KEEP);
    x = graph_fc(g, "fc2", x, 1000);
    x = graph_relu(g, x);
    x = graph_dropout(g, x, NIELSEN_KEEP);
    x = graph_fc(g, "fc", x, classes);
    graph_loss(g, x, 1.0f);
    return STATUS_OK;   /* builder errors are sticky; the caller's graph_finalize reports them */
}
