/*
 * test_ingest_manifest.c — manifest.json: save/load round trip, atomic
 * write, and one clear error for each kind of broken manifest: repeated keys
 * anywhere, record totals past 2^53 (which wrapped 2^64 before), 60,000
 * classes loading in linear time, and a manifest that contradicts its
 * records (channels, labels) refused at open.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/manifest.h"
#include "shared/shard.h"

static struct manifest *sample(void)
{
    struct manifest *m = calloc(1, sizeof *m);
    m->format_version = MANIFEST_FORMAT_VERSION;
    m->label_offset = 1;
    m->nclasses = 2;
    m->classes = calloc(2, sizeof *m->classes);
    m->classes[0].id = 1; m->classes[0].name = strdup("daisy");
    m->classes[1].id = 2; m->classes[1].name = strdup("roses");
    m->storage = RECORD_JPEG;
    m->image.channels = 3;
    m->image.min_height = 10; m->image.max_height = 500;
    m->image.min_width = 20; m->image.max_width = 400;
    m->augment.profile = MANIFEST_PROFILE_PHOTO;
    m->augment.flip = 1;
    m->augment.color = 0;
    m->made.command = strdup("deeper-ingest --train_directory x");
    m->made.seed = 12345;
    m->made.date = strdup("2026-11-25T04:00:00Z");
    m->made.program = strdup("deeper-ingest 1");
    m->nsubsets = 1;
    m->subsets = calloc(1, sizeof *m->subsets);
    struct manifest_subset *s = &m->subsets[0];
    s->name = strdup("train");
    s->count = 7;
    s->nshards = 2;
    s->shards = calloc(2, sizeof *s->shards);
    s->shards[0] = (struct manifest_shard){ strdup("train-00000-of-00002.mdb"), 3, 0, 3, 0xdeadbeef, 300 };
    s->shards[1] = (struct manifest_shard){ strdup("train-00001-of-00002.mdb"), 4, 4, 7, 0x00000001, 400 };
    return m;
}

Test(manifest, round_trip_through_a_directory)
{
    char dir[] = "/tmp/manifestXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct manifest *m = sample();
    cr_assert_eq(manifest_save(m, dir), STATUS_OK, "%s", status_msg());
    struct manifest *l;
    cr_assert_eq(manifest_load(dir, &l), STATUS_OK, "%s", status_msg());
    cr_assert_eq(l->nclasses, 2);
    cr_assert_str_eq(l->classes[1].name, "roses");
    cr_assert_eq(manifest_num_labels(l), 3);
    cr_assert_str_eq(manifest_class_name(l, 1), "daisy");
    cr_assert_null(manifest_class_name(l, 0));
    cr_assert_eq(l->storage, RECORD_JPEG);
    cr_assert_eq(l->image.max_height, 500);
    cr_assert_eq(l->augment.flip, 1);
    cr_assert_eq(l->augment.color, 0);
    cr_assert_eq(l->made.seed, 12345);
    const struct manifest_subset *s = manifest_subset_find(l, "train");
    cr_assert_not_null(s);
    cr_assert_null(manifest_subset_find(l, "validation"));
    cr_assert_eq(s->count, 7);
    cr_assert_eq(s->shards[0].checksum, 0xdeadbeef);
    cr_assert_eq(s->shards[1].first_id, 4);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s/manifest.json.tmp", dir);
    cr_assert_neq(access(tmp, F_OK), 0, "the temporary file is gone after the rename");
    manifest_free(&l);
    /* a huge seed survives as a string */
    m->made.seed = 18446744073709551615ull;
    cr_assert_eq(manifest_save(m, dir), STATUS_OK);
    cr_assert_eq(manifest_load(dir, &l), STATUS_OK, "%s", status_msg());
    cr_assert_eq(l->made.seed, 18446744073709551615ull);
    manifest_free(&l);
    manifest_free(&m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(manifest_load(dir, &l), STATUS_NOT_FOUND);
}

/* Replace the first occurrence of `from` by `to` in the sample's JSON and
 * expect a load failure whose message contains `needle`. */
static void expect_broken(const char *from, const char *to, const char *needle)
{
    struct manifest *m = sample();
    char *text;
    cr_assert_eq(manifest_to_json(m, &text), STATUS_OK);
    manifest_free(&m);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "'%s' not in the JSON", from);
    size_t nl = strlen(text) - strlen(from) + strlen(to) + 1;
    char *broken = malloc(nl);
    snprintf(broken, nl, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    struct manifest *l = NULL;
    status st = manifest_from_json(broken, "m.json", &l);
    cr_assert_neq(st, STATUS_OK, "accepted a manifest with %s -> %s", from, to);
    cr_assert_null(l);
    cr_assert(strstr(status_msg(), needle), "message '%s' lacks '%s'", status_msg(), needle);
    cr_assert(strstr(status_msg(), "m.json"), "message names the file");
    free(broken);
    free(text);
}

Test(manifest, each_problem_has_a_clear_error)
{
    expect_broken("\"format_version\":\t1", "\"format_version\":\t2", "format_version 2");
    expect_broken("\"deeper-dataset\"", "\"other\"", "format");
    expect_broken("\"id\":\t2", "\"id\":\t5", "classes[1].id");
    expect_broken("\"roses\"", "\"daisy\"", "twice");
    expect_broken("\"storage\":\t\"jpeg\"", "\"storage\":\t\"png\"", "storage");
    expect_broken("\"channels\":\t3", "\"channels\":\t2", "channels");
    expect_broken("\"profile\":\t\"photo\"", "\"profile\":\t\"cartoon\"", "augment.profile");
    expect_broken("\"flip\":\ttrue", "\"flip\":\t1", "augment.flip");
    expect_broken("\"count\":\t7", "\"count\":\t8", "count is 8");
    expect_broken("\"records\":\t3", "\"records\":\t-3", "records");
    expect_broken("\"train-00000-of-00002.mdb\"", "\"../x.mdb\"", "plain file name");
    expect_broken("\"deadbeef\"", "\"xyz\"", "checksum");
    expect_broken("\"num_labels\":\t3", "\"num_labels\":\t2", "num_labels");
    expect_broken("\"label_offset\":\t1", "\"label_offset\":\t1, \"x\": [", "JSON");
    expect_broken("\"made\":", "\"maid\":", "made is missing");
    /* repeated keys: a second subset called train, a field given twice */
    expect_broken("\"subsets\":\t{",
                  "\"subsets\":\t{ \"train\": { \"count\": 1, \"shards\": [ { \"file\": \"o.mdb\", \"records\": 1, "
                  "\"first_id\": 0, \"last_id\": 0, \"checksum\": \"00000000\", \"bytes\": 9 } ] },",
                  "subsets has the key \"train\" twice");
    expect_broken("\"records\":\t3", "\"records\":\t3, \"records\": 4", "\"records\" twice");
    expect_broken("\"format\":", "\"storage\": \"raw\", \"format\":", "the top level has the key \"storage\" twice");
    expect_broken("\"train-00001-of-00002.mdb\"", "\"train-00000-of-00002.mdb\"", "listed twice");
}

/* 2049 shards of 2^53 records add up to 2^64 + 2^53, which wrapped to a
 * count of 2^53 that matched. */
Test(manifest, record_totals_that_overflow_are_refused)
{
    size_t cap = 3000 * 200 + 4096, n = 0;
    char *j = malloc(cap);
    n += (size_t)snprintf(j + n, cap - n,
                          "{\"format\": \"deeper-dataset\", \"format_version\": 1, \"label_offset\": 0, "
                          "\"classes\": [{\"id\": 0, \"name\": \"a\"}], \"num_labels\": 1, \"storage\": \"raw\", "
                          "\"image\": {\"channels\": 1, \"min_height\": 1, \"max_height\": 1, \"min_width\": 1, "
                          "\"max_width\": 1}, \"augment\": {\"profile\": \"none\", \"flip\": false, \"color\": false}, "
                          "\"subsets\": {\"train\": {\"count\": 9007199254740992, \"shards\": [");
    for (int i = 0; i < 2049; i++)
        n += (size_t)snprintf(j + n, cap - n,
                              "%s{\"file\": \"s%d.mdb\", \"records\": 9007199254740992, \"first_id\": 0, "
                              "\"last_id\": 9007199254740991, \"checksum\": \"00000000\", \"bytes\": 0}",
                              i ? ", " : "", i);
    n += (size_t)snprintf(j + n, cap - n, "]}}, \"made\": {\"command\": \"\", \"seed\": 1, \"date\": \"\", "
                                          "\"program\": \"\"}}");
    struct manifest *m = NULL;
    status st = manifest_from_json(j, "m.json", &m);
    cr_assert_eq(st, STATUS_FORMAT, "accepted %s", st == STATUS_OK ? "a wrapped total" : status_msg());
    cr_assert(strstr(status_msg(), "2^53"), "%s", status_msg());
    free(j);
}

/* The class-name duplicate check is linear: 60,000 classes load fast. */
Test(manifest, sixty_thousand_classes_load_fast)
{
    struct manifest *m = sample();
    for (int i = 0; i < m->nclasses; i++) free(m->classes[i].name);
    free(m->classes);
    m->label_offset = 0;
    m->nclasses = 60000;
    m->classes = calloc(60000, sizeof *m->classes);
    for (int i = 0; i < 60000; i++) {
        char name[32];
        snprintf(name, sizeof name, "n%08d", i * 7919 % 1000003);
        m->classes[i].id = i;
        m->classes[i].name = strdup(name);
    }
    char *text;
    cr_assert_eq(manifest_to_json(m, &text), STATUS_OK);
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);   /* CPU time: the build machine may be busy */
    struct manifest *l = NULL;
    cr_assert_eq(manifest_from_json(text, "m.json", &l), STATUS_OK, "%s", status_msg());
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    double dt = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
    printf("60,000 classes: manifest parsed and checked in %.3f s of CPU\n", dt);
    cr_assert_lt(dt, 0.5, "took %.2f s", dt);
    cr_assert_eq(l->nclasses, 60000);
    manifest_free(&l);
    /* the last name repeating the first is still found */
    free(m->classes[59999].name);
    m->classes[59999].name = strdup(m->classes[0].name);
    free(text);
    cr_assert_eq(manifest_to_json(m, &text), STATUS_OK);
    cr_assert_eq(manifest_from_json(text, "m.json", &l), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "classes[0] and [59999]"), "%s", status_msg());
    free(text);
    manifest_free(&m);
}

/* One shard of raw records (label, channels, 4x5 pixels) under dir. */
static void write_shard(const char *dir, const char *file, int nrec, int channels, int32_t label0)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(path, NULL, &w), STATUS_OK, "%s", status_msg());
    for (int k = 0; k < nrec; k++) {
        uint8_t px[4 * 5 * 3] = { (uint8_t)k }, buf[256];
        struct record r = { .label = label0 + k % 2, .height = 4, .width = 5, .channels = (uint32_t)channels,
                            .storage = RECORD_RAW, .name = "x", .name_len = 1, .payload = px,
                            .payload_len = (size_t)(4 * 5 * channels) };
        size_t len;
        cr_assert_eq(record_encode(&r, buf, sizeof buf, &len), STATUS_OK);
        cr_assert_eq(shard_writer_put(w, (uint64_t)k, buf, len), STATUS_OK);
    }
    cr_assert_eq(shard_writer_close(&w, NULL, NULL), STATUS_OK);
}

/* A manifest that says 3 channels for gray records, or fewer classes than
 * the labels, is refused at open with one line (it made workers skip every
 * record and the trainer wait forever). */
Test(manifest, contradicting_the_records_is_refused)
{
    char dir[] = "/tmp/manifestXXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct manifest *m = sample();
    m->storage = RECORD_RAW;
    m->image.min_height = m->image.max_height = 4;
    m->image.min_width = m->image.max_width = 5;
    m->image.channels = 1;
    write_shard(dir, m->subsets[0].shards[0].file, 3, 1, 1);
    write_shard(dir, m->subsets[0].shards[1].file, 4, 1, 1);
    cr_assert_eq(manifest_check_records(m, dir), STATUS_OK, "%s", status_msg());
    m->image.channels = 3;
    cr_assert_eq(manifest_check_records(m, dir), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "image.channels 3") && strstr(status_msg(), "has 1") && !strchr(status_msg(), '\n'),
              "%s", status_msg());
    m->image.channels = 1;
    /* labels 1..2 in the records, the manifest drops the last class */
    m->nclasses = 1;
    cr_assert_eq(manifest_check_records(m, dir), STATUS_OK, "the first record's label 1 is still a class");
    write_shard(dir, m->subsets[0].shards[1].file, 4, 1, 2);   /* first record: label 2 */
    cr_assert_eq(manifest_check_records(m, dir), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "label 2") && strstr(status_msg(), "1 classes"), "%s", status_msg());
    m->nclasses = 2;
    cr_assert_eq(manifest_check_records(m, dir), STATUS_OK, "%s", status_msg());
    manifest_free(&m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(manifest, profile_names)
{
    enum manifest_profile p;
    cr_assert_eq(manifest_profile_parse("digits", &p), STATUS_OK);
    cr_assert_eq(p, MANIFEST_PROFILE_DIGITS);
    cr_assert_str_eq(manifest_profile_name(MANIFEST_PROFILE_NONE), "none");
    cr_assert_eq(manifest_profile_parse("x", &p), STATUS_USAGE);
}
