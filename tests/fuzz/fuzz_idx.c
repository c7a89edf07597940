/*
 * fuzz_idx — MNIST idx files (plain or gzip) through ingest_mnist_load
 * (ingest/mnist.c), which `deeper ingest` runs on --mnist inputs.
 *
 * Input layout: a 4-byte little-endian length L, then L bytes of the images
 * file (idx3), then the labels file (idx1) as the rest.  Both are handed
 * over as in-memory files, so the zlib path (gzopen reads plain files too)
 * is the one ingest uses.  Checks: an accepted pair holds n images of
 * rows x cols and n labels, all of which can be read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest.h"
#include "shared/endian.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    size_t l = le_get_u32(data);
    if (l > size - 4) l = size - 4;
    char ipath[64], lpath[64];
    int ifd = fuzz_memfile(data + 4, l, ipath, sizeof ipath);
    int lfd = fuzz_memfile(data + 4 + l, size - 4 - l, lpath, sizeof lpath);
    if (ifd >= 0 && lfd >= 0) {
        struct ingest_mnist *m = NULL;
        status st = ingest_mnist_load(ipath, lpath, &m);
        fuzz_check_failure(st, "ingest_mnist_load");
        if (st == STATUS_OK) {
            if (m->rows == 0 || m->cols == 0) fuzz_fail("accepted %ux%u images", m->rows, m->cols);
            volatile uint8_t sum = 0;
            for (size_t k = 0; k < (size_t)m->n * m->rows * m->cols; k++) sum += m->images[k];
            for (size_t k = 0; k < m->n; k++) sum += m->labels[k];
            (void)sum;
            ingest_mnist_free(&m);
        }
    }
    if (ifd >= 0) close(ifd);
    if (lfd >= 0) close(lfd);
    return 0;
}
