/*
 * eltwise.cu — element-wise ops over strided views: scaled copy (also the
 * pack/unpack used when cuDNN needs a dense tensor), ReLU forward and
 * backward, and the fully connected layer's bias add and bias gradient.
 * Backward kernels accumulate (+=).
 */
#include "kernels/common.cuh"

__global__ void scale_copy_kernel(struct kt y, struct kt x, float a, float b)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        long long oy = kt_off(y, i), ox = kt_off(x, i);
        float v = a * x.p[ox];
        y.p[oy] = b == 0.0f ? v : v + b * y.p[oy];
    }
}

extern "C" int k_scale_copy(kstream s, struct kt y, struct kt x, float a, float b)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    scale_copy_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, x, a, b);
    return k_err();
}

__global__ void relu_forward_kernel(struct kt y, struct kt x)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        float v = x.p[kt_off(x, i)];
        y.p[kt_off(y, i)] = v < 0.0f ? 0.0f : v;   /* NaN passes through, as on the CPU (TF): divergence shows in the loss */
    }
}

extern "C" int k_relu_forward(kstream s, struct kt y, struct kt x)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    relu_forward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, x);
    return k_err();
}

__global__ void relu_backward_kernel(struct kt dx, struct kt dy, struct kt y)
{
    long long total = (long long)dx.n * dx.c * dx.h * dx.w;
    K_GRID_LOOP(i, total) {
        if (y.p[kt_off(y, i)] > 0.0f) dx.p[kt_off(dx, i)] += dy.p[kt_off(dy, i)];
    }
}

extern "C" int k_relu_backward(kstream s, struct kt dx, struct kt dy, struct kt y)
{
    long long total = kt_numel(dx);
    if (total == 0) return 0;
    relu_backward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(dx, dy, y);
    return k_err();
}

__global__ void bias_add_kernel(float *y, long long ld, const float *b, int n, int out)
{
    long long total = (long long)n * out;
    K_GRID_LOOP(i, total) {
        long long r = i / out; int o = (int)(i % out);
        y[r * ld + o] += b[o];
    }
}

extern "C" int k_bias_add(kstream s, float *y, long long ld, const float *b, int n, int out)
{
    long long total = (long long)n * out;
    if (total == 0) return 0;
    bias_add_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, ld, b, n, out);
    return k_err();
}

/* one thread per output unit, summing down the batch (N is small) */
__global__ void bias_grad_kernel(float *db, const float *dy, long long ld, int n, int out)
{
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= out) return;
    float acc = 0.0f;
    for (int r = 0; r < n; r++) acc += dy[r * ld + o];
    db[o] += acc;
}

extern "C" int k_bias_grad(kstream s, float *db, const float *dy, long long ld, int n, int out)
{
    if (out == 0) return 0;
    bias_grad_kernel<<<(out + K_THREADS - 1) / K_THREADS, K_THREADS, 0, (cudaStream_t)s>>>(db, dy, ld, n, out);
    return k_err();
}

__global__ void bias4_forward_kernel(struct kt y, const float *b)
{
    long long total = (long long)y.n * y.c * y.h * y.w;
    K_GRID_LOOP(i, total) {
        int c = kt_chan(y, i);
        y.p[kt_off(y, i)] += b[c];
    }
}

extern "C" int k_bias4_forward(kstream s, struct kt y, const float *b)
{
    long long total = kt_numel(y);
    if (total == 0) return 0;
    bias4_forward_kernel<<<k_blocks(total), K_THREADS, 0, (cudaStream_t)s>>>(y, b);
    return k_err();
}

/* one block per channel, fixed order: deterministic */
__global__ void bias4_backward_kernel(float *db, struct kt dy)
{
    __shared__ double sh[32];
    int c = blockIdx.x;
    long long m = (long long)dy.n * dy.h * dy.w;
    int hw = dy.h * dy.w;
    double a = 0.0;
    for (long long k = threadIdx.x; k < m; k += blockDim.x) {
        long long n; int r; k_split(k, hw, &n, &r);
        a += dy.p[n * dy.sn + (long long)c * dy.sc + (long long)(r / dy.w) * dy.sh + (long long)(r % dy.w) * dy.sw];
    }
    a = k_block_sum<double>(a, sh);
    if (threadIdx.x == 0) db[c] += (float)a;
}

extern "C" int k_bias4_backward(kstream s, float *db, struct kt dy)
{
    if (kt_numel(dy) == 0) return 0;
    bias4_backward_kernel<<<dy.c, K_THREADS, 0, (cudaStream_t)s>>>(db, dy);
    return k_err();
}
