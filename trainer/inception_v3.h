/*
 * inception_v3.h — Inception v3 exactly as torchvision builds it, trained
 * with TF's recipe (trainer/inception_v3.c).
 *
 * The graph holds torchvision's modules under torchvision's parameter names
 * and shapes ("Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.bn.running_mean",
 * "AuxLogits.fc.weight", "fc.bias"), so a torchvision or timm state_dict
 * loads by name and deeper's exports load back into torchvision with
 * strict=True.  What comes from TF instead of torchvision: dropout keep 0.8
 * (torchvision drops 0.5), the weight initialisation (truncated normal 0.1,
 * aux 5x5 conv 0.01, aux FC 0.001, final FC 0.01; FC biases 0), and the
 * losses (main 1.0 + aux 0.4, label smoothing from the graph config).
 *
 * Input: --image_size S >= 75 (torchvision's minimum), 3 channels; a gray
 * dataset is repeated into RGB by the input normalisation.  The aux head
 * needs a 17x17 Mixed_6e map, i.e. S >= 299 (torchvision fails below that
 * in training mode; TF's slim model too).  Below 299, and in inference
 * graphs (torchvision's eval mode never runs it), the aux head's parameters
 * are registered but no aux nodes are built: checkpoints and exports keep
 * torchvision's full key set, and the aux loss is simply absent.
 */
#ifndef DEEPER_INCEPTION_V3_H
#define DEEPER_INCEPTION_V3_H

#include "shared/status.h"
#include "trainer/graph.h"

#define INCEPTION_V3_MIN_SIZE 75
#define INCEPTION_V3_AUX_MIN_SIZE 299

struct inception_v3_options {
    float dropout_keep;      /* 0.8 (TF); 1.0 turns dropout off (parity tests) */
    float aux_weight;        /* 0.4 */
    int aux;                 /* -1: when the size allows and the graph trains; 0: never */
    int *out_aux_logits;     /* optional: receives the aux logits value id (-1 when not built) */
};

struct inception_v3_options inception_v3_options_default(void);

/* The registry's build function (trainer/model.h): default options. */
status inception_v3_build(struct graph *g, int classes, int image_size, int channels);
status inception_v3_build_opts(struct graph *g, int classes, int image_size, int channels,
                               const struct inception_v3_options *o);

/* 1 when the aux head can run at this input size. */
int inception_v3_aux_fits(int image_size);

/* Spatial size of the map entering the final pool (8 at 299). */
int inception_v3_final_size(int image_size);

#endif
