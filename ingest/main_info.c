/*
 * ingest/main_info.c — `deeper info DATA_DIR [--verify]`: the command line
 * only; ingest/info.c does the work.
 */
#include <stdio.h>

#include "ingest/info.h"
#include "shared/flags.h"

int main(int argc, char **argv)
{
    int verify = 0;
    const struct flag flags[] = {
        { "verify", FLAG_BOOL, &verify, "re-read every record: CRC-32C, labels, ids, shard checksums", NULL },
    };
    const struct flags_spec spec = {
        .prog = "deeper info", .usage = "[--verify] DATA_DIR",
        .summary = "Prints what a dataset directory made by `deeper ingest` holds: classes, examples per\n"
                   "subset and shard, storage, image sizes, augmentation profile, size and provenance.",
        .flags = flags, .nflags = FLAGS_COUNT(flags), .min_positional = 1, .max_positional = 1,
    };
    char *pos[2];
    int npos = 0;
    char *args[argc > 0 ? argc : 1];
    (void)pos;
    status st = flags_parse(&spec, argc, argv, args, &npos);
    if (st == STATUS_HELP) return 0;
    struct manifest *m = NULL;
    if (st == STATUS_OK) st = manifest_load(args[0], &m);
    if (st == STATUS_OK) st = info_print(args[0], m, stdout);
    if (st == STATUS_OK && verify) {
        fflush(stdout);
        st = info_verify(args[0], m, stdout);
    }
    manifest_free(&m);
    fflush(stdout);
    return status_report("deeper info", st, st == STATUS_USAGE ? "see deeper info --help" : NULL);
}
