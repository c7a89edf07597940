/*
 * backend_cuda_internal.h — state shared by backend_cuda.c (context,
 * memory, element-wise ops, the ops table), backend_cuda_dnn.c (cuDNN
 * convolutions with the per-shape algorithm cache, cuBLAS fully connected
 * layers) and backend_cuda_nccl.c (NCCL between the towers' GPUs).
 * Private to trainer/backend/cuda/.
 */
#ifndef DEEPER_BACKEND_CUDA_INTERNAL_H
#define DEEPER_BACKEND_CUDA_INTERNAL_H

#include <stdatomic.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "kernels/kernels.h"
#include "trainer/backend.h"

/* Growable device scratch buffers, by purpose (one op uses each at most once). */
enum cuda_scratch { SCR_WS = 0, SCR_A, SCR_B, SCR_C, SCR_PART, SCR_COUNT };

struct conv_algo_entry;

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    cudnnTensorDescriptor_t td[3];
    cudnnFilterDescriptor_t fd;
    cudnnConvolutionDescriptor_t cd;
    void *scr[SCR_COUNT];
    size_t scr_bytes[SCR_COUNT];
    float *loss_rows;            /* device float[loss_rows_n] */
    int loss_rows_n;
    float *loss_mean;            /* device float[1] */
    double *sumsq_out;           /* device double[1] */
    int tf32;                    /* TF32 tensor-op math allowed (DEEPER_TF32, default 1) */
    int find;                    /* cudnnFind (measure) instead of heuristics (DEEPER_CUDNN_FIND, default 1) */
    size_t ws_limit;             /* largest cuDNN workspace an algorithm may use */
    int strided_dnn;             /* give cuDNN channel-slice views directly (DEEPER_CUDNN_STRIDED, default 1) */
    struct conv_algo_entry *algos;   /* open-addressing table */
    int algos_cap, algos_n;
    long long conv_direct, conv_packed;  /* convolution calls on the views as given / through scratch copies */
    int conv_pack_shapes;        /* (direction, shape) keys cuDNN refused as strided views */
    /* input path: batches go up on their own stream into two device staging
     * buffers; compute waits on up_done[i] for its own batch only, and the
     * next upload into buffer i waits on up_free[i] (normalise done reading) */
    cudaStream_t up_stream;
    void *up_buf[2];
    size_t up_bytes[2];
    cudaEvent_t up_done[2], up_free[2];
    int up_next;
    /* idle stamps (backend_cuda_mark): host time the stream reached the last mark */
    _Atomic double idle_at;
    atomic_uint idle_reached;
    unsigned idle_marked;
};

static inline struct cuda_ctx *cuda_ctx_of(struct backend *be) { return be->ctx; }

/* Record a CUDA / cuDNN / cuBLAS failure as a status naming `what`. */
status cuda_fail_rt(cudaError_t e, const char *what, const char *file, int line);
status cuda_fail_dnn(cudnnStatus_t e, const char *what, const char *file, int line);
status cuda_fail_blas(cublasStatus_t e, const char *what, const char *file, int line);
#define CU(call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return cuda_fail_rt(e_, what, __FILE__, __LINE__); } while (0)
#define DNN(call, what) do { cudnnStatus_t e_ = (call); if (e_ != CUDNN_STATUS_SUCCESS) return cuda_fail_dnn(e_, what, __FILE__, __LINE__); } while (0)
#define BLAS(call, what) do { cublasStatus_t e_ = (call); if (e_ != CUBLAS_STATUS_SUCCESS) return cuda_fail_blas(e_, what, __FILE__, __LINE__); } while (0)
#define KL(call, what) CU((cudaError_t)(call), what)

/* Make this backend's GPU current (several backends share one host thread). */
status cuda_use(struct cuda_ctx *c);

/* Scratch buffer `slot` of at least `bytes`; grows (after a device sync). */
status cuda_scratch(struct cuda_ctx *c, enum cuda_scratch slot, size_t bytes, void **out);

/* struct tensor -> struct kt (float data) */
static inline struct kt kt_of(const struct tensor *t)
{
    struct kt k = { (float *)t->data, t->n, t->c, t->h, t->w, (long long)t->sn, (long long)t->sc,
                    (long long)t->sh, (long long)t->sw };
    return k;
}

/* A dense NCHW copy of view t in scratch `slot` (t itself when already dense
 * NCHW or NHWC; no copy).  `load` copies the values in (for inputs). */
status cuda_dense(struct cuda_ctx *c, enum cuda_scratch slot, const struct tensor *t, int load,
                  struct tensor *out);

/* backend_cuda_dnn.c */
status cuda_conv2d_forward(struct backend *be, struct tensor *y, const struct tensor *x,
                           const struct tensor *w, const struct conv_params *p);
status cuda_conv2d_backward_data(struct backend *be, struct tensor *dx, const struct tensor *dy,
                                 const struct tensor *w, const struct conv_params *p);
status cuda_conv2d_backward_filter(struct backend *be, struct tensor *dw, const struct tensor *dy,
                                   const struct tensor *x, const struct conv_params *p);
status cuda_fc_forward(struct backend *be, struct tensor *y, const struct tensor *x, const float *w,
                       const float *b, int in, int out);
status cuda_fc_backward(struct backend *be, struct tensor *dx, float *dw, float *db,
                        const struct tensor *dy, const struct tensor *x, const float *w, int in,
                        int out);
void cuda_dnn_clear(struct cuda_ctx *c);   /* frees the algorithm cache c holds */

/* backend_cuda_nccl.c: the comm_* slots (NCCL between the towers' GPUs) */
status cuda_comm_new(struct backend_comm **out, struct backend **be, int n);
status cuda_comm_run(struct backend_comm *c, const struct backend_collective *ops, int nops);
void cuda_comm_free(struct backend_comm **c);

#endif
