/*
 * ingest/main.c — `deeper ingest`: the command line only (see ingest.h and
 * run.c for what happens).  TF build_image_data.py's flag names and defaults
 * (2 shards per subset, 2 workers, seed 12345) plus the MNIST inputs and the
 * storage / profile options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "shared/flags.h"
#include "shared/log.h"

int main(int argc, char **argv)
{
    struct ingest_opts o = { .train_shards = 2, .validation_shards = 2, .num_threads = 2, .seed = 12345,
                             .jpeg_quality = 95, .max_pixels = 178956970, .task_index = -1 };
    const char *store = "raw", *profile = "";
    const struct flag flags[] = {
        { "train_directory", FLAG_STRING, &o.train_directory, "training images: DIR/<class>/<image files>", NULL },
        { "validation_directory", FLAG_STRING, &o.validation_directory, "validation images, same layout", NULL },
        { "output_directory", FLAG_STRING, &o.output_directory, "where the dataset goes (created if missing)", NULL },
        { "labels_file", FLAG_STRING, &o.labels_file,
          "class names, one per line, in label order; without it: sorted folder names (MNIST: 0..9)", NULL },
        { "train_images", FLAG_STRING, &o.train_images, "MNIST-format idx3 images (gzip or plain)", NULL },
        { "train_labels", FLAG_STRING, &o.train_labels, "MNIST-format idx1 labels", NULL },
        { "validation_images", FLAG_STRING, &o.validation_images, "idx3 images for the validation subset", NULL },
        { "validation_labels", FLAG_STRING, &o.validation_labels, "idx1 labels for the validation subset", NULL },
        { "train_shards", FLAG_INT, &o.train_shards, "number of shard files for the training subset", NULL },
        { "validation_shards", FLAG_INT, &o.validation_shards, "number of shard files for the validation subset", NULL },
        { "num_threads", FLAG_INT, &o.num_threads, "worker processes (each writes its own shards)", NULL },
        { "seed", FLAG_INT64, &o.seed, "seed of the deterministic shuffle", NULL },
        { "store", FLAG_STRING, &store, "raw (decoded 8-bit pixels) or jpeg (JPEG bytes; others re-encoded)", NULL },
        { "jpeg_quality", FLAG_INT, &o.jpeg_quality, "quality of re-encoded JPEGs with --store jpeg", NULL },
        { "resize_short", FLAG_INT, &o.resize_short, "shrink so the shorter side is at most N (0: keep)", NULL },
        { "channels", FLAG_INT, &o.channels, "1 (gray) or 3 (RGB); 0: 3 for folders, 1 for MNIST", NULL },
        { "max_pixels", FLAG_INT64, &o.max_pixels, "reject images whose header claims more pixels", NULL },
        { "background_class", FLAG_BOOL, &o.background_class, "TF numbering: label 0 is reserved, classes are 1..C", NULL },
        { "profile", FLAG_STRING, &profile, "augmentation profile: photo (TF's crops, flips, colour), small "
                                            "(mild crops + flips: Fashion-MNIST), digits (mild crops, no flips) or "
                                            "none (default: photo for folders, digits for MNIST)", NULL },
        { "no_flip", FLAG_BOOL, &o.no_flip, "the dataset must not be flipped left-right", NULL },
        { "no_color", FLAG_BOOL, &o.no_color, "the dataset must not get colour distortions", NULL },
        { "max_examples", FLAG_INT64, &o.max_examples, "take at most N images per subset (0: all)", NULL },
        { "decode_only", FLAG_BOOL, &o.decode_only, "benchmark: decode every input once, write nothing", NULL },
        { "quiet", FLAG_BOOL, &o.quiet, "no progress or per-shard lines", NULL },
        { "train_list", FLAG_STRING, &o.train_list, "training images from a list: path<TAB>label or path,label "
                                                    "lines (labels: class names, see --labels_file)", NULL },
        { "validation_list", FLAG_STRING, &o.validation_list, "validation images from a list, same form", NULL },
        { "write_file_list", FLAG_STRING, &o.write_file_list, "list the inputs into FILE once and stop (for "
                                                              "--file_list in every task)", NULL },
        { "file_list", FLAG_STRING, &o.file_list, "read the inputs from a --write_file_list FILE instead of "
                                                  "walking the folders", NULL },
        { "num_tasks", FLAG_INT, &o.num_tasks, "split the ingest into N tasks (machines); default from "
                                               "SLURM_ARRAY_TASK_COUNT or DEEPER_NUM_TASKS", NULL },
        { "task_index", FLAG_INT, &o.task_index, "which task this is, 0..N-1: writes only its shards and a "
                                                 "completion record; default from SLURM_ARRAY_TASK_ID (less "
                                                 "SLURM_ARRAY_TASK_MIN) or JOB_COMPLETION_INDEX", NULL },
        { "finalize", FLAG_STRING, &o.finalize, "after every task: check DIR's shards and write its manifest", NULL },
        { "bounding_box_file", FLAG_STRING, &o.bounding_box_file, "object boxes, TF's process_bounding_boxes.py CSV: "
                                                                  "file name,xmin,ymin,xmax,ymax (normalised), any "
                                                                  "number of lines per image", NULL },
        { "append", FLAG_BOOL, &o.append, "add the inputs to the dataset in --output_directory as new shards "
                                          "(existing shards untouched, new dataset version)", NULL },
    };
    const struct flags_spec spec = {
        .prog = "deeper ingest",
        .usage = "[flags]",
        .summary = "Decodes a class-per-folder image tree (JPEG/PNG/WebP, by content) or MNIST idx files into\n"
                   "sharded LMDB files, in parallel worker processes, with a deterministic shuffle.  Bad files\n"
                   "are rejected one line each and listed in OUTPUT/rejected.txt; manifest.json is written\n"
                   "last, so an interrupted run never looks like a complete dataset.  With --num_tasks and\n"
                   "--task_index (or a Slurm job array / Kubernetes Indexed Job) each machine writes its share\n"
                   "of the shards; --finalize DIR then checks them and writes the manifest.",
        .flags = flags, .nflags = FLAGS_COUNT(flags), .min_positional = 0, .max_positional = 0,
    };
    status st = flags_parse(&spec, argc, argv, NULL, NULL);
    if (st == STATUS_HELP) return 0;
    if (st == STATUS_OK) st = record_storage_parse(store, &o.storage);
    if (st == STATUS_OK && profile[0]) {
        st = manifest_profile_parse(profile, &o.profile);
        o.profile_set = 1;
    }
    if (st == STATUS_OK && o.channels != 0 && o.channels != 1 && o.channels != 3)
        st = FAIL(STATUS_USAGE, "--channels %d: expected 0, 1 or 3", o.channels);
    if (st == STATUS_OK && (o.jpeg_quality < 1 || o.jpeg_quality > 100))
        st = FAIL(STATUS_USAGE, "--jpeg_quality %d: expected 1..100", o.jpeg_quality);
    if (st == STATUS_OK && !o.finalize && !o.write_file_list) st = ingest_tasks_resolve(&o);
    if (st == STATUS_OK && (o.resize_short < 0 || o.max_pixels < 0 || o.max_examples < 0 || o.seed < 0))
        st = FAIL(STATUS_USAGE, "--resize_short, --max_pixels, --max_examples and --seed must not be negative");
    char *command = NULL;
    if (st == STATUS_OK) {
        size_t len = 1;
        for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
        command = malloc(len);
        if (command) {
            command[0] = 0;
            for (int i = 0; i < argc; i++) { if (i) strcat(command, " "); strcat(command, argv[i]); }
        }
        o.command = command;
        log_set_quiet(o.quiet);
        st = ingest_run(&o);
    }
    free(command);
    return status_report("deeper ingest", st, st == STATUS_USAGE ? "see deeper ingest --help" : NULL);
}
