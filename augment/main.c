/*
 * main.c — `deeper augment`: the command line of one augment worker.
 *
 * Reads the flags, settles the distortion switches (explicit flags win over
 * the dataset profile in the manifest, both ways), opens the worker's stream
 * (augment/worker.c) and either sends batches to a consumer over ZeroMQ
 * (augment/sender.c) or, with --dump N, writes N distorted images as PNG
 * files.  SIGINT/SIGTERM stop it cleanly (exit 0).  A failure while starting
 * that a restart cannot heal (missing or inconsistent dataset) exits with
 * WORKER_EXIT_PERMANENT (3) so the supervisor does not retry it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "augment/distort.h"   /* defines: distort_config, distortion switches */
#include "augment/lease_client.h" /* defines: lease_client_run (--dispatcher) */
#include "augment/profile.h"   /* defines: augment_profile_apply (profile -> switches, crop) */
#include "augment/sender.h"    /* defines: sender_new/acquire/send (zero-copy PUSH) */
#include "augment/worker.h"    /* defines: worker_open/next (record order, shuffle, batches) */
#include "shared/augment_flags.h" /* defines: the --flip/--color/--crop switches */
#include "shared/flags.h"      /* defines: flags_parse */
#include "shared/image.h"      /* defines: image_encode_png (--dump) */
#include "shared/curve.h"      /* defines: curve_opts, curve_policy_check */
#include "shared/log.h"        /* defines: log_info, log_now */
#include "shared/manifest.h"   /* defines: manifest_load, augmentation profile */
#include "shared/status.h"     /* defines: status, FAIL, status_report */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }
static int g_started;   /* setup done: later failures may heal on a restart */

struct opts {
    const char *data_dir, *subset, *connect, *bind, *dump_dir, *resize_method, *dispatcher, *name;
    int subset_set, batch_size_set, image_size_set, seed_set;
    int worker, num_workers, batch_size, image_size, queue_factor, channels, dump, num_passes;
    int eval, eval_set;
    struct augment_flags sw;   /* --flip/--no_flip, --color/--no_color, --crop/--no_crop */
    int color_ordering, sndhwm, jpeg_scale, quiet;
    double exit_grace_secs;
    int64_t seed, start_batch;
    struct curve_opts curve;
};

static status settle_switches(const struct opts *o, const struct manifest *m, struct distort_config *dc)
{
    /* profile defaults (augment/profile.h), then explicit flags */
    augment_profile_apply(m->augment.profile, m->augment.flip, m->augment.color, dc);
    const struct augment_flags *a = &o->sw;
    TRY(augment_flags_check(a));
    int crop = dc->crop, flip = dc->flip, color = dc->color;
    if (a->crop_set) crop = a->crop;
    if (a->flip_set) flip = a->flip;
    if (a->color_set) color = a->color;
    if (a->no_crop) crop = 0;
    if (a->no_flip) flip = 0;
    if (a->no_color) color = 0;
    dc->crop = crop;
    dc->flip = flip;
    dc->color = color;
    return STATUS_OK;
}

static status dump_images(struct worker *w, const struct opts *o, const struct distort_config *dc)
{
    if (mkdir(o->dump_dir, 0777) != 0 && errno != EEXIST)
        return FAIL(STATUS_IO, "--dump_dir %s: %s", o->dump_dir, strerror(errno));
    size_t img = (size_t)dc->out_h * dc->out_w * dc->out_c;
    struct send_buf b;
    memset(&b, 0, sizeof b);
    b.labels = malloc((size_t)o->batch_size * sizeof *b.labels);
    b.ids = malloc((size_t)o->batch_size * sizeof *b.ids);
    b.pixels = malloc((size_t)o->batch_size * img);
    status st = STATUS_OK;
    if (!b.labels || !b.ids || !b.pixels) { st = FAIL(STATUS_NOMEM, "dump buffers"); goto done; }
    int written = 0;
    while (written < o->dump && !g_stop) {
        st = worker_next(w, &b);
        if (st == STATUS_NOT_FOUND) { st = STATUS_OK; break; }
        if (st != STATUS_OK) goto done;
        for (uint32_t i = 0; i < b.header.n && written < o->dump; i++, written++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%06d-id%" PRIu64 "-label%d-epoch%" PRIu64 ".png", o->dump_dir, written,
                     b.ids[i], b.labels[i], b.header.epoch);
            uint8_t *png = NULL;
            size_t n = 0;
            if ((st = image_encode_png(b.pixels + i * img, dc->out_h, dc->out_w, dc->out_c, &png, &n)) != STATUS_OK) goto done;
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(png, 1, n, f) != n || fclose(f) != 0) {
                if (f) fclose(f);
                free(png);
                st = FAIL(STATUS_IO, "%s: %s", path, strerror(errno));
                goto done;
            }
            free(png);
        }
    }
    printf("wrote %d images to %s\n", written, o->dump_dir);
done:
    free(b.labels); free(b.ids); free(b.pixels);
    return st;
}

static status stream_batches(struct worker *w, const struct opts *o, const struct distort_config *dc)
{
    struct sender_config sc = {
        .endpoint = o->bind[0] ? o->bind : o->connect, .bind = o->bind[0] != 0, .sndhwm = o->sndhwm,
        .linger_ms = 1000, .max_n = (uint32_t)o->batch_size, .h = (uint32_t)dc->out_h,
        .w = (uint32_t)dc->out_w, .c = (uint32_t)dc->out_c, .curve = &o->curve,
    };
    struct sender *s = NULL;
    TRY(sender_new(&sc, &s));
    log_info("worker %d/%d %s %s, %s batches of %dx%dx%dx%d", o->worker, o->num_workers,
             sc.bind ? "bound to" : "sending to", sc.endpoint, o->eval ? "eval" : "train", o->batch_size,
             dc->out_h, dc->out_w, dc->out_c);
    status st = STATUS_OK;
    double t0 = log_now(), last = t0;
    uint64_t sent = 0;
    while (!g_stop) {
        struct send_buf *b;
        if ((st = sender_acquire(s, &b, &g_stop)) != STATUS_OK) break;
        st = worker_next(w, b);
        if (st != STATUS_OK) { sender_discard(s, b); break; }
        if ((st = sender_send(s, b, &g_stop)) != STATUS_OK) break;
        sent++;
        double now = log_now();
        if (now - last >= 30) {
            struct worker_stats ws;
            worker_get_stats(w, &ws);
            log_info("worker %d: %" PRIu64 " batches, %.1f examples/sec, epoch %" PRIu64 ", %" PRIu64 " bad records",
                     o->worker, ws.batches, (double)ws.examples / (now - t0), ws.epoch, ws.bad_records);
            last = now;
        }
    }
    if (st == STATUS_NOT_FOUND) {
        /* eval: all passes sent.  Stay until the consumer has it all (it
         * disconnects or stops us), see sender_drain. */
        st = STATUS_OK;
        log_info("worker %d: all %d passes sent; waiting for the consumer to finish reading", o->worker, o->num_passes);
        sender_drain(s, o->exit_grace_secs, &g_stop);
    }
    if (st == STATUS_INTERRUPTED || g_stop) st = STATUS_OK;
    struct worker_stats ws;
    worker_get_stats(w, &ws);
    log_info("worker %d: stopping%s after %" PRIu64 " batches (%" PRIu64 " examples), %" PRIu64 " bad records skipped",
             o->worker, g_stop ? " on signal" : "", ws.batches, ws.examples, ws.bad_records);
    sender_free(&s);
    return st;
}

/* --dispatcher: settings pinned on the command line go into REGISTER; the
 * rest come from the consumer's REGISTERED (see lease_client.h). */
struct dispatched { const struct opts *o; };

static status open_for_run(const struct dproto_registered *r, void *ctx, struct worker **out)
{
    const struct opts *o = ((struct dispatched *)ctx)->o;
    struct manifest *m = NULL;
    TRY(manifest_load(o->data_dir, &m));
    struct distort_config dc;
    distort_config_default(&dc, (int)r->image_size);
    dc.seed = r->seed;
    dc.eval = (int)r->eval;
    dc.color_p.ordering = o->color_ordering;
    dc.out_c = (int)r->channels;
    if (!strcmp(o->resize_method, "bilinear_half")) dc.resize_p.half_pixel = 1;
    else if (!strcmp(o->resize_method, "nearest")) dc.resize_p.method = RESIZE_NEAREST;
    struct opts run_o = *o;
    struct augment_flags *sw = &run_o.sw;
    sw->flip_set = r->flip >= 0; sw->flip = r->flip > 0; sw->no_flip = r->flip == 0;
    sw->color_set = r->color >= 0; sw->color = r->color > 0; sw->no_color = r->color == 0;
    sw->crop_set = r->crop >= 0; sw->crop = r->crop > 0; sw->no_crop = r->crop == 0;
    status st = settle_switches(&run_o, m, &dc);
    manifest_free(&m);
    TRY(st);
    log_info("distortions for this run: crop %s, flip %s, colour %s", dc.eval ? "central 0.875" : dc.crop ? "on" : "off",
             !dc.eval && dc.flip ? "on" : "off", !dc.eval && dc.color ? "on" : "off");
    struct worker_config wc = {
        .data_dir = o->data_dir, .subset = r->subset, .worker = 0, .num_workers = 1,
        .batch_size = (int)r->batch_size, .eval = (int)r->eval, .queue_factor = 1, .jpeg_scale = o->jpeg_scale, .dc = dc,
    };
    return worker_open(&wc, out);
}

/* SIGINT and SIGTERM end the loop at the next batch; a gone peer is not a signal. */
static void stop_on_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static status run_dispatched(const struct opts *o)
{
    struct lease_client_config lc = { .endpoint = o->dispatcher, .open = open_for_run, .curve = &o->curve };
    struct dispatched d = { o };
    lc.open_ctx = &d;
    struct dproto_register *r = &lc.reg;
    TRY(dproto_dataset_identity(o->data_dir, &r->manifest_crc, &r->manifest_len, &r->records));
    if (o->subset_set) snprintf(r->subset, sizeof r->subset, "%s", o->subset);
    r->batch_size = o->batch_size_set ? (uint32_t)o->batch_size : 0;
    r->image_size = o->image_size_set ? (uint32_t)o->image_size : 0;
    r->channels = (uint32_t)o->channels;
    augment_flags_tristate(&o->sw, &r->flip, &r->color, &r->crop);
    r->color_ordering = (int8_t)o->color_ordering;
    r->resize_method = !strcmp(o->resize_method, "bilinear_half") ? 1 : !strcmp(o->resize_method, "nearest") ? 2 : 0;
    r->fast_jpeg = (uint8_t)(o->jpeg_scale != 0);
    r->has_seed = (uint8_t)(o->seed_set != 0);
    r->seed = (uint64_t)o->seed;
    if (o->name[0]) snprintf(r->name, sizeof r->name, "%s", o->name);
    else {
        char host[48] = "";
        gethostname(host, sizeof host - 1);
        snprintf(r->name, sizeof r->name, "%s:%d", host, (int)getpid());
    }
    stop_on_signals();
    return lease_client_run(&lc, &g_stop);
}

static status run(int argc, char **argv)
{
    struct opts o = {
        .data_dir = "", .subset = "train", .connect = "", .bind = "", .dispatcher = "", .name = "", .dump_dir = "augment_dump",
        .resize_method = "bilinear", .worker = 0, .num_workers = 1, .batch_size = 32, .image_size = 299,
        .queue_factor = 16, .channels = 0, .dump = 0, .num_passes = 0, .eval = 0,
        .color_ordering = -1, .sndhwm = 2, .exit_grace_secs = 600.0, .jpeg_scale = 1, .seed = 0, .start_batch = 0,
    };
    struct flag table[] = {
        { "data_dir", FLAG_STRING, &o.data_dir, "dataset directory made by `deeper ingest` (required)", NULL },
        { "subset", FLAG_STRING, &o.subset, "train or validation", &o.subset_set },
        { "worker", FLAG_INT, &o.worker, "this worker's index I (0 <= I < num_workers)", NULL },
        { "num_workers", FLAG_INT, &o.num_workers, "W: workers that split each epoch/pass between them", NULL },
        { "dispatcher", FLAG_STRING, &o.dispatcher, "work for the consumer (deeper train/eval) at this endpoint: register, "
                                                  "take leased splits, send under credit (proto/dispatch.md); the run's "
                                                  "settings come from the consumer", NULL },
        { "name", FLAG_STRING, &o.name, "--dispatcher: this worker's name in the consumer's log (default host:pid)", NULL },
        { "connect", FLAG_STRING, &o.connect, "plain PUSH stream to this endpoint (tcp://host:port, ipc://path) for "
                                              "third-party consumers; the consumer binds", NULL },
        { "bind", FLAG_STRING, &o.bind, "bind this endpoint instead; consumers connect (tcp needs keys or --insecure)", NULL },
        { "curve_secret_key", FLAG_STRING, &o.curve.secret_key, "CURVE: this worker's NAME.key_secret (`deeper keygen`)", NULL },
        { "curve_server_key", FLAG_STRING, &o.curve.server_key, "CURVE, with --dispatcher or --connect: the consumer's "
                                                                "public NAME.key", NULL },
        { "authorized_keys", FLAG_STRING, &o.curve.authorized_keys, "CURVE, with --bind: directory of the consumers' "
                                                                     "public NAME.key files admitted", NULL },
        { "insecure", FLAG_BOOL, &o.curve.insecure, "allow --bind on tcp without CURVE keys (anyone reaching the port "
                                                    "gets the batches)", NULL },
        { "batch_size", FLAG_INT, &o.batch_size, "examples per batch", &o.batch_size_set },
        { "image_size", FLAG_INT, &o.image_size, "output height and width", &o.image_size_set },
        { "input_queue_memory_factor", FLAG_INT, &o.queue_factor, "shuffle buffer = this x 1024 records", NULL },
        { "seed", FLAG_INT64, &o.seed, "seed of every random choice", &o.seed_set },
        { "eval", FLAG_BOOL, &o.eval, "eval stream: central crop, each example once per pass, END marker "
                                      "(default for --subset validation)", &o.eval_set },
        { "num_passes", FLAG_INT, &o.num_passes, "eval: stop after this many passes (0: endless)", NULL },
        { "start_batch", FLAG_INT64, &o.start_batch, "train: start at this batch number of the stream (resume)", NULL },
        { 0 }, { 0 }, { 0 }, { 0 }, { 0 }, { 0 },   /* the switches: augment_flags_table */
        { "channels", FLAG_INT, &o.channels, "output channels: 0 as stored, 3 expands gray to RGB", NULL },
        { "resize_method", FLAG_STRING, &o.resize_method, "bilinear (TF1 coordinates), bilinear_half, nearest", NULL },
        { "color_ordering", FLAG_INT, &o.color_ordering, "-1: TF's two orders, drawn per example; 0 or 1: fixed", NULL },
        { "fast_jpeg", FLAG_BOOL, &o.jpeg_scale, "JPEG records: decode only the crop's region, at 1/2, 1/4 or 1/8 "
                                                 "scale when the crop stays at least the output size", NULL },
        { "sndhwm", FLAG_INT, &o.sndhwm, "ZeroMQ send high-water mark in batches (1-4 keeps memory bounded)", NULL },
        { "exit_grace_secs", FLAG_DOUBLE, &o.exit_grace_secs, "eval with --num_passes: after the last message, wait at "
                                                              "most this long for the consumer to disconnect", NULL },
        { "dump", FLAG_INT, &o.dump, "write this many distorted images as PNG to --dump_dir and exit", NULL },
        { "dump_dir", FLAG_STRING, &o.dump_dir, "where --dump writes", NULL },
        { "quiet", FLAG_BOOL, &o.quiet, "no info lines", NULL },
    };
    o.sw = augment_flags_none();
    for (int i = 0; i < FLAGS_COUNT(table); i++)
        if (!table[i].name) { augment_flags_table(&o.sw, &table[i]); break; }
    struct flags_spec spec = {
        "deeper augment", "--data_dir DIR (--dispatcher EP | --connect EP | --bind EP | --dump N) [flags]",
        "One augment worker.  With --dispatcher it works for a `deeper train`/`deeper eval` consumer "
        "(local or remote): registers, takes the run's settings, makes the splits it is leased "
        "(proto/dispatch.md).  With --connect/--bind it is a plain PUSH stream for other consumers: "
        "it reads the shards of a dataset, shuffles through a buffer of "
        "input_queue_memory_factor x 1024 records, applies Inception's distortions and streams "
        "uint8 NHWC batches over ZeroMQ (proto/batch.md).  W workers started with --worker 0..W-1 "
        "--num_workers W cover each epoch exactly once.  Exit status: 0 done or stopped, 1 failed (a restart may "
        "help), 2 bad usage, 3 the dataset is missing or contradicts its manifest (a restart cannot help).",
        table, FLAGS_COUNT(table), 0, 0,
    };
    TRY(flags_parse(&spec, argc, argv, NULL, NULL));
    log_set_quiet(o.quiet);
    if (!o.data_dir[0]) return FAIL(STATUS_USAGE, "--data_dir is required");
    if (o.dump <= 0 && !o.connect[0] && !o.bind[0] && !o.dispatcher[0])
        return FAIL(STATUS_USAGE, "give --dispatcher ENDPOINT, --connect ENDPOINT, --bind ENDPOINT or --dump N");
    if (!!o.connect[0] + !!o.bind[0] + !!o.dispatcher[0] > 1)
        return FAIL(STATUS_USAGE, "--dispatcher, --connect and --bind are exclusive");
    if (o.connect[0] || o.bind[0] || o.dispatcher[0]) {
        TRY(curve_opts_check(&o.curve, o.bind[0] != 0));
        if (o.bind[0]) TRY(curve_policy_check(o.bind, curve_opts_enabled(&o.curve), o.curve.insecure));
        if (o.curve.insecure) log_warn("--insecure: %s without CURVE authentication", o.bind[0] ? o.bind : o.connect);
    }
    if (o.dispatcher[0] && o.dump <= 0) return run_dispatched(&o);
    if (o.image_size < 1 || o.image_size > (int)WIRE_MAX_SIDE) return FAIL(STATUS_USAGE, "--image_size %d out of range", o.image_size);
    if (o.sndhwm < 1 || o.sndhwm > 1000) return FAIL(STATUS_USAGE, "--sndhwm %d out of range", o.sndhwm);
    if (o.channels != 0 && o.channels != 1 && o.channels != 3) return FAIL(STATUS_USAGE, "--channels must be 0, 1 or 3");
    if (o.color_ordering < -1 || o.color_ordering > 1) return FAIL(STATUS_USAGE, "--color_ordering must be -1, 0 or 1");
    if (o.start_batch < 0) return FAIL(STATUS_USAGE, "--start_batch must be >= 0");
    if (!o.eval_set) o.eval = strcmp(o.subset, "validation") == 0;

    struct manifest *m = NULL;
    status st = manifest_load(o.data_dir, &m);
    if (st == STATUS_NOT_FOUND)
        return FAIL(STATUS_NOT_FOUND, "%s: no dataset here (no manifest.json; a dataset is complete only once "
                    "`deeper ingest` has finished writing it)", o.data_dir);
    TRY(st);
    struct distort_config dc;
    distort_config_default(&dc, o.image_size);
    dc.seed = (uint64_t)o.seed;
    dc.eval = o.eval;
    dc.color_p.ordering = o.color_ordering;
    int data_c = m->image.channels;
    dc.out_c = o.channels ? o.channels : data_c;
    if (dc.out_c != data_c && !(data_c == 1 && dc.out_c == 3)) {
        manifest_free(&m);
        return FAIL(STATUS_USAGE, "--channels %d: the dataset has %d channels (only gray -> 3 is supported)", o.channels, data_c);
    }
    if (!strcmp(o.resize_method, "bilinear")) dc.resize_p.method = RESIZE_BILINEAR;
    else if (!strcmp(o.resize_method, "bilinear_half")) { dc.resize_p.method = RESIZE_BILINEAR; dc.resize_p.half_pixel = 1; }
    else if (!strcmp(o.resize_method, "nearest")) dc.resize_p.method = RESIZE_NEAREST;
    else { manifest_free(&m); return FAIL(STATUS_USAGE, "--resize_method %s: expected bilinear, bilinear_half or nearest", o.resize_method); }
    st = settle_switches(&o, m, &dc);
    enum manifest_profile profile = m->augment.profile;
    manifest_free(&m);
    TRY(st);

    struct worker_config wc = {
        .data_dir = o.data_dir, .subset = o.subset, .worker = o.worker, .num_workers = o.num_workers,
        .batch_size = o.batch_size, .eval = o.eval, .num_passes = o.num_passes,
        .start_batch = (uint64_t)o.start_batch, .queue_factor = o.queue_factor, .jpeg_scale = o.jpeg_scale, .dc = dc,
    };
    struct worker *w = NULL;
    TRY(worker_open(&wc, &w));
    struct worker_stats ws;
    worker_get_stats(w, &ws);
    if (!o.eval)
    {
        double bytes = ws.shuffle_capacity * ws.avg_record_bytes;
        int gib = bytes >= 1024.0 * 1024 * 1024;
        log_info("shuffle buffer %u records, %.1f %s (records stay in the LMDB map; the buffer holds references)",
                 ws.shuffle_capacity, bytes / (gib ? 1024.0 * 1024 * 1024 : 1024.0 * 1024), gib ? "GiB" : "MiB");
    }
    log_info("distortions: %s profile; crop %s, flip %s, colour %s%s", manifest_profile_name(profile),
             dc.eval ? "central 0.875" : dc.crop ? "on" : "off", !dc.eval && dc.flip ? "on" : "off",
             !dc.eval && dc.color ? "on" : "off", dc.out_c == 3 && data_c == 1 ? ", gray expanded to RGB" : "");

    stop_on_signals();

    g_started = 1;
    st = o.dump > 0 ? dump_images(w, &o, &dc) : stream_batches(w, &o, &dc);
    worker_free(&w);
    return st;
}

int main(int argc, char **argv)
{
    status st = run(argc, argv);
    int rc = status_report("deeper augment", st, st == STATUS_USAGE ? "see deeper augment --help" : NULL);
    /* the dataset is missing or contradicts itself: say so to the supervisor */
    if (!g_started && (st == STATUS_NOT_FOUND || st == STATUS_CORRUPT || st == STATUS_FORMAT ||
                       st == STATUS_UNSUPPORTED))
        rc = WORKER_EXIT_PERMANENT;
    return rc;
}
