/*
 * main_export.c — `deeper export --checkpoint_dir TRAIN_DIR --output
 * model.safetensors`: the flags of trainer/export.h.
 */
#include <signal.h>
#include <stdio.h>

#include "shared/flags.h"
#include "shared/log.h"
#include "shared/signals.h"
#include "shared/status.h"
#include "trainer/export.h"

static volatile sig_atomic_t g_stop;   /* set by the signal watcher (shared/signals.h) */

static const char *SUMMARY =
    "Writes the model of a training checkpoint as a torchvision-compatible\n"
    "state_dict in safetensors: torchvision parameter names, EMA weights (as\n"
    "eval uses them), plus the num_batches_tracked counters torchvision's\n"
    "strict loading needs.  Optimizer slots are not exported.";

int main(int argc, char **argv)
{
    struct export_opts o = { .checkpoint_dir = "/tmp/imagenet_train", .checkpoint_path = NULL,
                             .output = NULL, .ema = 1 };
    struct flag flags[] = {
        { "checkpoint_dir", FLAG_STRING, &o.checkpoint_dir,
          "directory with model.ckpt-STEP.safetensors files; the newest valid one is exported", NULL },
        { "checkpoint_path", FLAG_STRING, &o.checkpoint_path,
          "export this checkpoint file instead of the newest in --checkpoint_dir", NULL },
        { "output", FLAG_STRING, &o.output, "the safetensors file to write (required)", NULL },
        { "ema", FLAG_BOOL, &o.ema, "export the EMA shadows (as eval uses); --noema: the raw weights", NULL },
    };
    struct flags_spec spec = { "deeper export", "[flags]", SUMMARY, flags, FLAGS_COUNT(flags), 0, 0 };
    status st = flags_parse(&spec, argc, argv, NULL, NULL);
    if (st == STATUS_OK && (!o.output || !*o.output))
        st = FAIL(STATUS_USAGE, "--output is required (the safetensors file to write)");
    if (st == STATUS_OK) st = signals_watch(&g_stop);
    if (st == STATUS_OK) {
        /* reading and checking: a stop ends the process at once; the output
         * is written to a temporary name and renamed, so it is whole or absent */
        signals_stop_now("deeper export", "exporting");
        st = export_run(&o);
    }
    return status_report("deeper export", st, st == STATUS_USAGE ? "see deeper export --help" : NULL);
}
