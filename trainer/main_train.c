/*
 * main_train.c — `deeper train`: flags only; the loop is trainer/train.c.
 *
 * Exit status: 0 when max_steps was reached or when SIGINT/SIGTERM stopped
 * the run after saving a checkpoint; 2 for bad usage; 1 for any failure
 * (including "Model diverged with loss = NaN").
 */
#include <stdio.h>
#include <string.h>

#include "shared/augment_flags.h"

#include "shared/flags.h"
#include "shared/log.h"
#include "trainer/model.h"
#include "trainer/train.h"

/* The value of --model (or --model=) before the flags are parsed, so that
 * --help can show that model's defaults. */
static const char *model_prescan(int argc, char **argv, const char *dflt)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if ((!strcmp(argv[i], "--model")) && i + 1 < argc) return argv[i + 1];
        if (!strncmp(argv[i], "--model=", 8)) return argv[i] + 8;
    }
    return dflt;
}

/* "HELP (default: VALUE, MODEL's)" into buf */
static const char *model_help(char *buf, size_t size, const char *help, double value, const char *model)
{
    snprintf(buf, size, "%s (default: %g, %s's; a flag wins)", help, value, model);
    return buf;
}

/* "model to train: NAME NAME ..." */
static const char *models_help(void)
{
    static char help[512];
    int nm = 0;
    const struct model_desc *ml = model_list(&nm);
    size_t o = (size_t)snprintf(help, sizeof help, "model to train:");
    for (int i = 0; i < nm && o < sizeof help; i++) o += (size_t)snprintf(help + o, sizeof help - o, " %s", ml[i].name);
    return help;
}

int main(int argc, char **argv)
{
    struct train_config c = train_config_default();
    c.device = "auto";   /* the CLI picks CUDA when a GPU exists; the library default stays cpu */
    c.model = model_prescan(argc, argv, c.model);
    const struct model_desc *md = model_find(c.model);
    if (md) train_config_apply_model(&c, md);   /* --help shows the model's values */
    const char *mname = md ? md->name : "the model";
    int g_lr = 0, g_de = 0, g_df = 0, g_bs = 0, g_is = 0, g_wd = 0, g_kp = 0, g_ls = 0;
    static char h_lr[160], h_de[160], h_df[160], h_bs[160], h_is[160], h_wd[160], h_kp[160], h_ls[160];
    int64_t seed = c.seed;
    struct flag flags[] = {
        { "data_dir", FLAG_STRING, &c.data_dir, "dataset directory made by `deeper ingest` (required)", NULL },
        { "train_dir", FLAG_STRING, &c.train_dir, "checkpoints and event files go here; resumes from the newest (required)", NULL },
        { "model", FLAG_STRING, &c.model, models_help(), NULL },
        { "max_steps", FLAG_INT64, &c.max_steps, "stop after this many steps (global step)", NULL },
        { "batch_size", FLAG_INT, &c.batch_size,
          model_help(h_bs, sizeof h_bs, "examples per step (all towers together)", c.batch_size, mname), &g_bs },
        { "image_size", FLAG_INT, &c.image_size,
          model_help(h_is, sizeof h_is, "input side in pixels", c.image_size, mname), &g_is },
        { "num_towers", FLAG_INT, &c.num_towers, "CPU towers the batch is split over (same code as GPU towers)", NULL },
        { "num_gpus", FLAG_INT, &c.num_gpus, "GPU towers with --device cuda or auto (default: 1 on a GPU; "
                                             "refused where the run trains on the CPU: see --num_towers)", NULL },
        { "device", FLAG_STRING, &c.device, "cpu, cuda or auto (CUDA when a GPU exists)", NULL },
        { "precision", FLAG_STRING, &c.precision, "fp32 (TF32 tensor cores on GPUs); bf16 is refused until implemented", NULL },
        { "threads", FLAG_INT, &c.threads, "CPU threads for the backend (0: all cores)", NULL },
        { "initial_learning_rate", FLAG_FLOAT, &c.initial_learning_rate,
          model_help(h_lr, sizeof h_lr, "initial learning rate", c.initial_learning_rate, mname), &g_lr },
        { "num_epochs_per_decay", FLAG_FLOAT, &c.num_epochs_per_decay,
          model_help(h_de, sizeof h_de, "epochs after which the learning rate decays", c.num_epochs_per_decay, mname), &g_de },
        { "learning_rate_decay_factor", FLAG_FLOAT, &c.learning_rate_decay_factor,
          model_help(h_df, sizeof h_df, "learning rate decay factor (staircase)", c.learning_rate_decay_factor, mname), &g_df },
        { "weight_decay", FLAG_FLOAT, &c.weight_decay,
          model_help(h_wd, sizeof h_wd, "L2 weight decay on conv and FC weights", c.weight_decay, mname), &g_wd },
        { "moving_average_decay", FLAG_FLOAT, &c.ema_decay, "EMA decay cap for the eval weights (0: off)", NULL },
        { "label_smoothing", FLAG_FLOAT, &c.label_smoothing,
          model_help(h_ls, sizeof h_ls, "label smoothing of the softmax cross-entropy", c.label_smoothing, mname), &g_ls },
        { "dropout_keep_prob", FLAG_FLOAT, &c.dropout_keep_prob,
          model_help(h_kp, sizeof h_kp, "keep probability of the model's dropout layers", c.dropout_keep_prob, mname), &g_kp },
        { "batchnorm_decay", FLAG_FLOAT, &c.batchnorm_decay,
          "decay of the batch-norm moving mean/variance (TF: 0.9997; short runs from scratch: e.g. 0.9)", NULL },
        { "batchnorm_zero_debias", FLAG_BOOL, &c.batchnorm_zero_debias,
          "debias the batch-norm moving statistics as TF 1.x does (--nobatchnorm_zero_debias: plain EMA from 0 / 1)", NULL },
        { "num_preprocess_threads", FLAG_INT, &c.num_preprocess_threads, "local `deeper augment` worker processes (0: remote workers, needs --listen)", NULL },
        { "listen", FLAG_STRING, &c.listen, "also accept remote workers (deeper augment --dispatcher) here, "
                                            "e.g. tcp://*:5555 (tcp needs CURVE keys or --insecure)", NULL },
        { "worker_timeout", FLAG_DOUBLE, &c.worker_timeout, "seconds a worker may be silent before its split "
                                                            "goes to another (default 5)", NULL },
        { "curve_secret_key", FLAG_STRING, &c.curve.secret_key, "CURVE: this consumer's NAME.key_secret (`deeper keygen`)", NULL },
        { "authorized_keys", FLAG_STRING, &c.curve.authorized_keys, "CURVE: directory of the workers' public NAME.key "
                                                                    "files; only those workers are admitted", NULL },
        { "insecure", FLAG_BOOL, &c.curve.insecure, "allow --listen on tcp without CURVE keys (any host reaching the "
                                                    "port can feed batches)", NULL },
        { "max_connections", FLAG_INT, &c.max_connections, "connections the dispatcher keeps open at once, local "
                                                            "workers included; one over it is closed at once (default 128)", NULL },
        { "input_queue_memory_factor", FLAG_INT, &c.input_queue_memory_factor, "batches the trainer holds ahead at "
          "most: its input memory is this x one batch (default 16; try 4, 2 or 1 when host memory is short). "
          "Shuffling no longer depends on it: every epoch is a full permutation", NULL },
        { 0 }, { 0 }, { 0 }, { 0 }, { 0 }, { 0 },   /* --flip/--no_flip, --color/--no_color, --crop/--no_crop */
        { "save_interval_steps", FLAG_INT, &c.save_interval_steps, "checkpoint every N steps (and always at the end)", NULL },
        { "keep_checkpoints", FLAG_INT, &c.keep_checkpoints, "keep the newest N checkpoints", NULL },
        { "seed", FLAG_INT64, &seed, "random seed (initial weights, shuffling, distortions, dropout)", NULL },
        { "pretrained_model_checkpoint_path", FLAG_STRING, &c.pretrained_model_checkpoint_path,
          "start a fresh run from these torchvision/timm-named weights (safetensors)", NULL },
        { "fine_tune", FLAG_BOOL, &c.fine_tune,
          "with --pretrained_model_checkpoint_path: re-initialise the classifier (fc, AuxLogits.fc) for this dataset's classes", NULL },
        { "fresh", FLAG_BOOL, &c.fresh, "start from step 0, deleting the checkpoints already in --train_dir", NULL },
        { "log_every", FLAG_INT, &c.log_every, "log line and TensorBoard scalars every N steps", NULL },
        { "summary_every", FLAG_INT, &c.summary_every,
          "TensorBoard images of the distorted inputs and weight histograms every N steps (0: none)", NULL },
        { "stall_check_steps", FLAG_INT, &c.stall_check_steps,
          "at this step, warn once when the loss is still within 5% of ln(classes) (0: never)", NULL },
    };
    for (int i = 0; i < FLAGS_COUNT(flags); i++)
        if (!flags[i].name) { augment_flags_table(&c.augment, &flags[i]); break; }
    const struct flags_spec spec = {
        "deeper train", "--data_dir DIR --train_dir DIR [flags]",
        "Train a classifier on a dataset made by `deeper ingest`.  Starts --num_preprocess_threads local "
        "augment workers, logs TF's line every --log_every steps, writes TensorBoard event files and "
        "checkpoints (model.ckpt-STEP.safetensors) into --train_dir, and resumes from the newest one. "
        "Ctrl-C saves a checkpoint and exits (while still loading, it exits at once). "
        "A local worker that dies is restarted at its batch, at most 10 times in any 10 minutes; a worker that "
        "cannot start (bad usage, a dataset missing or inconsistent with its manifest) stops the run at once.  "
        "The learning rate and its schedule, batch size, image size, "
        "weight decay, dropout and label smoothing default to the model's own values (shown here for --model; "
        "`deeper train --help --model M` shows M's); a flag always wins, and the first log line of a run "
        "says where each value came from.",
        flags, FLAGS_COUNT(flags), 0, 0,
    };
    status st = flags_parse(&spec, argc, argv, NULL, NULL);
    if (st == STATUS_OK) {
        c.seed = seed;
        c.given = (g_lr ? TRAIN_GIVEN_LR : 0) | (g_de ? TRAIN_GIVEN_DECAY_EPOCHS : 0) |
                  (g_df ? TRAIN_GIVEN_DECAY_FACTOR : 0) | (g_bs ? TRAIN_GIVEN_BATCH : 0) |
                  (g_is ? TRAIN_GIVEN_IMAGE_SIZE : 0) | (g_wd ? TRAIN_GIVEN_WEIGHT_DECAY : 0) |
                  (g_kp ? TRAIN_GIVEN_KEEP : 0) | (g_ls ? TRAIN_GIVEN_SMOOTHING : 0);
        /* values not given go back to "model default": a resumed run may take them from its checkpoint */
        if (!g_bs) c.batch_size = TRAIN_MODEL_DEFAULT;
        if (!g_is) c.image_size = 0;
        st = train_run(&c);
        if (st == STATUS_INTERRUPTED) {
            log_info("%s", status_msg());
            st = STATUS_OK;
        }
    }
    return status_report("deeper train", st, st == STATUS_USAGE ? "see deeper train --help" : NULL);
}
