/*
 * test_train_formats.c — safetensors writer/reader and TensorBoard event files.
 *
 * Safetensors: C writer -> C reader round trip; C writer -> an independent
 * numpy reader (scripts/ref/safetensors_np.py); numpy writer -> C reader; and
 * every structural check of the reader on hand-corrupted files.  Event files:
 * written by shared/tfevents.c, parsed by scripts/tb_read.py (both CRCs, the
 * protobuf fields).  Tests run from the repository root (scripts/run-tests).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/safetensors.h"
#include "shared/tfevents.h"

static char tmpdir[256];

static void mk_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/deeper_fmt_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void rm_tmp(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) { /* best effort */ }
}

static char *run_capture(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) n += k;
    buf[n] = 0;
    int rc = pclose(p);
    cr_assert_eq(rc, 0, "command failed: %s\n%s", cmd, buf);
    return buf;
}

static void write_test_file(const char *path, float *w, int64_t *ids)
{
    struct st_writer *wr;
    cr_assert_eq(safetensors_writer_new(&wr), STATUS_OK);
    for (int i = 0; i < 2 * 3 * 4; i++) w[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 5; i++) ids[i] = (int64_t)1 << (40 + i);
    int64_t s1[3] = { 2, 3, 4 }, s2[1] = { 5 };
    static const uint8_t bytes[3] = { 1, 2, 3 };
    int64_t s3[1] = { 3 };
    cr_assert_eq(safetensors_writer_add_f32(wr, "layer.weight", s1, 3, w), STATUS_OK);
    cr_assert_eq(safetensors_writer_add(wr, "ids", ST_I64, s2, 1, ids), STATUS_OK);
    cr_assert_eq(safetensors_writer_add(wr, "b", ST_U8, s3, 1, bytes), STATUS_OK);
    cr_assert_eq(safetensors_writer_add_f32(wr, "scalar", NULL, 0, w), STATUS_OK);
    cr_assert_neq(safetensors_writer_add_f32(wr, "scalar", NULL, 0, w), STATUS_OK, "duplicate accepted");
    cr_assert_eq(safetensors_writer_meta(wr, "step", "17"), STATUS_OK);
    cr_assert_eq(safetensors_writer_meta(wr, "model", "nielsennet"), STATUS_OK);
    cr_assert_eq(safetensors_writer_meta(wr, "step", "18"), STATUS_OK);
    cr_assert_eq(safetensors_writer_save(wr, path), STATUS_OK, "%s", status_msg());
    safetensors_writer_free(&wr);
    cr_assert_null(wr);
}

Test(safetensors, c_round_trip, .init = mk_tmp, .fini = rm_tmp)
{
    char path[512];
    snprintf(path, sizeof path, "%s/a.safetensors", tmpdir);
    float w[24];
    int64_t ids[5];
    write_test_file(path, w, ids);

    struct st_file *f;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK, "%s", status_msg());
    cr_assert_eq(safetensors_count(f), 4);
    cr_assert_str_eq(safetensors_meta(f, "step"), "18");
    cr_assert_str_eq(safetensors_meta(f, "model"), "nielsennet");
    cr_assert_eq(safetensors_meta_count(f), 2);
    const struct st_tensor *t = safetensors_find(f, "layer.weight");
    cr_assert_not_null(t);
    cr_assert_eq(t->ndim, 3);
    cr_assert_eq(t->shape[0], 2); cr_assert_eq(t->shape[2], 4);
    cr_assert_eq(memcmp(t->data, w, sizeof w), 0);
    cr_assert_eq(((uintptr_t)t->data) % 4, 0, "F32 data not aligned");
    t = safetensors_find(f, "ids");
    cr_assert_eq(t->dtype, ST_I64);
    cr_assert_eq(memcmp(t->data, ids, sizeof ids), 0);
    cr_assert_eq(((uintptr_t)t->data) % 8, 0, "I64 data not aligned");
    t = safetensors_find(f, "scalar");
    cr_assert_eq(t->ndim, 0);
    cr_assert_eq(t->nbytes, 4);
    cr_assert_null(safetensors_find(f, "nope"));
    float back[24];
    cr_assert_eq(safetensors_read_f32(f, "layer.weight", back, 24), STATUS_OK);
    cr_assert_eq(back[23], w[23]);
    cr_assert_eq(safetensors_read_f32(f, "layer.weight", back, 23), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "[2, 3, 4]") != NULL, "message lacks the shape: %s", status_msg());
    cr_assert_eq(safetensors_read_f32(f, "missing", back, 1), STATUS_NOT_FOUND);
    safetensors_free(&f);
    /* no temporary file left behind */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp || true", tmpdir);
    char *out = run_capture(cmd);
    cr_assert_eq(atoi(out), 0, "temporary files left: %s", out);
    free(out);
}

Test(safetensors, numpy_reads_c_writer, .init = mk_tmp, .fini = rm_tmp)
{
    char path[512], cmd[800];
    snprintf(path, sizeof path, "%s/c.safetensors", tmpdir);
    float w[24];
    int64_t ids[5];
    write_test_file(path, w, ids);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/ref/safetensors_np.py dump '%s'", path);
    char *out = run_capture(cmd);
    cr_assert(strstr(out, "\"step\": \"18\"") != NULL, "%s", out);
    cr_assert(strstr(out, "\"layer.weight\": {\"dtype\": \"float32\", \"first\": -3.0, \"shape\": [2, 3, 4], \"sum\": 66.0}") != NULL, "%s", out);
    cr_assert(strstr(out, "\"ids\": {\"dtype\": \"int64\", \"first\": 1099511627776.0") != NULL, "%s", out);
    cr_assert(strstr(out, "\"scalar\": {\"dtype\": \"float32\", \"first\": -3.0, \"shape\": []") != NULL, "%s", out);
    free(out);
}

Test(safetensors, c_reads_numpy_writer, .init = mk_tmp, .fini = rm_tmp)
{
    char path[512], cmd[800];
    snprintf(path, sizeof path, "%s/np.safetensors", tmpdir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/ref/safetensors_np.py write '%s'", path);
    free(run_capture(cmd));
    struct st_file *f;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK, "%s", status_msg());
    cr_assert_eq(safetensors_count(f), 4);
    cr_assert_str_eq(safetensors_meta(f, "step"), "42");
    float cw[150];
    cr_assert_eq(safetensors_read_f32(f, "conv.weight", cw, 150), STATUS_OK);
    for (int i = 0; i < 150; i++) cr_assert_eq(cw[i], (float)i * 0.25f - 10.0f);
    const struct st_tensor *t = safetensors_find(f, "bn.num_batches_tracked");
    cr_assert_eq(t->dtype, ST_I64);
    cr_assert_eq(t->ndim, 0);
    int64_t v;
    memcpy(&v, t->data, 8);
    cr_assert_eq(v, 7);
    t = safetensors_find(f, "fc.bias");
    cr_assert_eq(t->dtype, ST_F64);
    double d;
    memcpy(&d, (const char *)t->data + 6 * 8, 8);
    cr_assert_float_eq(d, 1.0, 1e-12);
    safetensors_free(&f);
}

/* Write raw header + data bytes and expect the reader to refuse them. */
static void expect_refused(const char *name, const char *json, size_t data_len, long extra_hn)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.safetensors", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    uint64_t hn = strlen(json) + (uint64_t)extra_hn;
    fwrite(&hn, 8, 1, fp);
    fwrite(json, 1, strlen(json), fp);
    for (size_t i = 0; i < data_len; i++) fputc(0, fp);
    fclose(fp);
    struct st_file *f = NULL;
    status st = safetensors_open(&f, path);
    cr_assert_neq(st, STATUS_OK, "%s: accepted a bad file", name);
    cr_assert_null(f);
    cr_assert(strstr(status_msg(), path) != NULL, "%s: message lacks the path: %s", name, status_msg());
}

Test(safetensors, reader_refuses_bad_files, .init = mk_tmp, .fini = rm_tmp)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_refused("trailing", ok, 9, 0);
    expect_refused("short", ok, 7, 0);
    expect_refused("hn_too_big", ok, 8, 1000);
    expect_refused("size", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0);
    expect_refused("gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0);
    expect_refused("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0);
    expect_refused("dup", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0);
    expect_refused("dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_refused("negshape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_refused("fracshape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, 0);
    expect_refused("meta", "{\"__metadata__\":{\"k\":3},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 0);
    expect_refused("notjson", "[1,2]", 0, 0);
    expect_refused("garbage", "{\"a\":", 0, 0);
    expect_refused("huge", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4, 0);
    /* and an empty-but-valid file is fine */
    char path[512];
    snprintf(path, sizeof path, "%s/empty.safetensors", tmpdir);
    FILE *fp = fopen(path, "wb");
    uint64_t hn = 8;
    fwrite(&hn, 8, 1, fp);
    fwrite("{}      ", 1, 8, fp);
    fclose(fp);
    struct st_file *f;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK, "%s", status_msg());
    cr_assert_eq(safetensors_count(f), 0);
    safetensors_free(&f);
    cr_assert_eq(safetensors_open(&f, "/nonexistent/x.safetensors"), STATUS_NOT_FOUND);
}

Test(tfevents, tb_read_parses_scalars, .init = mk_tmp, .fini = rm_tmp)
{
    char dir[512], cmd[800];
    snprintf(dir, sizeof dir, "%s/train", tmpdir);
    struct tfevents *w;
    cr_assert_eq(tfevents_open(&w, dir), STATUS_OK, "%s", status_msg());
    cr_assert(strstr(tfevents_path(w), "/events.out.tfevents.") != NULL);
    for (int s = 0; s < 5; s++) cr_assert_eq(tfevents_scalar(w, s * 10, "loss", 2.5f - s * 0.5f), STATUS_OK);
    const char *tags[2] = { "learning_rate", "examples/sec" };
    float vals[2] = { 0.1f, 1234.5f };
    cr_assert_eq(tfevents_scalars(w, 40, 2, tags, vals), STATUS_OK);
    cr_assert_eq(tfevents_session_start(w, 30), STATUS_OK);
    cr_assert_eq(tfevents_scalar(w, 1LL << 40, "big", -1.0f), STATUS_OK);
    tfevents_free(&w);

    snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/tb_read.py --scalars loss '%s'", dir);
    char *out = run_capture(cmd);
    cr_assert_str_eq(out, "0 2.5\n10 2.0\n20 1.5\n30 1.0\n40 0.5\n");
    free(out);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/tb_read.py '%s'", dir);
    out = run_capture(cmd);
    cr_assert(strstr(out, "\"file_version\": \"brain.Event:2\"") != NULL, "%s", out);
    cr_assert(strstr(out, "{\"tag\": \"examples/sec\", \"simple_value\": 1234.5}") != NULL, "%s", out);
    cr_assert(strstr(out, "\"step\": 30, \"session_log\": {\"status\": 1}") != NULL, "%s", out);
    cr_assert(strstr(out, "\"step\": 1099511627776") != NULL, "%s", out);
    free(out);

    /* the reader catches a flipped byte */
    snprintf(cmd, sizeof cmd, "f=$(ls '%s'/events.out.tfevents.*); printf '\\x55' | dd of=\"$f\" bs=1 seek=40 conv=notrunc 2>/dev/null;"
             " /usr/bin/python3 scripts/tb_read.py \"$f\" >/dev/null 2>&1; echo $?", dir);
    out = run_capture(cmd);
    cr_assert_str_eq(out, "1\n", "corrupted file accepted");
    free(out);
}
