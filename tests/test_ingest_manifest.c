/*
 * test_ingest_manifest.c — manifest.json: save/load round trip, atomic
 * write, and one clear error for each kind of broken manifest.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/manifest.h"

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
    manifest_free(l);
    /* a huge seed survives as a string */
    m->made.seed = 18446744073709551615ull;
    cr_assert_eq(manifest_save(m, dir), STATUS_OK);
    cr_assert_eq(manifest_load(dir, &l), STATUS_OK, "%s", status_msg());
    cr_assert_eq(l->made.seed, 18446744073709551615ull);
    manifest_free(l);
    manifest_free(m);
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
    manifest_free(m);
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
}

Test(manifest, profile_names)
{
    enum manifest_profile p;
    cr_assert_eq(manifest_profile_parse("digits", &p), STATUS_OK);
    cr_assert_eq(p, MANIFEST_PROFILE_DIGITS);
    cr_assert_str_eq(manifest_profile_name(MANIFEST_PROFILE_NONE), "none");
    cr_assert_eq(manifest_profile_parse("x", &p), STATUS_USAGE);
}
