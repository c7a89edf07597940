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
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/crc32c.h"
#include "shared/log.h"
#include "shared/regfile.h"

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
    for (int i = 0; i < n; i++) {
        if ((st = safetensors_writer_add_f32(w, t[i].name, t[i].shape, t[i].ndim, t[i].data)) != STATUS_OK)
            goto done;
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        char *key = dup_printf(CKPT_CRC_PREFIX "%s", t[i].name);
        if (!key) { st = FAIL(STATUS_NOMEM, "checkpoint: out of memory"); goto done; }
        snprintf(buf, sizeof buf, "%08x", crc32c(t[i].data, numel * sizeof(float)));
        st = safetensors_writer_meta(w, key, buf);
        free(key);
        if (st != STATUS_OK) goto done;
    }
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

/* A candidate that does not open (not a regular file, damaged, not ours) is
 * passed over with one line saying why, so an older one can be used. */
static int ckpt_valid(const char *path, char *why, size_t why_size)
{
    struct st_file *f = NULL;
    if (safetensors_open(&f, path) != STATUS_OK) {
        log_warn("skipping checkpoint candidate: %s", status_msg());
        if (!why[0]) snprintf(why, why_size, "%s", status_msg());
        return 0;
    }
    const char *fmt = safetensors_meta(f, "format");
    int ok = fmt && strcmp(fmt, "deeper-checkpoint") == 0;
    if (!ok) {
        log_warn("skipping checkpoint candidate %s: __metadata__.format is not \"deeper-checkpoint\"", path);
        if (!why[0]) snprintf(why, why_size, "%s: __metadata__.format is not \"deeper-checkpoint\"", path);
    }
    safetensors_free(&f);
    return ok;
}

status checkpoint_latest(const char *dir, char **out_path, int64_t *out_step)
{
    *out_path = NULL;
    int64_t tried = -1;   /* the step the index named, already tried */
    int skipped = 0;
    char why[512] = "";   /* why the newest candidate was passed over */
    /* the index first */
    char *ipath = dup_printf("%s/checkpoint", dir);
    if (!ipath) return FAIL(STATUS_NOMEM, "checkpoint: out of memory");
    FILE *fp = NULL;
    status ist = regfile_fopen(ipath, &fp);   /* a FIFO named `checkpoint` must not block us */
    free(ipath);
    if (ist != STATUS_OK && ist != STATUS_NOT_FOUND) log_warn("ignoring the checkpoint index: %s", status_msg());
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
            if (p && ckpt_valid(p, why, sizeof why)) {
                fclose(fp);
                *out_path = p;
                if (out_step) *out_step = s;
                return STATUS_OK;
            }
            free(p);
            tried = s;
            skipped++;
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
        if (steps.v[i] == tried) continue;
        char *p = dup_printf("%s/" CKPT_PREFIX "%" PRId64 CKPT_SUFFIX, dir, steps.v[i]);
        if (p && ckpt_valid(p, why, sizeof why)) {
            *out_path = p;
            if (out_step) *out_step = steps.v[i];
            free(steps.v);
            return STATUS_OK;
        }
        free(p);
        skipped++;
    }
    free(steps.v);
    if (skipped) return FAIL(STATUS_NOT_FOUND, "%s: no usable checkpoint (%d skipped; the newest: %s)", dir, skipped, why);
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

/* A metadata value for a message: at most 40 characters, control
 * characters as '?', so the message stays one line. */
static const char *meta_shown(const char *v, char *buf, size_t size)
{
    size_t o = 0;
    for (; v[o] && o + 1 < size && o < 40; o++) buf[o] = (unsigned char)v[o] < 0x20 || v[o] == 0x7f ? '?' : v[o];
    buf[o] = 0;
    if (v[o] && size > o + 4) strcpy(buf + o, "...");
    return buf;
}

/* __metadata__[k] as an integer in lo..hi: decimal digits only, an optional
 * '-' in front (no sign, spaces or suffix otherwise).  Absent: dflt, or an
 * error when `required`. */
static status meta_int(const struct st_file *f, const char *k, int required, int64_t lo, int64_t hi,
                       int64_t dflt, int64_t *out)
{
    const char *path = safetensors_path(f), *v = safetensors_meta(f, k);
    *out = dflt;
    if (!v) return required ? FAIL(STATUS_FORMAT, "%s: __metadata__.%s is missing", path, k) : STATUS_OK;
    const char *p = v + (v[0] == '-');
    int ok = *p != 0;
    for (const char *q = p; ok && *q; q++) ok = *q >= '0' && *q <= '9';
    errno = 0;
    long long x = ok ? strtoll(v, NULL, 10) : 0;
    if (!ok || errno == ERANGE || x < lo || x > hi) {
        char shown[48];
        return FAIL(STATUS_FORMAT, "%s: __metadata__.%s = \"%s\": expected a whole number in %" PRId64 "..%" PRId64,
                    path, k, meta_shown(v, shown, sizeof shown), lo, hi);
    }
    *out = x;
    return STATUS_OK;
}

status checkpoint_meta_read(const struct st_file *f, struct ckpt_meta *m)
{
    memset(m, 0, sizeof(*m));
    const char *path = safetensors_path(f);
    char shown[48];
    int64_t v;
    const char *fmt = safetensors_meta(f, "format");
    if (!fmt || strcmp(fmt, "deeper-checkpoint") != 0)
        return FAIL(STATUS_FORMAT, "%s: __metadata__.format is not \"deeper-checkpoint\"", path);
    TRY(meta_int(f, "format_version", 0, 1, 1000, 1, &v));
    if (v > atoi(CKPT_FORMAT_VERSION))
        return FAIL(STATUS_UNSUPPORTED, "%s: __metadata__.format_version = \"%" PRId64 "\": newer than this program "
                    "reads (%s)", path, v, CKPT_FORMAT_VERSION);
    TRY(meta_int(f, "step", 1, 0, INT64_MAX, 0, &m->step));
    m->model = safetensors_meta(f, "model");
    if (!m->model || !m->model[0]) return FAIL(STATUS_FORMAT, "%s: __metadata__.model is missing", path);
    TRY(meta_int(f, "num_classes", 1, 1, CKPT_MAX_CLASSES, 0, &v));
    m->num_classes = (int)v;
    m->class_names = safetensors_meta(f, "class_names");
    TRY(meta_int(f, "image_size", 1, 1, CKPT_MAX_IMAGE_SIZE, 0, &v));
    m->image_size = (int)v;
    TRY(meta_int(f, "channels", 0, 1, 3, 0, &v));
    if (v == 2) return FAIL(STATUS_FORMAT, "%s: __metadata__.channels = \"2\": expected 1 or 3", path);
    m->channels = (int)v;
    m->manifest_digest = safetensors_meta(f, "manifest_digest");
    const char *seed = safetensors_meta(f, "seed");
    if (seed) {
        int ok = seed[0] != 0;
        for (const char *q = seed; ok && *q; q++) ok = *q >= '0' && *q <= '9';
        errno = 0;
        m->seed = ok ? strtoull(seed, NULL, 10) : 0;
        if (!ok || errno == ERANGE)
            return FAIL(STATUS_FORMAT, "%s: __metadata__.seed = \"%s\": expected a whole number in 0..%" PRIu64, path,
                        meta_shown(seed, shown, sizeof shown), UINT64_MAX);
    }
    TRY(meta_int(f, "epoch", 0, 0, INT64_MAX, 0, &m->epoch));
    TRY(meta_int(f, "position", 0, 0, INT64_MAX, 0, &m->position));
    TRY(meta_int(f, "num_workers", 0, 0, 65536, 0, &v));
    m->num_workers = (int)v;
    TRY(meta_int(f, "batch_size", 0, 1, 1 << 24, 0, &v));
    m->batch_size = (int)v;
    const char *lr = safetensors_meta(f, "learning_rate");
    if (lr) {
        char *end = NULL;
        errno = 0;
        m->learning_rate = strtod(lr, &end);
        if (!lr[0] || *end || errno == ERANGE || !isfinite(m->learning_rate) || m->learning_rate < 0)
            return FAIL(STATUS_FORMAT, "%s: __metadata__.learning_rate = \"%s\": expected a finite number >= 0", path,
                        meta_shown(lr, shown, sizeof shown));
    }
    return STATUS_OK;
}

status checkpoint_verify(const struct st_file *f)
{
    const char *path = safetensors_path(f);
    size_t lp = strlen(CKPT_CRC_PREFIX);
    int nsum = 0, nmeta = safetensors_meta_count(f);
    for (int i = 0; i < nmeta; i++) {
        const char *k, *v;
        safetensors_meta_at(f, i, &k, &v);
        if (strncmp(k, CKPT_CRC_PREFIX, lp) != 0) continue;
        const struct st_tensor *t = safetensors_find(f, k + lp);
        if (!t) return FAIL(STATUS_CORRUPT, "%s: tensor %s has a checksum but is not in the file (renamed or removed?)",
                            path, k + lp);
        int ok = strlen(v) == 8;
        for (int j = 0; ok && j < 8; j++) ok = isxdigit((unsigned char)v[j]);
        if (!ok) {
            char shown[48];
            return FAIL(STATUS_FORMAT, "%s: __metadata__.%s = \"%s\": expected 8 hex digits", path, k,
                        meta_shown(v, shown, sizeof shown));
        }
        uint32_t want = (uint32_t)strtoul(v, NULL, 16);
        uint32_t got = 0;
        const unsigned char *d = t->data;
        for (size_t o = 0; o < t->nbytes; o += (size_t)1 << 26)   /* 64 MiB at a time */
            got = crc32c_update(got, d + o, t->nbytes - o < ((size_t)1 << 26) ? t->nbytes - o : (size_t)1 << 26);
        if (got != want)
            return FAIL(STATUS_CORRUPT, "%s: tensor %s: content checksum mismatch (crc32c %08x, recorded %08x): "
                        "the file was changed or damaged", path, k + lp, got, want);
        nsum++;
    }
    int64_t version = 1;
    TRY(meta_int(f, "format_version", 0, 1, 1000, 1, &version));
    int n = safetensors_count(f);
    if (nsum == n) return STATUS_OK;
    if (version >= 2 || nsum > 0) {
        for (int i = 0; i < n; i++) {
            const struct st_tensor *t = safetensors_at(f, i);
            char *key = dup_printf(CKPT_CRC_PREFIX "%s", t->name);
            if (!key) return FAIL(STATUS_NOMEM, "checkpoint: out of memory");
            int has = safetensors_meta(f, key) != NULL;
            free(key);
            if (!has)
                return FAIL(STATUS_CORRUPT, "%s: tensor %s has no checksum in __metadata__ (added or renamed?)", path,
                            t->name);
        }
    }
    log_info("%s: format %" PRId64 " checkpoint without content checksums: loaded unverified", path, version);
    return STATUS_OK;
}

status checkpoint_open(const char *path, struct st_file **out, struct ckpt_meta *meta)
{
    *out = NULL;
    struct st_file *f = NULL;
    TRY(safetensors_open(&f, path));
    status st = checkpoint_meta_read(f, meta);
    if (st == STATUS_OK) st = checkpoint_verify(f);
    if (st != STATUS_OK) { safetensors_free(&f); return st; }
    *out = f;
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
