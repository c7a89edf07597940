/*
 * flags.h — command-line flags with TF's names.
 *
 * A program describes its flags once, in a table, with the underscored TF name
 * ("train_dir").  The parser accepts, for every flag:
 *     --train_dir=/x   --train_dir /x   --train-dir=/x   --train-dir /x
 * Booleans also take no value (--run_once), an explicit one
 * (--run_once=false, =0, =no) or absl's negation (--norun_once).
 * "--" ends the flags; everything else that does not start with "--" is a
 * positional argument.  --help (or -h) prints the usage, the summary and the
 * flag table with defaults and returns STATUS_HELP.  Any other problem is one
 * STATUS_USAGE line naming the flag and the reason.
 */
#ifndef DEEPER_FLAGS_H
#define DEEPER_FLAGS_H

#include <stdint.h>
#include <stdio.h>

#include "shared/status.h"

enum flag_type {
    FLAG_BOOL,    /* value: int*          */
    FLAG_INT,     /* value: int*          */
    FLAG_INT64,   /* value: int64_t*      */
    FLAG_FLOAT,   /* value: float*        */
    FLAG_DOUBLE,  /* value: double*       */
    FLAG_STRING,  /* value: const char**  (points into argv; never freed) */
};

struct flag {
    const char *name;       /* underscored name, without "--" */
    enum flag_type type;
    void *value;            /* holds the default on entry */
    const char *help;
    int *was_set;           /* optional: set to 1 when given on the command line */
};

struct flags_spec {
    const char *prog;       /* "deeper ingest" */
    const char *usage;      /* "[flags] DATA_DIR" */
    const char *summary;    /* a paragraph for --help */
    const struct flag *flags;
    int nflags;
    int min_positional;     /* bounds on positional arguments */
    int max_positional;     /* -1: unlimited */
};

/* Parse argv[1..argc-1].  Positional arguments are stored (borrowed, from
 * argv) into `pos`, which must have room for argc entries; their count goes to
 * *npos (pos/npos may be NULL when max_positional is 0). */
status flags_parse(const struct flags_spec *spec, int argc, char **argv, char **pos, int *npos);

void flags_print_help(const struct flags_spec *spec, FILE *out);

#define FLAGS_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
