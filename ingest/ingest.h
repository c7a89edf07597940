/*
 * ingest.h — the parts of `deeper ingest` (internal to ingest/).
 *
 * The run (run.c) goes:
 *   1. list the inputs: class-per-folder trees (walk.c) or MNIST idx files
 *      (mnist.c) into one item list per subset; listing problems (symlink
 *      loops, unreadable folders, ...) are rejections without an id;
 *   2. shuffle each subset deterministically (Philox keyed by --seed and the
 *      subset) and number the items: example id = position after the shuffle;
 *   3. cut each subset into its shards (contiguous id ranges, np.linspace as
 *      build_image_data.py does) and deal the shards round-robin to
 *      --num_threads worker *processes*, forked after the listing (so they
 *      share the lists copy-on-write); each opens and writes its own shards
 *      (worker.c), so LMDB never sees one file from two processes;
 *   4. wait, drawing a progress bar from per-worker counters in shared memory;
 *   5. only if every worker succeeded: labels.txt, rejected.txt, then
 *      manifest.json, each written atomically; the manifest last.
 * Before step 3 the previous manifest is removed (with a directory fsync), so
 * a kill at any moment leaves either no manifest or the previous dataset.
 *
 * Variants: the inputs may come from lists instead of a walk (lists.c), with
 * object boxes (boxes.c); a task of several (tasks.c) writes only its shards
 * and, instead of step 5, its completion record, and `--finalize` does step
 * 5 for all of them; `--append` (append.c) numbers new shards after the
 * dataset's and extends its manifest instead of replacing the dataset.
 */
#ifndef DEEPER_INGEST_H
#define DEEPER_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "shared/manifest.h"
#include "shared/record.h"
#include "shared/status.h"

#define INGEST_MAX_PROCS 64

struct ingest_opts {
    const char *train_directory, *validation_directory, *output_directory, *labels_file;
    const char *train_images, *train_labels, *validation_images, *validation_labels;
    int train_shards, validation_shards, num_threads;
    int64_t seed;
    enum record_storage storage;
    int jpeg_quality;
    int resize_short;
    int channels;             /* 1 or 3 (0 = auto: 1 for MNIST, 3 for folders) */
    int64_t max_pixels;
    int background_class;
    enum manifest_profile profile;
    int profile_set;          /* --profile given (else photo for folders, digits for MNIST) */
    int no_flip, no_color;
    int64_t max_examples;     /* per subset, taken in listing order before the shuffle; 0 = all */
    int decode_only;          /* benchmark aid: decode every file once, write nothing */
    const char *command;      /* the command line, for the manifest */
    int quiet;
    /* tasks over machines (tasks.c): num_tasks 0 = one ingest writing the manifest itself */
    int num_tasks, task_index;          /* task_index -1 = not given */
    const char *finalize;               /* --finalize DIR: check the tasks' work, write the manifest */
    const char *write_file_list, *file_list;   /* listing written once / read by every task (lists.c) */
    const char *train_list, *validation_list;   /* path<TAB>label or path,label lines (lists.c) */
    int append;                         /* add new shards to an existing dataset (append.c) */
    const char *bounding_box_file;      /* TF's process_bounding_boxes.py CSV (boxes.c) */
};

/* One input image. */
struct ingest_item {
    char *path;               /* file to read (folders), NULL for MNIST */
    char *name;               /* source name stored in the record: "class/file" or "file.gz:123" */
    int32_t class_idx;        /* 0..nclasses-1 */
    uint32_t mnist_index;     /* MNIST: index into the subset's images */
    float *boxes;             /* --bounding_box_file: nboxes x (ymin, xmin, ymax, xmax), owned */
    uint32_t nboxes;
};

/* A rejected input (listing or decoding). */
struct ingest_reject {
    uint64_t id;              /* UINT64_MAX for listing rejections */
    char *name;
    char *reason;
};

struct ingest_mnist {
    uint8_t *images;          /* n * rows * cols */
    uint8_t *labels;          /* n */
    uint32_t n, rows, cols;
};

struct ingest_subset {
    const char *name;         /* "train" / "validation" */
    struct ingest_item *items;
    size_t n, cap;
    struct ingest_reject *rejects;   /* listing rejections */
    size_t nrejects, cap_rejects;
    int nshards;
    struct ingest_mnist *mnist;
    uint64_t hidden_skipped;  /* dot-files not considered */
};

struct ingest_classes {
    char **names;
    int n;
};

/* walk.c */
status ingest_classes_load(const char *labels_file, struct ingest_classes *c);
status ingest_classes_discover(const char *const *dirs, int ndirs, struct ingest_classes *c);
void ingest_classes_clear(struct ingest_classes *c);   /* frees the names, zeroes *c */
status ingest_walk(const char *root, const struct ingest_classes *c, struct ingest_subset *s);
status ingest_subset_add(struct ingest_subset *s, char *path, char *name, int32_t cls, uint32_t mnist_index);
status ingest_subset_reject(struct ingest_subset *s, const char *name, const char *reason);
void ingest_subset_clear(struct ingest_subset *s);      /* frees the items, zeroes *s */
/* Escape control bytes and backslashes for one-line output ("a\nb" -> "a\\nb"). */
void ingest_escape(const char *s, size_t n, char *out, size_t cap);

/* mnist.c: read an idx3 images file and an idx1 labels file (gzip or not). */
status ingest_mnist_load(const char *images, const char *labels, struct ingest_mnist **out);
void ingest_mnist_free(struct ingest_mnist **m);
status ingest_mnist_list(struct ingest_mnist *m, const char *images_path, struct ingest_subset *s);

/* worker.c */
struct ingest_shard_job {
    int subset;               /* index into the subsets array */
    int index;                /* shard number within the subset */
    uint64_t lo, hi;          /* ids [lo, hi) */
    char file[256];
};

struct ingest_shard_result {
    uint64_t records, bytes, first_id, last_id;
    uint32_t checksum;
    int min_h, max_h, min_w, max_w;
    int done;
};

/* One line of rejected.txt with its sort key (listing rejections of subset k
 * sort as 2k, decoding rejections as 2k+1, then by id). */
struct ingest_rej_line { int subset; uint64_t id; char *text; };

/* Shared between the parent and the workers (MAP_SHARED). */
struct ingest_shared {
    uint64_t processed[INGEST_MAX_PROCS];   /* items handled, per worker (atomic stores) */
    uint64_t rejected[INGEST_MAX_PROCS];
    int failed[INGEST_MAX_PROCS];
    char error[INGEST_MAX_PROCS][512];
    struct ingest_shard_result results[];   /* one per job */
};

struct ingest_ctx {
    const struct ingest_opts *o;
    struct ingest_subset *subsets;
    int nsubsets;
    struct ingest_classes classes;
    int channels;             /* resolved */
    struct ingest_shard_job *jobs;
    int njobs;
    struct ingest_shared *shared;
    int nprocs;
    int *local;               /* the jobs this process writes (all of them, or one task's) */
    int nlocal;
    int task, ntasks;         /* ntasks 0: not a task run */
    uint32_t plan;            /* fingerprint of the listing, shuffle and options (tasks.c) */
    uint64_t first_ids[2];    /* per subset: the id of its first item (non-zero when appending) */
    int generation;           /* appending: the dataset version being written (>= 2), else 0 */
};

/* Run worker `p`'s jobs (jobs p, p+nprocs, ...).  Rejections go to
 * OUT/.rejected-<p>.tmp, one escaped line each. */
status ingest_worker_run(struct ingest_ctx *c, int p);

/* Decode-only benchmark over every listed file, in this process. */
status ingest_decode_only(struct ingest_ctx *c);

/* run.c: the whole ingest. */
status ingest_run(const struct ingest_opts *o);
/* Write rejected.txt (from v, sorted here), labels.txt and manifest.json,
 * the manifest last; *accepted counts the records. */
status ingest_shard_result_add(struct manifest *m, struct manifest_subset *s, struct manifest_shard *d,
                               const struct ingest_shard_job *job, const struct ingest_shard_result *r,
                               uint64_t *accepted);
status ingest_outputs_write(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n, uint64_t *accepted);
void ingest_rej_lines_free(struct ingest_rej_line *v, size_t n);

void ingest_rej_lines_sort(struct ingest_rej_line *v, size_t n);

/* append.c: --append.  open: load the dataset, take its classes, storage,
 * channels and numbering; ids: each subset's first new id (after run_list);
 * finish: the old manifest plus the new shards as the next dataset_version,
 * rejected.txt extended. */
status ingest_append_open(struct ingest_ctx *c, struct ingest_opts *o, struct manifest **old);
status ingest_append_check_folders(const struct ingest_ctx *c, const char *const *dirs, int ndirs);
status ingest_append_ids(struct ingest_ctx *c, const struct manifest *old);
status ingest_append_finish(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n, struct manifest *old,
                            uint64_t *accepted);

/* boxes.c: attach the boxes of --bounding_box_file to the listed items
 * (matched by the file's base name, as TF's build_imagenet_data does). */
status ingest_boxes_attach(const char *csv, struct ingest_ctx *c);

/* tasks.c: tasks over machines. */
/* Fill num_tasks/task_index from SLURM_ARRAY_TASK_ID/_COUNT (less
 * SLURM_ARRAY_TASK_MIN) or JOB_COMPLETION_INDEX + DEEPER_NUM_TASKS when the
 * flags are absent; check the pair. */
status ingest_tasks_resolve(struct ingest_opts *o);
/* Name of task i's completion record. */
void ingest_task_record_name(int task, int ntasks, char *buf, size_t cap);
/* The fingerprint of what every task must agree on. */
uint32_t ingest_plan_fingerprint(const struct ingest_ctx *c);
/* Write this task's completion record (atomically, after its shards). */
status ingest_task_record_write(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n);
/* --finalize DIR. */
status ingest_finalize(const char *dir, const struct ingest_opts *o);

/* lists.c: file lists. */
status ingest_file_list_write(const char *path, const struct ingest_ctx *c);
status ingest_file_list_read(const char *path, struct ingest_ctx *c, const char *const names[2], const int shards[2]);
/* --train_list/--validation_list: lists[k] (NULL = none) for subsets names[k]. */
status ingest_lists_load(const struct ingest_opts *o, const char *const lists[2], const char *const names[2],
                         const int shards[2], struct ingest_ctx *c);
/* Undo ingest_escape; returns the length. */
size_t ingest_unescape(char *s);

#endif
