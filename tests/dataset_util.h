/*
 * dataset_util.h — a small real dataset for unit tests (header-only, static
 * functions; tests/test_augment_worker.c, tests/test_dispatcher_alloc.c):
 * LMDB shards and a manifest written with shared/shard.h and
 * shared/manifest.h, in a fresh directory `dir` under $TMPDIR or /tmp.
 *
 * Define IMG_H and IMG_W (the images' size) before including it.  Use
 * make_dataset(n_train, n_val, bad_id) in a test with .fini = fini_remove.
 */
#ifndef DEEPER_TESTS_DATASET_UTIL_H
#define DEEPER_TESTS_DATASET_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/manifest.h"
#include "shared/record.h"
#include "shared/shard.h"

#define NSHARDS 3

static char dir[256];

static void remove_dataset(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* criterion runs each test in its own process: clean up at its end */
static void fini_remove(void) { if (dir[0]) remove_dataset(); }

/* Record `odd_label_id` (if >= 0) is written with label `odd_label` and a
 * CRC that matches it. */
static int64_t odd_label_id = -1;
static int32_t odd_label;

/* N records over NSHARDS shards per subset; record id k has label k % 3 and
 * pixels derived from k.  Record `bad_id` (if >= 0) gets a wrong CRC. */
static void make_dataset(int n_train, int n_val, int bad_id)
{
    snprintf(dir, sizeof dir, "%s/augds-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
    struct manifest *m = calloc(1, sizeof *m);
    m->format_version = MANIFEST_FORMAT_VERSION;
    m->nclasses = 3;
    m->classes = calloc(3, sizeof *m->classes);
    for (int c = 0; c < 3; c++) { m->classes[c].id = c; m->classes[c].name = strdup(c == 0 ? "a" : c == 1 ? "b" : "c"); }
    m->storage = RECORD_RAW;
    m->image.channels = 3;
    m->image.min_height = m->image.max_height = IMG_H;
    m->image.min_width = m->image.max_width = IMG_W;
    m->augment.profile = MANIFEST_PROFILE_PHOTO;
    m->augment.flip = m->augment.color = 1;
    m->made.command = strdup("test");
    m->made.date = strdup("2026-11-25T04:00:00Z");
    m->made.program = strdup("deeper tests");
    m->nsubsets = 2;
    m->subsets = calloc(2, sizeof *m->subsets);
    uint64_t id = 0;
    for (int s = 0; s < 2; s++) {
        struct manifest_subset *sub = &m->subsets[s];
        int n = s == 0 ? n_train : n_val;
        sub->name = strdup(s == 0 ? "train" : "validation");
        sub->count = (uint64_t)n;
        sub->nshards = NSHARDS;
        sub->shards = calloc(NSHARDS, sizeof *sub->shards);
        for (int k = 0; k < NSHARDS; k++) {
            char name[64], path[400];
            cr_assert_eq(shard_file_name(sub->name, k, NSHARDS, name, sizeof name), STATUS_OK);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            struct shard_writer *wr;
            cr_assert_eq(shard_writer_open(path, NULL, &wr), STATUS_OK, "%s", status_msg());
            int lo = n * k / NSHARDS, hi = n * (k + 1) / NSHARDS;
            uint64_t first = id, bytes = 0;
            for (int i = lo; i < hi; i++, id++) {
                uint8_t px[IMG_H * IMG_W * 3], buf[1024];
                for (int p = 0; p < IMG_H * IMG_W * 3; p++) px[p] = (uint8_t)(id * 31 + p * 7);
                struct record r = { .label = (int32_t)(id % 3), .height = IMG_H, .width = IMG_W, .channels = 3,
                                    .storage = RECORD_RAW, .name = "x.png", .name_len = 5, .payload = px,
                                    .payload_len = sizeof px };
                size_t len;
                if ((int64_t)id == odd_label_id) r.label = odd_label;
                cr_assert_eq(record_encode(&r, buf, sizeof buf, &len), STATUS_OK);
                if ((int64_t)id == bad_id) buf[len - 1] ^= 0x55;   /* payload byte: CRC mismatch */
                cr_assert_eq(shard_writer_put(wr, id, buf, len), STATUS_OK);
                bytes += len;
            }
            uint64_t recs;
            uint32_t crc;
            cr_assert_eq(shard_writer_close(&wr, &recs, &crc), STATUS_OK);
            sub->shards[k] = (struct manifest_shard){ strdup(name), recs, first, id - 1, crc, bytes };
        }
    }
    cr_assert_eq(manifest_save(m, dir), STATUS_OK, "%s", status_msg());
    manifest_free(&m);
}

#endif
