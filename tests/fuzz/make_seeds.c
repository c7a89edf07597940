/*
 * make_seeds.c — writes the seed corpora of the fuzz targets.
 *
 *     make_seeds DIR        writes DIR/<target>/<name> for every target
 *
 * Seeds are made with the project's own encoders (record_encode,
 * manifest_to_json, checkpoint_save, wire_header_pack, image_encode_*), so
 * they follow the formats as the code writes them today; tests/fuzz/make-seeds
 * builds and runs this.  Each seed is small (a few hundred bytes to a few KB)
 * and each corpus holds valid inputs plus a few broken ones that reach the
 * error paths (a JPEG cut inside its Huffman tables, one with its scan
 * removed, a gzip idx file, an end-of-pass marker).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

#include "shared/dispatch_proto.h"
#include "shared/endian.h"
#include "shared/image.h"
#include "shared/log.h"
#include "shared/manifest.h"
#include "shared/record.h"
#include "shared/safetensors.h"
#include "shared/wire.h"
#include "tests/fuzz/fuzz_images.h"
#include "trainer/checkpoint.h"

static const char *root;

static void die(const char *what)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, status_msg()[0] ? status_msg() : strerror(errno));
    exit(1);
}

static void put(const char *target, const char *name, const void *a, size_t an, const void *b, size_t bn)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) die(path);
    if ((an && fwrite(a, 1, an, f) != an) || (bn && fwrite(b, 1, bn, f) != bn) || fclose(f) != 0) die(path);
}

static void image_file(enum fuzz_image_kind k, int h, int w, int c, uint8_t **out, size_t *n)
{
    if (fuzz_image_encode(k, h, w, c, out, n) != STATUS_OK) die("encode");
}

static void progressive_jpeg(int h, int w, uint8_t **out, size_t *n)
{
    uint8_t *px = fuzz_image_pixels(h, w, 3);
    tjhandle tj = tjInitCompress();
    unsigned long len = 0;
    unsigned char *buf = NULL;
    if (!px || !tj || tjCompress2(tj, px, w, 0, h, TJPF_RGB, &buf, &len, TJSAMP_420, 85, TJFLAG_PROGRESSIVE) != 0)
        die("progressive jpeg");
    *out = malloc(len);
    memcpy(*out, buf, len);
    *n = len;
    tjFree(buf);
    tjDestroy(tj);
    free(px);
}

/* Offset of the first marker FF m, or n. */
static size_t find_marker(const uint8_t *b, size_t n, uint8_t m)
{
    for (size_t i = 2; i + 1 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == m) return i;
    return n;
}

static void images(void)
{
    const char *targets[2] = { "image_decode", "image_two" };
    uint8_t *jrgb, *jgray, *prgb, *pgray, *webp, *jprog;
    size_t njrgb, njgray, nprgb, npgray, nwebp, njprog;
    image_file(FUZZ_IMAGE_JPEG, 12, 20, 3, &jrgb, &njrgb);
    image_file(FUZZ_IMAGE_JPEG, 12, 20, 1, &jgray, &njgray);
    image_file(FUZZ_IMAGE_PNG, 12, 20, 3, &prgb, &nprgb);
    image_file(FUZZ_IMAGE_PNG, 12, 20, 1, &pgray, &npgray);
    image_file(FUZZ_IMAGE_WEBP, 12, 20, 3, &webp, &nwebp);
    progressive_jpeg(16, 24, &jprog, &njprog);
    size_t dht = find_marker(jrgb, njrgb, 0xC4), sos = find_marker(jrgb, njrgb, 0xDA);
    static const uint8_t eoi[2] = { 0xFF, 0xD9 };
    for (int t = 0; t < 2; t++) {
        put(targets[t], "rgb.jpg", jrgb, njrgb, NULL, 0);
        put(targets[t], "gray.jpg", jgray, njgray, NULL, 0);
        put(targets[t], "progressive.jpg", jprog, njprog, NULL, 0);
        put(targets[t], "rgb.png", prgb, nprgb, NULL, 0);
        put(targets[t], "gray.png", pgray, npgray, NULL, 0);
        put(targets[t], "rgb.webp", webp, nwebp, NULL, 0);
        put(targets[t], "cut-in-huffman-table.jpg", jrgb, dht + 12 < njrgb ? dht + 12 : njrgb / 2, NULL, 0);
        put(targets[t], "no-scan.jpg", jrgb, sos, eoi, 2);
        put(targets[t], "cut-in-scan.jpg", jrgb, sos + (njrgb - sos) / 2, NULL, 0);
        put(targets[t], "cut.png", prgb, nprgb / 2, NULL, 0);
    }

    uint8_t *big, *bgray;
    size_t nbig, nbgray;
    image_file(FUZZ_IMAGE_JPEG, 48, 64, 3, &big, &nbig);
    image_file(FUZZ_IMAGE_JPEG, 40, 40, 1, &bgray, &nbgray);
    static const uint8_t p_full[8] = { 0x06, 0, 0, 255, 255, 0, 0, 0 };      /* RGB, 8/8, whole image */
    static const uint8_t p_crop[8] = { 0x00, 64, 32, 100, 140, 0, 0, 0 };    /* RGB, 1/8, a crop */
    static const uint8_t p_half[8] = { 0x03, 128, 128, 60, 60, 0, 0, 0 };    /* gray, 2/8 */
    static const uint8_t p_claim[8] = { 0x0c, 10, 10, 200, 200, 0x06, 0x00, 0x80 }; /* box over a 97x129 claim */
    put("jpeg_region", "whole-rgb", p_full, 8, big, nbig);
    put("jpeg_region", "crop-rgb-1of8", p_crop, 8, big, nbig);
    put("jpeg_region", "gray-2of8", p_half, 8, bgray, nbgray);
    put("jpeg_region", "progressive-4of8", (const uint8_t[8]){ 0x04, 30, 30, 128, 128, 0, 0, 0 }, 8, jprog, njprog);
    put("jpeg_region", "claimed-size", p_claim, 8, big, nbig);
    put("jpeg_region", "cut-in-scan", p_crop, 8, big, nbig * 2 / 3);
    free(jrgb); free(jgray); free(prgb); free(pgray); free(webp); free(jprog); free(big); free(bgray);
}

static void one_record(const char *name, struct record *r)
{
    size_t n = record_encoded_size(r);
    uint8_t *buf = malloc(n);
    if (!buf || record_encode(r, buf, n, NULL) != STATUS_OK) die("record_encode");
    put("record", name, buf, n, NULL, 0);
    free(buf);
}

static void records(void)
{
    uint8_t px[4 * 4 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 13);
    struct record r = { .label = 3, .height = 4, .width = 4, .channels = 1, .storage = RECORD_RAW,
                        .name = "train/cat/001.png", .name_len = 17, .payload = px, .payload_len = 16 };
    one_record("raw-gray", &r);
    r = (struct record){ .label = 0, .height = 2, .width = 3, .channels = 3, .storage = RECORD_RAW,
                         .name = "x", .name_len = 1, .payload = px, .payload_len = 18 };
    one_record("raw-rgb", &r);
    r.name_len = 0;
    r.name = "";
    one_record("raw-rgb-noname", &r);
    uint8_t *j;
    size_t nj;
    image_file(FUZZ_IMAGE_JPEG, 8, 8, 3, &j, &nj);
    r = (struct record){ .label = 7, .height = 8, .width = 8, .channels = 3, .storage = RECORD_JPEG,
                         .name = "dog/7.jpg", .name_len = 9, .payload = j, .payload_len = nj };
    one_record("jpeg", &r);
    static const float boxes[8] = { 0.1f, 0.2f, 0.5f, 0.9f, 0.0f, 0.0f, 1.0f, 1.0f };
    r.num_boxes = 2;
    r.boxes_in = boxes;
    one_record("jpeg-two-boxes", &r);
    free(j);
}

static void one_manifest(const char *name, struct manifest *m)
{
    char *json = NULL;
    struct manifest *back = NULL;
    if (manifest_to_json(m, &json) != STATUS_OK) die("manifest_to_json");
    if (manifest_from_json(json, name, &back) != STATUS_OK) die("manifest seed does not load");
    manifest_free(&back);
    put("manifest", name, json, strlen(json), NULL, 0);
    free(json);
}

static void manifests(void)
{
    struct manifest_class cls[3] = { { 0, "cat" }, { 1, "dog" }, { 2, "bird" } };
    struct manifest_shard train[2] = {
        { "train-00000-of-00002.mdb", 3, 0, 4, 0x1234abcdu, 3 * 60 },
        { "train-00001-of-00002.mdb", 2, 5, 6, 0x00c0ffeeu, 2 * 60 },
    };
    struct manifest_shard val[1] = { { "validation-00000-of-00001.mdb", 2, 0, 1, 0xdeadbeefu, 120 } };
    struct manifest_subset subs[2] = { { "train", 5, 2, train }, { "validation", 2, 1, val } };
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.format_version = MANIFEST_FORMAT_VERSION;
    m.nclasses = 3;
    m.classes = cls;
    m.label_offset = 0;
    m.storage = RECORD_RAW;
    m.image.channels = 1;
    m.image.min_height = m.image.max_height = m.image.min_width = m.image.max_width = 28;
    m.augment.profile = MANIFEST_PROFILE_SMALL;
    m.augment.flip = 1;
    m.made.command = "deeper ingest --mnist_dir in --output_dir out";
    m.made.seed = 1;
    m.made.date = "2026-01-01T00:00:00Z";
    m.made.program = "deeper-ingest 1";
    m.nsubsets = 2;
    m.subsets = subs;
    one_manifest("raw-gray.json", &m);
    struct manifest_class cls1[2] = { { 1, "daisy" }, { 2, "rose" } };
    m.nclasses = 2;
    m.classes = cls1;
    m.label_offset = 1;
    m.storage = RECORD_JPEG;
    m.image.channels = 3;
    m.image.min_height = 200; m.image.max_height = 500; m.image.min_width = 180; m.image.max_width = 640;
    m.augment.profile = MANIFEST_PROFILE_PHOTO;
    m.augment.color = 1;
    m.made.seed = 12345678901234567ull;
    m.nsubsets = 1;
    one_manifest("jpeg-background.json", &m);
}

static void slurp_put(const char *target, const char *name, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    put(target, name, buf, n, NULL, 0);
}

static void checkpoints(void)
{
    char dir[] = "/tmp/deeper-seeds-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp");
    float w[6] = { 0.5f, -1, 2, 0.25f, 3, -0.125f }, b[2] = { 0.1f, -0.2f };
    struct ckpt_tensor t[4] = {
        { "fc.weight", w, 2, { 2, 3 } }, { "fc.bias", b, 1, { 2 } },
        { "ema/fc.weight", w, 2, { 2, 3 } }, { "ema/fc.bias", b, 1, { 2 } },
    };
    struct ckpt_meta meta = { .step = 10, .model = "nielsennet", .num_classes = 2,
                              .class_names = "[\"cat\",\"dog\"]", .image_size = 28, .channels = 1,
                              .manifest_digest = "0123456789abcdef", .seed = 1, .epoch = 0, .position = 5,
                              .num_workers = 1, .batch_size = 2, .learning_rate = 0.1 };
    char *path = NULL;
    if (checkpoint_save(dir, &meta, t, 4, 0, &path) != STATUS_OK) die("checkpoint_save");
    slurp_put("safetensors", "checkpoint.safetensors", path);
    unlink(path);
    free(path);

    struct st_writer *wr = NULL;
    int32_t i32[3] = { 1, -2, 3 };
    uint8_t u8[4] = { 1, 2, 3, 4 };
    double f64 = 2.5;
    int64_t s3[1] = { 3 }, s22[2] = { 2, 2 };
    char p2[4200];
    snprintf(p2, sizeof p2, "%s/plain.safetensors", dir);
    if (safetensors_writer_new(&wr) != STATUS_OK ||
        safetensors_writer_add(wr, "ints", ST_I32, s3, 1, i32) != STATUS_OK ||
        safetensors_writer_add(wr, "bytes", ST_U8, s22, 2, u8) != STATUS_OK ||
        safetensors_writer_add(wr, "scalar", ST_F64, NULL, 0, &f64) != STATUS_OK ||
        safetensors_writer_meta(wr, "format", "pt") != STATUS_OK || safetensors_writer_save(wr, p2) != STATUS_OK)
        die("safetensors writer");
    safetensors_writer_free(&wr);
    slurp_put("safetensors", "plain.safetensors", p2);
    unlink(p2);
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/checkpoint", dir);
    unlink(idx);
    rmdir(dir);
}

static void idx_seeds(void)
{
    uint8_t img[16 + 2 * 3 * 3] = { 0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3 };
    for (int i = 16; i < (int)sizeof img; i++) img[i] = (uint8_t)(i * 11);
    uint8_t lab[8 + 2] = { 0, 0, 8, 1, 0, 0, 0, 2, 7, 1 };
    uint8_t len[4] = { sizeof img, 0, 0, 0 };
    uint8_t both[sizeof len + sizeof img];
    memcpy(both, len, 4);
    memcpy(both + 4, img, sizeof img);
    put("idx", "plain", both, sizeof both, lab, sizeof lab);
    lab[7] = 3;
    put("idx", "count-mismatch", both, sizeof both, lab, sizeof lab);
    lab[7] = 2;

    /* the images file gzip-compressed, as the MNIST downloads are */
    char tmp[] = "/tmp/deeper-seeds-gz-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) die("mkstemp");
    close(fd);
    gzFile g = gzopen(tmp, "wb");
    if (!g || gzwrite(g, img, sizeof img) != (int)sizeof img || gzclose(g) != Z_OK) die("gzip");
    FILE *f = fopen(tmp, "rb");
    uint8_t gz[512];
    size_t ng = f ? fread(gz, 1, sizeof gz, f) : 0;
    if (f) fclose(f);
    unlink(tmp);
    uint8_t out[4 + 512 + sizeof lab];
    out[0] = (uint8_t)ng; out[1] = (uint8_t)(ng >> 8); out[2] = out[3] = 0;
    memcpy(out + 4, gz, ng);
    memcpy(out + 4 + ng, lab, sizeof lab);
    put("idx", "gzip-images", out, 4 + ng + sizeof lab, NULL, 0);
}

static void wire_seeds(void)
{
    struct wire_header h;
    uint8_t b[WIRE_HEADER_SIZE];
    wire_header_init(&h, 1, 4, 17, 2, 32, 28, 28, 1, 0, 42);
    wire_header_pack(&h, b);
    put("wire", "batch", b, sizeof b, NULL, 0);
    wire_header_init(&h, 0, 2, 5, 0, 8, 299, 299, 3, WIRE_FLAG_GRAY_EXPAND | WIRE_FLAG_EVAL, 7);
    wire_header_pack(&h, b);
    put("wire", "eval-gray-expand", b, sizeof b, NULL, 0);
    wire_header_init(&h, 3, 4, 100, 1, 0, 28, 28, 1, WIRE_FLAG_END_OF_PASS | WIRE_FLAG_EVAL, 7);
    h.count = 2500;
    wire_header_pack(&h, b);
    put("wire", "end-of-pass", b, sizeof b, NULL, 0);
}

/* One stream input: receiver byte, frame count, then (length, bytes) per frame. */
static void stream_msg(const char *name, int which, const struct wire_header *h, const int32_t *labels, int nframes)
{
    uint8_t buf[512];
    size_t p = 0;
    buf[p++] = (uint8_t)which;
    buf[p++] = (uint8_t)nframes;
    uint8_t hb[WIRE_HEADER_SIZE];
    wire_header_pack(h, hb);
    buf[p++] = WIRE_HEADER_SIZE;
    memcpy(buf + p, hb, WIRE_HEADER_SIZE);
    p += WIRE_HEADER_SIZE;
    size_t sizes[3] = { (size_t)h->n * 4, (size_t)h->n * 8, wire_pixels_bytes(h) };
    for (int f = 0; f < 3 && f + 1 < nframes; f++) {
        buf[p++] = (uint8_t)sizes[f];
        for (size_t k = 0; k < sizes[f]; k++)
            buf[p + k] = f == 0 ? ((const uint8_t *)labels)[k] : (uint8_t)(k * 3 + f);
        p += sizes[f];
    }
    put("stream", name, buf, p, NULL, 0);
}

static void stream_seeds(void)
{
    struct wire_header h;
    int32_t labels[4] = { 1, 9, 0, 4 };
    wire_header_init(&h, 0, 1, 0, 0, 2, 4, 4, 1, 0, 9);
    stream_msg("batch-copy", 0, &h, labels, 4);
    stream_msg("batch-zero-copy", 1, &h, labels, 4);
    stream_msg("three-frames", 0, &h, labels, 3);
    wire_header_init(&h, 1, 2, 3, 0, 4, 4, 4, 1, 0, 9);
    labels[2] = 10;
    stream_msg("label-out-of-range", 0, &h, labels, 4);
    wire_header_init(&h, 1, 2, 9, 0, 0, 4, 4, 1, WIRE_FLAG_END_OF_PASS | WIRE_FLAG_EVAL, 9);
    stream_msg("end-of-pass", 1, &h, labels, 4);
}

/* One message of each kind the dispatcher protocol has (proto/dispatch.md). */
static void dispatch_seeds(void)
{
    uint8_t buf[1024];
    struct dproto_msg m;
    memset(&m, 0, sizeof m);
    m.type = DPROTO_REGISTER;
    m.u.reg.manifest_crc = 0x1234;
    m.u.reg.manifest_len = 900;
    m.u.reg.records = 70000;
    snprintf(m.u.reg.subset, sizeof m.u.reg.subset, "train");
    m.u.reg.batch_size = 32;
    m.u.reg.image_size = 28;
    m.u.reg.channels = 1;
    m.u.reg.flip = m.u.reg.color = m.u.reg.crop = m.u.reg.color_ordering = -1;
    snprintf(m.u.reg.name, sizeof m.u.reg.name, "host:42");
    put("dispatch", "register", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    memset(&m, 0, sizeof m);
    m.type = DPROTO_REFUSED;
    m.session = 7;
    snprintf(m.u.refused.field, sizeof m.u.refused.field, "image_size");
    snprintf(m.u.refused.ours, sizeof m.u.refused.ours, "28");
    snprintf(m.u.refused.theirs, sizeof m.u.refused.theirs, "32");
    put("dispatch", "refused", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    memset(&m, 0, sizeof m);
    m.type = DPROTO_LEASE;
    m.session = 7;
    m.u.lease = (struct dproto_lease){ 3, 8, 12, 10, 0 };
    put("dispatch", "lease", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    m.type = DPROTO_CREDIT;
    m.u.credit = (struct dproto_credit){ 3, 10 };
    put("dispatch", "credit", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    memset(&m, 0, sizeof m);
    m.type = DPROTO_REQUEST;
    m.session = 7;
    m.u.done = 2;
    put("dispatch", "request", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    memset(&m, 0, sizeof m);
    m.type = DPROTO_HEARTBEAT;
    m.session = 7;
    put("dispatch", "heartbeat", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    m.type = DPROTO_BYE;
    put("dispatch", "bye", buf, dproto_encode(&m, buf, sizeof buf), NULL, 0);
    struct wire_header h;
    wire_header_init(&h, 0, 1, 9, 0, 2, 4, 4, 3, 0, 5);
    size_t n = dproto_batch_size(2, 4, 4, 3);
    memset(buf, 0, sizeof buf);
    dproto_batch_begin(buf, 7, 3, 9, &h);
    for (int i = 0; i < 2; i++) {
        le_put_u32(buf + dproto_batch_labels_off() + 4 * (size_t)i, (uint32_t)i);
        le_put_u64(buf + dproto_batch_ids_off(2) + 8 * (size_t)i, (uint64_t)(10 + i));
    }
    put("dispatch", "batch", buf, n, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    log_set_quiet(1);
    images();
    records();
    manifests();
    checkpoints();
    idx_seeds();
    wire_seeds();
    stream_seeds();
    dispatch_seeds();
    return 0;
}
