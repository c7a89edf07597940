/*
 * manifest.c — manifest.json read/validate/write through cJSON (see
 * manifest.h and proto/manifest.md).
 *
 * Numbers are JSON numbers (doubles in cJSON), exact up to 2^53, which bounds
 * every count, and sums of counts are checked to stay below it; the seed is
 * written as a number when it fits, as a decimal string otherwise.  Checksums
 * are 8 lowercase hex digits.
 *
 * cJSON keeps every member of an object, a repeated key included, and finds
 * the first; so a second "train" would be silently ignored by one reader and
 * iterated by another.  Every object in the file is checked for repeated keys
 * before anything is read.  Uniqueness checks (keys, class names, shard
 * files) use a hash set, so 60,000 classes cost 60,000 insertions.
 *
 * manifest_check_records compares the manifest with the first record of each
 * shard (channels, storage, image size, label range): a manifest that
 * contradicts its records (3 channels for gray data, fewer classes than the
 * labels) is refused at open with one line instead of making every record
 * "bad" in the workers.
 */
#include "shared/manifest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXACT_MAX 9007199254740992.0   /* 2^53 */

#include "shared/shard.h"

/* ------------------------------------------------------------- string set */

/* Open addressing over borrowed strings (FNV-1a, linear probing). */
struct strset {
    const char **slot;
    size_t cap;
};

static uint64_t strset_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (; *k; k++) h = (h ^ (uint8_t)*k) * 1099511628211ull;
    return h;
}

static status strset_init(struct strset *s, size_t n)
{
    s->cap = 16;
    while (s->cap < 2 * n) s->cap *= 2;
    s->slot = calloc(s->cap, sizeof *s->slot);
    return s->slot ? STATUS_OK : FAIL(STATUS_NOMEM, "manifest: out of memory");
}

static void strset_free(struct strset *s) { free(s->slot); s->slot = NULL; }

/* 1 added, 0 already there (the set never fills: cap >= 2n). */
static int strset_add(struct strset *s, const char *k)
{
    size_t i = (size_t)strset_hash(k) & (s->cap - 1);
    while (s->slot[i]) {
        if (!strcmp(s->slot[i], k)) return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = k;
    return 1;
}

/* Refuse an object, anywhere in the tree, that has a key twice. */
static status json_unique_keys(const cJSON *node, const char *what, const char *where)
{
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) return STATUS_OK;
    const cJSON *it;
    status st = STATUS_OK;
    if (cJSON_IsObject(node)) {
        struct strset seen;
        TRY(strset_init(&seen, (size_t)cJSON_GetArraySize(node)));
        cJSON_ArrayForEach(it, node) {
            if (it->string && !strset_add(&seen, it->string)) {
                st = FAIL(STATUS_FORMAT, "%s: %s has the key \"%s\" twice", what, where[0] ? where : "the top level",
                          it->string);
                break;
            }
        }
        strset_free(&seen);
        if (st != STATUS_OK) return st;
    }
    int i = 0;
    cJSON_ArrayForEach(it, node) {
        char sub[200];
        if (it->string) snprintf(sub, sizeof sub, "%s%s%.100s", where, where[0] ? "." : "", it->string);
        else snprintf(sub, sizeof sub, "%s[%d]", where, i);
        TRY(json_unique_keys(it, what, sub));
        i++;
    }
    return STATUS_OK;
}

const char *manifest_profile_name(enum manifest_profile p)
{
    switch (p) {
    case MANIFEST_PROFILE_PHOTO: return "photo";
    case MANIFEST_PROFILE_DIGITS: return "digits";
    case MANIFEST_PROFILE_NONE: return "none";
    case MANIFEST_PROFILE_SMALL: return "small";
    }
    return "?";
}

status manifest_profile_parse(const char *s, enum manifest_profile *out)
{
    if (!strcmp(s, "photo")) *out = MANIFEST_PROFILE_PHOTO;
    else if (!strcmp(s, "digits")) *out = MANIFEST_PROFILE_DIGITS;
    else if (!strcmp(s, "none")) *out = MANIFEST_PROFILE_NONE;
    else if (!strcmp(s, "small")) *out = MANIFEST_PROFILE_SMALL;
    else return FAIL(STATUS_USAGE, "profile '%s': expected photo, small, digits or none", s);
    return STATUS_OK;
}

void manifest_free(struct manifest **mp)
{
    struct manifest *m = mp ? *mp : NULL;
    if (!m) return;
    for (int i = 0; i < m->nclasses; i++) free(m->classes[i].name);
    free(m->classes);
    for (int s = 0; s < m->nsubsets; s++) {
        struct manifest_subset *sub = &m->subsets[s];
        for (int i = 0; i < sub->nshards; i++) free(sub->shards[i].file);
        free(sub->shards);
        free(sub->name);
    }
    free(m->subsets);
    free(m->made.command);
    free(m->made.date);
    free(m->made.program);
    for (int i = 0; i < m->nappends; i++) { free(m->appends[i].command); free(m->appends[i].date); }
    free(m->appends);
    free(m);
    *mp = NULL;
}

const struct manifest_subset *manifest_subset_find(const struct manifest *m, const char *name)
{
    for (int s = 0; s < m->nsubsets; s++)
        if (!strcmp(m->subsets[s].name, name)) return &m->subsets[s];
    return NULL;
}

const char *manifest_class_name(const struct manifest *m, int32_t id)
{
    int64_t i = (int64_t)id - m->label_offset;
    if (i < 0 || i >= m->nclasses) return NULL;
    return m->classes[i].name;
}

/* ------------------------------------------------------------------ write */

static cJSON *num(double v) { return cJSON_CreateNumber(v); }

status manifest_to_json(const struct manifest *m, char **out)
{
    status st = STATUS_OK;
    cJSON *root = cJSON_CreateObject();
    if (!root) return FAIL(STATUS_NOMEM, "manifest: out of memory");
    cJSON_AddStringToObject(root, "format", "deeper-dataset");
    cJSON_AddItemToObject(root, "format_version", num(m->format_version ? m->format_version : MANIFEST_FORMAT_VERSION));
    cJSON *classes = cJSON_AddArrayToObject(root, "classes");
    for (int i = 0; i < m->nclasses; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddItemToObject(c, "id", num(m->classes[i].id));
        cJSON_AddStringToObject(c, "name", m->classes[i].name);
        cJSON_AddItemToArray(classes, c);
    }
    cJSON_AddItemToObject(root, "label_offset", num(m->label_offset));
    cJSON_AddItemToObject(root, "num_labels", num(manifest_num_labels(m)));
    cJSON_AddStringToObject(root, "storage", record_storage_name(m->storage));
    cJSON *img = cJSON_AddObjectToObject(root, "image");
    cJSON_AddItemToObject(img, "channels", num(m->image.channels));
    cJSON_AddItemToObject(img, "min_height", num(m->image.min_height));
    cJSON_AddItemToObject(img, "max_height", num(m->image.max_height));
    cJSON_AddItemToObject(img, "min_width", num(m->image.min_width));
    cJSON_AddItemToObject(img, "max_width", num(m->image.max_width));
    cJSON *aug = cJSON_AddObjectToObject(root, "augment");
    cJSON_AddStringToObject(aug, "profile", manifest_profile_name(m->augment.profile));
    cJSON_AddBoolToObject(aug, "flip", m->augment.flip);
    cJSON_AddBoolToObject(aug, "color", m->augment.color);
    cJSON *subs = cJSON_AddObjectToObject(root, "subsets");
    for (int s = 0; s < m->nsubsets; s++) {
        const struct manifest_subset *sub = &m->subsets[s];
        cJSON *js = cJSON_AddObjectToObject(subs, sub->name);
        cJSON_AddItemToObject(js, "count", num((double)sub->count));
        cJSON *sh = cJSON_AddArrayToObject(js, "shards");
        for (int i = 0; i < sub->nshards; i++) {
            const struct manifest_shard *d = &sub->shards[i];
            cJSON *o = cJSON_CreateObject();
            char hex[16];
            snprintf(hex, sizeof hex, "%08" PRIx32, d->checksum);
            cJSON_AddStringToObject(o, "file", d->file);
            cJSON_AddItemToObject(o, "records", num((double)d->records));
            cJSON_AddItemToObject(o, "first_id", num((double)d->first_id));
            cJSON_AddItemToObject(o, "last_id", num((double)d->last_id));
            cJSON_AddStringToObject(o, "checksum", hex);
            cJSON_AddItemToObject(o, "bytes", num((double)d->bytes));
            cJSON_AddItemToArray(sh, o);
        }
    }
    cJSON *made = cJSON_AddObjectToObject(root, "made");
    cJSON_AddStringToObject(made, "command", m->made.command ? m->made.command : "");
    if ((double)m->made.seed < EXACT_MAX) {
        cJSON_AddItemToObject(made, "seed", num((double)m->made.seed));
    } else {
        char sb[32];
        snprintf(sb, sizeof sb, "%" PRIu64, m->made.seed);
        cJSON_AddStringToObject(made, "seed", sb);
    }
    cJSON_AddStringToObject(made, "date", m->made.date ? m->made.date : "");
    cJSON_AddStringToObject(made, "program", m->made.program ? m->made.program : "");
    if (m->dataset_version > 1) {
        cJSON_AddItemToObject(root, "dataset_version", num(m->dataset_version));
        cJSON *ap = cJSON_AddArrayToObject(root, "appended");
        for (int i = 0; i < m->nappends; i++) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddItemToObject(a, "version", num(m->appends[i].version));
            cJSON_AddStringToObject(a, "command", m->appends[i].command ? m->appends[i].command : "");
            cJSON_AddStringToObject(a, "date", m->appends[i].date ? m->appends[i].date : "");
            cJSON_AddItemToArray(ap, a);
        }
    }
    char *text = cJSON_Print(root);
    if (!text) st = FAIL(STATUS_NOMEM, "manifest: out of memory while printing JSON");
    cJSON_Delete(root);
    if (st == STATUS_OK) *out = text;
    return st;
}

status manifest_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return FAIL(STATUS_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return FAIL(STATUS_IO, "%s: write failed: %s%s", tmp, strerror(e),
                        e == ENOSPC ? " (disk full)" : "");
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return FAIL(STATUS_IO, "%s: fsync failed: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) { unlink(tmp); return FAIL(STATUS_IO, "%s: close failed: %s", tmp, strerror(errno)); }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return FAIL(STATUS_IO, "%s: rename failed: %s", path, strerror(e));
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    return STATUS_OK;
}

status manifest_save(const struct manifest *m, const char *dir)
{
    char *text;
    TRY(manifest_to_json(m, &text));
    size_t n = strlen(text);
    text[n] = '\n';   /* cJSON_Print's buffer has the terminator here; write it as a newline */
    status st = manifest_write_atomic(dir, MANIFEST_FILE, text, n + 1);
    free(text);
    return st;
}

/* ------------------------------------------------------------------- read */

struct mctx {
    const char *what;
    struct strset files;    /* shard file names of every subset */
};

static status get_item(struct mctx *c, const cJSON *obj, const char *where, const char *key, const cJSON **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = it;
    if (!it) return FAIL(STATUS_FORMAT, "%s: %s%s is missing", c->what, where, key);
    *out = it;
    return STATUS_OK;
}

static status get_uint(struct mctx *c, const cJSON *obj, const char *where, const char *key,
                       double max, uint64_t *out)
{
    const cJSON *it;
    TRY(get_item(c, obj, where, key, &it));
    if (!cJSON_IsNumber(it)) return FAIL(STATUS_FORMAT, "%s: %s%s is not a number", c->what, where, key);
    double v = it->valuedouble;
    if (!(v >= 0) || v > max || v != floor(v))
        return FAIL(STATUS_FORMAT, "%s: %s%s = %g is not an integer in 0..%.0f", c->what, where, key, v, max);
    *out = (uint64_t)v;
    return STATUS_OK;
}

static status get_int(struct mctx *c, const cJSON *obj, const char *where, const char *key, int max, int *out)
{
    uint64_t v;
    TRY(get_uint(c, obj, where, key, max, &v));
    *out = (int)v;
    return STATUS_OK;
}

static status get_str(struct mctx *c, const cJSON *obj, const char *where, const char *key, char **out)
{
    const cJSON *it;
    TRY(get_item(c, obj, where, key, &it));
    if (!cJSON_IsString(it)) return FAIL(STATUS_FORMAT, "%s: %s%s is not a string", c->what, where, key);
    *out = strdup(it->valuestring);
    if (!*out) return FAIL(STATUS_NOMEM, "%s: out of memory", c->what);
    return STATUS_OK;
}

static status get_bool(struct mctx *c, const cJSON *obj, const char *where, const char *key, int *out)
{
    const cJSON *it;
    TRY(get_item(c, obj, where, key, &it));
    if (!cJSON_IsBool(it)) return FAIL(STATUS_FORMAT, "%s: %s%s is not true/false", c->what, where, key);
    *out = cJSON_IsTrue(it) ? 1 : 0;
    return STATUS_OK;
}

static int file_name_ok(const char *s)
{
    return s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) < 256;
}

static status parse_classes(struct mctx *c, const cJSON *root, struct manifest *m)
{
    const cJSON *arr;
    TRY(get_item(c, root, "", "classes", &arr));
    if (!cJSON_IsArray(arr)) return FAIL(STATUS_FORMAT, "%s: classes is not an array", c->what);
    int n = cJSON_GetArraySize(arr);
    if (n < 1) return FAIL(STATUS_FORMAT, "%s: classes is empty", c->what);
    m->classes = calloc((size_t)n, sizeof *m->classes);
    if (!m->classes) return FAIL(STATUS_NOMEM, "%s: out of memory", c->what);
    struct strset names;
    TRY(strset_init(&names, (size_t)n));
    status st = STATUS_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        int i = m->nclasses;
        char where[48];
        snprintf(where, sizeof where, "classes[%d].", i);
        if (!cJSON_IsObject(it)) { st = FAIL(STATUS_FORMAT, "%s: classes[%d] is not an object", c->what, i); break; }
        int id;
        if ((st = get_int(c, it, where, "id", INT32_MAX, &id)) != STATUS_OK) break;
        if ((st = get_str(c, it, where, "name", &m->classes[i].name)) != STATUS_OK) break;
        m->nclasses++;
        m->classes[i].id = id;
        if (id != m->label_offset + i) {
            st = FAIL(STATUS_FORMAT, "%s: classes[%d].id is %d, expected %d (ids are consecutive from label_offset)",
                      c->what, i, id, m->label_offset + i);
            break;
        }
        if (!m->classes[i].name[0]) { st = FAIL(STATUS_FORMAT, "%s: classes[%d].name is empty", c->what, i); break; }
        if (!strset_add(&names, m->classes[i].name)) {
            int j = 0;
            while (strcmp(m->classes[j].name, m->classes[i].name)) j++;
            st = FAIL(STATUS_FORMAT, "%s: class name '%s' appears twice (classes[%d] and [%d])", c->what,
                      m->classes[i].name, j, i);
            break;
        }
    }
    strset_free(&names);
    return st;
}

static status parse_subsets(struct mctx *c, const cJSON *root, struct manifest *m)
{
    const cJSON *subs;
    TRY(get_item(c, root, "", "subsets", &subs));
    if (!cJSON_IsObject(subs)) return FAIL(STATUS_FORMAT, "%s: subsets is not an object", c->what);
    int n = cJSON_GetArraySize(subs);
    if (n < 1) return FAIL(STATUS_FORMAT, "%s: subsets is empty", c->what);
    size_t nfiles = 0;
    const cJSON *js;
    cJSON_ArrayForEach(js, subs) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(js, "shards");
        if (cJSON_IsArray(arr)) nfiles += (size_t)cJSON_GetArraySize(arr);
    }
    TRY(strset_init(&c->files, nfiles));
    m->subsets = calloc((size_t)n, sizeof *m->subsets);
    if (!m->subsets) return FAIL(STATUS_NOMEM, "%s: out of memory", c->what);
    cJSON_ArrayForEach(js, subs) {
        struct manifest_subset *sub = &m->subsets[m->nsubsets++];
        sub->name = strdup(js->string ? js->string : "");
        if (!sub->name) return FAIL(STATUS_NOMEM, "%s: out of memory", c->what);
        if (!file_name_ok(sub->name))
            return FAIL(STATUS_FORMAT, "%s: subset name '%s' is not a plain name", c->what, sub->name);
        char where[300];
        snprintf(where, sizeof where, "subsets.%s.", sub->name);
        if (!cJSON_IsObject(js)) return FAIL(STATUS_FORMAT, "%s: subsets.%s is not an object", c->what, sub->name);
        TRY(get_uint(c, js, where, "count", EXACT_MAX, &sub->count));
        const cJSON *arr;
        TRY(get_item(c, js, where, "shards", &arr));
        if (!cJSON_IsArray(arr)) return FAIL(STATUS_FORMAT, "%s: %sshards is not an array", c->what, where);
        int ns = cJSON_GetArraySize(arr);
        if (ns < 1) return FAIL(STATUS_FORMAT, "%s: %sshards is empty", c->what, where);
        sub->shards = calloc((size_t)ns, sizeof *sub->shards);
        if (!sub->shards) return FAIL(STATUS_NOMEM, "%s: out of memory", c->what);
        uint64_t total = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, arr) {
            int i = sub->nshards;
            struct manifest_shard *d = &sub->shards[i];
            char w2[340];
            snprintf(w2, sizeof w2, "%sshards[%d].", where, i);
            if (!cJSON_IsObject(o)) return FAIL(STATUS_FORMAT, "%s: %sshards[%d] is not an object", c->what, where, i);
            sub->nshards++;
            TRY(get_str(c, o, w2, "file", &d->file));
            if (!file_name_ok(d->file))
                return FAIL(STATUS_FORMAT, "%s: %sfile '%s' is not a plain file name", c->what, w2, d->file);
            TRY(get_uint(c, o, w2, "records", EXACT_MAX, &d->records));
            TRY(get_uint(c, o, w2, "first_id", EXACT_MAX, &d->first_id));
            TRY(get_uint(c, o, w2, "last_id", EXACT_MAX, &d->last_id));
            TRY(get_uint(c, o, w2, "bytes", EXACT_MAX, &d->bytes));
            if (d->records > 0 && (d->last_id < d->first_id || d->last_id - d->first_id + 1 < d->records))
                return FAIL(STATUS_FORMAT, "%s: %sid range %llu..%llu cannot hold %llu records", c->what, w2,
                            (unsigned long long)d->first_id, (unsigned long long)d->last_id,
                            (unsigned long long)d->records);
            char *hex;
            TRY(get_str(c, o, w2, "checksum", &hex));
            char *end;
            errno = 0;
            unsigned long v = strtoul(hex, &end, 16);
            int ok = strlen(hex) == 8 && *end == 0 && errno == 0;
            free(hex);
            if (!ok) return FAIL(STATUS_FORMAT, "%s: %schecksum is not 8 hex digits", c->what, w2);
            d->checksum = (uint32_t)v;
            if (!strset_add(&c->files, d->file))
                return FAIL(STATUS_FORMAT, "%s: shard %s is listed twice", c->what, d->file);
            if ((double)total + (double)d->records > EXACT_MAX)
                return FAIL(STATUS_FORMAT, "%s: %srecords make the shards of subset %s hold more than 2^53 records",
                            c->what, w2, sub->name);
            total += d->records;
        }
        if (total != sub->count)
            return FAIL(STATUS_FORMAT, "%s: %scount is %llu but its shards hold %llu records", c->what, where,
                        (unsigned long long)sub->count, (unsigned long long)total);
    }
    return STATUS_OK;
}

status manifest_from_json(const char *text, const char *what, struct manifest **out)
{
    struct mctx c = { what, { NULL, 0 } };
    status st = STATUS_OK;
    struct manifest *m = calloc(1, sizeof *m);
    if (!m) return FAIL(STATUS_NOMEM, "%s: out of memory", what);
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= text ? (long)(at - text) : -1;
        st = FAIL(STATUS_FORMAT, "%s: not valid JSON (near byte %ld)", what, off);
        goto done;
    }
    if (!cJSON_IsObject(root)) { st = FAIL(STATUS_FORMAT, "%s: top level is not an object", what); goto done; }
    if ((st = json_unique_keys(root, what, "")) != STATUS_OK) goto done;
    char *fmt = NULL;
    if ((st = get_str(&c, root, "", "format", &fmt)) != STATUS_OK) goto done;
    int fmt_ok = !strcmp(fmt, "deeper-dataset");
    free(fmt);
    if (!fmt_ok) { st = FAIL(STATUS_FORMAT, "%s: format is not \"deeper-dataset\"", what); goto done; }
    if ((st = get_int(&c, root, "", "format_version", INT_MAX, &m->format_version)) != STATUS_OK) goto done;
    if (m->format_version != MANIFEST_FORMAT_VERSION) {
        st = FAIL(STATUS_UNSUPPORTED, "%s: format_version %d (this program reads %d)", what,
                  m->format_version, MANIFEST_FORMAT_VERSION);
        goto done;
    }
    int off;
    if ((st = get_int(&c, root, "", "label_offset", 1, &off)) != STATUS_OK) goto done;
    m->label_offset = off;
    if ((st = parse_classes(&c, root, m)) != STATUS_OK) goto done;
    int nl;
    if ((st = get_int(&c, root, "", "num_labels", INT_MAX, &nl)) != STATUS_OK) goto done;
    if (nl != manifest_num_labels(m)) {
        st = FAIL(STATUS_FORMAT, "%s: num_labels is %d, classes + label_offset make %d", what, nl, manifest_num_labels(m));
        goto done;
    }
    char *storage = NULL;
    if ((st = get_str(&c, root, "", "storage", &storage)) != STATUS_OK) goto done;
    st = record_storage_parse(storage, &m->storage);
    if (st != STATUS_OK) st = FAIL(STATUS_FORMAT, "%s: storage '%s' is not raw or jpeg", what, storage);
    free(storage);
    if (st != STATUS_OK) goto done;
    const cJSON *img, *aug, *made;
    if ((st = get_item(&c, root, "", "image", &img)) != STATUS_OK) goto done;
    if ((st = get_int(&c, img, "image.", "channels", 3, &m->image.channels)) != STATUS_OK) goto done;
    if (m->image.channels != 1 && m->image.channels != 3) {
        st = FAIL(STATUS_FORMAT, "%s: image.channels is %d (expected 1 or 3)", what, m->image.channels);
        goto done;
    }
    if ((st = get_int(&c, img, "image.", "min_height", RECORD_DIM_MAX, &m->image.min_height)) != STATUS_OK) goto done;
    if ((st = get_int(&c, img, "image.", "max_height", RECORD_DIM_MAX, &m->image.max_height)) != STATUS_OK) goto done;
    if ((st = get_int(&c, img, "image.", "min_width", RECORD_DIM_MAX, &m->image.min_width)) != STATUS_OK) goto done;
    if ((st = get_int(&c, img, "image.", "max_width", RECORD_DIM_MAX, &m->image.max_width)) != STATUS_OK) goto done;
    if (m->image.min_height > m->image.max_height || m->image.min_width > m->image.max_width) {
        st = FAIL(STATUS_FORMAT, "%s: image min sizes exceed the max sizes", what);
        goto done;
    }
    if ((st = get_item(&c, root, "", "augment", &aug)) != STATUS_OK) goto done;
    char *prof = NULL;
    if ((st = get_str(&c, aug, "augment.", "profile", &prof)) != STATUS_OK) goto done;
    st = manifest_profile_parse(prof, &m->augment.profile);
    if (st != STATUS_OK) st = FAIL(STATUS_FORMAT, "%s: augment.profile '%s' is not photo, small, digits or none", what, prof);
    free(prof);
    if (st != STATUS_OK) goto done;
    if ((st = get_bool(&c, aug, "augment.", "flip", &m->augment.flip)) != STATUS_OK) goto done;
    if ((st = get_bool(&c, aug, "augment.", "color", &m->augment.color)) != STATUS_OK) goto done;
    if ((st = parse_subsets(&c, root, m)) != STATUS_OK) goto done;
    if ((st = get_item(&c, root, "", "made", &made)) != STATUS_OK) goto done;
    if ((st = get_str(&c, made, "made.", "command", &m->made.command)) != STATUS_OK) goto done;
    if ((st = get_str(&c, made, "made.", "date", &m->made.date)) != STATUS_OK) goto done;
    if ((st = get_str(&c, made, "made.", "program", &m->made.program)) != STATUS_OK) goto done;
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(made, "seed");
    if (seed && cJSON_IsString(seed)) {
        char *end;
        errno = 0;
        m->made.seed = strtoull(seed->valuestring, &end, 10);
        if (errno || *end || !seed->valuestring[0]) {
            st = FAIL(STATUS_FORMAT, "%s: made.seed is not a decimal number", what);
            goto done;
        }
    } else if ((st = get_uint(&c, made, "made.", "seed", EXACT_MAX, &m->made.seed)) != STATUS_OK) {
        goto done;
    }
    m->dataset_version = 1;
    if (cJSON_GetObjectItemCaseSensitive(root, "dataset_version")) {
        if ((st = get_int(&c, root, "", "dataset_version", INT_MAX, &m->dataset_version)) != STATUS_OK) goto done;
        if (m->dataset_version < 1) { st = FAIL(STATUS_FORMAT, "%s: dataset_version is 0", what); goto done; }
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(root, "appended"), *a;
        if (ap && !cJSON_IsArray(ap)) { st = FAIL(STATUS_FORMAT, "%s: appended is not an array", what); goto done; }
        int na = cJSON_GetArraySize(ap);
        m->appends = calloc((size_t)(na ? na : 1), sizeof *m->appends);
        if (!m->appends) { st = FAIL(STATUS_NOMEM, "%s: out of memory", what); goto done; }
        cJSON_ArrayForEach(a, ap) {
            struct manifest_append *e = &m->appends[m->nappends++];
            if ((st = get_int(&c, a, "appended[].", "version", INT_MAX, &e->version)) != STATUS_OK ||
                (st = get_str(&c, a, "appended[].", "command", &e->command)) != STATUS_OK ||
                (st = get_str(&c, a, "appended[].", "date", &e->date)) != STATUS_OK)
                goto done;
        }
    }
done:
    strset_free(&c.files);
    cJSON_Delete(root);
    if (st != STATUS_OK) { manifest_free(&m); return st; }
    *out = m;
    return STATUS_OK;
}

status manifest_load(const char *dir, struct manifest **out)
{
    char path[PATH_MAX];
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_FILE);
    else snprintf(path, sizeof path, "%s", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return FAIL(STATUS_NOT_FOUND, "%s: no manifest (not a dataset, or its ingest did not finish)", path);
        return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    }
    status st = STATUS_OK;
    char *text = NULL;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size > (64 << 20)) {
        st = FAIL(STATUS_FORMAT, "%s: unreadable or larger than 64 MiB", path);
        goto done;
    }
    text = malloc((size_t)sb.st_size + 1);
    if (!text) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); goto done; }
    size_t n = fread(text, 1, (size_t)sb.st_size, f);
    if (n != (size_t)sb.st_size) { st = FAIL(STATUS_IO, "%s: short read", path); goto done; }
    text[n] = 0;
    st = manifest_from_json(text, path, out);
done:
    free(text);
    fclose(f);
    return st;
}

/* ---------------------------------------------------- manifest vs records */

status manifest_check_records(const struct manifest *m, const char *dir)
{
    status st = STATUS_OK;
    for (int s = 0; s < m->nsubsets && st == STATUS_OK; s++) {
        const struct manifest_subset *sub = &m->subsets[s];
        for (int i = 0; i < sub->nshards && st == STATUS_OK; i++) {
            if (sub->shards[i].records == 0) continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, sub->shards[i].file);
            struct shard_reader *r = NULL;
            struct shard_txn *t = NULL;
            const void *val;
            size_t len;
            uint64_t key;
            struct record rec;
            /* a damaged tree is for the readers to report (liblmdb would read it blindly) */
            st = shard_check_file(path, 0, NULL, NULL);
            if (st == STATUS_CORRUPT) { st = STATUS_OK; continue; }
            if (st != STATUS_OK) break;
            if ((st = shard_reader_open(path, &r)) != STATUS_OK) break;
            /* the first record that is intact (a damaged one is the workers' to skip) */
            int found = 0;
            if ((st = shard_txn_begin(r, &t)) == STATUS_OK)
                for (int k = 0; k < 4 && !found; k++) {
                    status g = shard_txn_next(t, &key, &val, &len);
                    if (g == STATUS_NOT_FOUND) break;
                    if (g == STATUS_OK && record_decode(val, len, 1, &rec) == STATUS_OK) found = 1;
                    else if (g != STATUS_OK && g != STATUS_CORRUPT) break;
                }
            if (st != STATUS_OK || !found) {
                st = STATUS_OK;      /* nothing intact to compare: the readers report each record */
            } else if ((int)rec.channels != m->image.channels)
                st = FAIL(STATUS_FORMAT, "%s: manifest.json says image.channels %d, but record %llu of %s has %u "
                          "(the manifest does not describe these records)", dir, m->image.channels,
                          (unsigned long long)key, sub->shards[i].file, rec.channels);
            else if (rec.storage != m->storage)
                st = FAIL(STATUS_FORMAT, "%s: manifest.json says storage %s, but record %llu of %s is %s", dir,
                          record_storage_name(m->storage), (unsigned long long)key, sub->shards[i].file,
                          record_storage_name(rec.storage));
            else if ((int)rec.height < m->image.min_height || (int)rec.height > m->image.max_height ||
                     (int)rec.width < m->image.min_width || (int)rec.width > m->image.max_width)
                st = FAIL(STATUS_FORMAT, "%s: record %llu of %s is %ux%u, outside manifest.json's image sizes "
                          "%d..%d x %d..%d", dir, (unsigned long long)key, sub->shards[i].file, rec.height, rec.width,
                          m->image.min_height, m->image.max_height, m->image.min_width, m->image.max_width);
            else if (rec.version >= 2 && (rec.label < m->label_offset || rec.label >= manifest_num_labels(m)))
                st = FAIL(STATUS_FORMAT, "%s: record %llu of %s has label %d, but manifest.json's %d classes give "
                          "labels %d..%d", dir, (unsigned long long)key, sub->shards[i].file, rec.label, m->nclasses,
                          m->label_offset, manifest_num_labels(m) - 1);
            shard_txn_end(t);
            shard_reader_free(&r);
        }
    }
    return st;
}

uint64_t manifest_subset_id_limit(const struct manifest_subset *s)
{
    uint64_t lim = 0;
    for (int i = 0; i < s->nshards; i++)
        if (s->shards[i].records > 0 && s->shards[i].last_id + 1 > lim) lim = s->shards[i].last_id + 1;
    return lim;
}
