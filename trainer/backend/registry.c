/*
 * registry.c — the backend registry: creating and freeing backends by name.
 *
 * "cpu" is always available.  "cuda" exists only in builds with
 * DEEPER_HAVE_CUDA (the Makefile defines it when nvcc and cuDNN are found);
 * trainer/backend/cuda/ then provides backend_cuda_create and
 * backend_cuda_count.  Without it backend_new_cuda fails with
 * STATUS_NO_DEVICE and a message saying why.  "auto" is CUDA when a GPU is
 * present, else the CPU.
 *
 * After a backend is created its table is checked: the api_version must
 * match and every required slot must be filled, so a half-done backend
 * fails at startup with the slot's name instead of crashing mid-step.  The
 * optional slots at the end of the table may be NULL; callers then use the
 * default backend.h names.
 */
#include <stdlib.h>
#include <string.h>

#include "trainer/backend.h"

/* The one place outside the CUDA backend that knows whether the build has
 * it.  Strong references: a weak undefined symbol never pulls backend_cuda.o
 * out of libtrainer.a, so the CUDA backend would silently be missing. */
#ifdef DEEPER_HAVE_CUDA
#include "trainer/backend/cuda/backend_cuda.h"
enum { BUILT_WITH_CUDA = 1 };
#else
enum { BUILT_WITH_CUDA = 0 };
static int backend_cuda_count(void) { return 0; }
static const char *backend_cuda_why_none(void) { return "no CUDA backend"; }
static status backend_cuda_create(struct backend **out, int device)
{
    (void)out; (void)device;
    return FAIL(STATUS_NO_DEVICE, "no CUDA backend");
}
#endif

static status backend_check(struct backend *be)
{
    const struct backend_ops *o = be->ops;
    if (o->api_version != BACKEND_API_VERSION)
        return FAIL(STATUS_UNSUPPORTED, "backend %s: api version %d, trainer expects %d", o->name,
                    o->api_version, BACKEND_API_VERSION);
#define REQ(slot) if (!o->slot) return FAIL(STATUS_UNSUPPORTED, "backend %s: op %s missing", o->name, #slot)
    REQ(alloc); REQ(free); REQ(copy_h2d); REQ(copy_d2h); REQ(copy_d2d); REQ(zero); REQ(sync);
    REQ(destroy); REQ(input_normalize); REQ(conv2d_forward); REQ(conv2d_backward_data);
    REQ(conv2d_backward_filter); REQ(batchnorm_train_forward); REQ(batchnorm_infer_forward);
    REQ(batchnorm_backward); REQ(bias_add_forward); REQ(bias_add_backward); REQ(pool_forward);
    REQ(pool_backward); REQ(relu_forward); REQ(relu_backward); REQ(fc_forward); REQ(fc_backward);
    REQ(dropout_forward); REQ(dropout_backward); REQ(softmax_xent); REQ(softmax);
    REQ(rmsprop_update); REQ(ema_update); REQ(axpby); REQ(sumsq);
#undef REQ
    return STATUS_OK;
}

status backend_new_cuda(struct backend **out, int device)
{
    *out = NULL;
    if (!BUILT_WITH_CUDA)
        return FAIL(STATUS_NO_DEVICE,
                    "this build has no CUDA backend (nvcc or cuDNN were not found at build time)");
    int n = backend_cuda_count();
    if (n <= 0)
        return FAIL(STATUS_NO_DEVICE, "no CUDA device: %s (this build has CUDA support)",
                    backend_cuda_why_none());
    if (device < 0 || device >= n)
        return FAIL(STATUS_NO_DEVICE, "GPU %d requested, %d present", device, n);
    TRY(backend_cuda_create(out, device));
    status st = backend_check(*out);
    if (st != STATUS_OK) backend_free(out);
    return st;
}

int backend_cuda_device_count(void)
{
    return backend_cuda_count();
}

status backend_new(struct backend **out, const char *name, int device, int threads)
{
    *out = NULL;
    if (!name || !strcmp(name, "cpu")) {
        TRY(backend_new_cpu(out, threads));
    } else if (!strcmp(name, "cuda")) {
        TRY(backend_new_cuda(out, device));
    } else if (!strcmp(name, "auto")) {
        if (backend_cuda_device_count() > 0) TRY(backend_new_cuda(out, device));
        else TRY(backend_new_cpu(out, threads));
    } else {
        return FAIL(STATUS_USAGE, "unknown backend '%s' (cpu, cuda, auto)", name);
    }
    status st = backend_check(*out);
    if (st != STATUS_OK) backend_free(out);
    return st;
}

const char *backend_name_resolve(const char *name)
{
    if (!name) return "cpu";
    if (!strcmp(name, "auto")) return backend_cuda_device_count() > 0 ? "cuda" : "cpu";
    return name;
}

int backend_name_on_host(const char *name)
{
    return !strcmp(backend_name_resolve(name), "cpu");
}

void backend_free(struct backend **be)
{
    if (!be || !*be) return;
    (*be)->ops->destroy(*be);
    *be = NULL;
}
