/*
 * cpu_gemm.c — the measurement behind the CPU backend's choice of GEMM
 * library (scripts/bench/cpu_gemm/run builds and runs it): OpenBLAS cblas_sgemm against
 * oneDNN dnnl_sgemm on the shapes NielsenNet's training step uses, one
 * thread each (the backend parallelises above the GEMM), CPU time per call,
 * best of several repetitions (the build machine is shared).
 */
#include <cblas.h>
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int);

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void)
{
    openblas_set_num_threads(1);
    struct { const char *what; int ta, tb, m, n, k; } sh[] = {
        { "conv2 forward (grouped 32)", 0, 0, 40, 3200, 500 },
        { "conv2 filter grad", 0, 1, 40, 500, 3200 },
        { "conv2 data grad", 1, 0, 500, 3200, 40 },
        { "conv1 forward (grouped 32)", 0, 0, 20, 25088, 25 },
        { "fc1 forward (batch 64)", 0, 1, 64, 1000, 1000 },
        { "fc1 weight grad", 1, 0, 1000, 1000, 64 },
        { "fc1 input grad", 0, 0, 64, 1000, 1000 },
    };
    double tot_o = 0, tot_d = 0;
    printf("%-28s %10s %10s  (ms per call, 1 thread, best of 7)\n", "shape", "openblas", "onednn");
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int m = sh[s].m, n = sh[s].n, k = sh[s].k;
        float *a = calloc((size_t)m * k, 4), *b = calloc((size_t)k * n, 4), *c = calloc((size_t)m * n, 4);
        for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
        int lda = sh[s].ta ? m : k, ldb = sh[s].tb ? k : n;
        double bo = 1e9, bd = 1e9;
        for (int r = 0; r < 7; r++) {
            double t0 = cpu_now();
            cblas_sgemm(CblasRowMajor, sh[s].ta ? CblasTrans : CblasNoTrans, sh[s].tb ? CblasTrans : CblasNoTrans,
                        m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
            double t1 = cpu_now();
            dnnl_sgemm(sh[s].ta ? 'T' : 'N', sh[s].tb ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
            double t2 = cpu_now();
            if (t1 - t0 < bo) bo = t1 - t0;
            if (t2 - t1 < bd) bd = t2 - t1;
        }
        printf("%-28s %10.3f %10.3f\n", sh[s].what, 1e3 * bo, 1e3 * bd);
        tot_o += bo; tot_d += bd;
        free(a); free(b); free(c);
    }
    printf("%-28s %10.3f %10.3f\n", "sum", 1e3 * tot_o, 1e3 * tot_d);
    return 0;
}
