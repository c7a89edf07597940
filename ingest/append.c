/*
 * append.c — `deeper ingest --append`: new images become new shards of an
 * existing dataset.
 *
 * The dataset's manifest gives the classes (a label the dataset does not
 * have is a rejection; a class folder it does not have is refused), the
 * storage, the channels and the label numbering, whatever the flags say.
 * The new inputs are shuffled with the seed on their own stream (the dataset
 * version being made), numbered from each subset's next free id (one past
 * the largest id of its shards) and written as `<subset>-vN-IIIII-of-MMMMM.mdb`,
 * N the new dataset_version.  Existing shards are never opened for writing.
 * Last, rejected.txt gains the new rejections and the manifest is replaced
 * (atomically) by the old one plus the new shards, with dataset_version N and
 * an `appended` entry (command, date).  A crash before that leaves the old
 * dataset as it was; its unlisted new shards are overwritten by the next try.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest/ingest.h"
#include "shared/log.h"

status ingest_append_open(struct ingest_ctx *c, struct ingest_opts *o, struct manifest **old)
{
    status st = manifest_load(o->output_directory, old);
    if (st == STATUS_NOT_FOUND)
        return FAIL(STATUS_USAGE, "--append: %s holds no dataset (no manifest.json): ingest it first",
                    o->output_directory);
    TRY(st);
    const struct manifest *m = *old;
    o->storage = m->storage;
    o->channels = m->image.channels;
    o->background_class = m->label_offset != 0;
    c->generation = (m->dataset_version ? m->dataset_version : 1) + 1;
    c->classes.names = calloc((size_t)m->nclasses, sizeof *c->classes.names);
    if (!c->classes.names) return FAIL(STATUS_NOMEM, "out of memory");
    for (int i = 0; i < m->nclasses; i++) {
        if (!(c->classes.names[i] = strdup(m->classes[i].name))) return FAIL(STATUS_NOMEM, "out of memory");
        c->classes.n++;
    }
    return STATUS_OK;
}

status ingest_append_check_folders(const struct ingest_ctx *c, const char *const *dirs, int ndirs)
{
    struct ingest_classes found;
    TRY(ingest_classes_discover(dirs, ndirs, &found));
    status st = STATUS_OK;
    for (int i = 0; i < found.n && st == STATUS_OK; i++) {
        int known = 0;
        for (int j = 0; j < c->classes.n && !known; j++) known = !strcmp(found.names[i], c->classes.names[j]);
        if (!known)
            st = FAIL(STATUS_USAGE, "--append: class folder '%s' is not a class of the dataset in %s (an append "
                                    "cannot add classes)", found.names[i], c->o->output_directory);
    }
    ingest_classes_clear(&found);
    return st;
}

status ingest_append_ids(struct ingest_ctx *c, const struct manifest *old)
{
    for (int k = 0; k < c->nsubsets; k++) {
        const struct manifest_subset *s = manifest_subset_find(old, c->subsets[k].name);
        uint64_t next = 0;
        for (int i = 0; s && i < s->nshards; i++) {
            uint64_t end = s->shards[i].records ? s->shards[i].last_id + 1 : s->shards[i].first_id;
            if (end > next) next = end;
        }
        c->first_ids[k] = next;
    }
    return STATUS_OK;
}

/* rejected.txt: the old lines, then the new ones. */
static status append_rejected(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/rejected.txt", c->o->output_directory);
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        size_t cap = 0;
        ssize_t got = getdelim(&text, &cap, 0, f);
        len = got > 0 ? (size_t)got : 0;
        fclose(f);
    } else if (errno != ENOENT) {
        return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    }
    ingest_rej_lines_sort(v, n);
    size_t total = len;
    for (size_t i = 0; i < n; i++) total += strlen(v[i].text);
    char *all = realloc(text, total + 1);
    if (!all) { free(text); return FAIL(STATUS_NOMEM, "out of memory"); }
    for (size_t i = 0; i < n; i++) { size_t l = strlen(v[i].text); memcpy(all + len, v[i].text, l); len += l; }
    status st = manifest_write_atomic(c->o->output_directory, "rejected.txt", all, len);
    free(all);
    return st;
}

status ingest_append_finish(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n, struct manifest *m,
                            uint64_t *accepted)
{
    *accepted = 0;
    for (int j = 0; j < c->njobs; j++) {
        const struct ingest_shard_job *job = &c->jobs[j];
        const struct ingest_shard_result *r = &c->shared->results[j];
        if (!r->done) return FAIL(STATUS_STATE, "shard %s was not finished", job->file);
        const char *name = c->subsets[job->subset].name;
        struct manifest_subset *s = NULL;
        for (int i = 0; i < m->nsubsets; i++) if (!strcmp(m->subsets[i].name, name)) s = &m->subsets[i];
        if (!s) {
            struct manifest_subset *ns = realloc(m->subsets, (size_t)(m->nsubsets + 1) * sizeof *ns);
            if (!ns) return FAIL(STATUS_NOMEM, "out of memory");
            m->subsets = ns;
            s = &m->subsets[m->nsubsets++];
            memset(s, 0, sizeof *s);
            if (!(s->name = strdup(name))) return FAIL(STATUS_NOMEM, "out of memory");
        }
        struct manifest_shard *nsh = realloc(s->shards, (size_t)(s->nshards + 1) * sizeof *nsh);
        if (!nsh) return FAIL(STATUS_NOMEM, "out of memory");
        s->shards = nsh;
        status st = ingest_shard_result_add(m, s, &s->shards[s->nshards++], job, r, accepted);
        if (st != STATUS_OK) return st;
    }
    if (*accepted == 0) return FAIL(STATUS_FORMAT, "--append: no image was accepted; the dataset is unchanged");
    struct manifest_append *na = realloc(m->appends, (size_t)(m->nappends + 1) * sizeof *na);
    if (!na) return FAIL(STATUS_NOMEM, "out of memory");
    m->appends = na;
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct manifest_append *e = &m->appends[m->nappends++];
    e->version = c->generation;
    e->command = strdup(c->o->command ? c->o->command : "");
    e->date = strdup(date);
    if (!e->command || !e->date) return FAIL(STATUS_NOMEM, "out of memory");
    m->dataset_version = c->generation;
    TRY(append_rejected(c, v, n));
    TRY(manifest_save(m, c->o->output_directory));
    log_info("dataset %s is now version %d", c->o->output_directory, m->dataset_version);
    return STATUS_OK;
}
