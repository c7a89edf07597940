/*
 * safetensors.c — the safetensors writer and validating reader.
 *
 * See safetensors.h for the format and the checks.  The header JSON is built
 * and parsed with cJSON.  Numbers in the header are doubles in cJSON; we
 * accept only integral values in [0, 2^53] for shapes and offsets, which
 * covers every real file and rejects fractional or negative ones.  The reader
 * maps the file with mmap (read-only, private), so opening a large checkpoint
 * costs no copy; tensor data pointers stay valid until safetensors_free.
 */
#include "shared/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shared/endian.h"
#include "shared/regfile.h"

#define ST_MAX_HEADER 100000000ull

static const char *const dtype_names[ST_DTYPE_COUNT] = {
    "BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64",
};
static const size_t dtype_sizes[ST_DTYPE_COUNT] = { 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8 };

const char *st_dtype_name(enum st_dtype dt)
{
    return (unsigned)dt < ST_DTYPE_COUNT ? dtype_names[dt] : NULL;
}

size_t st_dtype_size(enum st_dtype dt)
{
    return (unsigned)dt < ST_DTYPE_COUNT ? dtype_sizes[dt] : 0;
}

static int dtype_parse(const char *s)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtype_names[i]) == 0) return i;
    return -1;
}

/* numel of a shape with overflow check; -1 on overflow. */
static int64_t shape_numel(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

/* ------------------------------------------------------------------ writer */

struct st_entry {
    struct st_tensor t;
    char *name;
};

struct st_writer {
    struct st_entry *e;
    int n, cap;
    char **mkeys, **mvals;
    int nmeta, capmeta;
};

status safetensors_writer_new(struct st_writer **out)
{
    *out = calloc(1, sizeof(**out));
    if (!*out) return FAIL(STATUS_NOMEM, "safetensors: out of memory");
    return STATUS_OK;
}

void safetensors_writer_free(struct st_writer **pw)
{
    struct st_writer *w = *pw;
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    for (int i = 0; i < w->nmeta; i++) { free(w->mkeys[i]); free(w->mvals[i]); }
    free(w->e); free(w->mkeys); free(w->mvals);
    free(w);
    *pw = NULL;
}

status safetensors_writer_add(struct st_writer *w, const char *name, enum st_dtype dt,
                              const int64_t *shape, int ndim, const void *data)
{
    if (!name || !*name) return FAIL(STATUS_USAGE, "safetensors: empty tensor name");
    if (strcmp(name, "__metadata__") == 0)
        return FAIL(STATUS_USAGE, "safetensors: \"__metadata__\" is not a tensor name");
    if ((unsigned)dt >= ST_DTYPE_COUNT) return FAIL(STATUS_USAGE, "safetensors: %s: bad dtype", name);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return FAIL(STATUS_USAGE, "safetensors: %s: %d dimensions (max %d)", name, ndim, ST_MAX_DIMS);
    int64_t numel = shape_numel(shape, ndim);
    if (numel < 0) return FAIL(STATUS_USAGE, "safetensors: %s: bad shape", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return FAIL(STATUS_USAGE, "safetensors: duplicate tensor name %s", name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        struct st_entry *e = realloc(w->e, (size_t)cap * sizeof(*e));
        if (!e) return FAIL(STATUS_NOMEM, "safetensors: out of memory");
        w->e = e; w->cap = cap;
    }
    struct st_entry *e = &w->e[w->n];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (!e->name) return FAIL(STATUS_NOMEM, "safetensors: out of memory");
    e->t.name = e->name;
    e->t.dtype = dt;
    e->t.ndim = ndim;
    for (int i = 0; i < ndim; i++) e->t.shape[i] = shape[i];
    e->t.data = data;
    e->t.nbytes = (size_t)numel * dtype_sizes[dt];
    if (e->t.nbytes && !data) { free(e->name); return FAIL(STATUS_USAGE, "safetensors: %s: no data", name); }
    w->n++;
    return STATUS_OK;
}

status safetensors_writer_add_f32(struct st_writer *w, const char *name, const int64_t *shape,
                                  int ndim, const float *data)
{
    return safetensors_writer_add(w, name, ST_F32, shape, ndim, data);
}

status safetensors_writer_meta(struct st_writer *w, const char *key, const char *value)
{
    if (!key || !value) return FAIL(STATUS_USAGE, "safetensors: NULL metadata key or value");
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->mkeys[i], key) == 0) {
            char *v = strdup(value);
            if (!v) return FAIL(STATUS_NOMEM, "safetensors: out of memory");
            free(w->mvals[i]); w->mvals[i] = v;
            return STATUS_OK;
        }
    if (w->nmeta == w->capmeta) {
        int cap = w->capmeta ? w->capmeta * 2 : 16;
        char **k = realloc(w->mkeys, (size_t)cap * sizeof(*k));
        if (!k) return FAIL(STATUS_NOMEM, "safetensors: out of memory");
        w->mkeys = k;
        char **v = realloc(w->mvals, (size_t)cap * sizeof(*v));
        if (!v) return FAIL(STATUS_NOMEM, "safetensors: out of memory");
        w->mvals = v;
        w->capmeta = cap;
    }
    w->mkeys[w->nmeta] = strdup(key);
    w->mvals[w->nmeta] = strdup(value);
    if (!w->mkeys[w->nmeta] || !w->mvals[w->nmeta]) {
        free(w->mkeys[w->nmeta]); free(w->mvals[w->nmeta]);
        return FAIL(STATUS_NOMEM, "safetensors: out of memory");
    }
    w->nmeta++;
    return STATUS_OK;
}

/* Reference writer order: larger element size first, then by name. */
static int entry_cmp(const void *a, const void *b)
{
    const struct st_entry *x = *(const struct st_entry *const *)a;
    const struct st_entry *y = *(const struct st_entry *const *)b;
    size_t sx = dtype_sizes[x->t.dtype], sy = dtype_sizes[y->t.dtype];
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static status write_all(int fd, const void *p, size_t n, const char *path)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return FAIL(STATUS_IO, "%s: write: %s", path, strerror(errno));
        }
        c += k; n -= (size_t)k;
    }
    return STATUS_OK;
}

static status fsync_dir_of(const char *path)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof(buf)) return FAIL(STATUS_IO, "%s: path too long", path);
    strcpy(buf, path);
    const char *dir = dirname(buf);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return FAIL(STATUS_IO, "%s: open directory: %s", dir, strerror(errno));
    int rc = fsync(dfd);
    int err = errno;
    close(dfd);
    if (rc != 0 && err != EINVAL) return FAIL(STATUS_IO, "%s: fsync directory: %s", dir, strerror(err));
    return STATUS_OK;
}

/* Write pieces to path.tmp.<pid>, fsync, rename, fsync dir. */
static status write_atomic(const char *path, const void *const *parts, const size_t *sizes, int nparts)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return FAIL(STATUS_IO, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return FAIL(STATUS_IO, "%s: create: %s", tmp, strerror(errno));
    status st = STATUS_OK;
    for (int i = 0; i < nparts && st == STATUS_OK; i++)
        if (sizes[i]) st = write_all(fd, parts[i], sizes[i], tmp);
    if (st == STATUS_OK && fsync(fd) != 0) st = FAIL(STATUS_IO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == STATUS_OK) st = FAIL(STATUS_IO, "%s: close: %s", tmp, strerror(errno));
    if (st == STATUS_OK && rename(tmp, path) != 0)
        st = FAIL(STATUS_IO, "%s: rename from %s: %s", path, tmp, strerror(errno));
    if (st != STATUS_OK) { unlink(tmp); return st; }
    return fsync_dir_of(path);
}

status safetensors_write_file_atomic(const char *path, const void *data, size_t n)
{
    const void *parts[1] = { data };
    size_t sizes[1] = { n };
    return write_atomic(path, parts, sizes, 1);
}

status safetensors_writer_save(struct st_writer *w, const char *path)
{
    status st = STATUS_OK;
    cJSON *root = NULL;
    char *json = NULL, *header = NULL;
    struct st_entry **order = NULL;
    const void **parts = NULL;
    size_t *sizes = NULL;

    order = malloc((size_t)(w->n ? w->n : 1) * sizeof(*order));
    parts = malloc((size_t)(w->n + 2) * sizeof(*parts));
    sizes = malloc((size_t)(w->n + 2) * sizeof(*sizes));
    root = cJSON_CreateObject();
    if (!order || !parts || !sizes || !root) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
    for (int i = 0; i < w->n; i++) order[i] = &w->e[i];
    qsort(order, (size_t)w->n, sizeof(*order), entry_cmp);

    if (w->nmeta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        if (!meta) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
        for (int i = 0; i < w->nmeta; i++)
            if (!cJSON_AddStringToObject(meta, w->mkeys[i], w->mvals[i])) {
                st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done;
            }
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const struct st_tensor *t = &order[i]->t;
        cJSON *o = cJSON_AddObjectToObject(root, t->name);
        cJSON *shape = o ? cJSON_AddArrayToObject(o, "shape") : NULL;
        cJSON *offs = NULL;
        if (!o || !cJSON_AddStringToObject(o, "dtype", dtype_names[t->dtype]) || !shape) {
            st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done;
        }
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        offs = cJSON_AddArrayToObject(o, "data_offsets");
        if (!offs) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + t->nbytes)));
        parts[i + 2] = t->data;
        sizes[i + 2] = t->nbytes;
        off += t->nbytes;
    }
    json = cJSON_PrintUnformatted(root);
    if (!json) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
    size_t jlen = strlen(json);
    size_t hlen = (jlen + 7) & ~(size_t)7;      /* data buffer starts 8-aligned */
    header = malloc(8 + hlen);
    if (!header) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
    le_put_u64((uint8_t *)header, hlen);
    memcpy(header + 8, json, jlen);
    memset(header + 8 + jlen, ' ', hlen - jlen);
    parts[0] = header; sizes[0] = 8 + hlen;
    parts[1] = NULL; sizes[1] = 0;
    st = write_atomic(path, parts, sizes, w->n + 2);
done:
    cJSON_Delete(root);
    free(json); free(header); free(order); free(parts); free(sizes);
    return st;
}

/* ------------------------------------------------------------------ reader */

struct st_file {
    char *path;
    void *map;
    size_t size;
    struct st_tensor *t;       /* sorted by data offset */
    char **names;
    int n;
    char **mkeys, **mvals;
    int nmeta;
    int *by_name;              /* indices into t sorted by name */
};

void safetensors_free(struct st_file **pf)
{
    struct st_file *f = *pf;
    if (!f) return;
    if (f->map && f->map != MAP_FAILED) munmap(f->map, f->size);
    for (int i = 0; i < f->n; i++) free(f->names[i]);
    for (int i = 0; i < f->nmeta; i++) { free(f->mkeys[i]); free(f->mvals[i]); }
    free(f->names); free(f->t); free(f->mkeys); free(f->mvals); free(f->by_name); free(f->path);
    free(f);
    *pf = NULL;
}

static int json_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

struct span { uint64_t begin, end; int idx; };

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int name_idx_cmp(const void *a, const void *b, void *ctx)
{
    const struct st_file *f = ctx;
    return strcmp(f->t[*(const int *)a].name, f->t[*(const int *)b].name);
}

status safetensors_open(struct st_file **out, const char *path)
{
    status st = STATUS_OK;
    cJSON *root = NULL;
    struct span *spans = NULL;
    struct st_tensor *tmp = NULL;
    char **tmpnames = NULL;
    int fd = -1, n = 0, count = 0, mcount = 0;
    *out = NULL;
    struct st_file *f = calloc(1, sizeof(*f));
    if (!f || !(f->path = strdup(path))) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }

    struct stat sb;
    if ((st = regfile_open(path, &fd, &sb)) != STATUS_OK) goto fail;   /* a FIFO must not block us */
    f->size = (size_t)sb.st_size;
    if (f->size < 8) { st = FAIL(STATUS_FORMAT, "%s: %zu bytes, too short for a safetensors header", path, f->size); goto fail; }
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) { f->map = NULL; st = FAIL(STATUS_IO, "%s: mmap: %s", path, strerror(errno)); goto fail; }
    close(fd); fd = -1;

    const unsigned char *b = f->map;
    uint64_t hn = le_get_u64(b);
    if (hn > ST_MAX_HEADER) { st = FAIL(STATUS_FORMAT, "%s: header length %llu exceeds %llu", path, (unsigned long long)hn, ST_MAX_HEADER); goto fail; }
    if (hn > f->size - 8) { st = FAIL(STATUS_FORMAT, "%s: header length %llu exceeds the file (%zu bytes)", path, (unsigned long long)hn, f->size); goto fail; }
    const char *hj = (const char *)b + 8;
    if (hn == 0 || hj[0] != '{') { st = FAIL(STATUS_FORMAT, "%s: header does not start with '{'", path); goto fail; }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hj, (size_t)hn, &end, 0);
    if (!root || !cJSON_IsObject(root)) { st = FAIL(STATUS_FORMAT, "%s: header is not a JSON object", path); goto fail; }
    for (const char *p = end; p && p < hj + hn; p++)
        if (*p != ' ' && *p != '\0') { st = FAIL(STATUS_FORMAT, "%s: bytes after the header JSON", path); goto fail; }

    for (cJSON *it = root->child; it; it = it->next) {
        if (!it->string) { st = FAIL(STATUS_FORMAT, "%s: header entry without a name", path); goto fail; }
        if (strcmp(it->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(it)) { st = FAIL(STATUS_FORMAT, "%s: __metadata__ is not an object", path); goto fail; }
            for (cJSON *m = it->child; m; m = m->next) mcount++;
        } else count++;
    }
    f->t = calloc((size_t)(count ? count : 1), sizeof(*f->t));
    f->names = calloc((size_t)(count ? count : 1), sizeof(*f->names));
    f->by_name = calloc((size_t)(count ? count : 1), sizeof(int));
    f->mkeys = calloc((size_t)(mcount ? mcount : 1), sizeof(char *));
    f->mvals = calloc((size_t)(mcount ? mcount : 1), sizeof(char *));
    spans = calloc((size_t)(count ? count : 1), sizeof(*spans));
    tmp = calloc((size_t)(count ? count : 1), sizeof(*tmp));
    tmpnames = calloc((size_t)(count ? count : 1), sizeof(*tmpnames));
    if (!f->t || !f->names || !f->by_name || !f->mkeys || !f->mvals || !spans || !tmp || !tmpnames) {
        st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail;
    }

    int seen_meta = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (seen_meta++) { st = FAIL(STATUS_FORMAT, "%s: duplicate __metadata__", path); goto fail; }
            for (cJSON *m = it->child; m; m = m->next) {
                if (!cJSON_IsString(m) || !m->string) {
                    st = FAIL(STATUS_FORMAT, "%s: __metadata__.%s is not a string", path, m->string ? m->string : "?");
                    goto fail;
                }
                for (int k = 0; k < f->nmeta; k++)
                    if (strcmp(f->mkeys[k], m->string) == 0) {
                        st = FAIL(STATUS_FORMAT, "%s: duplicate metadata key %s", path, m->string); goto fail;
                    }
                f->mkeys[f->nmeta] = strdup(m->string);
                f->mvals[f->nmeta] = strdup(m->valuestring);
                f->nmeta++;
                if (!f->mkeys[f->nmeta - 1] || !f->mvals[f->nmeta - 1]) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
            }
            continue;
        }
        const char *name = it->string;
        if (!cJSON_IsObject(it)) { st = FAIL(STATUS_FORMAT, "%s: tensor %s: not an object", path, name); goto fail; }
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt)) { st = FAIL(STATUS_FORMAT, "%s: tensor %s: dtype missing", path, name); goto fail; }
        int dti = dtype_parse(dt->valuestring);
        if (dti < 0) { st = FAIL(STATUS_UNSUPPORTED, "%s: tensor %s: unsupported dtype %s", path, name, dt->valuestring); goto fail; }
        if (!cJSON_IsArray(shape)) { st = FAIL(STATUS_FORMAT, "%s: tensor %s: shape missing", path, name); goto fail; }
        int nd = cJSON_GetArraySize(shape);
        if (nd > ST_MAX_DIMS) { st = FAIL(STATUS_UNSUPPORTED, "%s: tensor %s: %d dimensions (max %d)", path, name, nd, ST_MAX_DIMS); goto fail; }
        struct st_tensor *t = &tmp[n];
        t->dtype = (enum st_dtype)dti;
        t->ndim = nd;
        int d = 0;
        for (cJSON *s = shape->child; s; s = s->next, d++) {
            uint64_t v;
            if (!json_u64(s, &v) || v > (uint64_t)INT64_MAX) { st = FAIL(STATUS_FORMAT, "%s: tensor %s: bad shape entry", path, name); goto fail; }
            t->shape[d] = (int64_t)v;
        }
        int64_t numel = shape_numel(t->shape, nd);
        if (numel < 0 || (uint64_t)numel > UINT64_MAX / dtype_sizes[dti]) { st = FAIL(STATUS_FORMAT, "%s: tensor %s: shape overflows", path, name); goto fail; }
        if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
            !json_u64(offs->child, &spans[n].begin) || !json_u64(offs->child->next, &spans[n].end) ||
            spans[n].end < spans[n].begin) {
            st = FAIL(STATUS_FORMAT, "%s: tensor %s: bad data_offsets", path, name); goto fail;
        }
        uint64_t want = (uint64_t)numel * dtype_sizes[dti];
        if (spans[n].end - spans[n].begin != want) {
            st = FAIL(STATUS_CORRUPT, "%s: tensor %s: data_offsets span %llu bytes, shape needs %llu", path, name,
                      (unsigned long long)(spans[n].end - spans[n].begin), (unsigned long long)want);
            goto fail;
        }
        t->nbytes = (size_t)want;
        tmpnames[n] = strdup(name);
        if (!tmpnames[n]) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto fail; }
        spans[n].idx = n;
        n++;
    }

    /* contiguous from 0 once sorted, exact file size */
    qsort(spans, (size_t)n, sizeof(*spans), span_cmp);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (spans[i].begin != pos) {
            st = FAIL(STATUS_CORRUPT, "%s: tensor %s: data starts at %llu, expected %llu (offsets must be contiguous)",
                      path, tmpnames[spans[i].idx], (unsigned long long)spans[i].begin, (unsigned long long)pos);
            goto fail;
        }
        pos = spans[i].end;
    }
    if (8 + hn + pos != (uint64_t)f->size) {
        st = FAIL(STATUS_CORRUPT, "%s: file is %zu bytes, header says %llu", path, f->size,
                  (unsigned long long)(8 + hn + pos));
        goto fail;
    }
    const unsigned char *data = b + 8 + hn;
    for (int i = 0; i < n; i++) {
        int k = spans[i].idx;
        f->t[i] = tmp[k];
        f->names[i] = tmpnames[k]; tmpnames[k] = NULL;
        f->t[i].name = f->names[i];
        f->t[i].data = data + spans[i].begin;
    }
    f->n = n;
    for (int i = 0; i < n; i++) f->by_name[i] = i;
    qsort_r(f->by_name, (size_t)n, sizeof(int), name_idx_cmp, f);
    for (int i = 1; i < n; i++)
        if (strcmp(f->t[f->by_name[i]].name, f->t[f->by_name[i - 1]].name) == 0) {
            st = FAIL(STATUS_FORMAT, "%s: duplicate tensor name %s", path, f->t[f->by_name[i]].name); goto fail;
        }
    cJSON_Delete(root);
    free(spans); free(tmp); free(tmpnames);
    *out = f;
    return STATUS_OK;
fail:
    if (fd >= 0) close(fd);
    cJSON_Delete(root);
    if (tmpnames) for (int i = 0; i < n; i++) free(tmpnames[i]);
    free(spans); free(tmp); free(tmpnames);
    safetensors_free(&f);
    return st;
}

int safetensors_count(const struct st_file *f) { return f->n; }
const char *safetensors_path(const struct st_file *f) { return f->path; }

const struct st_tensor *safetensors_at(const struct st_file *f, int i)
{
    return (i >= 0 && i < f->n) ? &f->t[i] : NULL;
}

const struct st_tensor *safetensors_find(const struct st_file *f, const char *name)
{
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0) return &f->t[f->by_name[mid]];
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return NULL;
}

const char *safetensors_meta(const struct st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->mkeys[i], key) == 0) return f->mvals[i];
    return NULL;
}

int safetensors_meta_count(const struct st_file *f) { return f->nmeta; }

void safetensors_meta_at(const struct st_file *f, int i, const char **key, const char **value)
{
    *key = (i >= 0 && i < f->nmeta) ? f->mkeys[i] : NULL;
    *value = (i >= 0 && i < f->nmeta) ? f->mvals[i] : NULL;
}

static void shape_str(char *buf, size_t size, const int64_t *shape, int ndim)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, size - o, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < size) snprintf(buf + o, size - o, "]");
}

status safetensors_read_f32(const struct st_file *f, const char *name, float *dst, int64_t numel)
{
    const struct st_tensor *t = safetensors_find(f, name);
    if (!t) return FAIL(STATUS_NOT_FOUND, "%s: no tensor %s", f->path, name);
    if (t->dtype != ST_F32) return FAIL(STATUS_FORMAT, "%s: tensor %s is %s, expected F32", f->path, name, dtype_names[t->dtype]);
    if ((int64_t)(t->nbytes / 4) != numel) {
        char s[128];
        shape_str(s, sizeof(s), t->shape, t->ndim);
        return FAIL(STATUS_FORMAT, "%s: tensor %s has shape %s (%lld elements), expected %lld elements",
                    f->path, name, s, (long long)(t->nbytes / 4), (long long)numel);
    }
    memcpy(dst, t->data, t->nbytes);
    return STATUS_OK;
}
