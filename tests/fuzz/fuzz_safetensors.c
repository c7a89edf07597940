/*
 * fuzz_safetensors — a checkpoint or exported model file through the
 * safetensors reader (shared/safetensors.c) and the checkpoint metadata
 * readers (trainer/checkpoint.c).
 *
 * The input is the whole file, handed over as an in-memory file.  After
 * safetensors_open validates it, every tensor's bytes are read, every
 * metadata pair is visited, checkpoint_meta_read range-checks __metadata__,
 * checkpoint_verify recomputes the per-tensor checksums,
 * checkpoint_class_names parses the class list, and checkpoint_restore
 * copies a small fixed parameter set (fc.weight 2x3, fc.bias 2) as eval
 * does.  Then checkpoint_open, the one entry every loader uses, opens it
 * again.  Checks: each tensor's data lies in the file with nbytes = numel x
 * dtype size; checkpoint_open accepts a file exactly when the metadata and
 * the checksums pass; failures carry one line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/safetensors.h"
#include "tests/fuzz/fuzz_util.h"
#include "trainer/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) { log_set_quiet(1); quiet = 1; }   /* format 1 files log a notice on every load */
    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0) return 0;
    struct st_file *f = NULL;
    status st = safetensors_open(&f, path);
    fuzz_check_failure(st, "safetensors_open");
    if (st == STATUS_OK) {
        for (int i = 0; i < safetensors_count(f); i++) {
            const struct st_tensor *t = safetensors_at(f, i);
            uint64_t numel = 1;
            for (int d = 0; d < t->ndim; d++) numel *= (uint64_t)t->shape[d];
            if (numel * st_dtype_size(t->dtype) != t->nbytes)
                fuzz_fail("tensor %s: %zu bytes for %llu elements", t->name, t->nbytes, (unsigned long long)numel);
            if (t->nbytes > size) fuzz_fail("tensor %s larger than the file", t->name);
            volatile uint8_t sum = 0;
            for (size_t k = 0; k < t->nbytes; k++) sum += ((const uint8_t *)t->data)[k];
            (void)sum;
            if (safetensors_find(f, t->name) != t) fuzz_fail("tensor %s not found by name", t->name);
        }
        for (int i = 0; i < safetensors_meta_count(f); i++) {
            const char *k, *v;
            safetensors_meta_at(f, i, &k, &v);
            if (!k || !v) fuzz_fail("metadata pair %d is NULL", i);
        }
        struct ckpt_meta meta;
        memset(&meta, 0, sizeof meta);
        status mst = checkpoint_meta_read(f, &meta);
        fuzz_check_failure(mst, "checkpoint_meta_read");
        status vst = checkpoint_verify(f);
        fuzz_check_failure(vst, "checkpoint_verify");
        if (mst == STATUS_OK && meta.class_names) {
            char **names = NULL;
            int num = 0;
            status cst = checkpoint_class_names(meta.class_names, &names, &num);
            fuzz_check_failure(cst, "checkpoint_class_names");
            if (cst == STATUS_OK) checkpoint_names_free(names, num);
        }
        float w[6], b[2];
        struct ckpt_tensor want[2] = {
            { "fc.weight", w, 2, { 2, 3 } },
            { "fc.bias", b, 1, { 2 } },
        };
        fuzz_check_failure(checkpoint_restore(f, want, 2, "", 0), "checkpoint_restore");
        fuzz_check_failure(checkpoint_restore(f, want, 2, "ema/", 1), "checkpoint_restore ema");
        safetensors_free(&f);

        struct st_file *g = NULL;
        struct ckpt_meta meta2;
        memset(&meta2, 0, sizeof meta2);
        status ost = checkpoint_open(path, &g, &meta2);
        fuzz_check_failure(ost, "checkpoint_open");
        if ((ost == STATUS_OK) != (mst == STATUS_OK && vst == STATUS_OK))
            fuzz_fail("checkpoint_open %s a file whose metadata/checksums %s", ost == STATUS_OK ? "accepted" : "refused",
                      ost == STATUS_OK ? "fail" : "pass");
        if (g && meta2.step != meta.step) fuzz_fail("checkpoint_open read step %lld, meta_read %lld",
                                                    (long long)meta2.step, (long long)meta.step);
        safetensors_free(&g);
    }
    close(fd);
    return 0;
}
