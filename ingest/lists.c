/*
 * lists.c — inputs named in files instead of found by walking folders.
 *
 * The file list (`--write_file_list FILE` once, `--file_list FILE` in every
 * task) is the listing of a walk, so a huge tree is listed once instead of
 * once per task.  Text, one entry a line, fields separated by tabs, names
 * escaped as in rejected.txt (\n, \t, \\, \xHH):
 *
 *     deeper-file-list 1
 *     class   <name>                       in label order
 *     subset  <validation|train>           the entries below belong to it
 *     hidden  <count>                      dot-files the walk skipped
 *     item    <class index> <path> <name>  in walk order (before the shuffle)
 *     reject  <name> <reason>              listing rejections, in walk order
 *
 * `--train_list FILE` / `--validation_list FILE`: the user's own lists, one
 * image a line, either `path<TAB>label` or CSV `path,label` (split at the
 * last comma; a first line whose label is "label" is a header).  Relative
 * paths are relative to the list's folder.  A label is a class name; with
 * --labels_file it must be one of its lines (or a label number of it:
 * 0-based, 1-based with --background_class), without one the classes are the
 * sorted distinct labels of all lists.  Lines that fit neither form, and
 * unknown labels, are rejections naming the list and line.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "shared/log.h"

#define LIST_MAGIC "deeper-file-list 1"

size_t ingest_unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p != '\\' || !p[1]) { *o++ = *p; continue; }
        p++;
        if (*p == 'n') *o++ = '\n';
        else if (*p == 't') *o++ = '\t';
        else if (*p == 'x' && p[1] && p[2]) {
            char hex[3] = { p[1], p[2], 0 };
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else *o++ = *p;
    }
    *o = 0;
    return (size_t)(o - s);
}

static void list_put(FILE *f, const char *s)
{
    char esc[3 * PATH_MAX];
    ingest_escape(s, strlen(s), esc, sizeof esc);
    fputs(esc, f);
}

status ingest_file_list_write(const char *path, const struct ingest_ctx *c)
{
    if (c->subsets[0].mnist) return FAIL(STATUS_USAGE, "--write_file_list: MNIST files need no listing");
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return FAIL(STATUS_IO, "%s: cannot create: %s", tmp, strerror(errno));
    fprintf(f, "%s\n", LIST_MAGIC);
    for (int i = 0; i < c->classes.n; i++) { fputs("class\t", f); list_put(f, c->classes.names[i]); fputc('\n', f); }
    for (int k = 0; k < c->nsubsets; k++) {
        const struct ingest_subset *s = &c->subsets[k];
        fprintf(f, "subset\t%s\nhidden\t%llu\n", s->name, (unsigned long long)s->hidden_skipped);
        for (size_t i = 0; i < s->n; i++) {
            fprintf(f, "item\t%d\t", (int)s->items[i].class_idx);
            list_put(f, s->items[i].path);
            fputc('\t', f);
            list_put(f, s->items[i].name);
            fputc('\n', f);
        }
        for (size_t i = 0; i < s->nrejects; i++) {
            fputs("reject\t", f);
            list_put(f, s->rejects[i].name);
            fputc('\t', f);
            list_put(f, s->rejects[i].reason);
            fputc('\n', f);
        }
    }
    int bad = ferror(f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = 1;
    if (fclose(f) != 0 || bad) { unlink(tmp); return FAIL(STATUS_IO, "%s: write failed: %s", tmp, strerror(errno)); }
    if (rename(tmp, path) != 0) { unlink(tmp); return FAIL(STATUS_IO, "%s: rename failed: %s", path, strerror(errno)); }
    return STATUS_OK;
}

/* Split line at tabs into at most n fields (unescaped); returns the count. */
static int list_fields(char *line, char **f, int n)
{
    int k = 0;
    line[strcspn(line, "\r\n")] = 0;
    while (k < n) {
        f[k++] = line;
        char *t = strchr(line, '\t');
        if (!t) break;
        *t = 0;
        line = t + 1;
    }
    for (int i = 0; i < k; i++) ingest_unescape(f[i]);
    return k;
}

status ingest_file_list_read(const char *path, struct ingest_ctx *c, const char *const names[2], const int shards[2])
{
    FILE *f = fopen(path, "r");
    if (!f) return FAIL(STATUS_IO, "--file_list %s: %s", path, strerror(errno));
    status st = STATUS_OK;
    char *line = NULL, *fl[4];
    size_t cap = 0;
    int lineno = 0, ccap = 0;
    struct ingest_subset *s = NULL;
    while (st == STATUS_OK && getline(&line, &cap, f) >= 0) {
        lineno++;
        if (lineno == 1) {
            if (strncmp(line, LIST_MAGIC, strlen(LIST_MAGIC)))
                st = FAIL(STATUS_FORMAT, "--file_list %s: not a file list (first line is not '%s')", path, LIST_MAGIC);
            continue;
        }
        int nf = list_fields(line, fl, 4);
        if (!strcmp(fl[0], "class") && nf == 2) {
            if (c->classes.n == ccap) {
                ccap = ccap ? ccap * 2 : 16;
                char **nn = realloc(c->classes.names, (size_t)ccap * sizeof *nn);
                if (!nn) { st = FAIL(STATUS_NOMEM, "out of memory"); break; }
                c->classes.names = nn;
            }
            if (!(c->classes.names[c->classes.n++] = strdup(fl[1]))) st = FAIL(STATUS_NOMEM, "out of memory");
        } else if (!strcmp(fl[0], "subset") && nf == 2) {
            int k = !strcmp(fl[1], names[0]) ? 0 : !strcmp(fl[1], names[1]) ? 1 : -1;
            if (k < 0 || c->nsubsets == 2) { st = FAIL(STATUS_FORMAT, "%s:%d: unknown subset '%s'", path, lineno, fl[1]); break; }
            s = &c->subsets[c->nsubsets++];
            s->name = names[k];
            s->nshards = shards[k];
        } else if (!strcmp(fl[0], "hidden") && nf == 2 && s) {
            s->hidden_skipped = strtoull(fl[1], NULL, 10);
        } else if (!strcmp(fl[0], "item") && nf == 4 && s) {
            char *end;
            long cls = strtol(fl[1], &end, 10);
            if (*end || cls < 0 || cls >= c->classes.n) {
                st = FAIL(STATUS_FORMAT, "%s:%d: class index '%s' is not one of the %d classes", path, lineno, fl[1],
                          c->classes.n);
                break;
            }
            char *p = strdup(fl[2]), *nm = strdup(fl[3]);
            if (!p || !nm) { free(p); free(nm); st = FAIL(STATUS_NOMEM, "out of memory"); break; }
            st = ingest_subset_add(s, p, nm, (int32_t)cls, 0);
        } else if (!strcmp(fl[0], "reject") && nf == 3 && s) {
            st = ingest_subset_reject(s, fl[1], fl[2]);
        } else {
            st = FAIL(STATUS_FORMAT, "%s:%d: not a file list line (expected class, subset, hidden, item or reject)",
                      path, lineno);
        }
    }
    free(line);
    fclose(f);
    if (st == STATUS_OK && (!c->nsubsets || !c->classes.n))
        st = FAIL(STATUS_FORMAT, "--file_list %s: no classes or no subsets in it", path);
    return st;
}

/* ------------------------------------------------------------ user lists */

struct list_entry { char *path, *name, *label; int subset; int line; const char *list; };

static int cmp_label(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    size_t i = 0;
    while (s[i] == ' ') i++;
    if (i) memmove(s, s + i, n - i + 1);
}

status ingest_lists_load(const struct ingest_opts *o, const char *const lists[2], const char *const names[2],
                         const int shards[2], struct ingest_ctx *c)
{
    struct list_entry *e = NULL;
    size_t n = 0, cap = 0;
    status st = STATUS_OK;
    char *line = NULL;
    size_t lcap = 0;
    int subset_of[2] = { -1, -1 };
    for (int k = 0; k < 2 && st == STATUS_OK; k++) {
        if (!lists[k]) continue;
        subset_of[k] = c->nsubsets;
        struct ingest_subset *s = &c->subsets[c->nsubsets++];
        s->name = names[k];
        s->nshards = shards[k];
        FILE *f = fopen(lists[k], "r");
        if (!f) { st = FAIL(STATUS_IO, "--%s_list %s: %s", names[k], lists[k], strerror(errno)); break; }
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", lists[k]);
        char *slash = strrchr(dir, '/');
        if (slash) slash[1] = 0; else dir[0] = 0;
        int lineno = 0;
        while (st == STATUS_OK && getline(&line, &lcap, f) >= 0) {
            lineno++;
            line[strcspn(line, "\r\n")] = 0;
            if (!line[strspn(line, " \t")]) continue;
            char *sep = strchr(line, '\t');
            if (!sep) sep = strrchr(line, ',');
            char where[PATH_MAX + 32];
            snprintf(where, sizeof where, "%s:%d", lists[k], lineno);
            if (!sep) { st = ingest_subset_reject(s, where, "expected path<TAB>label or path,label"); continue; }
            *sep = 0;
            char *path = line, *label = sep + 1;
            list_trim(path);
            list_trim(label);
            if (lineno == 1 && !strcmp(label, "label")) continue;   /* CSV header */
            if (!*path || !*label) { st = ingest_subset_reject(s, where, "empty path or label"); continue; }
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                struct list_entry *ne = realloc(e, cap * sizeof *ne);
                if (!ne) { st = FAIL(STATUS_NOMEM, "out of memory"); break; }
                e = ne;
            }
            size_t fl = strlen(dir) + strlen(path) + 1;
            char *full = malloc(fl);
            if (full) snprintf(full, fl, "%s%s", path[0] == '/' ? "" : dir, path);
            e[n] = (struct list_entry){ full, strdup(path), strdup(label), k, lineno, lists[k] };
            if (!e[n].path || !e[n].name || !e[n].label) st = FAIL(STATUS_NOMEM, "out of memory");
            n++;
        }
        fclose(f);
    }
    if (st != STATUS_OK) goto done;
    int named = c->classes.n || o->labels_file;   /* the classes are given (or the dataset's, appending) */
    if (c->classes.n) {
    } else if (o->labels_file) {
        if ((st = ingest_classes_load(o->labels_file, &c->classes)) != STATUS_OK) goto done;
    } else {
        char **labels = malloc((n ? n : 1) * sizeof *labels);
        if (!labels) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
        for (size_t i = 0; i < n; i++) labels[i] = e[i].label;
        qsort(labels, n, sizeof *labels, cmp_label);
        c->classes.names = malloc((n ? n : 1) * sizeof *c->classes.names);
        for (size_t i = 0; c->classes.names && i < n; i++)
            if (i == 0 || strcmp(labels[i], labels[i - 1])) c->classes.names[c->classes.n++] = strdup(labels[i]);
        free(labels);
        if (!c->classes.names) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
        if (!c->classes.n) { st = FAIL(STATUS_USAGE, "the image lists name no image"); goto done; }
    }
    for (size_t i = 0; i < n && st == STATUS_OK; i++) {
        struct ingest_subset *s = &c->subsets[subset_of[e[i].subset]];
        int cls = -1;
        for (int j = 0; j < c->classes.n && cls < 0; j++)
            if (!strcmp(c->classes.names[j], e[i].label)) cls = j;
        if (cls < 0 && named) {
            char *end;
            long v = strtol(e[i].label, &end, 10) - (o->background_class ? 1 : 0);
            if (!*end && v >= 0 && v < c->classes.n) cls = (int)v;
        }
        if (cls < 0) {
            char where[PATH_MAX + 32], reason[600];
            snprintf(where, sizeof where, "%s:%d", e[i].list, e[i].line);
            snprintf(reason, sizeof reason, "label '%.500s' is not a class of %s", e[i].label,
                     o->append ? "the dataset" : "--labels_file");
            st = ingest_subset_reject(s, where, reason);
            continue;
        }
        st = ingest_subset_add(s, e[i].path, e[i].name, cls, 0);
        e[i].path = e[i].name = NULL;
    }
done:
    for (size_t i = 0; i < n; i++) { free(e[i].path); free(e[i].name); free(e[i].label); }
    free(e);
    free(line);
    return st;
}
