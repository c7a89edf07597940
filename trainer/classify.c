/*
 * classify.c — top classes with probabilities for image files (see
 * classify.h; trainer/main_classify.c holds the flags).
 *
 * Files are decoded by content (shared/image.h: JPEG, PNG, WebP; never by
 * extension) to the channel count the model was trained on, then given the
 * eval workers' exact preprocessing: TF's central crop of 0.875 and a
 * bilinear resize to the checkpoint's image size (shared/preprocess.h, the
 * same functions the eval workers call).  The model runs with the
 * checkpoint's EMA weights.  Output, one block per file on stdout:
 *     FILE
 *       0.9312  Trouser
 *       0.0401  Dress
 *       ...
 * A file that cannot be read or decoded gets one error line on stderr and
 * the exit status becomes 1; the other files are still classified.
 */
#include "trainer/classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/image.h"
#include "shared/log.h"
#include "shared/preprocess.h"
#include "shared/regfile.h"
#include "trainer/model_ckpt.h"

static status read_file(const char *path, uint8_t **out, size_t *n)
{
    FILE *fp = NULL;
    TRY(regfile_fopen(path, &fp));   /* a FIFO or device is refused, never waited on */
    size_t cap = 1 << 16, len = 0, k;
    uint8_t *buf = malloc(cap);
    while (buf && (k = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += k;
        if (len == cap) {
            if (cap > ((size_t)1 << 30)) { free(buf); fclose(fp); return FAIL(STATUS_TOO_BIG, "%s: larger than 1 GiB", path); }
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
    }
    fclose(fp);
    if (!buf) return FAIL(STATUS_NOMEM, "%s: out of memory", path);
    *out = buf; *n = len;
    return STATUS_OK;
}

/* Decode + central crop 0.875 + resize into dst (size x size x c). */
static status preprocess(const char *path, int size, int c, uint8_t *dst)
{
    uint8_t *data = NULL;
    size_t n = 0;
    TRY(read_file(path, &data, &n));
    struct image img = { 0 };
    struct image_decode_opts o = { c, 100000000ull };
    status st = image_decode(data, n, &o, &img);
    free(data);
    if (st != STATUS_OK) return FAIL(st, "%s: %s", path, status_msg());
    /* exactly what an eval worker does (eval mode, default resize: TF1 bilinear) */
    const struct resize_params rp = { RESIZE_BILINEAR, 0, 0 };
    st = preprocess_eval(img.pixels, img.height, img.width, c, 0.875f, &rp, dst, size, size, c);
    if (st != STATUS_OK) { image_clear(&img); return FAIL(st, "%s: %s", path, status_msg()); }
    image_clear(&img);
    return STATUS_OK;
}

status classify_files(const struct classify_config *cfg, char **files, int nfiles, int *bad)
{
    status st = STATUS_OK;
    struct model_ckpt ck;
    struct tower_set *ts = NULL;
    char **names = NULL;
    int nnames = 0;
    uint8_t *pix = NULL;
    float *probs = NULL;
    if ((st = model_ckpt_open(&ck, cfg->checkpoint_dir, NULL)) != STATUS_OK) goto done;
    const struct ckpt_meta *meta = &ck.meta;
    if ((st = checkpoint_class_names(meta->class_names, &names, &nnames)) != STATUS_OK) goto done;
    struct model_options mo;
    if ((st = model_ckpt_options(&ck, 0, &mo)) != STATUS_OK) goto done;
    int c = meta->channels > 0 ? meta->channels : mo.channels;   /* the images' channels */
    mo.backend = cfg->device;
    if ((st = model_ckpt_towers(&ck, &mo, RESTORE_EMA_AS_WEIGHTS, &ts)) != STATUS_OK) goto done;
    int classes = meta->num_classes, size = meta->image_size, top = cfg->top;
    pix = malloc((size_t)size * size * c);
    probs = malloc((size_t)classes * sizeof(float));
    if (!pix || !probs) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
    if (top > classes) top = classes;
    for (int f = 0; f < nfiles; f++) {
        status fs = preprocess(files[f], size, c, pix);
        if (fs == STATUS_OK) fs = model_forward_eval(ts, pix, c, 1, probs);
        if (fs != STATUS_OK) {
            fprintf(stderr, "deeper classify: error: %s\n", status_msg());
            *bad = 1;
            continue;
        }
        printf("%s\n", files[f]);
        for (int k = 0; k < top; k++) {      /* selection: top is small */
            int best = 0;
            for (int j = 1; j < classes; j++)
                if (probs[j] > probs[best]) best = j;
            printf("  %.4f  %s\n", probs[best], best < nnames ? names[best] : "?");
            probs[best] = -1.0f;
        }
    }
    fflush(stdout);
done:
    model_towers_free(&ts);
    model_ckpt_close(&ck);
    checkpoint_names_free(names, nnames);
    free(pix); free(probs);
    return st;
}
