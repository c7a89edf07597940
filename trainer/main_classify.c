/*
 * main_classify.c — `deeper classify --checkpoint_dir T FILE...`: top-5
 * classes with probabilities for each image file.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/flags.h"
#include "shared/image.h"
#include "shared/log.h"
#include "shared/preprocess.h"
#include "shared/regfile.h"
#include "shared/signals.h"
#include "trainer/checkpoint.h"
#include "trainer/model.h"
#include "trainer/train_state.h"

static volatile sig_atomic_t g_stop;   /* set by the signal watcher (shared/signals.h) */

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

static status classify(const char *dir, const char *device, int top, char **files, int nfiles, int *bad)
{
    status st = STATUS_OK;
    char *path = NULL;
    struct st_file *ck = NULL;
    struct tower_set *ts = NULL;
    char **names = NULL;
    int nnames = 0;
    uint8_t *pix = NULL;
    float *probs = NULL;
    int64_t step;
    if ((st = checkpoint_latest(dir, &path, &step)) != STATUS_OK) goto done;
    struct ckpt_meta meta;
    if ((st = checkpoint_open(path, &ck, &meta)) != STATUS_OK) goto done;
    if ((st = checkpoint_class_names(meta.class_names, &names, &nnames)) != STATUS_OK) goto done;
    const struct model_desc *md = model_find(meta.model);
    if (!md) { st = FAIL(STATUS_FORMAT, "%s: unknown model %s", path, meta.model); goto done; }
    int c = meta.channels > 0 ? meta.channels : md->default_channels;
    struct model_options mo = model_options_default();
    mo.model = meta.model;
    mo.classes = meta.num_classes;
    mo.image_size = meta.image_size;
    mo.channels = md->default_channels == 3 ? 3 : c;
    mo.batch_size = 1;
    mo.num_towers = 1;
    mo.backend = device;
    mo.training = 0;
    mo.seed = meta.seed;
    if ((st = model_towers_new(&ts, &mo)) != STATUS_OK) goto done;
    if ((st = train_state_restore(ts, ck, RESTORE_EMA_AS_WEIGHTS)) != STATUS_OK) goto done;
    size_t img = (size_t)meta.image_size * meta.image_size * c;
    pix = malloc(img);
    probs = malloc((size_t)meta.num_classes * sizeof(float));
    if (!pix || !probs) { st = FAIL(STATUS_NOMEM, "out of memory"); goto done; }
    if (top > meta.num_classes) top = meta.num_classes;
    for (int f = 0; f < nfiles; f++) {
        status fs = preprocess(files[f], meta.image_size, c, pix);
        if (fs == STATUS_OK) fs = model_forward_eval(ts, pix, c, 1, probs);
        if (fs != STATUS_OK) {
            fprintf(stderr, "deeper classify: error: %s\n", status_msg());
            *bad = 1;
            continue;
        }
        printf("%s\n", files[f]);
        for (int k = 0; k < top; k++) {      /* selection: top is small */
            int best = 0;
            for (int j = 1; j < meta.num_classes; j++)
                if (probs[j] > probs[best]) best = j;
            printf("  %.4f  %s\n", probs[best], best < nnames ? names[best] : "?");
            probs[best] = -1.0f;
        }
    }
    fflush(stdout);
done:
    model_towers_free(&ts);
    safetensors_free(&ck);
    checkpoint_names_free(names, nnames);
    free(path); free(pix); free(probs);
    return st;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *device = "auto";
    int top = 5;
    const struct flag flags[] = {
        { "checkpoint_dir", FLAG_STRING, &dir, "the training run's --train_dir (required)", NULL },
        { "top", FLAG_INT, &top, "classes to print per file", NULL },
        { "device", FLAG_STRING, &device, "cpu, cuda or auto (CUDA when a GPU exists)", NULL },
    };
    const struct flags_spec spec = {
        "deeper classify", "--checkpoint_dir DIR FILE...",
        "Print the top classes with probabilities for each image file (JPEG, PNG or WebP), using the newest "
        "checkpoint's moving-average weights and the eval preprocessing (central crop 0.875, resize).",
        flags, FLAGS_COUNT(flags), 1, -1,
    };
    char **files = calloc((size_t)argc + 1, sizeof(char *));
    int nfiles = 0, bad = 0;
    status st = files ? flags_parse(&spec, argc, argv, files, &nfiles) : FAIL(STATUS_NOMEM, "out of memory");
    if (st == STATUS_OK && !dir) st = FAIL(STATUS_USAGE, "--checkpoint_dir is required");
    if (st == STATUS_OK && top < 1) st = FAIL(STATUS_USAGE, "--top must be >= 1");
    /* before any thread exists (oneDNN): a stop ends the run at once with one line */
    if (st == STATUS_OK) st = signals_watch(&g_stop);
    if (st == STATUS_OK) {
        signals_stop_now("deeper classify", "classifying");
        st = classify(dir, device, top, files, nfiles, &bad);
    }
    free(files);
    int rc = status_report("deeper classify", st, st == STATUS_USAGE ? "see deeper classify --help" : NULL);
    return rc ? rc : (bad ? 1 : 0);
}
