/*
 * backend_cuda.h — the CUDA backend's public entry points (only in builds
 * with DEEPER_HAVE_CUDA; the Makefile defines it when nvcc and cuDNN exist).
 *
 * trainer/backend/registry.c calls backend_cuda_create / backend_cuda_count
 * from backend_new_cuda / backend_cuda_device_count; the trainer reaches
 * everything else through the ops table (host buffers, idle stamps and NCCL
 * are its optional slots).  The rest is here for the tests and benchmarks.
 */
#ifndef DEEPER_BACKEND_CUDA_H
#define DEEPER_BACKEND_CUDA_H

#include <stddef.h>

#include "trainer/backend.h"

/* A backend on GPU `device` (0-based): one stream, cuDNN and cuBLAS handles.
 * STATUS_NO_DEVICE with the CUDA runtime's reason when there is no such GPU
 * (no driver, no device, ordinal too large).  Caller frees with backend_free. */
status backend_cuda_create(struct backend **out, int device);

/* Number of usable GPUs; 0 (never an error) when there is no driver or no
 * device.  backend_cuda_why_none() then says why, e.g. "CUDA driver version
 * is insufficient for CUDA runtime version" or "no CUDA-capable device is
 * detected" (static string). */
int backend_cuda_count(void);
const char *backend_cuda_why_none(void);

/* "NVIDIA H100 80GB HBM3, 132 SMs, 79.1 GiB, cc 9.0, cuDNN 91900" into buf. */
status backend_cuda_describe(int device, char *buf, size_t n);

/* The backend's cudaStream_t (as void*), for NCCL and input staging. */
void *backend_cuda_stream(struct backend *be);

/* Allocate n bytes of page-locked host memory (so uploads are asynchronous
 * DMA).  NULL on failure.  Free with backend_cuda_host_free.  The host_alloc
 * slot wraps it with a fallback to ordinary memory. */
void *backend_cuda_host_alloc(size_t n);
void backend_cuda_host_free(void *p);

/* Idle stamps (the mark and idle_since slots), for the trainer's input-wait
 * fraction: backend_cuda_mark
 * enqueues a mark on the backend's stream; backend_cuda_idle_since returns
 * the host time (log_now) at which the GPU reached the latest mark, i.e.
 * finished all the work queued before it, or 0 while it has not yet. */
status backend_cuda_mark(struct backend *be);
double backend_cuda_idle_since(struct backend *be);

/* Convolution calls so far that gave cuDNN the views as they are (direct,
 * strided descriptors included) or went through dense scratch copies
 * (packed), and how many (direction, shape) keys cuDNN refused as strided
 * views. */
void backend_cuda_conv_stats(struct backend *be, long long *direct, long long *packed, int *packed_shapes);

#endif
