/*
 * fuzz_manifest — manifest.json text through manifest_from_json
 * (shared/manifest.c), the parser and validator every program runs on a
 * dataset before it reads a shard.
 *
 * The input is the file's text.  Checks: a failure names the file in one
 * line; an accepted manifest obeys what its readers rely on (class ids
 * consecutive from label_offset, subset counts equal to the sum of their
 * shards, channels 1 or 3), and serialises back to JSON that parses to the
 * same JSON again (to_json o from_json is stable).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/manifest.h"
#include "tests/fuzz/fuzz_util.h"

static void check(const struct manifest *m)
{
    if (m->nclasses < 0) fuzz_fail("nclasses %d", m->nclasses);
    for (int i = 0; i < m->nclasses; i++)
        if (m->classes[i].id != m->label_offset + i || !m->classes[i].name)
            fuzz_fail("class %d has id %d", i, m->classes[i].id);
    if (m->image.channels != 1 && m->image.channels != 3) fuzz_fail("channels %d", m->image.channels);
    for (int s = 0; s < m->nsubsets; s++) {
        const struct manifest_subset *sub = &m->subsets[s];
        uint64_t total = 0;
        for (int k = 0; k < sub->nshards; k++) total += sub->shards[k].records;
        if (total != sub->count) fuzz_fail("subset %s counts %llu, shards hold %llu", sub->name,
                                           (unsigned long long)sub->count, (unsigned long long)total);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    struct manifest *m = NULL;
    status st = manifest_from_json(text, "fuzz.json", &m);
    fuzz_check_failure(st, "manifest_from_json");
    if (st != STATUS_OK && !strstr(status_msg(), "fuzz.json")) fuzz_fail("message does not name the file: %s", status_msg());
    if (st == STATUS_OK) {
        check(m);
        char *json = NULL, *json2 = NULL;
        struct manifest *m2 = NULL;
        if (manifest_to_json(m, &json) != STATUS_OK) fuzz_fail("manifest_to_json: %s", status_msg());
        if (manifest_from_json(json, "again.json", &m2) != STATUS_OK)
            fuzz_fail("an accepted manifest, written back, is refused: %s", status_msg());
        if (manifest_to_json(m2, &json2) != STATUS_OK) fuzz_fail("manifest_to_json: %s", status_msg());
        if (strcmp(json, json2) != 0) fuzz_fail("manifest JSON not stable through a round trip");
        free(json);
        free(json2);
        manifest_free(&m2);
    }
    manifest_free(&m);
    free(text);
    return 0;
}
