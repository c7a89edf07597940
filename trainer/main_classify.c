/*
 * main_classify.c — `deeper classify --checkpoint_dir T FILE...`: the flags
 * of trainer/classify.h.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/flags.h"
#include "shared/log.h"
#include "shared/signals.h"
#include "trainer/classify.h"

static volatile sig_atomic_t g_stop;   /* set by the signal watcher (shared/signals.h) */

int main(int argc, char **argv)
{
    struct classify_config cfg = { NULL, "auto", 5 };
    const struct flag flags[] = {
        { "checkpoint_dir", FLAG_STRING, &cfg.checkpoint_dir, "the training run's --train_dir (required)", NULL },
        { "top", FLAG_INT, &cfg.top, "classes to print per file", NULL },
        { "device", FLAG_STRING, &cfg.device, "cpu, cuda or auto (CUDA when a GPU exists)", NULL },
    };
    const struct flags_spec spec = {
        "deeper classify", "--checkpoint_dir DIR FILE...",
        "Print the top classes with probabilities for each image file (JPEG, PNG or WebP), using the newest "
        "checkpoint's moving-average weights and the eval preprocessing (central crop 0.875, resize).",
        flags, FLAGS_COUNT(flags), 1, -1,
    };
    char **files = calloc((size_t)argc + 1, sizeof(char *));
    int nfiles = 0, bad = 0;
    status st = files ? flags_parse(&spec, argc, argv, files, &nfiles) : FAIL(STATUS_NOMEM, "out of memory");
    if (st == STATUS_OK && !cfg.checkpoint_dir) st = FAIL(STATUS_USAGE, "--checkpoint_dir is required");
    if (st == STATUS_OK && cfg.top < 1) st = FAIL(STATUS_USAGE, "--top must be >= 1");
    /* before any thread exists (oneDNN): a stop ends the run at once with one line */
    if (st == STATUS_OK) st = signals_watch(&g_stop);
    if (st == STATUS_OK) {
        signals_stop_now("deeper classify", "classifying");
        st = classify_files(&cfg, files, nfiles, &bad);
    }
    free(files);
    int rc = status_report("deeper classify", st, st == STATUS_USAGE ? "see deeper classify --help" : NULL);
    return rc ? rc : (bad ? 1 : 0);
}
