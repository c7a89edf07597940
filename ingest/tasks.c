/*
 * tasks.c — one dataset ingested by several processes on several machines.
 *
 * Every task lists the same inputs (or reads one file list), shuffles them
 * with the same seed and cuts the same shards as a single ingest would; the
 * global shard list (validation shards, then train) is dealt round-robin:
 * task i writes the shards j with j % num_tasks == i, byte for byte what a
 * single ingest writes for them.  After its shards are synced a task writes
 * its completion record, DIR/ingest-task-IIIII-of-MMMMM.json (atomically):
 * the plan fingerprint, what the manifest needs (classes, storage, profile,
 * seed, command), the per-shard results and its rejections.  A task never
 * writes the manifest; it removes an old one, so the directory is no dataset
 * until `deeper ingest --finalize DIR` has checked that every task's record
 * is there, agrees on the plan, and that each listed shard opens, holds the
 * records it claims, every record decodes and the content checksum (which
 * covers every byte, record CRCs included) matches, in --num_threads
 * processes; only then rejected.txt, labels.txt and (last, atomically)
 * manifest.json are written, exactly as a single ingest writes them.
 *
 * A task that died leaves no record (or an old one, which it removed before
 * writing anything): run it again alone with the same flags.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "ingest/ingest.h"
#include "shared/crc32c.h"
#include "shared/log.h"
#include "shared/shard.h"

#define TASK_FORMAT "deeper-ingest-task"

static status tasks_env_int(const char *name, int *out)
{
    const char *v = getenv(name);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < 0 || x > 1000000)
        return FAIL(STATUS_USAGE, "environment variable %s='%s' is not a count or index", name, v);
    *out = (int)x;
    return STATUS_OK;
}

status ingest_tasks_resolve(struct ingest_opts *o)
{
    if (o->num_tasks < 0) return FAIL(STATUS_USAGE, "--num_tasks %d: expected at least 1", o->num_tasks);
    if (o->task_index < 0) {
        if (getenv("SLURM_ARRAY_TASK_ID")) {
            int id, min = 0, count;
            TRY(tasks_env_int("SLURM_ARRAY_TASK_ID", &id));
            if (getenv("SLURM_ARRAY_TASK_MIN")) TRY(tasks_env_int("SLURM_ARRAY_TASK_MIN", &min));
            if (!o->num_tasks) {
                if (!getenv("SLURM_ARRAY_TASK_COUNT"))
                    return FAIL(STATUS_USAGE, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: "
                                              "give --num_tasks");
                TRY(tasks_env_int("SLURM_ARRAY_TASK_COUNT", &count));
                o->num_tasks = count;
            }
            o->task_index = id - min;
        } else if (getenv("JOB_COMPLETION_INDEX")) {
            TRY(tasks_env_int("JOB_COMPLETION_INDEX", &o->task_index));
            if (!o->num_tasks) {
                if (!getenv("DEEPER_NUM_TASKS"))
                    return FAIL(STATUS_USAGE, "JOB_COMPLETION_INDEX is set: give the number of tasks with "
                                              "--num_tasks or DEEPER_NUM_TASKS (the Job's completions)");
                TRY(tasks_env_int("DEEPER_NUM_TASKS", &o->num_tasks));
            }
        } else if (o->num_tasks) {
            return FAIL(STATUS_USAGE, "--num_tasks %d without --task_index (nor SLURM_ARRAY_TASK_ID or "
                                      "JOB_COMPLETION_INDEX)", o->num_tasks);
        } else {
            return STATUS_OK;   /* one ingest */
        }
    } else if (!o->num_tasks) {
        return FAIL(STATUS_USAGE, "--task_index %d needs --num_tasks", o->task_index);
    }
    if (o->num_tasks < 1 || o->task_index < 0 || o->task_index >= o->num_tasks)
        return FAIL(STATUS_USAGE, "task index %d is outside 0..%d (--num_tasks %d)", o->task_index, o->num_tasks - 1,
                    o->num_tasks);
    return STATUS_OK;
}

void ingest_task_record_name(int task, int ntasks, char *buf, size_t cap)
{
    snprintf(buf, cap, "ingest-task-%05d-of-%05d.json", task, ntasks);
}

static uint32_t fp_str(uint32_t h, const char *s) { return crc32c_update(h, s, strlen(s) + 1); }
static uint32_t fp_u64(uint32_t h, uint64_t v) { return crc32c_update(h, &v, sizeof v); }

uint32_t ingest_plan_fingerprint(const struct ingest_ctx *c)
{
    const struct ingest_opts *o = c->o;
    uint32_t h = 0;
    uint64_t opts[] = { (uint64_t)o->seed, (uint64_t)o->storage, (uint64_t)o->jpeg_quality, (uint64_t)o->resize_short,
                        (uint64_t)c->channels, (uint64_t)o->max_pixels, (uint64_t)o->background_class,
                        (uint64_t)o->profile_set, (uint64_t)o->profile, (uint64_t)o->no_flip, (uint64_t)o->no_color,
                        (uint64_t)c->generation };
    h = crc32c_update(h, opts, sizeof opts);
    for (int i = 0; i < c->classes.n; i++) h = fp_str(h, c->classes.names[i]);
    for (int k = 0; k < c->nsubsets; k++) {
        const struct ingest_subset *s = &c->subsets[k];
        h = fp_str(h, s->name);
        h = fp_u64(h, (uint64_t)s->nshards);
        h = fp_u64(h, s->n);
        h = fp_u64(h, c->first_ids[k]);
        for (size_t i = 0; i < s->n; i++) {
            h = fp_str(h, s->items[i].name);
            h = fp_u64(h, (uint64_t)s->items[i].class_idx);
            if (s->items[i].nboxes) h = crc32c_update(h, s->items[i].boxes, s->items[i].nboxes * 4 * sizeof(float));
        }
    }
    return h;
}

/* ------------------------------------------------------------ the record */

status ingest_task_record_write(struct ingest_ctx *c, struct ingest_rej_line *v, size_t n)
{
    const struct ingest_opts *o = c->o;
    status st = STATUS_OK;
    char *text = NULL, buf[64];
    cJSON *root = cJSON_CreateObject(), *arr, *it;
    if (!root) return FAIL(STATUS_NOMEM, "out of memory");
    cJSON_AddStringToObject(root, "format", TASK_FORMAT);
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddNumberToObject(root, "task", c->task);
    cJSON_AddNumberToObject(root, "num_tasks", c->ntasks);
    snprintf(buf, sizeof buf, "%08" PRIx32, c->plan);
    cJSON_AddStringToObject(root, "plan", buf);
    cJSON_AddStringToObject(root, "command", o->command ? o->command : "");
    snprintf(buf, sizeof buf, "%" PRId64, o->seed);
    cJSON_AddStringToObject(root, "seed", buf);
    cJSON_AddStringToObject(root, "storage", record_storage_name(o->storage));
    cJSON_AddNumberToObject(root, "channels", c->channels);
    cJSON_AddNumberToObject(root, "background_class", o->background_class);
    int mnist = c->subsets[0].mnist != NULL;
    enum manifest_profile prof = o->profile_set ? o->profile : (mnist ? MANIFEST_PROFILE_DIGITS : MANIFEST_PROFILE_PHOTO);
    cJSON_AddStringToObject(root, "profile", manifest_profile_name(prof));
    cJSON_AddBoolToObject(root, "no_flip", o->no_flip);
    cJSON_AddBoolToObject(root, "no_color", o->no_color);
    arr = cJSON_AddArrayToObject(root, "classes");
    for (int i = 0; i < c->classes.n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(c->classes.names[i]));
    arr = cJSON_AddArrayToObject(root, "subsets");
    for (int k = 0; k < c->nsubsets; k++) {
        it = cJSON_CreateObject();
        cJSON_AddStringToObject(it, "name", c->subsets[k].name);
        cJSON_AddNumberToObject(it, "shards", c->subsets[k].nshards);
        cJSON_AddNumberToObject(it, "listed", (double)c->subsets[k].n);
        cJSON_AddItemToArray(arr, it);
    }
    arr = cJSON_AddArrayToObject(root, "shards");
    for (int q = 0; q < c->nlocal; q++) {
        int j = c->local[q];
        const struct ingest_shard_result *r = &c->shared->results[j];
        if (!r->done) { st = FAIL(STATUS_STATE, "shard %s was not finished", c->jobs[j].file); goto done; }
        it = cJSON_CreateObject();
        cJSON_AddNumberToObject(it, "job", j);
        cJSON_AddStringToObject(it, "file", c->jobs[j].file);
        cJSON_AddNumberToObject(it, "records", (double)r->records);
        cJSON_AddNumberToObject(it, "first_id", (double)r->first_id);
        cJSON_AddNumberToObject(it, "last_id", (double)r->last_id);
        cJSON_AddNumberToObject(it, "checksum", r->checksum);
        cJSON_AddNumberToObject(it, "bytes", (double)r->bytes);
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", o->output_directory, c->jobs[j].file);
        if (stat(path, &sb) != 0) { st = FAIL(STATUS_IO, "%s: %s", path, strerror(errno)); cJSON_Delete(it); goto done; }
        cJSON_AddNumberToObject(it, "file_size", (double)sb.st_size);
        int dims[4] = { r->min_h, r->max_h, r->min_w, r->max_w };
        cJSON_AddItemToObject(it, "sizes", cJSON_CreateIntArray(dims, 4));
        cJSON_AddItemToArray(arr, it);
    }
    arr = cJSON_AddArrayToObject(root, "rejected");
    for (size_t i = 0; i < n; i++) {
        it = cJSON_CreateArray();
        cJSON_AddItemToArray(it, cJSON_CreateNumber(v[i].subset));
        cJSON_AddItemToArray(it, cJSON_CreateNumber((double)v[i].id));
        cJSON_AddItemToArray(it, cJSON_CreateString(v[i].text));
        cJSON_AddItemToArray(arr, it);
    }
    text = cJSON_PrintUnformatted(root);
    if (!text) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
    char name[64];
    ingest_task_record_name(c->task, c->ntasks, name, sizeof name);
    st = manifest_write_atomic(o->output_directory, name, text, strlen(text));
done:
    free(text);
    cJSON_Delete(root);
    return st;
}

/* ------------------------------------------------------------ finalize */

struct task_rec {
    char file[NAME_MAX + 1];
    cJSON *json;
    int task, ntasks;
    const char *plan;
};

static int js_int(const cJSON *o, const char *k, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it)) return -1;
    *out = it->valuedouble;
    return 0;
}

static const char *js_str(const cJSON *o, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

static status tasks_read(const char *dir, const char *name, struct task_rec *r)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(r->file, sizeof r->file, "%s", name);
    FILE *f = fopen(path, "r");
    if (!f) return FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
    char *text = NULL;
    size_t cap = 0;
    ssize_t len = getdelim(&text, &cap, 0, f);
    fclose(f);
    if (len < 0) { free(text); return FAIL(STATUS_IO, "%s: unreadable", path); }
    r->json = cJSON_Parse(text);
    free(text);
    double t, m;
    const char *fmt = r->json ? js_str(r->json, "format") : NULL;
    if (!fmt || strcmp(fmt, TASK_FORMAT) || js_int(r->json, "task", &t) || js_int(r->json, "num_tasks", &m) ||
        !(r->plan = js_str(r->json, "plan")))
        return FAIL(STATUS_FORMAT, "%s: not a task completion record", path);
    r->task = (int)t;
    r->ntasks = (int)m;
    return STATUS_OK;
}

/* Open one shard and check it against its record entry; a problem goes to why. */
static int tasks_check_shard(const char *dir, const char *file, uint64_t records, uint32_t checksum, uint64_t size,
                             char *why, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    struct stat sb;   /* a short file would fault the reader's map: check its size first */
    if (stat(path, &sb) != 0) { snprintf(why, cap, "%s: %s", file, strerror(errno)); return -1; }
    if ((uint64_t)sb.st_size != size) {
        snprintf(why, cap, "%s is %lld bytes, its task wrote %" PRIu64, file, (long long)sb.st_size, size);
        return -1;
    }
    struct shard_reader *r;
    if (shard_reader_open(path, &r) != STATUS_OK) { snprintf(why, cap, "%s", status_msg()); return -1; }
    int bad = 0;
    if (shard_reader_count(r) != records) {
        snprintf(why, cap, "%s holds %" PRIu64 " records, its task wrote %" PRIu64, file, shard_reader_count(r), records);
        bad = 1;
    }
    struct shard_txn *t = NULL;
    if (!bad && shard_txn_begin(r, &t) != STATUS_OK) { snprintf(why, cap, "%s: %s", file, status_msg()); bad = 1; }
    uint32_t sum = 0;
    uint64_t key;
    const void *val;
    size_t len;
    status st = STATUS_OK;
    while (!bad && (st = shard_txn_next(t, &key, &val, &len)) == STATUS_OK) {
        sum = shard_checksum_update(sum, key, val, len);
        struct record rec;
        /* structure only: the content checksum below covers every byte the task wrote, CRC fields included */
        if (record_decode(val, len, 0, &rec) != STATUS_OK) {
            snprintf(why, cap, "%s: record %" PRIu64 ": %s", file, key, status_msg());
            bad = 1;
        }
    }
    if (!bad && st != STATUS_NOT_FOUND) { snprintf(why, cap, "%s: %s", file, status_msg()); bad = 1; }
    if (!bad && sum != checksum) {
        snprintf(why, cap, "%s: content checksum %08" PRIx32 ", its task wrote %08" PRIx32, file, sum, checksum);
        bad = 1;
    }
    if (t) shard_txn_end(t);
    shard_reader_free(&r);
    return bad ? -1 : 0;
}

struct verdict { int bad; char why[700]; };

/* Check every shard listed by a task record (and note those missing from
 * one) in up to nprocs forked processes; the verdicts live in a shared map
 * the caller unmaps. */
static status tasks_verify(const char *dir, const struct ingest_ctx *c, const uint64_t *file_size, int nprocs,
                           struct verdict **out)
{
    size_t size = (size_t)c->njobs * sizeof **out;
    struct verdict *v = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (v == MAP_FAILED) return FAIL(STATUS_NOMEM, "mmap of %zu bytes failed", size);
    *out = v;
    if (nprocs < 1) nprocs = 1;
    if (nprocs > c->njobs) nprocs = c->njobs;
    pid_t pids[INGEST_MAX_PROCS];
    int started = 0;
    status st = STATUS_OK;
    fflush(NULL);
    for (int p = 0; p < nprocs && p < INGEST_MAX_PROCS; p++) {
        pid_t pid = fork();
        if (pid < 0) { st = FAIL(STATUS_IO, "fork failed: %s", strerror(errno)); break; }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (int j = p; j < c->njobs; j += nprocs) {
                const struct ingest_shard_result *r = &c->shared->results[j];
                if (!r->done) {
                    snprintf(v[j].why, sizeof v[j].why, "its record does not list %s", c->jobs[j].file);
                    v[j].bad = 1;
                } else {
                    v[j].bad = tasks_check_shard(dir, c->jobs[j].file, r->records, r->checksum, file_size[j], v[j].why,
                                                 sizeof v[j].why) != 0;
                }
            }
            _exit(0);   /* the checker's end; the parent reports */
        }
        pids[started++] = pid;
    }
    for (int p = 0; p < started; p++) {
        int ws;
        while (waitpid(pids[p], &ws, 0) < 0 && errno == EINTR) {}
        if (st == STATUS_OK && !(WIFEXITED(ws) && WEXITSTATUS(ws) == 0))
            st = FAIL(STATUS_IO, "a shard checker process died (%s %d)", WIFSIGNALED(ws) ? "signal" : "status",
                      WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    }
    return st;
}

status ingest_finalize(const char *dir, const struct ingest_opts *opts)
{
    struct task_rec *recs = NULL;
    int nrecs = 0, ntasks = opts->num_tasks;
    struct ingest_ctx c = { 0 };
    struct ingest_opts o = { .output_directory = dir };
    struct ingest_rej_line *rej = NULL;
    size_t nrej = 0, caprej = 0;
    uint64_t *file_size = NULL;
    struct verdict *verdicts = NULL;
    status st = STATUS_OK;
    DIR *d = opendir(dir);
    if (!d) return FAIL(STATUS_IO, "--finalize %s: %s", dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d))) {
        int a, b, len = 0;
        if (sscanf(de->d_name, "ingest-task-%5d-of-%5d.json%n", &a, &b, &len) != 2 || de->d_name[len]) continue;
        struct task_rec *nr = realloc(recs, (size_t)(nrecs + 1) * sizeof *recs);
        if (!nr) { st = FAIL(STATUS_NOMEM, "out of memory"); break; }
        recs = nr;
        memset(&recs[nrecs], 0, sizeof *recs);
        st = tasks_read(dir, de->d_name, &recs[nrecs++]);
        if (st != STATUS_OK) break;
    }
    closedir(d);
    if (st != STATUS_OK) goto done;
    if (!nrecs) {
        st = FAIL(STATUS_NOT_FOUND, "%s: no task completion records (ingest-task-*.json): run the tasks first", dir);
        goto done;
    }
    if (!ntasks) ntasks = recs[0].ntasks;
    struct task_rec **by = calloc((size_t)ntasks, sizeof *by);
    if (!by) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < nrecs; i++) {
        if (recs[i].ntasks != ntasks) {
            st = FAIL(STATUS_STATE, "%s/%s: a record of %d tasks, other records say %d (remove the stale ones, or give "
                                    "--num_tasks)", dir, recs[i].file, recs[i].ntasks, ntasks);
            if (opts->num_tasks) continue;
            goto free_by;
        }
        if (recs[i].task < 0 || recs[i].task >= ntasks || by[recs[i].task]) {
            st = FAIL(STATUS_FORMAT, "%s/%s: task index %d does not fit %d tasks", dir, recs[i].file, recs[i].task, ntasks);
            goto free_by;
        }
        by[recs[i].task] = &recs[i];
    }
    st = STATUS_OK;
    for (int i = 0; i < ntasks; i++) {
        char name[64];
        ingest_task_record_name(i, ntasks, name, sizeof name);
        if (!by[i]) {
            st = FAIL(STATUS_STATE, "%s: task %d of %d did not finish (no %s): run it again with --task_index %d", dir, i,
                      ntasks, name, i);
            goto free_by;
        }
        if (strcmp(by[i]->plan, by[0]->plan)) {
            st = FAIL(STATUS_STATE, "%s: task %d of %d comes from a different run than task 0 (its inputs, shards or "
                                    "options differ): run it again with task 0's flags", dir, i, ntasks);
            goto free_by;
        }
    }
    /* what the manifest needs, from task 0 */
    const cJSON *r0 = by[0]->json;
    const char *storage = js_str(r0, "storage"), *profile = js_str(r0, "profile"), *seed = js_str(r0, "seed");
    double ch = 0, bg = 0;
    if (!storage || !profile || !seed || js_int(r0, "channels", &ch) || js_int(r0, "background_class", &bg) ||
        record_storage_parse(storage, &o.storage) != STATUS_OK || manifest_profile_parse(profile, &o.profile) != STATUS_OK) {
        st = FAIL(STATUS_FORMAT, "%s/%s: storage, profile, seed or channels is missing or wrong", dir, by[0]->file);
        goto free_by;
    }
    o.profile_set = 1;
    o.seed = strtoll(seed, NULL, 10);
    o.command = js_str(r0, "command");
    o.background_class = (int)bg;
    o.no_flip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r0, "no_flip"));
    o.no_color = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r0, "no_color"));
    c.o = &o;
    c.channels = (int)ch;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r0, "classes")) {
        char **nn = realloc(c.classes.names, (size_t)(c.classes.n + 1) * sizeof *nn);
        if (!nn || !cJSON_IsString(it)) { st = FAIL(STATUS_FORMAT, "%s/%s: bad classes", dir, by[0]->file); goto free_by; }
        c.classes.names = nn;
        c.classes.names[c.classes.n++] = strdup(it->valuestring);
    }
    c.subsets = calloc(2, sizeof *c.subsets);
    c.jobs = calloc(1, sizeof *c.jobs);
    if (!c.subsets || !c.jobs) { st = FAIL(STATUS_NOMEM, "out of memory"); goto free_by; }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r0, "subsets")) {
        double ns, listed;
        const char *nm = js_str(it, "name");
        if (c.nsubsets == 2 || !nm || js_int(it, "shards", &ns) || js_int(it, "listed", &listed) || ns < 1) {
            st = FAIL(STATUS_FORMAT, "%s/%s: bad subsets", dir, by[0]->file);
            goto free_by;
        }
        struct ingest_subset *s = &c.subsets[c.nsubsets];
        s->name = !strcmp(nm, "train") ? "train" : "validation";
        s->nshards = (int)ns;
        struct ingest_shard_job *nj = realloc(c.jobs, (size_t)(c.njobs + s->nshards) * sizeof *nj);
        if (!nj) { st = FAIL(STATUS_NOMEM, "out of memory"); goto free_by; }
        c.jobs = nj;
        for (int j = 0; j < s->nshards; j++) {
            struct ingest_shard_job *job = &c.jobs[c.njobs++];
            job->subset = c.nsubsets;
            job->index = j;
            job->lo = (uint64_t)listed * (uint64_t)j / (uint64_t)s->nshards;
            job->hi = (uint64_t)listed * (uint64_t)(j + 1) / (uint64_t)s->nshards;
            shard_file_name(s->name, j, s->nshards, job->file, sizeof job->file);
        }
        c.nsubsets++;
    }
    c.shared = calloc(1, sizeof *c.shared + (size_t)c.njobs * sizeof(struct ingest_shard_result));
    if (!c.shared || !c.nsubsets) { st = FAIL(STATUS_NOMEM, "out of memory or no subsets"); goto free_by; }
    file_size = calloc((size_t)c.njobs, sizeof *file_size);
    if (!file_size) { st = FAIL(STATUS_NOMEM, "out of memory"); goto free_by; }
    /* every task's shards: present in its record, and sound on disk */
    uint64_t checked = 0;
    double t0 = log_now();
    for (int i = 0; i < ntasks; i++) {
        const cJSON *sh;
        cJSON_ArrayForEach(sh, cJSON_GetObjectItemCaseSensitive(by[i]->json, "shards")) {
            double j, recs_, first, last, sum, bytes, fsize;
            const cJSON *sizes = cJSON_GetObjectItemCaseSensitive(sh, "sizes");
            if (js_int(sh, "job", &j) || js_int(sh, "records", &recs_) || js_int(sh, "first_id", &first) ||
                js_int(sh, "last_id", &last) || js_int(sh, "checksum", &sum) || js_int(sh, "bytes", &bytes) || js_int(sh, "file_size", &fsize) ||
                j < 0 || j >= c.njobs || (int)j % ntasks != i || cJSON_GetArraySize(sizes) != 4) {
                st = FAIL(STATUS_FORMAT, "%s/%s: a shard entry is malformed", dir, by[i]->file);
                goto free_by;
            }
            struct ingest_shard_result *res = &c.shared->results[(int)j];
            res->records = (uint64_t)recs_;
            res->first_id = (uint64_t)first;
            res->last_id = (uint64_t)last;
            res->checksum = (uint32_t)sum;
            res->bytes = (uint64_t)bytes;
            res->min_h = cJSON_GetArrayItem(sizes, 0)->valueint;
            res->max_h = cJSON_GetArrayItem(sizes, 1)->valueint;
            res->min_w = cJSON_GetArrayItem(sizes, 2)->valueint;
            res->max_w = cJSON_GetArrayItem(sizes, 3)->valueint;
            res->done = 1;
            file_size[(int)j] = (uint64_t)fsize;
        }
        const cJSON *rl;
        cJSON_ArrayForEach(rl, cJSON_GetObjectItemCaseSensitive(by[i]->json, "rejected")) {
            if (cJSON_GetArraySize(rl) != 3 || !cJSON_IsString(cJSON_GetArrayItem(rl, 2))) continue;
            if (nrej == caprej) {
                caprej = caprej ? caprej * 2 : 64;
                struct ingest_rej_line *nv = realloc(rej, caprej * sizeof *nv);
                if (!nv) { st = FAIL(STATUS_NOMEM, "out of memory"); goto free_by; }
                rej = nv;
            }
            rej[nrej].subset = cJSON_GetArrayItem(rl, 0)->valueint;
            rej[nrej].id = (uint64_t)cJSON_GetArrayItem(rl, 1)->valuedouble;
            rej[nrej].text = strdup(cJSON_GetArrayItem(rl, 2)->valuestring);
            if (!rej[nrej++].text) { st = FAIL(STATUS_NOMEM, "out of memory"); goto free_by; }
        }
    }
    /* then every shard, in --num_threads processes; the first problem in task order is reported */
    if ((st = tasks_verify(dir, &c, file_size, opts->num_threads, &verdicts)) != STATUS_OK) goto free_by;
    for (int i = 0; i < ntasks; i++)
        for (int j = i; j < c.njobs; j += ntasks) {
            if (!verdicts[j].bad) { checked += c.shared->results[j].records; continue; }
            st = FAIL(STATUS_CORRUPT, "%s: task %d of %d is incomplete: %s: run it again with --task_index %d", dir, i,
                      ntasks, verdicts[j].why, i);
            goto free_by;
        }
    log_info("finalize: %d task(s), %" PRIu64 " records verified in %.1f s", ntasks, checked, log_now() - t0);
    uint64_t accepted = 0;
    st = ingest_outputs_write(&c, rej, nrej, &accepted);
    if (st == STATUS_OK)
        printf("finalized %s: %" PRIu64 " images from %d task(s), %zu rejected\n", dir, accepted, ntasks, nrej);
free_by:
    free(by);
done:
    ingest_rej_lines_free(rej, nrej);
    for (int i = 0; i < nrecs; i++) cJSON_Delete(recs[i].json);
    free(recs);
    ingest_classes_clear(&c.classes);
    free(c.subsets);
    free(c.jobs);
    free(c.shared);
    free(file_size);
    if (verdicts) munmap(verdicts, (size_t)c.njobs * sizeof *verdicts);
    return st;
}
