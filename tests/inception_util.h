/*
 * inception_util.h — helpers shared by the Inception v3 tests
 * (tests/test_inception_*.c; header-only, static functions).
 *
 * The torchvision references are generated at test time by
 * scripts/ref/inception_ref.py (Debian's /usr/bin/python3 with torch and
 * torchvision) into one directory per user and script version under
 * $TMPDIR, guarded by a lock file so that parallel test processes generate
 * it once.  The test is skipped, with the reason, only when torch or
 * torchvision is not installed (pyref_need); a reference script that fails
 * or a file the safetensors reader refuses fails the test.  Comparisons go
 * through tests/check_util.h (NaN or Inf fails).
 */
#ifndef DEEPER_TESTS_INCEPTION_UTIL_H
#define DEEPER_TESTS_INCEPTION_UTIL_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/log.h"
#include "shared/safetensors.h"
#include "tests/check_util.h"
#include "tests/pyref_util.h"
#include "trainer/backend.h"
#include "trainer/graph.h"
#include "trainer/inception_v3.h"
#include "trainer/pretrained.h"

#define IREF_CLASSES 11

static inline const char *iref_root(void)
{
    const char *r = getenv("DEEPER_ROOT");
    return r && *r ? r : ".";
}

static inline const char *iref_tmp(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Directory holding weights/eval/train.safetensors, generated on first use.
 * Skips the test when torch/torchvision is missing; fails it when the
 * reference cannot be generated for any other reason. */
static inline const char *iref_dir(void)
{
    static char dir[1024];
    char script[900], lock[1100], cmd[8192];
    struct stat sb;
    snprintf(script, sizeof script, "%s/scripts/ref/inception_ref.py", iref_root());
    cr_assert(stat(script, &sb) == 0, "%s: missing (DEEPER_ROOT=%s)", script, iref_root());
    pyref_need("torch torchvision");
    snprintf(dir, sizeof dir, "%s/deeper-iref-%u-%lld-%lld", iref_tmp(), (unsigned)getuid(),
             (long long)sb.st_size, (long long)sb.st_mtime);
    snprintf(lock, sizeof lock, "%s.lock", dir);
    int fd = open(lock, O_CREAT | O_RDWR, 0600);
    cr_assert(fd >= 0, "%s: cannot open the lock file", lock);
    flock(fd, LOCK_EX);
    char done[1100];
    snprintf(done, sizeof done, "%s/train.safetensors", dir);
    if (stat(done, &sb) != 0) {
        snprintf(cmd, sizeof cmd,
                 "REF_THREADS=2 /usr/bin/python3 '%s' gen --out '%s.tmp' --num_classes %d >&2 && "
                 "rm -rf '%s' && mv '%s.tmp' '%s'",
                 script, dir, IREF_CLASSES, dir, dir, dir);
        int rc = system(cmd);
        if (rc != 0) {
            flock(fd, LOCK_UN);
            close(fd);
            cr_assert_fail("reference script failed (status %d): %s", rc, cmd);
        }
    }
    flock(fd, LOCK_UN);
    close(fd);
    return dir;
}

static inline struct st_file *iref_open(const char *name)
{
    const char *d = iref_dir();
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", d, name);
    struct st_file *f = NULL;
    cr_assert_eq(safetensors_open(&f, path), STATUS_OK, "reference %s: %s", path, status_msg());
    return f;
}

static inline const struct st_tensor *iref_get(const struct st_file *f, const char *name)
{
    const struct st_tensor *t = safetensors_find(f, name);
    cr_assert_not_null(t, "reference tensor %s missing", name);
    return t;
}

/* max |got - ref| / max |ref|; INFINITY when either side has a NaN or Inf */
static inline double iref_rel_err(const float *got, const float *ref, size_t n, size_t *where)
{
    return check_err_f32(got, ref, n, CHECK_NORM, 0, where);
}

/* Host copy of a value (caller frees). */
static inline float *iref_value(struct graph *g, int id, size_t *n)
{
    struct tensor t = graph_value(g, id);
    size_t k = (size_t)tensor_numel(&t);
    cr_assert(tensor_is_dense(&t, LAYOUT_NCHW), "value %d is not dense", id);
    float *h = malloc(k * sizeof *h);
    struct backend *be = graph_backend(g);
    cr_assert_eq(be->ops->copy_d2h(be, h, t.data, k * sizeof *h), STATUS_OK, "%s", status_msg());
    if (n) *n = k;
    return h;
}

/* A finalised Inception v3 graph on a new 2-thread CPU backend. */
static inline struct graph *iref_graph(struct backend **be, int classes, int size, int batch, unsigned flags,
                                float keep, int *aux_id)
{
    cr_assert_eq(backend_new_cpu(be, 2), STATUS_OK, "%s", status_msg());
    struct graph_config cfg = graph_config_default();
    cfg.batch = batch;
    cfg.flags = flags;
    struct graph *g = NULL;
    cr_assert_eq(graph_new(&g, *be, &cfg), STATUS_OK, "%s", status_msg());
    struct inception_v3_options o = inception_v3_options_default();
    o.dropout_keep = keep;
    o.out_aux_logits = aux_id;
    cr_assert_eq(inception_v3_build_opts(g, classes, size, 3, &o), STATUS_OK, "%s", status_msg());
    cr_assert_eq(graph_finalize(g), STATUS_OK, "%s", status_msg());
    return g;
}

/* Smoothed softmax cross-entropy of one [n, c] logits block (mean). */
static inline double iref_xent(const float *logits, const int32_t *labels, int n, int c, double s)
{
    double tot = 0;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * c;
        double m = l[0], z = 0, sum = 0;
        for (int j = 1; j < c; j++) if (l[j] > m) m = l[j];
        for (int j = 0; j < c; j++) z += exp(l[j] - m);
        double lz = log(z) + m;
        for (int j = 0; j < c; j++) {
            double t = (j == labels[i] ? 1.0 - s : 0.0) + s / c;
            sum += t * (lz - l[j]);
        }
        tot += sum;
    }
    return tot / n;
}

#endif
