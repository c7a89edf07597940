/*
 * test_ingest_inputs.c — ingest's input side: labels files, class discovery
 * in byte order, the recursive walk (sorted, hidden files skipped, loops and
 * broken links rejected), name escaping, and MNIST idx parsing (plain and
 * gzip, every header/size mismatch refused).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "ingest/ingest.h"
#include "tests/tmpdir_util.h"

TestSuite(inputs, .init = tmpdir_make, .fini = tmpdir_remove);

static void sh(const char *fmt, ...)
{
    char cmd[1200], body[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", tmpdir, body);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(inputs, labels_file_and_discovery)
{
    sh("printf '  roses \\n\\ndaisy\\r\\ntulips\\n' > labels.txt && mkdir -p t/b t/B t/a v/c t/.hid && touch t/file");
    char p[300];
    snprintf(p, sizeof p, "%s/labels.txt", tmpdir);
    struct ingest_classes c;
    cr_assert_eq(ingest_classes_load(p, &c), STATUS_OK, "%s", status_msg());
    cr_assert_eq(c.n, 3);
    cr_assert_str_eq(c.names[0], "roses");
    cr_assert_str_eq(c.names[1], "daisy");
    cr_assert_str_eq(c.names[2], "tulips");
    ingest_classes_clear(&c);
    sh("printf 'a\\nb\\na\\n' > dup.txt");
    snprintf(p, sizeof p, "%s/dup.txt", tmpdir);
    cr_assert_eq(ingest_classes_load(p, &c), STATUS_USAGE);
    cr_assert(strstr(status_msg(), "twice"));
    char t[300], v[300];
    snprintf(t, sizeof t, "%s/t", tmpdir);
    snprintf(v, sizeof v, "%s/v", tmpdir);
    const char *dirs[2] = { t, v };
    cr_assert_eq(ingest_classes_discover(dirs, 2, &c), STATUS_OK);
    cr_assert_eq(c.n, 4, "B a b c (hidden folder and plain file ignored), got %d", c.n);
    cr_assert_str_eq(c.names[0], "B");        /* byte order: uppercase first */
    cr_assert_str_eq(c.names[1], "a");
    cr_assert_str_eq(c.names[3], "c");
    ingest_classes_clear(&c);
}

Test(inputs, walk_is_sorted_recursive_and_rejects_loops)
{
    sh("mkdir -p r/x/sub r/y && touch r/x/b.jpg r/x/a.png r/x/sub/c r/x/.hidden r/y/z"
       " && ln -s .. r/x/sub/back && ln -s nowhere r/x/dangle && ln -s l2 r/x/l1 && ln -s l1 r/x/l2");
    struct ingest_classes c = { 0 };
    char root[300];
    snprintf(root, sizeof root, "%s/r", tmpdir);
    const char *dirs[1] = { root };
    cr_assert_eq(ingest_classes_discover(dirs, 1, &c), STATUS_OK);
    struct ingest_subset s = { .name = "train" };
    cr_assert_eq(ingest_walk(root, &c, &s), STATUS_OK, "%s", status_msg());
    cr_assert_eq(s.n, 4);
    cr_assert_str_eq(s.items[0].name, "x/a.png");
    cr_assert_str_eq(s.items[1].name, "x/b.jpg");
    cr_assert_str_eq(s.items[2].name, "x/sub/c");
    cr_assert_str_eq(s.items[3].name, "y/z");
    cr_assert_eq(s.items[3].class_idx, 1);
    cr_assert_eq(s.hidden_skipped, 1);
    cr_assert_eq(s.nrejects, 4, "dangle, l1, l2, sub/back: got %zu", s.nrejects);
    int loops = 0, broken = 0;
    for (size_t i = 0; i < s.nrejects; i++) {
        if (strstr(s.rejects[i].reason, "loop")) loops++;
        if (strstr(s.rejects[i].reason, "broken")) broken++;
    }
    cr_assert_eq(loops, 3);
    cr_assert_eq(broken, 1);
    ingest_subset_clear(&s);
    ingest_classes_clear(&c);
}

Test(inputs, escape)
{
    char out[64];
    ingest_escape("a\nb\\c\td\x01", 8, out, sizeof out);
    cr_assert_str_eq(out, "a\\nb\\\\c\\td\\x01");
    ingest_escape("日本", strlen("日本"), out, sizeof out);
    cr_assert_str_eq(out, "日本");
}

static void write_idx(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t extra_cut)
{
    size_t hdr = magic == 0x803 ? 16 : 8, body = magic == 0x803 ? (size_t)n * rows * cols : n;
    uint8_t *b = calloc(1, hdr + body);
    uint32_t f[4] = { magic, n, rows, cols };
    for (size_t i = 0; i < hdr / 4; i++)
        for (int k = 0; k < 4; k++) b[i * 4 + k] = (uint8_t)(f[i] >> (24 - 8 * k));
    for (size_t i = 0; i < body; i++) b[hdr + i] = (uint8_t)(magic == 0x803 ? i * 7 : i % 10);
    size_t len = hdr + body - extra_cut;
    if (gz) {
        gzFile g = gzopen(path, "wb");
        gzwrite(g, b, (unsigned)len);
        gzclose(g);
    } else {
        FILE *fp = fopen(path, "wb");
        fwrite(b, 1, len, fp);
        fclose(fp);
    }
    free(b);
}

Test(inputs, mnist_idx)
{
    char im[300], lb[300];
    snprintf(im, sizeof im, "%s/i.gz", tmpdir);
    snprintf(lb, sizeof lb, "%s/l", tmpdir);
    write_idx(im, 1, 0x803, 5, 3, 4, 0);
    write_idx(lb, 0, 0x801, 5, 0, 0, 0);
    struct ingest_mnist *m;
    cr_assert_eq(ingest_mnist_load(im, lb, &m), STATUS_OK, "%s", status_msg());
    cr_assert_eq(m->n, 5);
    cr_assert_eq(m->rows, 3);
    cr_assert_eq(m->cols, 4);
    cr_assert_eq(m->images[13], (uint8_t)(13 * 7));
    cr_assert_eq(m->labels[4], 4);
    struct ingest_subset s = { .name = "train" };
    cr_assert_eq(ingest_mnist_list(m, im, &s), STATUS_OK);
    cr_assert_str_eq(s.items[2].name, "i.gz:2");
    cr_assert_eq(s.items[2].class_idx, 2);
    s.mnist = m;
    ingest_subset_clear(&s);
    /* every mismatch is refused with the file named */
    write_idx(im, 1, 0x803, 5, 3, 4, 1);                  /* one byte short */
    cr_assert_eq(ingest_mnist_load(im, lb, &m), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "i.gz"), "%s", status_msg());
    write_idx(im, 0, 0x801, 5, 3, 4, 0);                  /* labels magic in the images file */
    cr_assert_eq(ingest_mnist_load(im, lb, &m), STATUS_FORMAT);
    cr_assert(strstr(status_msg(), "idx3"), "%s", status_msg());
    write_idx(im, 0, 0x803, 5, 3, 4, 0);
    write_idx(lb, 0, 0x801, 6, 0, 0, 0);                  /* 6 labels for 5 images */
    cr_assert_eq(ingest_mnist_load(im, lb, &m), STATUS_FORMAT);
    snprintf(lb, sizeof lb, "%s/missing", tmpdir);
    cr_assert_eq(ingest_mnist_load(im, lb, &m), STATUS_IO);
}
