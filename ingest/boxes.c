/*
 * boxes.c — object bounding boxes from TF's process_bounding_boxes.py CSV.
 *
 * One box a line: `file name,xmin,ymin,xmax,ymax`, the corners normalised to
 * the image (0..1), as many lines per image as it has boxes; empty lines and
 * lines starting with '#' are skipped.  An image's boxes are those whose file
 * name equals the base name of the listed file (ImageNet's names are unique),
 * in file order, stored in TF's order (ymin, xmin, ymax, xmax).  Corners are
 * clipped to [0,1]; a line whose corners are not numbers, or whose min
 * exceeds its max after clipping, is refused with its line number.  Images
 * with no line get no box (the augment crop then treats the whole image as
 * the object).  An image may carry at most 255 boxes.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"
#include "shared/log.h"

#define BOXES_MAX_PER_IMAGE 255

struct box_line { char *name; float b[4]; size_t order; };

static int cmp_box(const void *a, const void *b)
{
    const struct box_line *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static float clip01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

status ingest_boxes_attach(const char *csv, struct ingest_ctx *c)
{
    FILE *f = fopen(csv, "r");
    if (!f) return FAIL(STATUS_IO, "--bounding_box_file %s: %s", csv, strerror(errno));
    struct box_line *v = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    int lineno = 0;
    status st = STATUS_OK;
    while (getline(&line, &lcap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *comma = strchr(line, ',');
        float xmin, ymin, xmax, ymax;
        int used = 0;
        if (!comma || comma == line ||
            sscanf(comma + 1, "%f,%f,%f,%f%n", &xmin, &ymin, &xmax, &ymax, &used) != 4 || comma[1 + used] ||
            !isfinite(xmin) || !isfinite(ymin) || !isfinite(xmax) || !isfinite(ymax)) {
            st = FAIL(STATUS_FORMAT, "%s:%d: expected file name,xmin,ymin,xmax,ymax (normalised numbers)", csv, lineno);
            goto done;
        }
        xmin = clip01(xmin); ymin = clip01(ymin); xmax = clip01(xmax); ymax = clip01(ymax);
        if (xmin > xmax || ymin > ymax) {
            st = FAIL(STATUS_FORMAT, "%s:%d: box min exceeds max (xmin %g, xmax %g, ymin %g, ymax %g)", csv, lineno,
                      xmin, xmax, ymin, ymax);
            goto done;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            struct box_line *nv = realloc(v, cap * sizeof *nv);
            if (!nv) { st = FAIL(STATUS_NOMEM, "out of memory for the boxes"); goto done; }
            v = nv;
        }
        *comma = 0;
        v[n] = (struct box_line){ strdup(line), { ymin, xmin, ymax, xmax }, n };
        if (!v[n++].name) { st = FAIL(STATUS_NOMEM, "out of memory for the boxes"); goto done; }
    }
    if (n) qsort(v, n, sizeof *v, cmp_box);
    uint64_t with = 0, boxes = 0;
    for (int k = 0; k < c->nsubsets; k++) {
        struct ingest_subset *s = &c->subsets[k];
        for (size_t i = 0; i < s->n; i++) {
            struct ingest_item *it = &s->items[i];
            const char *src = it->path ? it->path : it->name;
            const char *base = strrchr(src, '/');
            base = base ? base + 1 : src;
            /* first line with this name (lower bound), then the run of equal names */
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (strcmp(v[mid].name, base) < 0) lo = mid + 1; else hi = mid;
            }
            size_t end = lo;
            while (end < n && !strcmp(v[end].name, base)) end++;
            if (end == lo) continue;
            if (end - lo > BOXES_MAX_PER_IMAGE) {
                st = FAIL(STATUS_FORMAT, "%s: %zu boxes for %s (at most %d)", csv, end - lo, base, BOXES_MAX_PER_IMAGE);
                goto done;
            }
            free(it->boxes);
            it->boxes = malloc((end - lo) * 4 * sizeof(float));
            if (!it->boxes) { st = FAIL(STATUS_NOMEM, "out of memory for the boxes"); goto done; }
            for (size_t j = lo; j < end; j++) memcpy(it->boxes + 4 * (j - lo), v[j].b, sizeof v[j].b);
            it->nboxes = (uint32_t)(end - lo);
            with++;
            boxes += it->nboxes;
        }
    }
    log_info("bounding boxes: %llu box(es) for %llu image(s) from %s (%zu lines)", (unsigned long long)boxes,
             (unsigned long long)with, csv, n);
done:
    for (size_t i = 0; i < n; i++) free(v[i].name);
    free(v);
    free(line);
    fclose(f);
    return st;
}
