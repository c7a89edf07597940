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
    safetensors_free(&f);
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

/* Every tensor carries a CRC-32C in __metadata__; one changed value is
 * refused naming the file and the tensor. */
Test(checkpoint, content_checksum_verified, .init = mk, .fini = rm)
{
    struct ckpt_tensor t[4];
    int n = mk_tensors(t);
    fill(7);
    struct ckpt_meta m = meta(7);
    char *path = NULL;
    cr_assert_eq(checkpoint_save(dir, &m, t, n, 0, &path), STATUS_OK, "%s", status_msg());
    struct st_file *f = NULL;
    struct ckpt_meta got;
    cr_assert_eq(checkpoint_open(path, &f, &got), STATUS_OK, "%s", status_msg());
    cr_assert_str_eq(safetensors_meta(f, "format_version"), "2");
    cr_assert_not_null(safetensors_meta(f, "crc32c/ema/fc.weight"));
    const struct st_tensor *tb = safetensors_find(f, "fc.bias");
    cr_assert_not_null(tb);
    long off = (long)((const char *)tb->data - (const char *)safetensors_at(f, 0)->data);
    long data_start = 0;
    {   /* where the data buffer starts: 8 + header length */
        FILE *fp = fopen(path, "rb");
        unsigned char h[8];
        cr_assert_eq(fread(h, 1, 8, fp), 8u);
        fclose(fp);
        for (int i = 7; i >= 0; i--) data_start = data_start * 256 + h[i];
        data_start += 8;
    }
    safetensors_free(&f);
    /* flip one bit of fc.bias[1] in place */
    FILE *fp = fopen(path, "r+b");
    cr_assert_not_null(fp);
    fseek(fp, data_start + off + 4 + 3, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, data_start + off + 4 + 3, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
    cr_assert_eq(checkpoint_open(path, &f, &got), STATUS_CORRUPT);
    cr_assert_null(f);
    cr_assert(strstr(status_msg(), path) && strstr(status_msg(), "tensor fc.bias: content checksum mismatch"), "%s",
              status_msg());
    free(path);
}

/* A metadata block written by hand: each bad field is one line naming it. */
static status meta_with(const char *key, const char *value)
{
    char path[400];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    struct st_writer *wr = NULL;
    cr_assert_eq(safetensors_writer_new(&wr), STATUS_OK);
    int64_t shape[1] = { 3 };
    cr_assert_eq(safetensors_writer_add_f32(wr, "fc.bias", shape, 1, b), STATUS_OK);
    const char *kv[][2] = { { "format", "deeper-checkpoint" }, { "format_version", "1" }, { "step", "5" },
                            { "model", "nielsennet" }, { "num_classes", "3" }, { "image_size", "28" },
                            { "channels", "1" }, { "seed", "1" }, { "batch_size", "8" } };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) safetensors_writer_meta(wr, kv[i][0], kv[i][1]);
    if (key) safetensors_writer_meta(wr, key, value);
    cr_assert_eq(safetensors_writer_save(wr, path), STATUS_OK);
    safetensors_writer_free(&wr);
    struct st_file *f = NULL;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK);
    struct ckpt_meta m;
    status st = checkpoint_meta_read(f, &m);
    safetensors_free(&f);
    return st;
}

Test(checkpoint, metadata_fields_range_checked, .init = mk, .fini = rm)
{
    cr_assert_eq(meta_with(NULL, NULL), STATUS_OK, "%s", status_msg());
    const char *bad[][2] = {
        { "step", "abc" }, { "step", "-1" }, { "step", "" }, { "step", " 5" }, { "step", "99999999999999999999" },
        { "image_size", "100000" }, { "image_size", "-28" }, { "image_size", "0" }, { "channels", "2" },
        { "channels", "4" }, { "num_classes", "0" }, { "seed", "-1" }, { "seed", "1.5" }, { "epoch", "-3" },
        { "position", "1e3" }, { "num_workers", "-1" }, { "batch_size", "0" }, { "learning_rate", "nan" },
        { "learning_rate", "inf" }, { "format_version", "3" }, { "model", "" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        status st = meta_with(bad[i][0], bad[i][1]);
        cr_expect(st == STATUS_FORMAT || st == STATUS_UNSUPPORTED, "%s=%s accepted", bad[i][0], bad[i][1]);
        char want[64];
        snprintf(want, sizeof want, "__metadata__.%s", bad[i][0]);
        cr_expect(strstr(status_msg(), want) && strstr(status_msg(), "m.safetensors") && !strchr(status_msg(), '\n'),
                  "%s=%s: %s", bad[i][0], bad[i][1], status_msg());
    }
}
