/*
 * walk.c — class list and the listing of class-per-folder trees.
 *
 * Classes come from --labels_file (one name per line, stripped, empty lines
 * skipped, order kept: line i is class i) or, without it, from the sorted
 * (byte order) names of the sub-folders of the input directories.
 *
 * A class folder is walked recursively in byte-sorted order, so the listing,
 * and therefore the shuffle, is the same on every machine.  Symbolic links
 * are followed; a link that loops (ELOOP), dangles, or leads back to a folder
 * already on the current path becomes a rejection, as does a folder that
 * cannot be opened.  Names starting with '.' are skipped (and counted).
 * Every regular file is a candidate whatever its extension: decoding decides.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest/ingest.h"
#include "shared/log.h"

void ingest_escape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\') { out[o++] = '\\'; out[o++] = '\\'; }
        else if (ch == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (ch == '\t') { out[o++] = '\\'; out[o++] = 't'; }
        else if (ch < 0x20 || ch == 0x7f) o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
        else out[o++] = (char)ch;
    }
    out[o] = 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void ingest_classes_clear(struct ingest_classes *c)
{
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    c->names = NULL;
    c->n = 0;
}

static status ingest_classes_push(struct ingest_classes *c, const char *name, int *cap)
{
    if (c->n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        char **p = realloc(c->names, (size_t)nc * sizeof *p);
        if (!p) return FAIL(STATUS_NOMEM, "out of memory for the class list");
        c->names = p;
        *cap = nc;
    }
    c->names[c->n] = strdup(name);
    if (!c->names[c->n]) return FAIL(STATUS_NOMEM, "out of memory for the class list");
    c->n++;
    return STATUS_OK;
}

status ingest_classes_load(const char *labels_file, struct ingest_classes *c)
{
    FILE *f = fopen(labels_file, "r");
    if (!f) return FAIL(STATUS_IO, "--labels_file %s: %s", labels_file, strerror(errno));
    status st = STATUS_OK;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int cap = 0, lineno = 0;
    memset(c, 0, sizeof *c);
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        char *s = line, *e = line + len;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n')) e--;
        if (e == s) continue;
        *e = 0;
        for (int i = 0; i < c->n; i++)
            if (!strcmp(c->names[i], s)) {
                st = FAIL(STATUS_USAGE, "%s:%d: class '%s' is listed twice", labels_file, lineno, s);
                break;
            }
        if (st != STATUS_OK) break;
        if ((st = ingest_classes_push(c, s, &cap)) != STATUS_OK) break;
    }
    free(line);
    fclose(f);
    if (st == STATUS_OK && c->n == 0) st = FAIL(STATUS_USAGE, "--labels_file %s: no class names in it", labels_file);
    if (st != STATUS_OK) ingest_classes_clear(c);
    return st;
}

status ingest_classes_discover(const char *const *dirs, int ndirs, struct ingest_classes *c)
{
    int cap = 0;
    memset(c, 0, sizeof *c);
    for (int d = 0; d < ndirs; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir) {
            ingest_classes_clear(c);
            return FAIL(STATUS_IO, "%s: cannot open the input directory: %s", dirs[d], strerror(errno));
        }
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (de->d_name[0] == '.') continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dirs[d], de->d_name);
            struct stat sb;
            if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) continue;
            int seen = 0;
            for (int i = 0; i < c->n && !seen; i++) seen = !strcmp(c->names[i], de->d_name);
            if (!seen) {
                status st = ingest_classes_push(c, de->d_name, &cap);
                if (st != STATUS_OK) { closedir(dir); ingest_classes_clear(c); return st; }
            }
        }
        closedir(dir);
    }
    if (c->n == 0)
        return FAIL(STATUS_USAGE, "%s: no class folders found (expected DIR/<class>/<image files>)", dirs[0]);
    qsort(c->names, (size_t)c->n, sizeof *c->names, cmp_str);
    return STATUS_OK;
}

status ingest_subset_add(struct ingest_subset *s, char *path, char *name, int32_t cls, uint32_t mnist_index)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        struct ingest_item *p = realloc(s->items, nc * sizeof *p);
        if (!p) { free(path); free(name); return FAIL(STATUS_NOMEM, "out of memory for the file list"); }
        s->items = p;
        s->cap = nc;
    }
    s->items[s->n++] = (struct ingest_item){ .path = path, .name = name, .class_idx = cls, .mnist_index = mnist_index };
    return STATUS_OK;
}

status ingest_subset_reject(struct ingest_subset *s, const char *name, const char *reason)
{
    if (s->nrejects == s->cap_rejects) {
        size_t nc = s->cap_rejects ? s->cap_rejects * 2 : 16;
        struct ingest_reject *p = realloc(s->rejects, nc * sizeof *p);
        if (!p) return FAIL(STATUS_NOMEM, "out of memory for the rejection list");
        s->rejects = p;
        s->cap_rejects = nc;
    }
    struct ingest_reject *r = &s->rejects[s->nrejects];
    r->id = UINT64_MAX;
    r->name = strdup(name);
    r->reason = strdup(reason);
    if (!r->name || !r->reason) { free(r->name); free(r->reason); return FAIL(STATUS_NOMEM, "out of memory"); }
    s->nrejects++;
    char esc[1024];
    ingest_escape(name, strlen(name), esc, sizeof esc);
    log_warn("rejected %s/%s: %s", s->name, esc, reason);
    return STATUS_OK;
}

void ingest_subset_clear(struct ingest_subset *s)
{
    for (size_t i = 0; i < s->n; i++) { free(s->items[i].path); free(s->items[i].name); free(s->items[i].boxes); }
    free(s->items);
    for (size_t i = 0; i < s->nrejects; i++) { free(s->rejects[i].name); free(s->rejects[i].reason); }
    free(s->rejects);
    ingest_mnist_free(&s->mnist);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- walking */

struct walk_dirs { dev_t dev[64]; ino_t ino[64]; int n; };

static status ingest_walk_dir(const char *path, const char *rel, int32_t cls, struct walk_dirs *onpath,
                              struct ingest_subset *s)
{
    char reason[300];
    struct dirent **ents = NULL;
    int n = scandir(path, &ents, NULL, NULL);
    if (n < 0) {
        snprintf(reason, sizeof reason, "cannot open folder: %s", strerror(errno));
        return ingest_subset_reject(s, rel, reason);
    }
    char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (!names) { for (int i = 0; i < n; i++) free(ents[i]); free(ents); return FAIL(STATUS_NOMEM, "out of memory"); }
    for (int i = 0; i < n; i++) names[i] = ents[i]->d_name;
    qsort(names, (size_t)n, sizeof *names, cmp_str);      /* byte order, not the locale's */
    status st = STATUS_OK;
    for (int i = 0; i < n && st == STATUS_OK; i++) {
        const char *nm = names[i];
        if (nm[0] == '.') {
            if (strcmp(nm, ".") && strcmp(nm, "..")) s->hidden_skipped++;
            continue;
        }
        size_t lp = strlen(path) + strlen(nm) + 2, lr = strlen(rel) + strlen(nm) + 2;
        char *full = malloc(lp), *name = malloc(lr);
        if (!full || !name) { free(full); free(name); st = FAIL(STATUS_NOMEM, "out of memory"); break; }
        snprintf(full, lp, "%s/%s", path, nm);
        snprintf(name, lr, "%s/%s", rel, nm);
        struct stat sb;
        if (stat(full, &sb) != 0) {
            int e = errno;
            struct stat lb;
            if (e == ELOOP) snprintf(reason, sizeof reason, "symbolic link loop");
            else if (e == ENOENT && lstat(full, &lb) == 0 && S_ISLNK(lb.st_mode))
                snprintf(reason, sizeof reason, "broken symbolic link");
            else snprintf(reason, sizeof reason, "cannot stat: %s", strerror(e));
            st = ingest_subset_reject(s, name, reason);
            free(full); free(name);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            int cycle = 0;
            for (int k = 0; k < onpath->n; k++)
                if (onpath->dev[k] == sb.st_dev && onpath->ino[k] == sb.st_ino) cycle = 1;
            if (cycle || onpath->n == 64) {
                st = ingest_subset_reject(s, name, cycle ? "symbolic link loop (folder contains itself)"
                                                        : "folders nested deeper than 64 levels");
            } else {
                onpath->dev[onpath->n] = sb.st_dev;
                onpath->ino[onpath->n] = sb.st_ino;
                onpath->n++;
                st = ingest_walk_dir(full, name, cls, onpath, s);
                onpath->n--;
            }
            free(full); free(name);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) {
            st = ingest_subset_reject(s, name, "not a regular file");
            free(full); free(name);
            continue;
        }
        st = ingest_subset_add(s, full, name, cls, 0);
    }
    for (int i = 0; i < n; i++) free(ents[i]);
    free(ents);
    free(names);
    return st;
}

status ingest_walk(const char *root, const struct ingest_classes *c, struct ingest_subset *s)
{
    struct stat rb;
    if (stat(root, &rb) != 0 || !S_ISDIR(rb.st_mode))
        return FAIL(STATUS_IO, "%s: not a readable directory", root);
    for (int k = 0; k < c->n; k++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", root, c->names[k]);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            log_warn("%s: class '%s' has no folder in %s", s->name, c->names[k], root);
            continue;
        }
        struct walk_dirs onpath = { .n = 2 };
        onpath.dev[0] = rb.st_dev; onpath.ino[0] = rb.st_ino;
        onpath.dev[1] = sb.st_dev; onpath.ino[1] = sb.st_ino;
        size_t before = s->n;
        TRY(ingest_walk_dir(path, c->names[k], k, &onpath, s));
        if (s->n == before) log_warn("%s: class '%s' has no files in %s", s->name, c->names[k], path);
    }
    /* files directly under root belong to no class */
    DIR *d = opendir(root);
    if (d) {
        struct dirent *de;
        int loose = 0;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", root, de->d_name);
            struct stat sb;
            if (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode)) loose++;
        }
        closedir(d);
        if (loose) log_warn("%s: %d file(s) directly in %s are in no class folder; ignored", s->name, loose, root);
    }
    return STATUS_OK;
}
