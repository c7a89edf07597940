/*
 * main_eval.c — `deeper eval`: flags only; the work is trainer/eval.c.
 */
#include "shared/augment_flags.h"
#include "shared/flags.h"
#include "trainer/eval.h"

int main(int argc, char **argv)
{
    struct eval_config c = eval_config_default();
    c.device = "auto";   /* the CLI picks CUDA when a GPU exists; the library default stays cpu */
    struct flag flags[] = {
        { "data_dir", FLAG_STRING, &c.data_dir, "dataset directory made by `deeper ingest` (required)", NULL },
        { "checkpoint_dir", FLAG_STRING, &c.checkpoint_dir, "the training run's --train_dir (required)", NULL },
        { "eval_dir", FLAG_STRING, &c.eval_dir, "event files with Precision @ 1 / Recall @ 5 go here, "
                                                         "parents created (default: CHECKPOINT_DIR/eval)", NULL },
        { "subset", FLAG_STRING, &c.subset, "subset to evaluate", NULL },
        { "run_once", FLAG_BOOL, &c.run_once, "evaluate once and exit", NULL },
        { "eval_interval_secs", FLAG_INT, &c.eval_interval_secs, "seconds between evaluations", NULL },
        { "batch_size", FLAG_INT, &c.batch_size, "examples per batch", NULL },
        { "num_preprocess_threads", FLAG_INT, &c.num_preprocess_threads, "local `deeper augment` worker processes (eval mode)", NULL },
        { "listen", FLAG_STRING, &c.listen, "also accept remote workers (deeper augment --dispatcher) here, e.g. tcp://*:5556", NULL },
        { "curve_secret_key", FLAG_STRING, &c.curve.secret_key, "CURVE: this consumer's NAME.key_secret (`deeper keygen`)", NULL },
        { "authorized_keys", FLAG_STRING, &c.curve.authorized_keys, "CURVE: directory of the workers' public NAME.key "
                                                                    "files; only those workers are admitted", NULL },
        { "insecure", FLAG_BOOL, &c.curve.insecure, "allow --listen on tcp without CURVE keys", NULL },
        { "worker_timeout", FLAG_DOUBLE, &c.worker_timeout, "seconds a worker may be silent before its split goes to another (default 5)", NULL },
        { "max_connections", FLAG_INT, &c.max_connections, "connections the dispatcher keeps open at once, local "
                                                            "workers included; one over it is closed at once (default 128)", NULL },
        { "device", FLAG_STRING, &c.device, "cpu, cuda or auto (CUDA when a GPU exists)", NULL },
        { "threads", FLAG_INT, &c.threads, "CPU threads for the backend (0: all cores)", NULL },
        { 0 }, { 0 }, { 0 }, { 0 }, { 0 }, { 0 },   /* --flip/--no_flip, --color/--no_color, --crop/--no_crop */
    };
    for (int i = 0; i < FLAGS_COUNT(flags); i++)
        if (!flags[i].name) { augment_flags_table(&c.augment, &flags[i]); break; }
    const struct flags_spec spec = {
        "deeper eval", "--data_dir DIR --checkpoint_dir DIR [flags]",
        "Evaluate the newest checkpoint's moving-average weights on one exact pass over --subset and print "
        "precision @ 1 and recall @ 5; repeat every --eval_interval_secs unless --run_once.",
        flags, FLAGS_COUNT(flags), 0, 0,
    };
    status st = flags_parse(&spec, argc, argv, NULL, NULL);
    if (st == STATUS_OK) st = eval_run(&c);
    return status_report("deeper eval", st, st == STATUS_USAGE ? "see deeper eval --help" : NULL);
}
