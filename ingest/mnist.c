/*
 * mnist.c — MNIST-format idx files (MNIST, Fashion-MNIST, ...).
 *
 * idx3 images: big-endian u32 magic 0x00000803, count, rows, cols, then
 * count*rows*cols bytes; idx1 labels: magic 0x00000801, count, then count
 * bytes.  Files may be gzip-compressed or plain (zlib's gzread reads both).
 * Every size is checked against what the file actually holds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ingest/ingest.h"

static status mnist_read_all(const char *path, uint8_t **out, size_t *n)
{
    gzFile f = gzopen(path, "rb");
    if (!f) return FAIL(STATUS_IO, "%s: %s", path, errno ? strerror(errno) : "cannot open");
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    status st = STATUS_OK;
    if (!buf) { gzclose(f); return FAIL(STATUS_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (len == cap) {
            if (cap >= ((size_t)4 << 30)) { st = FAIL(STATUS_TOO_BIG, "%s: larger than 4 GiB", path); break; }
            uint8_t *p = realloc(buf, cap * 2);
            if (!p) { st = FAIL(STATUS_NOMEM, "%s: out of memory", path); break; }
            buf = p;
            cap *= 2;
        }
        int want = (int)((cap - len) > (1u << 30) ? (1u << 30) : (cap - len));
        int got = gzread(f, buf + len, (unsigned)want);
        if (got < 0) {
            int e;
            const char *msg = gzerror(f, &e);
            st = FAIL(STATUS_FORMAT, "%s: %s", path, msg ? msg : "read error (corrupt gzip?)");
            break;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    gzclose(f);
    if (st != STATUS_OK) { free(buf); return st; }
    *out = buf;
    *n = len;
    return STATUS_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void ingest_mnist_free(struct ingest_mnist **mp)
{
    struct ingest_mnist *m = mp ? *mp : NULL;
    if (!m) return;
    free(m->images);
    free(m->labels);
    free(m);
    *mp = NULL;
}

status ingest_mnist_load(const char *images, const char *labels, struct ingest_mnist **out)
{
    uint8_t *ib = NULL, *lb = NULL;
    size_t in = 0, ln = 0;
    status st;
    struct ingest_mnist *m = calloc(1, sizeof *m);
    if (!m) return FAIL(STATUS_NOMEM, "out of memory");
    if ((st = mnist_read_all(images, &ib, &in)) != STATUS_OK) goto fail;
    if ((st = mnist_read_all(labels, &lb, &ln)) != STATUS_OK) goto fail;
    if (in < 16 || be32(ib) != 0x00000803) {
        st = FAIL(STATUS_FORMAT, "%s: not an idx3 images file (magic %08x, expected 00000803)", images,
                  in >= 4 ? be32(ib) : 0);
        goto fail;
    }
    if (ln < 8 || be32(lb) != 0x00000801) {
        st = FAIL(STATUS_FORMAT, "%s: not an idx1 labels file (magic %08x, expected 00000801)", labels,
                  ln >= 4 ? be32(lb) : 0);
        goto fail;
    }
    m->n = be32(ib + 4);
    m->rows = be32(ib + 8);
    m->cols = be32(ib + 12);
    if (m->rows == 0 || m->cols == 0 || m->rows > RECORD_DIM_MAX || m->cols > RECORD_DIM_MAX) {
        st = FAIL(STATUS_FORMAT, "%s: image size %ux%u out of range", images, m->rows, m->cols);
        goto fail;
    }
    uint64_t need = 16 + (uint64_t)m->n * m->rows * m->cols;
    if (in != need) {
        st = FAIL(STATUS_FORMAT, "%s: %zu bytes, header (%u images of %ux%u) needs %llu", images, in, m->n,
                  m->rows, m->cols, (unsigned long long)need);
        goto fail;
    }
    if (be32(lb + 4) != m->n || ln != 8 + (size_t)m->n) {
        st = FAIL(STATUS_FORMAT, "%s: holds %u labels in %zu bytes, %s has %u images", labels, be32(lb + 4), ln,
                  images, m->n);
        goto fail;
    }
    m->images = malloc((size_t)m->n * m->rows * m->cols + 1);
    m->labels = malloc((size_t)m->n + 1);
    if (!m->images || !m->labels) { st = FAIL(STATUS_NOMEM, "out of memory for %s", images); goto fail; }
    memcpy(m->images, ib + 16, (size_t)m->n * m->rows * m->cols);
    memcpy(m->labels, lb + 8, m->n);
    free(ib);
    free(lb);
    *out = m;
    return STATUS_OK;
fail:
    free(ib);
    free(lb);
    ingest_mnist_free(&m);
    return st;
}

status ingest_mnist_list(struct ingest_mnist *m, const char *images_path, struct ingest_subset *s)
{
    const char *base = strrchr(images_path, '/');
    base = base ? base + 1 : images_path;
    for (uint32_t i = 0; i < m->n; i++) {
        size_t len = strlen(base) + 16;
        char *name = malloc(len);
        if (!name) return FAIL(STATUS_NOMEM, "out of memory");
        snprintf(name, len, "%s:%u", base, i);
        TRY(ingest_subset_add(s, NULL, name, m->labels[i], i));
    }
    return STATUS_OK;
}
