/*
 * test_train_checkpoint.c — checkpoint save/find/restore round trip, pruning
 * to the newest 5, metadata, and recovery from a broken index or a
 * half-written (temporary) file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer/checkpoint.h"

static char dir[256];
static void mk(void) { snprintf(dir, sizeof dir, "/tmp/deeper_ckpt_XXXXXX"); cr_assert_not_null(mkdtemp(dir)); }
static void rm(void) { char c[400]; snprintf(c, sizeof c, "rm -rf '%s'", dir); if (system(c)) {} }

static int count_files(const char *pattern)
{
    char c[512];
    snprintf(c, sizeof c, "ls '%s' | grep -c '%s'", dir, pattern);
    FILE *p = popen(c, "r");
    int n = 0;
    if (fscanf(p, "%d", &n) != 1) n = -1;
    pclose(p);
    return n;
}

static float w[6], b[3], ema_w[6], ms[6];

static void fill(int step)
{
    for (int i = 0; i < 6; i++) { w[i] = step + i * 0.5f; ema_w[i] = -w[i]; ms[i] = 1.0f + i; }
    for (int i = 0; i < 3; i++) b[i] = step * 10.0f + i;
}

static int mk_tensors(struct ckpt_tensor *t)
{
    t[0] = (struct ckpt_tensor){ "fc.weight", w, 2, { 3, 2 } };
    t[1] = (struct ckpt_tensor){ "fc.bias", b, 1, { 3 } };
    t[2] = (struct ckpt_tensor){ "ema/fc.weight", ema_w, 2, { 3, 2 } };
    t[3] = (struct ckpt_tensor){ "rmsprop_ms/fc.weight", ms, 2, { 3, 2 } };
    return 4;
}

static struct ckpt_meta meta(int64_t step)
{
    struct ckpt_meta m = { 0 };
    m.step = step; m.model = "nielsennet"; m.num_classes = 3;
    m.class_names = "[\"cat\",\"dog\",\"T-shirt/top\"]";
    m.image_size = 28; m.channels = 1; m.manifest_digest = "abc123";
    m.seed = 18446744073709551615ull; m.epoch = 2; m.position = step * 3; m.num_workers = 2;
    m.batch_size = 64; m.learning_rate = 0.01;
    return m;
}

Test(checkpoint, round_trip_prune_and_latest, .init = mk, .fini = rm)
{
    struct ckpt_tensor t[4];
    int n = mk_tensors(t);
    for (int s = 10; s <= 80; s += 10) {
        fill(s);
        struct ckpt_meta m = meta(s);
        char *p = NULL;
        cr_assert_eq(checkpoint_save(dir, &m, t, n, CKPT_KEEP_DEFAULT, &p), STATUS_OK, "%s", status_msg());
        cr_assert(strstr(p, "model.ckpt-") != NULL);
        free(p);
    }
    cr_assert_eq(count_files("^model.ckpt-.*safetensors$"), 5, "kept %d", count_files("^model.ckpt-"));
    cr_assert_eq(count_files("^model.ckpt-30.safetensors$"), 0);
    cr_assert_eq(count_files("^model.ckpt-40.safetensors$"), 1);

    char *path; int64_t step;
    cr_assert_eq(checkpoint_latest(dir, &path, &step), STATUS_OK, "%s", status_msg());
    cr_assert_eq(step, 80);
    struct st_file *f;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK, "%s", status_msg());
    free(path);
    struct ckpt_meta m;
    cr_assert_eq(checkpoint_meta_read(f, &m), STATUS_OK, "%s", status_msg());
    cr_assert_eq(m.step, 80);
    cr_assert_str_eq(m.model, "nielsennet");
    cr_assert_eq(m.seed, 18446744073709551615ull);
    cr_assert_eq(m.position, 240);
    cr_assert_eq(m.epoch, 2);
    cr_assert_eq(m.num_workers, 2);
    char **names; int nn;
    cr_assert_eq(checkpoint_class_names(m.class_names, &names, &nn), STATUS_OK);
    cr_assert_eq(nn, 3);
    cr_assert_str_eq(names[2], "T-shirt/top");
    checkpoint_names_free(names, nn);

    fill(0);   /* clobber, then restore */
    struct ckpt_tensor params[2] = { t[0], t[1] };
    cr_assert_eq(checkpoint_restore(f, params, 2, "", 0), STATUS_OK, "%s", status_msg());
    cr_assert_eq(w[5], 80 + 2.5f);
    cr_assert_eq(b[2], 802.0f);
    /* EMA restore: ema/fc.weight exists; fc.bias has no ema copy -> fallback */
    cr_assert_eq(checkpoint_restore(f, params, 2, "ema/", 1), STATUS_OK, "%s", status_msg());
    cr_assert_eq(w[5], -(80 + 2.5f));
    cr_assert_eq(checkpoint_restore(f, params, 2, "ema/", 0), STATUS_NOT_FOUND);
    /* a shape mismatch names the tensor and both shapes */
    struct ckpt_tensor bad = { "fc.weight", w, 2, { 2, 3 } };
    cr_assert_eq(checkpoint_restore(f, &bad, 1, "", 0), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "fc.weight") && strstr(status_msg(), "[3, 2]") && strstr(status_msg(), "[2, 3]"),
              "%s", status_msg());
    safetensors_close(&f);
}

Test(checkpoint, broken_index_and_partial_file, .init = mk, .fini = rm)
{
    struct ckpt_tensor t[4];
    int n = mk_tensors(t);
    char *path; int64_t step;
    cr_assert_eq(checkpoint_latest(dir, &path, &step), STATUS_NOT_FOUND);
    for (int s = 1; s <= 2; s++) {
        fill(s);
        struct ckpt_meta m = meta(s);
        cr_assert_eq(checkpoint_save(dir, &m, t, n, 5, NULL), STATUS_OK, "%s", status_msg());
    }
    /* a truncated newer file (as a crash might leave with a bad filesystem) and an index naming it */
    char p[1024], c[2048];
    snprintf(c, sizeof c, "head -c 100 '%s/model.ckpt-2.safetensors' > '%s/model.ckpt-3.safetensors';"
             "printf 'model_checkpoint_path: \"model.ckpt-3.safetensors\"\\n' > '%s/checkpoint';"
             "echo junk > '%s/model.ckpt-4.safetensors.tmp.99999'", dir, dir, dir, dir);
    cr_assert_eq(system(c), 0);
    cr_assert_eq(checkpoint_latest(dir, &path, &step), STATUS_OK, "%s", status_msg());
    cr_assert_eq(step, 2, "picked step %lld", (long long)step);
    free(path);
    /* the next save removes the stale temporary file */
    struct ckpt_meta m = meta(5);
    cr_assert_eq(checkpoint_save(dir, &m, t, n, 5, NULL), STATUS_OK);
    cr_assert_eq(count_files("tmp"), 0);
    snprintf(p, sizeof p, "%s/checkpoint", dir);
    FILE *fp = fopen(p, "r");
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, fp));
    fclose(fp);
    cr_assert_str_eq(line, "model_checkpoint_path: \"model.ckpt-5.safetensors\"\n");
    /* --fresh: everything goes, so old higher steps cannot outrank the new run */
    int removed = -1;
    cr_assert_eq(checkpoint_remove_all(dir, &removed), STATUS_OK);
    cr_assert_eq(removed, 4, "removed %d", removed);   /* 1, 2, 3 (truncated) and 5 */
    cr_assert_eq(count_files("model.ckpt"), 0);
    cr_assert_eq(count_files("^checkpoint$"), 0);
    cr_assert_eq(checkpoint_latest(dir, &path, &step), STATUS_NOT_FOUND);
}
