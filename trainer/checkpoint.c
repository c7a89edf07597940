/*
 * checkpoint.c — save, find, read and restore checkpoints (see checkpoint.h
 * and proto/checkpoint.md).
 *
 * The index file `checkpoint` uses TF's text format so TF-literate users
 * recognise it:
 *     model_checkpoint_path: "model.ckpt-200.safetensors"
 *     all_model_checkpoint_paths: "model.ckpt-100.safetensors"
 *     all_model_checkpoint_paths: "model.ckpt-200.safetensors"
 * Paths are relative to the directory.  Pruning lists the directory, so
 * checkpoints left by an earlier crash between rename and prune are removed
 * by the next save as well.  Leftover "*.tmp.<pid>" files from a killed save
 * are removed on save too.
 */
#include "trainer/checkpoint.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CKPT_PREFIX "model.ckpt-"
#define CKPT_SUFFIX ".safetensors"

/* step of "model.ckpt-STEP.safetensors", or -1 */
static int64_t ckpt_name_step(const char *name)
{
    size_t lp = strlen(CKPT_PREFIX), ls = strlen(CKPT_SUFFIX), n = strlen(name);
    if (n <= lp + ls || strncmp(name, CKPT_PREFIX, lp) != 0 || strcmp(name + n - ls, CKPT_SUFFIX) != 0)
        return -1;
    int64_t v = 0;
    for (size_t i = lp; i < n - ls; i++) {
        if (name[i] < '0' || name[i] > '9' || v > INT64_MAX / 10 - 10) return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

struct step_list { int64_t *v; int n, cap; };

static status list_ckpts(const char *dir, struct step_list *out, int remove_tmp)
{
    out->v = NULL; out->n = out->cap = 0;
    DIR *d = opendir(dir);
    if (!d) return FAIL(errno == ENOENT ? STATUS_NOT_FOUND : STATUS_IO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (remove_tmp && strncmp(e->d_name, CKPT_PREFIX, strlen(CKPT_PREFIX)) == 0 &&
            strstr(e->d_name, CKPT_SUFFIX ".tmp.")) {
            /* a save killed before its rename; never a complete checkpoint */
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            int pid = atoi(strstr(e->d_name, ".tmp.") + 5);
            if (pid != (int)getpid()) unlink(p);
            continue;
        }
        int64_t s = ckpt_name_step(e->d_name);
        if (s < 0) continue;
        if (out->n == out->cap) {
            int cap = out->cap ? out->cap * 2 : 16;
            int64_t *v = realloc(out->v, (size_t)cap * sizeof(*v));
            if (!v) { closedir(d); free(out->v); return FAIL(STATUS_NOMEM, "%s: out of memory", dir); }
            out->v = v; out->cap = cap;
        }
        out->v[out->n++] = s;
    }
    closedir(d);
    return STATUS_OK;
}

static int i64_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

status checkpoint_save(const char *train_dir, const struct ckpt_meta *m,
                       const struct ckpt_tensor *t, int n, int keep, char **out_path)
{
    status st = STATUS_OK;
    struct st_writer *w = NULL;
    char *path = NULL, *index = NULL, *ipath = NULL;
    struct step_list steps = { 0 };
    char buf[64];

    path = dup_printf("%s/" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX, train_dir, m->step);
    if (!path) { st = FAIL(STATUS_NOMEM, "checkpoint: out of memory"); goto done; }
    if ((st = safetensors_writer_new(&w)) != STATUS_OK) goto done;
    for (int i = 0; i < n; i++)
        if ((st = safetensors_writer_add_f32(w, t[i].name, t[i].shape, t[i].ndim, t[i].data)) != STATUS_OK)
            goto done;
#define META_S(k, v) do { const char *v_ = (v); if (v_ && (st = safetensors_writer_meta(w, k, v_)) != STATUS_OK) goto done; } while (0)
#define META_I(k, fmt, v) do { snprintf(buf, sizeof buf, fmt, v); if ((st = safetensors_writer_meta(w, k, buf)) != STATUS_OK) goto done; } while (0)
    META_S("format", "deeper-checkpoint");
    META_S("format_version", CKPT_FORMAT_VERSION);
    META_I("step", "%" PRId64, m->step);
    META_S("model", m->model);
    META_I("num_classes", "%d", m->num_classes);
    META_S("class_names", m->class_names);
    META_I("image_size", "%d", m->image_size);
    META_I("channels", "%d", m->channels);
    META_S("manifest_digest", m->manifest_digest);
    META_I("seed", "%" PRIu64, m->seed);
    META_I("epoch", "%" PRId64, m->epoch);
    META_I("position", "%" PRId64, m->position);
    META_I("num_workers", "%d", m->num_workers);
    META_I("batch_size", "%d", m->batch_size);
    META_I("learning_rate", "%.9g", m->learning_rate);
#undef META_S
#undef META_I
    if ((st = safetensors_writer_save(w, path)) != STATUS_OK) goto done;

    /* index, then prune */
    if ((st = list_ckpts(train_dir, &steps, 1)) != STATUS_OK) goto done;
    if (steps.n > 1) qsort(steps.v, (size_t)steps.n, sizeof(int64_t), i64_cmp);
    int first = (keep > 0 && steps.n > keep) ? steps.n - keep : 0;
    size_t cap = 128 + (size_t)(steps.n - first) * 96;
    index = malloc(cap);
    ipath = dup_printf("%s/checkpoint", train_dir);
    if (!index || !ipath) { st = FAIL(STATUS_NOMEM, "checkpoint: out of memory"); goto done; }
    size_t o = (size_t)snprintf(index, cap, "model_checkpoint_path: \"" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX "\"\n", m->step);
    for (int i = first; i < steps.n; i++)
        o += (size_t)snprintf(index + o, cap - o, "all_model_checkpoint_paths: \"" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX "\"\n", steps.v[i]);
    if ((st = safetensors_write_file_atomic(ipath, index, o)) != STATUS_OK) goto done;
    for (int i = 0; i < first; i++) {
        if (steps.v[i] == m->step) continue;
        char *old = dup_printf("%s/" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX, train_dir, steps.v[i]);
        if (old) { unlink(old); free(old); }
    }
    if (out_path) { *out_path = path; path = NULL; }
done:
    safetensors_writer_free(&w);
    free(path); free(index); free(ipath); free(steps.v);
    return st;
}

static int ckpt_valid(const char *path)
{
    struct st_file *f = NULL;
    if (safetensors_open(&f, path) != STATUS_OK) return 0;
    const char *fmt = safetensors_meta(f, "format");
    int ok = fmt && strcmp(fmt, "deeper-checkpoint") == 0;
    safetensors_close(&f);
    return ok;
}

status checkpoint_latest(const char *dir, char **out_path, int64_t *out_step)
{
    *out_path = NULL;
    /* the index first */
    char *ipath = dup_printf("%s/checkpoint", dir);
    if (!ipath) return FAIL(STATUS_NOMEM, "checkpoint: out of memory");
    FILE *fp = fopen(ipath, "r");
    free(ipath);
    if (fp) {
        char line[1024];
        while (fgets(line, sizeof line, fp)) {
            const char *key = "model_checkpoint_path: \"";
            if (strncmp(line, key, strlen(key)) != 0) continue;
            char *name = line + strlen(key);
            char *q = strchr(name, '"');
            if (!q) break;
            *q = 0;
            int64_t s = ckpt_name_step(name);
            if (s < 0 || strchr(name, '/')) break;
            char *p = dup_printf("%s/%s", dir, name);
            if (p && ckpt_valid(p)) {
                fclose(fp);
                *out_path = p;
                if (out_step) *out_step = s;
                return STATUS_OK;
            }
            free(p);
            break;
        }
        fclose(fp);
    }
    /* fall back to the newest valid file */
    struct step_list steps;
    status st = list_ckpts(dir, &steps, 0);
    if (st == STATUS_NOT_FOUND) return FAIL(STATUS_NOT_FOUND, "%s: no such directory, so no checkpoint", dir);
    if (st != STATUS_OK) return st;
    if (steps.n > 1) qsort(steps.v, (size_t)steps.n, sizeof(int64_t), i64_cmp);
    for (int i = steps.n - 1; i >= 0; i--) {
        char *p = dup_printf("%s/" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX, dir, steps.v[i]);
        if (p && ckpt_valid(p)) {
            *out_path = p;
            if (out_step) *out_step = steps.v[i];
            free(steps.v);
            return STATUS_OK;
        }
        free(p);
    }
    free(steps.v);
    return FAIL(STATUS_NOT_FOUND, "%s: no checkpoint file found", dir);
}

status checkpoint_remove_all(const char *dir, int *removed)
{
    *removed = 0;
    struct step_list steps;
    status st = list_ckpts(dir, &steps, 1);
    if (st == STATUS_NOT_FOUND) return STATUS_OK;
    TRY(st);
    for (int i = 0; i < steps.n; i++) {
        char *p = dup_printf("%s/" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX, dir, steps.v[i]);
        if (p && unlink(p) == 0) (*removed)++;
        free(p);
    }
    free(steps.v);
    char *ip = dup_printf("%s/checkpoint", dir);
    if (ip) { unlink(ip); free(ip); }
    return STATUS_OK;
}

static int64_t meta_i64(const struct st_file *f, const char *k, int64_t dflt)
{
    const char *v = safetensors_meta(f, k);
    return v ? strtoll(v, NULL, 10) : dflt;
}

status checkpoint_meta_read(const struct st_file *f, struct ckpt_meta *m)
{
    memset(m, 0, sizeof(*m));
    const char *fmt = safetensors_meta(f, "format");
    if (!fmt || strcmp(fmt, "deeper-checkpoint") != 0)
        return FAIL(STATUS_FORMAT, "checkpoint: __metadata__.format is not \"deeper-checkpoint\"");
    const char *step = safetensors_meta(f, "step");
    if (!step) return FAIL(STATUS_FORMAT, "checkpoint: __metadata__.step missing");
    m->step = strtoll(step, NULL, 10);
    m->model = safetensors_meta(f, "model");
    if (!m->model) return FAIL(STATUS_FORMAT, "checkpoint: __metadata__.model missing");
    m->num_classes = (int)meta_i64(f, "num_classes", 0);
    m->class_names = safetensors_meta(f, "class_names");
    m->image_size = (int)meta_i64(f, "image_size", 0);
    m->channels = (int)meta_i64(f, "channels", 0);
    m->manifest_digest = safetensors_meta(f, "manifest_digest");
    const char *seed = safetensors_meta(f, "seed");
    m->seed = seed ? strtoull(seed, NULL, 10) : 0;
    m->epoch = meta_i64(f, "epoch", 0);
    m->position = meta_i64(f, "position", 0);
    m->num_workers = (int)meta_i64(f, "num_workers", 0);
    m->batch_size = (int)meta_i64(f, "batch_size", 0);
    const char *lr = safetensors_meta(f, "learning_rate");
    m->learning_rate = lr ? strtod(lr, NULL) : 0;
    return STATUS_OK;
}

status checkpoint_restore(const struct st_file *f, const struct ckpt_tensor *t, int n,
                          const char *prefix, int fallback_plain)
{
    char name[512];
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", t[i].name);
        const struct st_tensor *s = safetensors_find(f, name);
        if (!s && fallback_plain) { snprintf(name, sizeof name, "%s", t[i].name); s = safetensors_find(f, name); }
        if (!s) return FAIL(STATUS_NOT_FOUND, "checkpoint: tensor %s%s missing", prefix ? prefix : "", t[i].name);
        int same = s->dtype == ST_F32 && s->ndim == t[i].ndim;
        for (int d = 0; same && d < t[i].ndim; d++) same = s->shape[d] == t[i].shape[d];
        if (!same) {
            char a[96] = "[", b[96] = "[";
            for (int d = 0; d < s->ndim; d++) snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", d ? ", " : "", (long long)s->shape[d]);
            for (int d = 0; d < t[i].ndim; d++) snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", d ? ", " : "", (long long)t[i].shape[d]);
            return FAIL(STATUS_FORMAT, "checkpoint: tensor %s has %s shape %s], the model needs F32 %s]",
                        name, st_dtype_name(s->dtype), a, b);
        }
        TRY(safetensors_read_f32(f, name, t[i].data, numel));
    }
    return STATUS_OK;
}

status checkpoint_class_names(const char *json, char ***out, int *num)
{
    *out = NULL; *num = 0;
    if (!json) return FAIL(STATUS_FORMAT, "checkpoint: no class_names in __metadata__");
    cJSON *a = cJSON_Parse(json);
    if (!cJSON_IsArray(a)) { cJSON_Delete(a); return FAIL(STATUS_FORMAT, "checkpoint: class_names is not a JSON array"); }
    int n = cJSON_GetArraySize(a);
    char **v = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!v) { cJSON_Delete(a); return FAIL(STATUS_NOMEM, "checkpoint: out of memory"); }
    int i = 0;
    for (cJSON *it = a->child; it; it = it->next, i++) {
        v[i] = strdup(cJSON_IsString(it) ? it->valuestring : "?");
        if (!v[i]) { checkpoint_names_free(v, i); cJSON_Delete(a); return FAIL(STATUS_NOMEM, "checkpoint: out of memory"); }
    }
    cJSON_Delete(a);
    *out = v; *num = n;
    return STATUS_OK;
}

void checkpoint_names_free(char **names, int num)
{
    if (!names) return;
    for (int i = 0; i < num; i++) free(names[i]);
    free(names);
}
