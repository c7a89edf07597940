/*
 * run.c — the ingest run: list, shuffle, shard, fork workers, wait, then
 * write labels.txt, rejected.txt and (last) manifest.json.  See ingest.h for
 * the order of events and why it makes a kill at any moment safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "shared/log.h"
#include "shared/rng.h"
#include "shared/shard.h"

static status run_mkdirs(const char *dir)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return FAIL(STATUS_IO, "--output_directory %s: cannot create %s: %s", dir, tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return FAIL(STATUS_IO, "--output_directory %s: cannot create: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return FAIL(STATUS_IO, "--output_directory %s: not a directory", dir);
    /* writable? (root ignores permissions, so really try) */
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/.deeper-write-test", dir);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return FAIL(STATUS_IO, "--output_directory %s: not writable: %s", dir, strerror(errno));
    close(fd);
    unlink(probe);
    return STATUS_OK;
}

static void run_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

/* Is n a shard file name ("<subset>-NNNNN-of-MMMMM.mdb", "-lock" allowed)? */
static int run_is_shard_name(const char *n)
{
    const char *dash = strstr(n, "-of-");
    if (!dash || dash - n < 7) return 0;
    int a, b, len = 0;
    if (sscanf(dash - 6, "-%5d-of-%5d.mdb%n", &a, &b, &len) != 2 || !len) return 0;
    const char *end = dash - 6 + len;
    return *end == 0 || !strcmp(end, "-lock");
}

/* Make the directory "not a dataset": remove the manifest first (durably),
 * then the shards and side files of any earlier run.  A task removes only its
 * own shards and side files (the other tasks write theirs meanwhile); an
 * append removes nothing but its own unfinished shards. */
static status run_clear_output(struct ingest_ctx *c)
{
    const char *dir = c->o->output_directory;
    char path[PATH_MAX];
    if (!c->generation) {
        snprintf(path, sizeof path, "%s/%s", dir, MANIFEST_FILE);
        if (unlink(path) != 0 && errno != ENOENT)
            return FAIL(STATUS_IO, "%s: cannot remove the old manifest: %s", path, strerror(errno));
        run_fsync_dir(dir);
    }
    if (c->ntasks || c->generation) {
        for (int q = 0; q < c->nlocal; q++) {
            snprintf(path, sizeof path, "%s/%s", dir, c->jobs[c->local[q]].file);
            if (unlink(path) != 0 && errno != ENOENT) return FAIL(STATUS_IO, "%s: cannot remove: %s", path, strerror(errno));
        }
        if (c->ntasks) {
            char rec[64];
            ingest_task_record_name(c->task, c->ntasks, rec, sizeof rec);
            snprintf(path, sizeof path, "%s/%s", dir, rec);
            if (unlink(path) != 0 && errno != ENOENT) return FAIL(STATUS_IO, "%s: cannot remove: %s", path, strerror(errno));
        }
        return STATUS_OK;
    }
    DIR *d = opendir(dir);
    if (!d) return FAIL(STATUS_IO, "%s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        int side = !strncmp(n, ".rejected-", 10) || !strcmp(n, "manifest.json.tmp") ||
                   !strcmp(n, "rejected.txt.tmp") || !strcmp(n, "labels.txt.tmp") || !strncmp(n, "ingest-task-", 12);
        if (run_is_shard_name(n) || side) {
            snprintf(path, sizeof path, "%s/%s", dir, n);
            if (unlink(path) != 0 && errno != ENOENT) {
                closedir(d);
                return FAIL(STATUS_IO, "%s: cannot remove: %s", path, strerror(errno));
            }
        }
    }
    closedir(d);
    return STATUS_OK;
}

static status run_list(struct ingest_ctx *c)
{
    const struct ingest_opts *o = c->o;
    int mnist = o->train_images || o->validation_images;
    int nkinds = !!mnist + !!(o->train_directory || o->validation_directory) + !!o->file_list +
                 !!(o->train_list || o->validation_list);
    if (nkinds > 1)
        return FAIL(STATUS_USAGE, "give one kind of input: image folders (--train_directory/--validation_directory), "
                                  "--file_list, --train_list/--validation_list, or MNIST files (--train_images/...)");
    if (mnist && (o->train_directory || o->validation_directory))
        return FAIL(STATUS_USAGE, "give either image folders (--train_directory/--validation_directory) or "
                                  "MNIST files (--train_images/...), not both");
    if (!mnist && !o->train_directory && !o->validation_directory && !o->file_list && !o->train_list &&
        !o->validation_list)
        return FAIL(STATUS_USAGE, "nothing to ingest: give --train_directory and/or --validation_directory, "
                                  "or --train_images/--train_labels (MNIST idx files)");
    static const char *names[2] = { "validation", "train" };   /* TF processes validation first */
    const char *dirs[2] = { o->validation_directory, o->train_directory };
    const char *imgs[2] = { o->validation_images, o->train_images };
    const char *lbls[2] = { o->validation_labels, o->train_labels };
    int shards[2] = { o->validation_shards, o->train_shards };
    c->subsets = calloc(2, sizeof *c->subsets);
    if (!c->subsets) return FAIL(STATUS_NOMEM, "out of memory");
    if (mnist) {
        for (int k = 0; k < 2; k++)
            if (!imgs[k] != !lbls[k])
                return FAIL(STATUS_USAGE, "--%s_images and --%s_labels go together", names[k], names[k]);
        int maxlab = -1;
        for (int k = 0; k < 2; k++) {
            if (!imgs[k]) continue;
            struct ingest_subset *s = &c->subsets[c->nsubsets++];
            s->name = names[k];
            s->nshards = shards[k];
            TRY(ingest_mnist_load(imgs[k], lbls[k], &s->mnist));
            TRY(ingest_mnist_list(s->mnist, imgs[k], s));
            for (uint32_t i = 0; i < s->mnist->n; i++)
                if (s->mnist->labels[i] > maxlab) maxlab = s->mnist->labels[i];
        }
        if (c->classes.n || o->labels_file) {
            if (!c->classes.n) TRY(ingest_classes_load(o->labels_file, &c->classes));
            if (maxlab >= c->classes.n)
                return FAIL(STATUS_USAGE, "the MNIST labels go up to %d but --labels_file %s names %d classes", maxlab,
                            o->labels_file, c->classes.n);
        } else {
            int cap = 0;
            c->classes.names = calloc((size_t)maxlab + 1, sizeof *c->classes.names);
            if (!c->classes.names) return FAIL(STATUS_NOMEM, "out of memory");
            for (int i = 0; i <= maxlab; i++) {
                char nm[16];
                snprintf(nm, sizeof nm, "%d", i);
                c->classes.names[i] = strdup(nm);
                c->classes.n++;
            }
            (void)cap;
        }
    } else if (o->file_list) {
        if (o->labels_file) return FAIL(STATUS_USAGE, "--file_list carries its classes: drop --labels_file");
        TRY(ingest_file_list_read(o->file_list, c, names, shards));
    } else if (o->train_list || o->validation_list) {
        const char *lists[2] = { o->validation_list, o->train_list };
        TRY(ingest_lists_load(o, lists, names, shards, c));
    } else {
        const char *given[2];
        int ng = 0;
        for (int k = 0; k < 2; k++) if (dirs[k]) given[ng++] = dirs[k];
        if (c->classes.n) TRY(ingest_append_check_folders(c, given, ng));   /* appending: the dataset's classes */
        else if (o->labels_file) TRY(ingest_classes_load(o->labels_file, &c->classes));
        else TRY(ingest_classes_discover(given, ng, &c->classes));
        for (int k = 0; k < 2; k++) {
            if (!dirs[k]) continue;
            struct ingest_subset *s = &c->subsets[c->nsubsets++];
            s->name = names[k];
            s->nshards = shards[k];
            TRY(ingest_walk(dirs[k], &c->classes, s));
        }
    }
    for (int k = 0; k < c->nsubsets; k++) {
        struct ingest_subset *s = &c->subsets[k];
        if (o->max_examples > 0 && s->n > (size_t)o->max_examples) {
            for (size_t i = (size_t)o->max_examples; i < s->n; i++) { free(s->items[i].path); free(s->items[i].name); }
            s->n = (size_t)o->max_examples;
        }
        if (s->n > UINT32_MAX) return FAIL(STATUS_TOO_BIG, "%s: more than 2^32 images", s->name);
        if (s->nshards < 1) return FAIL(STATUS_USAGE, "--%s_shards must be at least 1", s->name);
        if (s->hidden_skipped)
            log_info("%s: skipped %llu hidden file(s) (names starting with '.')", s->name,
                     (unsigned long long)s->hidden_skipped);
    }
    return STATUS_OK;
}

/* Shuffle each subset with Philox keyed by the seed, then cut into jobs. */
static status run_plan(struct ingest_ctx *c)
{
    int total = 0;
    for (int k = 0; k < c->nsubsets; k++) total += c->subsets[k].nshards;
    c->jobs = calloc((size_t)total, sizeof *c->jobs);
    if (!c->jobs) return FAIL(STATUS_NOMEM, "out of memory");
    for (int k = 0; k < c->nsubsets; k++) {
        struct ingest_subset *s = &c->subsets[k];
        uint32_t *perm = malloc((s->n ? s->n : 1) * sizeof *perm);
        struct ingest_item *shuffled = malloc((s->n ? s->n : 1) * sizeof *shuffled);
        if (!perm || !shuffled) { free(perm); free(shuffled); return FAIL(STATUS_NOMEM, "out of memory"); }
        for (size_t i = 0; i < s->n; i++) perm[i] = (uint32_t)i;
        struct rng r;
        rng_init(&r, (uint64_t)c->o->seed, rng_stream(RNG_WHAT_INGEST, (uint64_t)k, (uint64_t)c->generation));
        rng_shuffle_u32(&r, perm, (uint32_t)s->n);
        for (size_t i = 0; i < s->n; i++) shuffled[i] = s->items[perm[i]];
        free(s->items);
        free(perm);
        s->items = shuffled;
        s->cap = s->n;
        for (int j = 0; j < s->nshards; j++) {
            struct ingest_shard_job *job = &c->jobs[c->njobs++];
            job->subset = k;
            job->index = j;
            job->lo = c->first_ids[k] + (uint64_t)s->n * (uint64_t)j / (uint64_t)s->nshards;
            job->hi = c->first_ids[k] + (uint64_t)s->n * (uint64_t)(j + 1) / (uint64_t)s->nshards;
            char stem[160];
            if (c->generation) snprintf(stem, sizeof stem, "%s-v%d", s->name, c->generation);
            else snprintf(stem, sizeof stem, "%s", s->name);
            TRY(shard_file_name(stem, j, s->nshards, job->file, sizeof job->file));
        }
    }
    /* a task writes the jobs j with j % ntasks == task, whatever the number of threads */
    c->local = calloc((size_t)(c->njobs ? c->njobs : 1), sizeof *c->local);
    if (!c->local) return FAIL(STATUS_NOMEM, "out of memory");
    for (int j = 0; j < c->njobs; j++)
        if (!c->ntasks || j % c->ntasks == c->task) c->local[c->nlocal++] = j;
    c->plan = ingest_plan_fingerprint(c);
    return STATUS_OK;
}

static volatile sig_atomic_t run_stop;
static void run_on_signal(int sig) { (void)sig; run_stop = 1; }

/* Fork the workers and wait for them, drawing progress. */
static status run_workers(struct ingest_ctx *c)
{
    uint64_t total = 0;
    for (int q = 0; q < c->nlocal; q++) total += c->jobs[c->local[q]].hi - c->jobs[c->local[q]].lo;
    size_t shsize = sizeof(struct ingest_shared) + (size_t)c->njobs * sizeof(struct ingest_shard_result);
    c->shared = mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c->shared == MAP_FAILED) { c->shared = NULL; return FAIL(STATUS_NOMEM, "mmap of %zu bytes failed", shsize); }
    memset(c->shared, 0, shsize);
    pid_t pids[INGEST_MAX_PROCS] = { 0 };
    pid_t parent = getpid();
    fflush(NULL);
    for (int p = 0; p < c->nprocs; p++) {
        pid_t pid = fork();
        if (pid < 0) {
            for (int q = 0; q < p; q++) kill(pids[q], SIGKILL);
            return FAIL(STATUS_IO, "fork failed: %s", strerror(errno));
        }
        if (pid == 0) {
            /* die with the parent: a killed ingest leaves no orphans writing */
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent) _exit(1);
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            status st = ingest_worker_run(c, p);
            if (st != STATUS_OK) {
                snprintf(c->shared->error[p], sizeof c->shared->error[p], "%s", status_msg());
                __atomic_store_n(&c->shared->failed[p], 1, __ATOMIC_RELEASE);
            }
            fflush(NULL);
            _exit(st == STATUS_OK ? 0 : 1);   /* the worker's end; main() reports for the parent */
        }
        pids[p] = pid;
    }
    struct sigaction sa = { 0 }, old_int, old_term;
    sa.sa_handler = run_on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct progress pr;
    progress_start(&pr, "ingest", (int64_t)total, "img");
    int alive = c->nprocs, failed = -1;
    status st = STATUS_OK;
    while (alive > 0) {
        int ws;
        pid_t pid = waitpid(-1, &ws, WNOHANG);
        if (pid > 0) {
            for (int p = 0; p < c->nprocs; p++)
                if (pids[p] == pid) {
                    pids[p] = 0;
                    alive--;
                    if (!(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) && failed < 0) {
                        failed = p;
                        if (c->shared->failed[p])
                            st = FAIL(STATUS_IO, "%s", c->shared->error[p]);
                        else if (WIFSIGNALED(ws))
                            st = FAIL(STATUS_IO, "worker %d was killed by signal %d", p, WTERMSIG(ws));
                        else
                            st = FAIL(STATUS_IO, "worker %d exited with status %d", p, WEXITSTATUS(ws));
                    }
                }
            if (failed >= 0 || run_stop)
                for (int p = 0; p < c->nprocs; p++) if (pids[p]) kill(pids[p], SIGKILL);
            continue;
        }
        if (run_stop) {
            for (int p = 0; p < c->nprocs; p++) if (pids[p]) kill(pids[p], SIGKILL);
            if (st == STATUS_OK) st = FAIL(STATUS_INTERRUPTED, "interrupted; no dataset was written (run again)");
        }
        uint64_t done = 0;
        for (int p = 0; p < c->nprocs; p++) done += __atomic_load_n(&c->shared->processed[p], __ATOMIC_RELAXED);
        if (!c->o->quiet) progress_update(&pr, (int64_t)done);
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    uint64_t done = 0;
    for (int p = 0; p < c->nprocs; p++) done += c->shared->processed[p];
    if (!c->o->quiet) { pr.done = (int64_t)done; progress_finish(&pr); }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st == STATUS_OK && run_stop) st = FAIL(STATUS_INTERRUPTED, "interrupted; no dataset was written");
    return st;
}

void ingest_rej_lines_free(struct ingest_rej_line *v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i].text);
    free(v);
}

static int cmp_rej(const void *a, const void *b)
{
    const struct ingest_rej_line *x = a, *y = b;
    if (x->subset != y->subset) return x->subset < y->subset ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return strcmp(x->text, y->text);
}

void ingest_rej_lines_sort(struct ingest_rej_line *v, size_t n)
{
    if (n) qsort(v, n, sizeof *v, cmp_rej);
}

/* Gather the listing rejections (a task other than 0 leaves them to task 0)
 * and the workers' into "<subset>\t<escaped name>\t<reason>" lines. */
static status run_collect_rejected(struct ingest_ctx *c, struct ingest_rej_line **out, size_t *count)
{
    struct ingest_rej_line *v = NULL;
    size_t n = 0, cap = 0;
    status st = STATUS_OK;
    char *line = NULL;
    size_t lcap = 0;
#define PUSH(sub, ident, txt) do { if (n == cap) { cap = cap ? cap * 2 : 64; \
        struct ingest_rej_line *nv_ = realloc(v, cap * sizeof *v); if (!nv_) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; } v = nv_; } \
        v[n].subset = (sub); v[n].id = (ident); v[n].text = (txt); if (!v[n].text) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; } n++; } while (0)
    for (int k = 0; k < c->nsubsets && c->task == 0; k++)
        for (size_t i = 0; i < c->subsets[k].nrejects; i++) {
            const struct ingest_reject *r = &c->subsets[k].rejects[i];
            char esc[2048], buf[3000];
            ingest_escape(r->name, strlen(r->name), esc, sizeof esc);
            snprintf(buf, sizeof buf, "%s\t%s\t%s\n", c->subsets[k].name, esc, r->reason);
            PUSH(k * 2, (uint64_t)i, strdup(buf));   /* listing rejections first, in walk order */
        }
    for (int p = 0; p < c->nprocs; p++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/.rejected-%d-%d.tmp", c->o->output_directory, c->task, p);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        ssize_t len;
        while ((len = getline(&line, &lcap, f)) > 0) {
            int k;
            unsigned long long id;
            int off = 0;
            if (sscanf(line, "%d\t%llu\t%n", &k, &id, &off) < 2 || k < 0 || k >= c->nsubsets || off == 0) continue;
            size_t tl = strlen(c->subsets[k].name) + (size_t)len + 4;
            char *t = malloc(tl);
            if (t) snprintf(t, tl, "%s\t%s", c->subsets[k].name, line + off);
            PUSH(k * 2 + 1, id, t);
        }
        fclose(f);
        unlink(path);
    }
done:
    free(line);
    if (st != STATUS_OK) { ingest_rej_lines_free(v, n); v = NULL; n = 0; }
    *out = v;
    *count = n;
    return st;
#undef PUSH
}

/* rejected.txt: the lines sorted by subset, listing before decoding, then id. */
static status run_write_rejected(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n)
{
    ingest_rej_lines_sort(v, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(v[i].text);
    char *all = malloc(total + 1);
    if (!all) return FAIL(STATUS_NOMEM, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) { size_t l = strlen(v[i].text); memcpy(all + o, v[i].text, l); o += l; }
    status st = manifest_write_atomic(c->o->output_directory, "rejected.txt", all, o);
    free(all);
    return st;
}

static status run_write_labels(struct ingest_ctx *c)
{
    size_t total = 0;
    for (int i = 0; i < c->classes.n; i++) total += strlen(c->classes.names[i]) + 1;
    char *buf = malloc(total + 1), *p = buf;
    if (!buf) return FAIL(STATUS_NOMEM, "out of memory");
    for (int i = 0; i < c->classes.n; i++) p += sprintf(p, "%s\n", c->classes.names[i]);
    status st = manifest_write_atomic(c->o->output_directory, "labels.txt", buf, total);
    free(buf);
    return st;
}

/* Fill the manifest entry d of subset s from a finished shard job and its
 * result, and fold the shard's records and image sizes into the totals.
 * d is zeroed here; the caller has made room for it. */
status ingest_shard_result_add(struct manifest *m, struct manifest_subset *s, struct manifest_shard *d,
                               const struct ingest_shard_job *job, const struct ingest_shard_result *r,
                               uint64_t *accepted)
{
    memset(d, 0, sizeof *d);
    if (!(d->file = strdup(job->file))) return FAIL(STATUS_NOMEM, "out of memory");
    d->records = r->records;
    d->first_id = r->records ? r->first_id : job->lo;
    d->last_id = r->records ? r->last_id : job->lo;
    d->checksum = r->checksum;
    d->bytes = r->bytes;
    s->count += r->records;
    *accepted += r->records;
    if (r->records) {
        if (r->min_h < m->image.min_height) m->image.min_height = r->min_h;
        if (r->max_h > m->image.max_height) m->image.max_height = r->max_h;
        if (r->min_w < m->image.min_width) m->image.min_width = r->min_w;
        if (r->max_w > m->image.max_width) m->image.max_width = r->max_w;
    }
    return STATUS_OK;
}

static status run_write_manifest(struct ingest_ctx *c, uint64_t *accepted)
{
    const struct ingest_opts *o = c->o;
    status st = STATUS_OK;
    struct manifest *m = calloc(1, sizeof *m);
    if (!m) return FAIL(STATUS_NOMEM, "out of memory");
    m->format_version = MANIFEST_FORMAT_VERSION;
    m->label_offset = o->background_class ? 1 : 0;
    m->nclasses = c->classes.n;
    m->classes = calloc((size_t)c->classes.n, sizeof *m->classes);
    m->subsets = calloc((size_t)c->nsubsets, sizeof *m->subsets);
    if (!m->classes || !m->subsets) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < c->classes.n; i++) {
        m->classes[i].id = m->label_offset + i;
        m->classes[i].name = strdup(c->classes.names[i]);
    }
    m->storage = o->storage;
    m->image.channels = c->channels;
    m->image.min_height = m->image.min_width = INT32_MAX;
    int mnist = c->subsets[0].mnist != NULL;
    m->augment.profile = o->profile_set ? o->profile : (mnist ? MANIFEST_PROFILE_DIGITS : MANIFEST_PROFILE_PHOTO);
    int photo = m->augment.profile == MANIFEST_PROFILE_PHOTO;
    int small = m->augment.profile == MANIFEST_PROFILE_SMALL;   /* mild crops + flips (augment/profile.h) */
    m->augment.flip = (photo || small) && !o->no_flip;
    m->augment.color = photo && !o->no_color;
    m->made.command = strdup(o->command ? o->command : "");
    m->made.seed = (uint64_t)o->seed;
    char date[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    m->made.date = strdup(date);
    m->made.program = strdup("deeper-ingest 1");
    *accepted = 0;
    for (int j = 0; j < c->njobs; j++) {
        const struct ingest_shard_job *job = &c->jobs[j];
        const struct ingest_shard_result *r = &c->shared->results[j];
        if (!r->done) { st = FAIL(STATUS_STATE, "shard %s was not finished", job->file); goto done; }
        struct manifest_subset *s = &m->subsets[job->subset];
        if (!s->name) {
            s->name = strdup(c->subsets[job->subset].name);
            s->shards = calloc((size_t)c->subsets[job->subset].nshards, sizeof *s->shards);
            if (!s->shards) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
            m->nsubsets++;
        }
        st = ingest_shard_result_add(m, s, &s->shards[s->nshards++], job, r, accepted);
        if (st != STATUS_OK) goto done;
    }
    if (*accepted == 0) { st = FAIL(STATUS_FORMAT, "no image was accepted; see the rejections above"); goto done; }
    st = manifest_save(m, o->output_directory);
done:
    manifest_free(&m);
    return st;
}

status ingest_outputs_write(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n, uint64_t *accepted)
{
    TRY(run_write_rejected(c, v, n));
    TRY(run_write_labels(c));
    return run_write_manifest(c, accepted);
}

static void run_free(struct ingest_ctx *c)
{
    for (int k = 0; k < c->nsubsets; k++) ingest_subset_clear(&c->subsets[k]);
    free(c->subsets);
    ingest_classes_clear(&c->classes);
    free(c->jobs);
    free(c->local);
    if (c->shared) {
        size_t shsize = sizeof(struct ingest_shared) + (size_t)c->njobs * sizeof(struct ingest_shard_result);
        munmap(c->shared, shsize);
    }
}

status ingest_run(const struct ingest_opts *opts)
{
    struct ingest_opts oo = *opts;   /* an append takes storage, channels and numbering from the dataset */
    const struct ingest_opts *o = &oo;
    struct ingest_ctx c = { .o = o, .task = o->num_tasks ? o->task_index : 0, .ntasks = o->num_tasks };
    struct manifest *old = NULL;
    struct ingest_rej_line *rej = NULL;
    size_t nrej = 0;
    status st;
    double t0 = log_now();
    if (o->finalize) return ingest_finalize(o->finalize, o);
    if (o->num_threads < 1 || o->num_threads > INGEST_MAX_PROCS) {
        st = FAIL(STATUS_USAGE, "--num_threads %d: expected 1..%d", o->num_threads, INGEST_MAX_PROCS);
        goto done;
    }
    int listing_only = o->write_file_list != NULL;
    if (!o->decode_only && !listing_only && !o->output_directory) {
        st = FAIL(STATUS_USAGE, "--output_directory is required");
        goto done;
    }
    if (listing_only && (o->num_tasks || o->append)) {
        st = FAIL(STATUS_USAGE, "--write_file_list only lists the inputs: run it once, without tasks or --append");
        goto done;
    }
    if (o->append && (o->num_tasks || o->file_list)) {
        st = FAIL(STATUS_USAGE, "--append runs as one ingest (no --num_tasks) on folders, lists or MNIST files");
        goto done;
    }
    if (o->append && (st = ingest_append_open(&c, &oo, &old)) != STATUS_OK) goto done;
    /* a fatal output problem is reported before any listing work */
    if (!o->decode_only && !listing_only && (st = run_mkdirs(o->output_directory)) != STATUS_OK) goto done;
    if ((st = run_list(&c)) != STATUS_OK) goto done;
    c.channels = o->channels ? o->channels : (c.subsets[0].mnist ? 1 : 3);
    uint64_t listed = 0;
    for (int k = 0; k < c.nsubsets; k++) {
        listed += c.subsets[k].n;
        log_info("%s: %zu candidate images in %d class(es)%s", c.subsets[k].name, c.subsets[k].n, c.classes.n,
                 c.subsets[k].nrejects ? " (some rejected while listing)" : "");
    }
    if (listing_only) {
        if ((st = ingest_file_list_write(o->write_file_list, &c)) == STATUS_OK)
            printf("file list: %llu images in %d subset(s) written to %s\n", (unsigned long long)listed, c.nsubsets,
                   o->write_file_list);
        goto done;
    }
    if (o->decode_only) { st = ingest_decode_only(&c); goto done; }
    if (o->bounding_box_file && (st = ingest_boxes_attach(o->bounding_box_file, &c)) != STATUS_OK) goto done;
    if (old && (st = ingest_append_ids(&c, old)) != STATUS_OK) goto done;
    if ((st = run_plan(&c)) != STATUS_OK) goto done;
    c.nprocs = o->num_threads < c.nlocal ? o->num_threads : c.nlocal;
    if ((st = run_clear_output(&c)) != STATUS_OK) goto done;
    if (c.ntasks)
        log_info("Task %d of %d: writing %d of the %d shard(s) with %d worker process(es) to %s", c.task, c.ntasks,
                 c.nlocal, c.njobs, c.nprocs, o->output_directory);
    else
        log_info("Writing %llu images in %d shard(s) with %d worker process(es) to %s", (unsigned long long)listed,
                 c.njobs, c.nprocs, o->output_directory);
    if ((st = run_workers(&c)) != STATUS_OK) goto done;
    if ((st = run_collect_rejected(&c, &rej, &nrej)) != STATUS_OK) goto done;
    uint64_t accepted = 0;
    if (c.ntasks) {
        if ((st = ingest_task_record_write(&c, rej, nrej)) != STATUS_OK) goto done;
        for (int q = 0; q < c.nlocal; q++) accepted += c.shared->results[c.local[q]].records;
        printf("task %d of %d: %llu images in %d shard(s); run `deeper ingest --finalize %s` after every task\n",
               c.task, c.ntasks, (unsigned long long)accepted, c.nlocal, o->output_directory);
        goto done;
    }
    if (old) st = ingest_append_finish(&c, rej, nrej, old, &accepted);
    else st = ingest_outputs_write(&c, rej, nrej, &accepted);
    if (st != STATUS_OK) goto done;
    double dt = log_now() - t0;
    log_info("Finished writing all %llu images in data set (%llu rejected, %.1f s, %.1f images/s).",
             (unsigned long long)accepted, (unsigned long long)nrej, dt, dt > 0 ? accepted / dt : 0.0);
    for (int k = 0; k < c.nsubsets; k++) {
        uint64_t n = 0;
        for (int j = 0; j < c.njobs; j++) if (c.jobs[j].subset == k) n += c.shared->results[j].records;
        printf("%s: %llu images in %d shard(s)\n", c.subsets[k].name, (unsigned long long)n, c.subsets[k].nshards);
    }
    printf("rejected: %llu (listed in %s/rejected.txt)\n", (unsigned long long)nrej, o->output_directory);
done:
    ingest_rej_lines_free(rej, nrej);
    manifest_free(&old);
    run_free(&c);
    return st;
}
