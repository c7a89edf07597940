/*
 * main_train.c — `deeper train`: flags only; the loop is trainer/train.c.
 *
 * Exit status: 0 when max_steps was reached or when SIGINT/SIGTERM stopped
 * the run after saving a checkpoint; 2 for bad usage; 1 for any failure
 * (including "Model diverged with loss = NaN").
 */
#include <stdio.h>
#include <string.h>

#include "shared/flags.h"
#include "shared/log.h"
#include "trainer/model.h"
#include "trainer/train.h"

int main(int argc, char **argv)
{
    struct train_config c = train_config_default();
    c.device = "auto";   /* the CLI picks CUDA when a GPU exists; the library default stays cpu */
    int64_t seed = c.seed;
    static char models_help[512];
    int nm = 0;
    const struct model_desc *ml = model_list(&nm);
    size_t o = (size_t)snprintf(models_help, sizeof models_help, "model to train:");
    for (int i = 0; i < nm && o < sizeof models_help; i++)
        o += (size_t)snprintf(models_help + o, sizeof models_help - o, " %s", ml[i].name);
    const struct flag flags[] = {
        { "data_dir", FLAG_STRING, &c.data_dir, "dataset directory made by `deeper ingest` (required)", NULL },
        { "train_dir", FLAG_STRING, &c.train_dir, "checkpoints and event files go here; resumes from the newest (required)", NULL },
        { "model", FLAG_STRING, &c.model, models_help, NULL },
        { "max_steps", FLAG_INT64, &c.max_steps, "stop after this many steps (global step)", NULL },
        { "batch_size", FLAG_INT, &c.batch_size, "examples per step (all towers together)", NULL },
        { "image_size", FLAG_INT, &c.image_size, "input side in pixels (0: the model's default)", NULL },
        { "num_towers", FLAG_INT, &c.num_towers, "CPU towers the batch is split over (same code as GPU towers)", NULL },
        { "num_gpus", FLAG_INT, &c.num_gpus, "GPU towers with --device cuda", NULL },
        { "device", FLAG_STRING, &c.device, "cpu, cuda or auto (CUDA when a GPU exists)", NULL },
        { "precision", FLAG_STRING, &c.precision, "fp32 (TF32 tensor cores on GPUs); bf16 is refused until implemented", NULL },
        { "threads", FLAG_INT, &c.threads, "CPU threads for the backend (0: all cores)", NULL },
        { "initial_learning_rate", FLAG_FLOAT, &c.initial_learning_rate, "initial learning rate", NULL },
        { "num_epochs_per_decay", FLAG_FLOAT, &c.num_epochs_per_decay, "epochs after which the learning rate decays", NULL },
        { "learning_rate_decay_factor", FLAG_FLOAT, &c.learning_rate_decay_factor, "learning rate decay factor (staircase)", NULL },
        { "weight_decay", FLAG_FLOAT, &c.weight_decay, "L2 weight decay on conv and FC weights", NULL },
        { "moving_average_decay", FLAG_FLOAT, &c.ema_decay, "EMA decay cap for the eval weights (0: off)", NULL },
        { "label_smoothing", FLAG_FLOAT, &c.label_smoothing, "label smoothing of the softmax cross-entropy (TF's inception loss: 0.1)", NULL },
        { "dropout_keep_prob", FLAG_FLOAT, &c.dropout_keep_prob,
          "keep probability of the model's dropout layers (0: the model's own: NielsenNet 0.5, Inception v3 0.8)", NULL },
        { "batchnorm_decay", FLAG_FLOAT, &c.batchnorm_decay,
          "decay of the batch-norm moving mean/variance (TF: 0.9997; short runs from scratch: e.g. 0.9)", NULL },
        { "batchnorm_zero_debias", FLAG_BOOL, &c.batchnorm_zero_debias,
          "debias the batch-norm moving statistics as TF 1.x does (--nobatchnorm_zero_debias: plain EMA from 0 / 1)", NULL },
        { "num_preprocess_threads", FLAG_INT, &c.num_preprocess_threads, "local `deeper augment` worker processes (0: remote workers, needs --listen)", NULL },
        { "listen", FLAG_STRING, &c.listen, "bind here for remote workers (tcp://0.0.0.0:5555)", NULL },
        { "input_queue_memory_factor", FLAG_INT, &c.input_queue_memory_factor, "shuffle buffer of each worker = factor x 1024 records", NULL },
        { "no_flip", FLAG_BOOL, &c.no_flip, "tell workers never to flip (overrides the dataset profile)", NULL },
        { "flip", FLAG_BOOL, &c.flip, "tell workers to flip even when the dataset profile says not to", NULL },
        { "save_interval_steps", FLAG_INT, &c.save_interval_steps, "checkpoint every N steps (and always at the end)", NULL },
        { "keep_checkpoints", FLAG_INT, &c.keep_checkpoints, "keep the newest N checkpoints", NULL },
        { "seed", FLAG_INT64, &seed, "random seed (initial weights, shuffling, distortions, dropout)", NULL },
        { "pretrained_model_checkpoint_path", FLAG_STRING, &c.pretrained_model_checkpoint_path,
          "start a fresh run from these torchvision/timm-named weights (safetensors)", NULL },
        { "fine_tune", FLAG_BOOL, &c.fine_tune,
          "with --pretrained_model_checkpoint_path: re-initialise the classifier (fc, AuxLogits.fc) for this dataset's classes", NULL },
        { "fresh", FLAG_BOOL, &c.fresh, "start from step 0, deleting the checkpoints already in --train_dir", NULL },
        { "log_every", FLAG_INT, &c.log_every, "log line and TensorBoard scalars every N steps", NULL },
    };
    const struct flags_spec spec = {
        "deeper train", "--data_dir DIR --train_dir DIR [flags]",
        "Train a classifier on a dataset made by `deeper ingest`.  Starts --num_preprocess_threads local "
        "augment workers, logs TF's line every --log_every steps, writes TensorBoard event files and "
        "checkpoints (model.ckpt-STEP.safetensors) into --train_dir, and resumes from the newest one. "
        "Ctrl-C saves a checkpoint and exits (while still loading, it exits at once). "
        "A local worker that dies is restarted at its batch, at most 10 times in any 10 minutes; a worker that "
        "cannot start (bad usage, a dataset missing or inconsistent with its manifest) stops the run at once.",
        flags, FLAGS_COUNT(flags), 0, 0,
    };
    status st = flags_parse(&spec, argc, argv, NULL, NULL);
    if (st == STATUS_OK) {
        c.seed = seed;
        st = train_run(&c);
        if (st == STATUS_INTERRUPTED) {
            log_info("%s", status_msg());
            st = STATUS_OK;
        }
    }
    return status_report("deeper train", st, st == STATUS_USAGE ? "see deeper train --help" : NULL);
}
