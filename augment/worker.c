/*
 * worker.c — record order, shuffle buffer, fetch/decode/distort, batches
 * (see worker.h for the stream definition).
 *
 * Positions: an epoch's sequence is the concatenation of the subset's shards
 * in some order (`order`, a permutation of shard indices; identity for eval);
 * position p maps to (shard, index within the shard's ascending keys).  A
 * cursor (k = index into order, i = index in that shard) walks the worker's
 * range [lo, hi).  Shard keys are loaded lazily (shard_reader_keys) the
 * first time a shard is read, so fast-forwarding never touches LMDB.
 *
 * Bad records: a record that fails its checks (CRC, structure, boxes, a
 * label outside the manifest's classes, channels other than the manifest's,
 * a JPEG that does not decode, a key the shard lost, a value outside the
 * file; every record, by position, of a shard whose LMDB tree is damaged) is
 * skipped, counted in bad_records and logged with its shard and key (the first 100; then one
 * line saying further ones are only counted).  The slot it would have taken
 * is filled by the next reference of the same sequence, so a train batch is
 * always full and the sequence of references (shuffle included) does not
 * depend on which records are bad: every later batch holds the same
 * examples, shifted by one position per bad record met so far.  A worker
 * restarted at --start_batch replays references only (it reads nothing), so
 * its batches start at reference start_batch*batch_size: with k bad records
 * before that point they are shifted by k positions from those of the
 * uninterrupted run (same examples, same order).  An eval pass sends every
 * good record once; its END_OF_PASS count is what it sent, which lets eval
 * report how many of the subset's records were skipped.
 */
#include "augment/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/jpeg.h"
#include "shared/log.h"
#include "shared/record.h"
#include "shared/rng.h"
#include "shared/shard.h"

#define WORKER_MAX_PIXELS (1ull << 28)   /* a decoded JPEG larger than this is a bad record */
#define WORKER_BAD_LOG_MAX 100           /* log lines for bad records (then one summary line) */

struct shard_state {
    struct shard_reader *rd;
    struct shard_txn *txn;
    uint64_t *keys;             /* loaded lazily */
    uint64_t count;
    int damaged;                /* its LMDB tree failed shard_check_file: every record is bad */
    char why[300];
    char path[4096];
};

struct ref { uint32_t shard; uint32_t pad; uint64_t index; uint64_t epoch; };

struct worker {
    struct worker_config cfg;
    struct manifest *m;
    const struct manifest_subset *sub;
    int nshards;
    struct shard_state *sh;
    uint64_t N, lo, hi;
    int data_c;
    size_t image_bytes;

    /* read cursor */
    uint64_t epoch;
    uint32_t *order;
    int k;                      /* index into order */
    uint64_t i;                 /* index in shard order[k] */
    uint64_t pos;               /* position in the epoch sequence */

    /* shuffle buffer */
    struct ref *buf;
    uint32_t cap, fill;
    struct rng shuf;
    uint32_t next_j;            /* the next draw, made one take early */
    int have_next_j;

    /* eval */
    uint64_t pass_sent;
    int end_pending;

    uint64_t seq;
    struct distort_ctx *dctx;
    struct jpeg_decoder *jd;
    struct worker_stats st;
    int bad_logged;
    uint64_t bad_in_row;        /* bad records met since the last good one */
    char last_bad[300];         /* "record K in SHARD: reason" of the last one */

    /* leased-split stream (worker_batch_at) */
    uint64_t *cum;              /* cum[s]: records before shard s in manifest order (nshards + 1) */
    uint32_t *perm;             /* the order of epoch perm_epoch (N entries), or NULL */
    uint64_t perm_epoch;
    status (*tick)(void *ctx);
    void *tick_ctx;
};

/* ------------------------------------------------------------------ cursor */

static void cursor_seek(struct worker *w, uint64_t p)
{
    w->pos = p;
    w->k = 0;
    uint64_t before = 0;
    while (w->k < w->nshards && before + w->sh[w->order[w->k]].count <= p) {
        before += w->sh[w->order[w->k]].count;
        w->k++;
    }
    w->i = p - before;
}

static void epoch_begin(struct worker *w, uint64_t epoch)
{
    w->epoch = epoch;
    for (int s = 0; s < w->nshards; s++) w->order[s] = (uint32_t)s;
    if (!w->cfg.eval) {
        struct rng r;
        rng_init(&r, w->cfg.dc.seed, rng_stream(epoch, 0, RNG_WHAT_SHARDS));
        rng_shuffle_u32(&r, w->order, (uint32_t)w->nshards);
    }
    cursor_seek(w, w->lo);
}

/* Next reference of the train sequence (wraps into the next epoch). */
static struct ref cursor_next(struct worker *w)
{
    if (w->pos >= w->hi) epoch_begin(w, w->epoch + 1);
    while (w->i >= w->sh[w->order[w->k]].count) { w->k++; w->i = 0; }
    struct ref r = { w->order[w->k], 0, w->i, w->epoch };
    w->i++;
    w->pos++;
    return r;
}

static void prefetch_ref(struct worker *w, struct ref r);

/* One draw from the shuffle buffer (fills it on first use).  The next draw
 * is made one take early (same RNG sequence, so the same order) so that its
 * record can be read from disk while this one is decoded (prefetch: not while
 * fast-forwarding to --start_batch, which fetches nothing). */
static struct ref shuffle_take(struct worker *w, int prefetch)
{
    while (w->fill < w->cap) w->buf[w->fill++] = cursor_next(w);
    uint32_t j = w->have_next_j ? w->next_j : rng_below(&w->shuf, w->cap);
    struct ref out = w->buf[j];
    w->buf[j] = cursor_next(w);
    w->next_j = rng_below(&w->shuf, w->cap);
    w->have_next_j = 1;
    if (prefetch) prefetch_ref(w, w->buf[w->next_j]);
    return out;
}

/* ------------------------------------------------------------------- fetch */

/* key: the record's key, or its position in the shard when the shard is
 * damaged (its keys cannot be read) */
static void note_bad(struct worker *w, const struct shard_state *s, uint64_t key, const char *why)
{
    w->st.bad_records++;
    snprintf(w->last_bad, sizeof w->last_bad, "record %" PRIu64 " in %.150s: %.120s", key, s->path, why);
    if (w->bad_logged < WORKER_BAD_LOG_MAX) {
        w->bad_logged++;
        log_warn("skipping bad record %" PRIu64 " in %s: %s", key, s->path, why);
        if (w->bad_logged == WORKER_BAD_LOG_MAX) log_warn("(further bad records are counted but not logged)");
    }
}

/* The shard's keys, loaded on first use, after a walk of its tree (liblmdb
 * would read a damaged page blindly): STATUS_CORRUPT when the shard is
 * damaged, for every record of it. */
static status shard_keys_ready(struct shard_state *s)
{
    if (s->keys) return STATUS_OK;
    if (s->damaged) return FAIL(STATUS_CORRUPT, "%s", s->why);
    status st = shard_check_file(s->path, 0, NULL, NULL);
    uint64_t n = 0;
    if (st == STATUS_OK) st = shard_reader_keys(s->rd, &s->keys, &n);
    if (st == STATUS_OK && n != s->count) {
        free(s->keys);
        s->keys = NULL;
        st = FAIL(STATUS_CORRUPT, "%s: %" PRIu64 " keys, manifest lists %" PRIu64 " records", s->path, n, s->count);
    }
    if (st == STATUS_CORRUPT) {      /* once: every record of the shard is bad from now on */
        s->damaged = 1;
        snprintf(s->why, sizeof s->why, "%s", status_msg());
    }
    return st;
}

/* Start reading a record that will be fetched soon (errors surface in fetch). */
static void prefetch_ref(struct worker *w, struct ref r)
{
    struct shard_state *s = &w->sh[r.shard];
    if (shard_keys_ready(s) == STATUS_OK) shard_txn_prefetch(s->txn, s->keys[r.index]);
}

/* Read, check, decode and distort one record into dst.  STATUS_CORRUPT for
 * a bad record (already counted and logged); other codes are fatal. */
static status fetch(struct worker *w, struct ref r, uint8_t *dst, int32_t *label, uint64_t *id)
{
    struct shard_state *s = &w->sh[r.shard];
    status ks = shard_keys_ready(s);
    if (ks == STATUS_CORRUPT) {     /* a damaged shard: its records are bad, by position */
        note_bad(w, s, r.index, status_msg());
        return STATUS_CORRUPT;
    }
    TRY(ks);
    uint64_t key = s->keys[r.index];
    const void *val;
    size_t len;
    status st = shard_txn_get(s->txn, key, &val, &len);
    if (st == STATUS_NOT_FOUND) { note_bad(w, s, key, "key vanished"); return STATUS_CORRUPT; }
    if (st == STATUS_CORRUPT) { note_bad(w, s, key, status_msg()); return st; }   /* a value outside the file */
    if (st != STATUS_OK) return st;
    struct record rec;
    if (record_decode(val, len, 1, &rec) != STATUS_OK) {
        note_bad(w, s, key, status_msg());
        return STATUS_CORRUPT;
    }
    if ((int)rec.channels != w->data_c) {
        note_bad(w, s, key, "channel count differs from the manifest");
        return STATUS_CORRUPT;
    }
    if (record_check_label(&rec, w->m->label_offset, manifest_num_labels(w->m)) != STATUS_OK) {
        note_bad(w, s, key, status_msg());
        return STATUS_CORRUPT;
    }
    struct distort_info info;
    float boxes[4 * 64];   /* the record's object boxes steer the crop, as TF's image/object/bbox */
    int nboxes = rec.num_boxes < 64 ? (int)rec.num_boxes : 64;
    for (int b = 0; b < nboxes; b++) record_box_get(&rec, (uint32_t)b, boxes + 4 * b);
    distort_plan_boxes(&w->cfg.dc, (int)rec.height, (int)rec.width, (int)rec.channels, boxes, nboxes, r.epoch, key,
                       &info);
    const uint8_t *px = rec.payload;
    int h = (int)rec.height, wd = (int)rec.width;
    if (rec.storage == RECORD_JPEG) {
        if (w->cfg.jpeg_scale) {
            /* DCT-scaled region decode: only the crop's rows and iMCU columns */
            int num = jpeg_pick_scale(info.crop.h, info.crop.w, w->cfg.dc.out_h, w->cfg.dc.out_w);
            struct box in_box;
            st = jpeg_decoder_decode_region(w->jd, rec.payload, rec.payload_len, (int)rec.channels, num,
                                            WORKER_MAX_PIXELS, &info.crop, &px, &h, &wd, &in_box);
            if (st == STATUS_OK) info.crop = in_box;
        } else {
            st = jpeg_decoder_decode(w->jd, rec.payload, rec.payload_len, (int)rec.channels, 8, WORKER_MAX_PIXELS,
                                     &px, &h, &wd);
            if (st == STATUS_OK && (h != (int)rec.height || wd != (int)rec.width)) {
                note_bad(w, s, key, "JPEG size differs from the record header");
                return STATUS_CORRUPT;
            }
        }
        if (st == STATUS_NOMEM) return st;
        if (st != STATUS_OK) { note_bad(w, s, key, status_msg()); return STATUS_CORRUPT; }
    }
    st = distort_apply(&w->cfg.dc, w->dctx, &info, px, h, wd, (int)rec.channels, dst);
    if (st == STATUS_NOMEM) return st;
    if (st != STATUS_OK) { note_bad(w, s, key, status_msg()); return STATUS_CORRUPT; }
    *label = rec.label;
    *id = key;
    return STATUS_OK;
}

/* ------------------------------------------------------------------ public */

status worker_open(const struct worker_config *cfg, struct worker **out)
{
    *out = NULL;
    if (cfg->num_workers < 1 || cfg->num_workers > 65535 || cfg->worker < 0 || cfg->worker >= cfg->num_workers)
        return FAIL(STATUS_USAGE, "--worker %d --num_workers %d: need 0 <= worker < num_workers <= 65535",
                    cfg->worker, cfg->num_workers);
    if (cfg->batch_size < 1 || (uint32_t)cfg->batch_size > WIRE_MAX_N)
        return FAIL(STATUS_USAGE, "--batch_size %d out of range", cfg->batch_size);
    status st = STATUS_OK;
    struct worker *w = calloc(1, sizeof *w);
    if (!w) return FAIL(STATUS_NOMEM, "worker");
    w->cfg = *cfg;
    st = manifest_load(cfg->data_dir, &w->m);
    if (st == STATUS_NOT_FOUND) {
        st = FAIL(STATUS_NOT_FOUND, "%s: no dataset here (no manifest.json; a dataset is complete only once "
                  "`deeper ingest` has written it)", cfg->data_dir);
        goto fail;
    }
    if (st != STATUS_OK) goto fail;
    w->sub = manifest_subset_find(w->m, cfg->subset);
    if (!w->sub) { st = FAIL(STATUS_NOT_FOUND, "%s: the dataset has no subset '%s'", cfg->data_dir, cfg->subset); goto fail; }
    /* before this worker opens its shards (one reader per file per process) */
    if ((st = manifest_check_records(w->m, cfg->data_dir)) != STATUS_OK) goto fail;
    w->nshards = w->sub->nshards;
    w->data_c = w->m->image.channels;
    if (w->nshards < 1 || w->sub->count == 0) {
        st = FAIL(STATUS_NOT_FOUND, "%s: subset '%s' is empty", cfg->data_dir, cfg->subset);
        goto fail;
    }
    w->sh = calloc((size_t)w->nshards, sizeof *w->sh);
    w->order = calloc((size_t)w->nshards, sizeof *w->order);
    if (!w->sh || !w->order) { st = FAIL(STATUS_NOMEM, "worker: shard table"); goto fail; }
    uint64_t bytes = 0;
    for (int s = 0; s < w->nshards; s++) {
        const struct manifest_shard *ms = &w->sub->shards[s];
        struct shard_state *ss = &w->sh[s];
        snprintf(ss->path, sizeof ss->path, "%s/%s", cfg->data_dir, ms->file);
        st = shard_reader_open(ss->path, &ss->rd);
        if (st != STATUS_OK) {
            st = FAIL(st == STATUS_NOMEM ? st : STATUS_NOT_FOUND, "%s: shard listed in the manifest cannot be opened "
                      "(incomplete dataset?): %s", ss->path, status_msg());
            goto fail;
        }
        ss->count = ms->records;
        if (shard_reader_count(ss->rd) != ms->records) {
            st = FAIL(STATUS_CORRUPT, "%s: holds %" PRIu64 " records, the manifest lists %" PRIu64 " (incomplete dataset?)",
                      ss->path, shard_reader_count(ss->rd), ms->records);
            goto fail;
        }
        if ((st = shard_txn_begin(ss->rd, &ss->txn)) != STATUS_OK) goto fail;
        w->N += ms->records;
        bytes += ms->bytes;
    }
    w->st.avg_record_bytes = (double)bytes / (double)w->N;
    uint64_t W = (uint64_t)cfg->num_workers, I = (uint64_t)cfg->worker;
    w->lo = w->N * I / W;
    w->hi = w->N * (I + 1) / W;
    if (!cfg->eval && w->hi == w->lo) {
        st = FAIL(STATUS_USAGE, "subset '%s' has %" PRIu64 " records, fewer than --num_workers %d", cfg->subset, w->N,
                  cfg->num_workers);
        goto fail;
    }
    if ((st = distort_ctx_new(&w->dctx)) != STATUS_OK) goto fail;
    if ((st = jpeg_decoder_new(&w->jd)) != STATUS_OK) goto fail;
    w->image_bytes = (size_t)cfg->dc.out_h * cfg->dc.out_w * cfg->dc.out_c;

    epoch_begin(w, 0);
    if (!cfg->eval) {
        uint64_t per_epoch = w->hi - w->lo;
        uint64_t want = (uint64_t)(cfg->queue_factor > 0 ? cfg->queue_factor : 1) * 1024;
        w->cap = (uint32_t)(want < per_epoch ? want : per_epoch);
        w->buf = malloc((size_t)w->cap * sizeof *w->buf);
        if (!w->buf) { st = FAIL(STATUS_NOMEM, "worker: shuffle buffer of %u", w->cap); goto fail; }
        rng_init(&w->shuf, cfg->dc.seed, rng_stream((uint64_t)cfg->worker, (uint64_t)cfg->num_workers, RNG_WHAT_SHUFFLE));
        w->st.shuffle_capacity = w->cap;
        /* fast-forward: replay the shuffle over references only */
        uint64_t skip = cfg->start_batch * (uint64_t)cfg->batch_size;
        for (uint64_t k = 0; k < skip; k++) (void)shuffle_take(w, 0);
        w->seq = cfg->start_batch;
    }
    *out = w;
    return STATUS_OK;
fail:
    worker_free(&w);
    return st;
}

const struct manifest *worker_manifest(const struct worker *w) { return w->m; }
int worker_data_channels(const struct worker *w) { return w->data_c; }

static status next_train(struct worker *w, struct send_buf *b)
{
    const int B = w->cfg.batch_size;
    uint64_t epoch = 0;
    for (int n = 0; n < B;) {
        struct ref r = shuffle_take(w, 1);
        if (n == 0) epoch = r.epoch;
        status st = fetch(w, r, b->pixels + (size_t)n * w->image_bytes, &b->labels[n], &b->ids[n]);
        if (st == STATUS_CORRUPT) {
            /* a whole epoch's share without one good record: nothing will ever come */
            if (++w->bad_in_row >= w->hi - w->lo)
                return FAIL(STATUS_CORRUPT, "every one of this worker's %" PRIu64 " records of subset '%s' in a row "
                            "is bad (the last: %s); the dataset or its manifest is damaged", w->hi - w->lo,
                            w->cfg.subset, w->last_bad);
            continue;
        }
        if (st != STATUS_OK) return st;
        w->bad_in_row = 0;
        n++;
    }
    uint32_t flags = (w->cfg.dc.out_c == 3 && w->data_c == 1) ? WIRE_FLAG_GRAY_EXPAND : 0;
    wire_header_init(&b->header, (uint16_t)w->cfg.worker, (uint16_t)w->cfg.num_workers, w->seq++, epoch,
                     (uint32_t)B, (uint32_t)w->cfg.dc.out_h, (uint32_t)w->cfg.dc.out_w, (uint32_t)w->cfg.dc.out_c,
                     flags, w->cfg.dc.seed);
    w->st.batches++;
    w->st.examples += (uint64_t)B;
    w->st.epoch = epoch;
    return STATUS_OK;
}

static status next_eval(struct worker *w, struct send_buf *b)
{
    uint32_t flags = WIRE_FLAG_EVAL | ((w->cfg.dc.out_c == 3 && w->data_c == 1) ? WIRE_FLAG_GRAY_EXPAND : 0);
    if (w->cfg.num_passes > 0 && w->st.passes_done >= (uint64_t)w->cfg.num_passes) return STATUS_NOT_FOUND;
    int n = 0;
    if (!w->end_pending) {
        while (n < w->cfg.batch_size && w->pos < w->hi) {
            while (w->i >= w->sh[w->order[w->k]].count) { w->k++; w->i = 0; }
            struct ref r = { w->order[w->k], 0, w->i, w->epoch };
            w->i++;
            w->pos++;
            status st = fetch(w, r, b->pixels + (size_t)n * w->image_bytes, &b->labels[n], &b->ids[n]);
            if (st == STATUS_CORRUPT) continue;
            if (st != STATUS_OK) return st;
            n++;
        }
        if (w->pos >= w->hi) w->end_pending = 1;
    }
    if (n > 0) {
        wire_header_init(&b->header, (uint16_t)w->cfg.worker, (uint16_t)w->cfg.num_workers, w->seq++, w->epoch,
                         (uint32_t)n, (uint32_t)w->cfg.dc.out_h, (uint32_t)w->cfg.dc.out_w,
                         (uint32_t)w->cfg.dc.out_c, flags, w->cfg.dc.seed);
        w->pass_sent += (uint64_t)n;
        w->st.batches++;
        w->st.examples += (uint64_t)n;
        return STATUS_OK;
    }
    /* end of this worker's pass */
    wire_header_init(&b->header, (uint16_t)w->cfg.worker, (uint16_t)w->cfg.num_workers, w->seq++, w->epoch, 0,
                     (uint32_t)w->cfg.dc.out_h, (uint32_t)w->cfg.dc.out_w, (uint32_t)w->cfg.dc.out_c,
                     flags | WIRE_FLAG_END_OF_PASS, w->cfg.dc.seed);
    b->header.count = (uint32_t)w->pass_sent;
    w->pass_sent = 0;
    w->end_pending = 0;
    w->st.passes_done++;
    epoch_begin(w, w->epoch + 1);
    w->st.epoch = w->epoch;
    return STATUS_OK;
}

status worker_next(struct worker *w, struct send_buf *b)
{
    return w->cfg.eval ? next_eval(w, b) : next_train(w, b);
}

void worker_get_stats(const struct worker *w, struct worker_stats *out) { *out = w->st; }

/* ------------------------------------------------------- leased splits */

uint64_t worker_records(const struct worker *w) { return w->N; }
uint64_t worker_eval_batches(const struct worker *w)
{
    return (w->N + (uint64_t)w->cfg.batch_size - 1) / (uint64_t)w->cfg.batch_size;
}

void worker_set_tick(struct worker *w, status (*tick)(void *ctx), void *ctx)
{
    w->tick = tick;
    w->tick_ctx = ctx;
}

/* Record number r of the subset (manifest order) as a reference. */
static status ref_of(struct worker *w, uint64_t r, uint64_t epoch, struct ref *out)
{
    if (!w->cum) {
        w->cum = malloc(((size_t)w->nshards + 1) * sizeof *w->cum);
        if (!w->cum) return FAIL(STATUS_NOMEM, "worker: shard table");
        w->cum[0] = 0;
        for (int s = 0; s < w->nshards; s++) w->cum[s + 1] = w->cum[s] + w->sh[s].count;
    }
    int lo = 0, hi = w->nshards;   /* the last shard s with cum[s] <= r */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (w->cum[mid] <= r) lo = mid; else hi = mid;
    }
    *out = (struct ref){ (uint32_t)lo, 0, r - w->cum[lo], epoch };
    return STATUS_OK;
}

/* The full permutation of the subset for epoch e (cached for one epoch). */
static status perm_ready(struct worker *w, uint64_t e)
{
    if (w->perm && w->perm_epoch == e) return STATUS_OK;
    if (w->N > UINT32_MAX) return FAIL(STATUS_UNSUPPORTED, "a subset of more than 2^32 records");
    if (!w->perm && !(w->perm = malloc((size_t)w->N * sizeof *w->perm)))
        return FAIL(STATUS_NOMEM, "worker: epoch order of %" PRIu64 " records", w->N);
    for (uint64_t i = 0; i < w->N; i++) w->perm[i] = (uint32_t)i;
    struct rng r;
    rng_init(&r, w->cfg.dc.seed, rng_stream(e, w->N, RNG_WHAT_ORDER));
    rng_shuffle_u32(&r, w->perm, (uint32_t)w->N);
    w->perm_epoch = e;
    return STATUS_OK;
}

status worker_batch_at(struct worker *w, uint64_t index, int32_t *labels, uint64_t *ids, uint8_t *pixels,
                       struct wire_header *h)
{
    const uint64_t B = (uint64_t)w->cfg.batch_size, N = w->N;
    uint32_t flags = (w->cfg.dc.out_c == 3 && w->data_c == 1) ? WIRE_FLAG_GRAY_EXPAND : 0;
    uint64_t first_epoch = 0;
    uint32_t n = 0;
    if (w->cfg.eval) {
        uint64_t nb = worker_eval_batches(w), pass = index / nb, j = index % nb;
        first_epoch = pass;
        flags |= WIRE_FLAG_EVAL;
        for (uint64_t r = j * B; r < N && r < (j + 1) * B; r++) {
            if (w->tick) TRY(w->tick(w->tick_ctx));
            struct ref ref;
            TRY(ref_of(w, r, pass, &ref));
            status st = fetch(w, ref, pixels + (size_t)n * w->image_bytes, &labels[n], &ids[n]);
            if (st == STATUS_CORRUPT) continue;
            TRY(st);
            n++;
        }
    } else {
        for (uint64_t j = 0; j < B; j++) {
            if (w->tick) TRY(w->tick(w->tick_ctx));
            uint64_t g = index * B + j, e = g / N, p = g % N;
            if (j == 0) first_epoch = e;
            TRY(perm_ready(w, e));
            status st = STATUS_CORRUPT;
            for (uint64_t t = 0; t < N && st == STATUS_CORRUPT; t++) {
                struct ref ref;
                TRY(ref_of(w, w->perm[(p + t) % N], e, &ref));
                st = fetch(w, ref, pixels + (size_t)n * w->image_bytes, &labels[n], &ids[n]);
            }
            if (st == STATUS_CORRUPT) return FAIL(STATUS_CORRUPT, "every record of the subset is bad");
            TRY(st);
            n++;
        }
    }
    wire_header_init(h, 0, 1, index, first_epoch, n, (uint32_t)w->cfg.dc.out_h, (uint32_t)w->cfg.dc.out_w,
                     (uint32_t)w->cfg.dc.out_c, flags, w->cfg.dc.seed);
    w->st.batches++;
    w->st.examples += n;
    w->st.epoch = first_epoch;
    return STATUS_OK;
}

void worker_free(struct worker **wp)
{
    struct worker *w = wp ? *wp : NULL;
    if (!w) return;
    if (w->sh)
        for (int s = 0; s < w->nshards; s++) {
            if (w->sh[s].txn) shard_txn_end(w->sh[s].txn);
            if (w->sh[s].rd) shard_reader_free(&w->sh[s].rd);
            free(w->sh[s].keys);
        }
    free(w->sh);
    free(w->order);
    free(w->buf);
    free(w->cum);
    free(w->perm);
    distort_ctx_free(&w->dctx);
    jpeg_decoder_free(&w->jd);
    manifest_free(&w->m);
    free(w);
    *wp = NULL;
}
