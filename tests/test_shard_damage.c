/*
 * test_shard_damage.c — a damaged shard file never crashes a reader, and
 * damage is either reported or harmless.
 *
 * A real shard (the default writer, 160 records of version 2 shaped like
 * Fashion-MNIST's: 28x28 gray in leaf pages, every eighth 64x64 on overflow
 * pages) is copied, damaged, and read
 * by `deeper info --verify`'s code (info_verify) in a child process:
 *   - a value length set to 16,778,064 (a flipped bit in a leaf node's size):
 *     reported as that record, the other records still verified;
 *   - FLIPS (400; DEEPER_FLIPS overrides) single random bit flips, each on a fresh copy: the child must not
 *     die of a signal, and either verify reports damage or every record reads
 *     back byte-identical to the original (the flip hit free space or a field
 *     nothing reads: provably harmless).  The tally is printed;
 *   - the same flips read by an augment worker (two epochs of batches): it
 *     never dies of a signal; it skips what is damaged or stops with an
 *     error.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "augment/worker.h"
#include "ingest/info.h"
#include "shared/manifest.h"
#include "shared/record.h"
#include "shared/rng.h"
#include "shared/shard.h"
#include "tmpdir_util.h"

#define NREC 160
#define FLIPS 400      /* DEEPER_FLIPS=N for another count */
#define SHARD "train-00000-of-00001.mdb"

TestSuite(shard_damage, .init = tmpdir_make, .fini = tmpdir_remove);

static uint8_t *vals[NREC];
static size_t lens[NREC];

/* value of record k: 28x28 gray raw (in a leaf page) or 64x64 (overflow pages) */
static void make_values(void)
{
    for (int k = 0; k < NREC; k++) {
        uint32_t h = k % 8 == 3 ? 64 : 28, w = h;
        size_t n = (size_t)h * w;
        uint8_t *px = malloc(n);
        for (size_t i = 0; i < n; i++) px[i] = (uint8_t)(k * 37 + i * 11 + (i >> 7));
        char name[32];
        int nl = snprintf(name, sizeof name, "c%d/img%03d.png", k % 5, k);
        float box[4] = { 0.1f, 0.2f, 0.7f, 0.9f };
        struct record r = { .label = k % 5, .height = h, .width = w, .channels = 1, .storage = RECORD_RAW,
                            .name = name, .name_len = (size_t)nl, .payload = px, .payload_len = n,
                            .num_boxes = k % 4 == 1, .boxes_in = box };
        lens[k] = record_encoded_size(&r);
        vals[k] = malloc(lens[k]);
        cr_assert_eq(record_encode(&r, vals[k], lens[k], NULL), STATUS_OK, "%s", status_msg());
        free(px);
    }
}

static struct manifest *make_manifest(uint32_t checksum, uint64_t bytes)
{
    struct manifest *m = calloc(1, sizeof *m);
    m->format_version = MANIFEST_FORMAT_VERSION;
    m->nclasses = 5;
    m->classes = calloc(5, sizeof *m->classes);
    for (int c = 0; c < 5; c++) {
        char n[8];
        snprintf(n, sizeof n, "c%d", c);
        m->classes[c].id = c;
        m->classes[c].name = strdup(n);
    }
    m->storage = RECORD_RAW;
    m->image.channels = 1;
    m->image.min_height = m->image.min_width = 28;
    m->image.max_height = m->image.max_width = 64;
    m->nsubsets = 1;
    m->subsets = calloc(1, sizeof *m->subsets);
    m->subsets[0].name = strdup("train");
    m->subsets[0].count = NREC;
    m->subsets[0].nshards = 1;
    m->subsets[0].shards = calloc(1, sizeof *m->subsets[0].shards);
    m->subsets[0].shards[0] = (struct manifest_shard){ strdup(SHARD), NREC, 0, NREC - 1, checksum, bytes };
    m->made.command = strdup("test");
    m->made.date = strdup("2026-12-06T00:00:00Z");
    m->made.program = strdup("test_shard_damage");
    return m;
}

static uint8_t *orig;
static size_t orig_len;
static struct manifest *man;

static void setup_shard(void)
{
    make_values();
    char path[512];
    snprintf(path, sizeof path, "%s/orig.mdb", tmpdir);
    struct shard_writer *w;
    cr_assert_eq(shard_writer_open(path, NULL, &w), STATUS_OK, "%s", status_msg());
    uint64_t bytes = 0;
    for (int k = 0; k < NREC; k++) {
        cr_assert_eq(shard_writer_put(w, (uint64_t)k, vals[k], lens[k]), STATUS_OK);
        bytes += lens[k];
    }
    uint64_t n;
    uint32_t sum;
    cr_assert_eq(shard_writer_close(&w, &n, &sum), STATUS_OK, "%s", status_msg());
    man = make_manifest(sum, bytes);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    orig_len = (size_t)ftell(f);
    rewind(f);
    orig = malloc(orig_len);
    cr_assert_eq(fread(orig, 1, orig_len, f), orig_len);
    fclose(f);
}

/* Write data as the dataset's shard (fresh file, no lock file left over). */
static void put_copy(const uint8_t *data)
{
    char path[512], lock[520];
    snprintf(path, sizeof path, "%s/%s", tmpdir, SHARD);
    snprintf(lock, sizeof lock, "%s-lock", path);
    unlink(path);
    unlink(lock);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, orig_len), (ssize_t)orig_len);
    close(fd);
}

/* In a child: 0 verify reported damage, 1 verify OK and every record reads
 * back identical, 2 verify OK but a record differs (silent damage). */
static int child_check(void)
{
    FILE *out = fopen("/dev/null", "w");
    status st = info_verify(tmpdir, man, out);
    fclose(out);
    if (st != STATUS_OK) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, SHARD);
    struct shard_reader *r;
    struct shard_txn *t;
    if (shard_reader_open(path, &r) != STATUS_OK || shard_txn_begin(r, &t) != STATUS_OK) return 2;
    int k = 0;
    uint64_t key;
    const void *val;
    size_t len;
    while (shard_txn_next(t, &key, &val, &len) == STATUS_OK) {
        if (k >= NREC || key != (uint64_t)k || len != lens[k] || memcmp(val, vals[k], len)) return 2;
        k++;
    }
    return k == NREC ? 1 : 2;
}

/* Run child_check in a child; returns its exit code, or 100 + signal. */
static int run_child(void)
{
    fflush(stdout);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) _exit(child_check());
    int ws;
    cr_assert_eq(waitpid(pid, &ws, 0), pid);
    if (WIFSIGNALED(ws)) return 100 + WTERMSIG(ws);
    return WEXITSTATUS(ws);
}

/* Offset of the leaf node of key k: the 8 key bytes preceded by ksize = 8. */
static size_t find_node(const uint8_t *data, size_t n, uint64_t k, int *bigdata)
{
    uint8_t kb[8];
    shard_key_encode(k, kb);
    for (size_t o = 8; o + 8 <= n; o++)
        if (!memcmp(data + o, kb, 8) && data[o - 2] == 8 && data[o - 1] == 0) {
            *bigdata = data[o - 4] & 1;   /* F_BIGDATA: the value is on overflow pages */
            return o - 8;
        }
    return 0;
}

Test(shard_damage, huge_value_length_is_reported_not_read)
{
    setup_shard();
    put_copy(orig);
    cr_assert_eq(run_child(), 1, "the undamaged copy must verify and read back");
    for (int big = 0; big < 2; big++) {
        uint64_t k = big ? 3 : 4;   /* 3: overflow pages; 4: inside a leaf page */
        int bd = -1;
        size_t node = find_node(orig, orig_len, k, &bd);
        cr_assert_gt(node, 0, "leaf node of record %llu", (unsigned long long)k);
        cr_assert_eq(bd, big);
        uint8_t *d = malloc(orig_len);
        memcpy(d, orig, orig_len);
        uint32_t huge = 16778064u;   /* the length a flipped bit gave in a Fashion-MNIST shard */
        d[node] = (uint8_t)huge; d[node + 1] = (uint8_t)(huge >> 8);
        d[node + 2] = (uint8_t)(huge >> 16); d[node + 3] = (uint8_t)(huge >> 24);
        put_copy(d);
        /* the reader refuses to hand the value out */
        pid_t pid = fork();
        if (pid == 0) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", tmpdir, SHARD);
            struct shard_reader *r;
            struct shard_txn *t;
            const void *val;
            size_t len;
            if (shard_reader_open(path, &r) != STATUS_OK || shard_txn_begin(r, &t) != STATUS_OK) _exit(3);
            status st = shard_txn_get(t, k, &val, &len);
            if (st != STATUS_CORRUPT || !strstr(status_msg(), "outside")) _exit(4);
            if (shard_txn_get(t, k + 1, &val, &len) != STATUS_OK) _exit(5);   /* the others still read */
            _exit(0);
        }
        int ws;
        waitpid(pid, &ws, 0);
        cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "reader: %s %d", WIFSIGNALED(ws) ? "signal" : "exit",
                  WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
        /* verify names the record, goes on, and fails */
        fflush(stdout);
        char outp[512];
        snprintf(outp, sizeof outp, "%s/verify.txt", tmpdir);
        pid = fork();
        if (pid == 0) {
            FILE *out = fopen(outp, "w");
            status st = info_verify(tmpdir, man, out);
            fclose(out);
            _exit(st == STATUS_CORRUPT ? 0 : 1);
        }
        waitpid(pid, &ws, 0);
        cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "verify: %s %d", WIFSIGNALED(ws) ? "signal" : "exit",
                  WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
        FILE *f = fopen(outp, "r");
        char text[4096] = "";
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = 0;
        fclose(f);
        char want[64];
        snprintf(want, sizeof want, "record %llu", (unsigned long long)k);
        cr_assert(strstr(text, want) && strstr(text, SHARD), "verify output: %s", text);
        cr_assert(!strstr(text, "record 5:"), "an undamaged record was reported: %s", text);
        free(d);
    }
}

Test(shard_damage, random_bit_flips_never_crash_and_never_pass_silently, .timeout = 120)
{
    setup_shard();
    struct rng g;
    rng_init(&g, 2026, 12);
    uint8_t *d = malloc(orig_len);
    int detected = 0, harmless = 0, silent = 0, crashed = 0;
    int flips = getenv("DEEPER_FLIPS") ? atoi(getenv("DEEPER_FLIPS")) : FLIPS;
    for (int i = 0; i < flips; i++) {
        size_t bit = (size_t)(((uint64_t)rng_below(&g, 1u << 16) << 16 | rng_below(&g, 1u << 16)) % (orig_len * 8));
        if (getenv("DEEPER_FLIP_BIT")) bit = (size_t)strtoull(getenv("DEEPER_FLIP_BIT"), NULL, 10);   /* replay one */
        memcpy(d, orig, orig_len);
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        put_copy(d);
        int rc = run_child();
        if (rc == 0) detected++;
        else if (rc == 1) harmless++;
        else if (rc == 2) { silent++; printf("silent damage: flip of bit %zu (DEEPER_FLIP_BIT=%zu)\n", bit % 8, bit); }
        else { crashed++; printf("crash (signal %d): flip of bit %zu of byte %zu (DEEPER_FLIP_BIT=%zu)\n", rc - 100, bit % 8,
                                 bit / 8, bit); }
    }
    printf("bit flips over a %zu-byte shard: %d flips, %d detected, %d harmless, %d silent, %d crashes\n", orig_len,
           flips, detected, harmless, silent, crashed);
    cr_assert_eq(crashed, 0);
    cr_assert_eq(silent, 0);
    free(d);
}

/* An augment worker over the damaged copy: 0 two epochs of full batches,
 * 1 an error (a clean stop), 2 a batch that was not full. */
static int child_worker(void)
{
    FILE *devnull = freopen("/dev/null", "w", stderr);
    (void)devnull;
    struct worker_config c = { .data_dir = tmpdir, .subset = "train", .worker = 0, .num_workers = 1,
                               .batch_size = 16, .queue_factor = 1, .jpeg_scale = 1 };
    distort_config_default(&c.dc, 8);
    c.dc.seed = 3;
    struct worker *w;
    if (worker_open(&c, &w) != STATUS_OK) return 1;
    struct send_buf b = { 0 };
    b.labels = calloc(16, sizeof *b.labels);
    b.ids = calloc(16, sizeof *b.ids);
    b.pixels = calloc(16, 8 * 8 * 3);
    int rc = 0;
    for (int i = 0; i < 2 * NREC / 16 && rc == 0; i++) {
        if (worker_next(w, &b) != STATUS_OK) rc = 1;
        else if (b.header.n != 16) rc = 2;
    }
    worker_free(&w);
    return rc;
}

Test(shard_damage, augment_worker_never_crashes_on_flipped_bits, .timeout = 120)
{
    setup_shard();
    cr_assert_eq(manifest_save(man, tmpdir), STATUS_OK, "%s", status_msg());
    struct rng g;
    rng_init(&g, 2026, 13);
    uint8_t *d = malloc(orig_len);
    int flips = getenv("DEEPER_FLIPS") ? atoi(getenv("DEEPER_FLIPS")) / 2 : FLIPS / 2;
    int full = 0, stopped = 0, crashed = 0;
    put_copy(orig);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(child_worker());
    int ws;
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "the undamaged shard must give full batches");
    for (int i = 0; i < flips; i++) {
        size_t bit = (size_t)(((uint64_t)rng_below(&g, 1u << 16) << 16 | rng_below(&g, 1u << 16)) % (orig_len * 8));
        if (getenv("DEEPER_FLIP_BIT")) bit = (size_t)strtoull(getenv("DEEPER_FLIP_BIT"), NULL, 10);
        memcpy(d, orig, orig_len);
        d[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        put_copy(d);
        fflush(stdout);
        pid = fork();
        if (pid == 0) _exit(child_worker());
        waitpid(pid, &ws, 0);
        if (WIFSIGNALED(ws)) {
            crashed++;
            printf("worker crash (signal %d): DEEPER_FLIP_BIT=%zu\n", WTERMSIG(ws), bit);
        } else if (WEXITSTATUS(ws) == 0) {
            full++;
        } else if (WEXITSTATUS(ws) == 1) {
            stopped++;
        } else {
            cr_assert_fail("a batch that was not full (DEEPER_FLIP_BIT=%zu)", bit);
        }
    }
    printf("augment worker over %d flipped shards: %d gave full batches, %d stopped with an error, %d crashes\n",
           flips, full, stopped, crashed);
    cr_assert_eq(crashed, 0);
    free(d);
}
