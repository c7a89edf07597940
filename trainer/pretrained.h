/*
 * pretrained.h — load torchvision/timm-named weights from a safetensors file
 * into a model graph (--pretrained_model_checkpoint_path, --fine_tune).
 *
 * Pretrained Inception v3 weights are usually distributed as a PyTorch
 * state_dict (torchvision's inception_v3_google-*.pth, timm's
 * inception_v3.*); converted to safetensors they carry exactly the names our
 * graphs register ("Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch1x1.bn.running_mean",
 * "fc.weight").  The loader matches by name:
 *
 *   - every model parameter must be in the file with the same shape, except
 *     the classifier when fine-tuning (fine_tune != 0): parameters whose last
 *     module is `fc` ("fc.weight", "fc.bias", "AuxLogits.fc.weight", ...)
 *     keep the fresh initialisation the graph gave them, sized for the new
 *     class count — TF's restore=False on the logits and aux-logits FC;
 *   - a file without any "AuxLogits.*" tensor (timm's aux-less exports) leaves
 *     the aux head freshly initialised, with a warning;
 *   - anything else missing or shaped differently is one STATUS_FORMAT error
 *     naming the tensor and both shapes; nothing is written to the graph
 *     unless every check passed;
 *   - F32, F64, F16 and BF16 tensors are accepted (converted to float);
 *     "*.num_batches_tracked" and other tensors the model does not have are
 *     ignored (counted in the report).
 *
 * After a successful load the optimizer slots are reset (optim_init_slots:
 * RMSProp ms = 1, mom = 0, EMA = the loaded weights), as TF starts a
 * fine-tuning run with fresh slots and EMA shadows.  With towers, call
 * tower_broadcast afterwards.
 */
#ifndef DEEPER_PRETRAINED_H
#define DEEPER_PRETRAINED_H

#include "shared/status.h"
#include "trainer/graph.h"

struct pretrained_report {
    int restored;        /* parameters copied from the file */
    int reinitialised;   /* classifier parameters left fresh (fine_tune) */
    int aux_fresh;       /* aux-head parameters left fresh (no AuxLogits in the file) */
    int ignored;         /* file tensors the model does not use */
};

/* 1 when `name` belongs to a classifier layer re-initialised by --fine_tune. */
int pretrained_is_classifier(const char *name);

/* Load `path` into g's weights (see above).  rep may be NULL. */
status pretrained_load(struct graph *g, const char *path, int fine_tune,
                       struct pretrained_report *rep);

#endif
