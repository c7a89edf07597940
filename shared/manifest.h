/*
 * manifest.h — manifest.json, the table of contents of a dataset directory.
 *
 * A dataset directory holds manifest.json, labels.txt, rejected.txt and the
 * shard files.  The manifest is the only thing that makes a dataset exist: a
 * shard it does not list does not exist, and it is written last, atomically
 * (temporary file, fsync, rename, fsync of the directory), so a killed ingest
 * leaves either no manifest or the previous complete one.  The JSON layout is
 * specified in proto/manifest.md (format version 1).
 *
 * What it holds: the classes (label id and name; ids start at label_offset,
 * which is 1 when class 0 is TF's reserved background class), per-subset
 * example counts and shard lists (file, first/last example id, record count,
 * content checksum, see shard.h), storage (raw|jpeg), image facts (channels,
 * min/max height and width), the augmentation profile the dataset asks for
 * (photo|small|digits|none, flip, color), and how it was made (command line, seed,
 * date, program version), and for a dataset grown with --append its
 * dataset_version and each append's command and date.
 *
 * manifest_load validates everything it reads and stops at the first problem
 * with one message naming the file, the field and what is wrong.  Strings are
 * owned by the manifest; manifest_free releases everything.
 */
#ifndef DEEPER_MANIFEST_H
#define DEEPER_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "shared/record.h"
#include "shared/status.h"

#define MANIFEST_FORMAT_VERSION 1
#define MANIFEST_FILE "manifest.json"

enum manifest_profile {
    MANIFEST_PROFILE_PHOTO = 0,   /* full TF distortions: crop, flip, colour */
    MANIFEST_PROFILE_DIGITS = 1,  /* small crops/shifts only: no flip, no colour */
    MANIFEST_PROFILE_NONE = 2,    /* no distortion at all */
    MANIFEST_PROFILE_SMALL = 3,   /* small crops/shifts + flips, no colour (Fashion-MNIST) */
};

struct manifest_class {
    int32_t id;              /* the label stored in records */
    char *name;
};

struct manifest_shard {
    char *file;              /* file name relative to the dataset directory */
    uint64_t records;
    uint64_t first_id, last_id;   /* key range (inclusive); ids of rejected inputs are absent */
    uint32_t checksum;       /* shard content checksum (shard.h) */
    uint64_t bytes;          /* sum of value sizes */
};

struct manifest_subset {
    char *name;              /* "train", "validation" */
    uint64_t count;          /* records in all its shards */
    int nshards;
    struct manifest_shard *shards;
};

struct manifest {
    int format_version;
    int nclasses;
    struct manifest_class *classes;   /* ids label_offset .. label_offset+nclasses-1, in order */
    int32_t label_offset;             /* 0, or 1 with --background_class */
    enum record_storage storage;
    struct {
        int channels;                 /* 1 (gray) or 3 (RGB) for every record */
        int min_height, max_height, min_width, max_width;
    } image;
    struct {
        enum manifest_profile profile;
        int flip;                     /* random left-right flips allowed */
        int color;                    /* colour distortions allowed */
    } augment;
    struct {
        char *command;                /* the command line that made it */
        uint64_t seed;
        char *date;                   /* ISO 8601 UTC */
        char *program;                /* "deeper-ingest 1" */
    } made;
    int nsubsets;
    struct manifest_subset *subsets;
    int dataset_version;              /* 1 as ingested; +1 per `deeper ingest --append` (0 read as 1) */
    int nappends;
    struct manifest_append {          /* one per append, oldest first */
        int version;                  /* the dataset_version it made */
        char *command, *date;
    } *appends;
};

/* Number of logits a model needs: nclasses + label_offset. */
static inline int manifest_num_labels(const struct manifest *m) { return m->nclasses + m->label_offset; }

/* Read and validate DIR/manifest.json (dir may also be the manifest path).
 * Caller frees with manifest_free.  STATUS_NOT_FOUND when there is none. */
status manifest_load(const char *dir, struct manifest **out);

/* Compare the manifest with the first intact record (CRC checked; among the
 * first 4) of each shard under dir: channels, storage, image size within the
 * manifest's range, and, for version 2 records (whose CRC covers the label),
 * label within label_offset..num_labels-1.  A contradiction is STATUS_FORMAT
 * with one line naming the field, the shard and the record; a shard that
 * cannot be opened keeps shard_reader_open's status; damaged records are
 * left to the readers, which skip and report them.  Cheap: one record per
 * shard.  Labels beyond the first record are range-checked by the readers. */
status manifest_check_records(const struct manifest *m, const char *dir);

/* Write DIR/manifest.json atomically (tmp + fsync + rename + fsync dir). */
status manifest_save(const struct manifest *m, const char *dir);

/* Serialise to a malloc'd JSON string (caller frees with free()). */
status manifest_to_json(const struct manifest *m, char **out);
/* Parse and validate JSON text; `what` names the source in messages. */
status manifest_from_json(const char *text, const char *what, struct manifest **out);

void manifest_free(struct manifest **m);   /* sets *m to NULL; NULL ok */

/* The subset called name, or NULL. Borrowed. */
const struct manifest_subset *manifest_subset_find(const struct manifest *m, const char *name);
/* One past the largest example id of a subset's shards (ids of rejected
 * inputs are absent, so this may exceed the record count). */
uint64_t manifest_subset_id_limit(const struct manifest_subset *s);
/* Name of class `id` (label), or NULL. Borrowed. */
const char *manifest_class_name(const struct manifest *m, int32_t id);

const char *manifest_profile_name(enum manifest_profile p);   /* "photo" / "small" / "digits" / "none" */
status manifest_profile_parse(const char *s, enum manifest_profile *out);

/* Write a file atomically: DIR/name.tmp, fsync, rename over DIR/name, fsync DIR. */
status manifest_write_atomic(const char *dir, const char *name, const void *data, size_t len);

#endif
