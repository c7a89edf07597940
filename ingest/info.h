/*
 * info.h — `deeper info`: print a dataset's summary, verify every record.
 * (ingest/info.c; the CLI is ingest/main_info.c)
 */
#ifndef DEEPER_INGEST_INFO_H
#define DEEPER_INGEST_INFO_H

#include <stdio.h>

#include "shared/manifest.h"
#include "shared/status.h"

/* Classes, subsets and shards, storage, profile, size, provenance. */
status info_print(const char *dir, const struct manifest *m, FILE *out);

/* Re-read every record of every listed shard; print each problem (at most
 * 10 per shard) and return STATUS_CORRUPT if there was any. */
status info_verify(const char *dir, const struct manifest *m, FILE *out);

#endif
