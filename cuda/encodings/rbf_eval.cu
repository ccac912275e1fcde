// CUDA launchers of the fused RBF evaluation: one thread per point runs forward_one / backward_one
// from rbf_eval.h (backward2_one from rbf_eval_backward2.h) on the caller's stream; the parameter
// gradients are zeroed on the stream, then scattered with atomics (their order, and so the float
// rounding of the sums, varies by run).
#include <cuda_runtime.h>

#include "common/cuda_launch.cuh"
#include "encodings/rbf_eval.h"
#include "encodings/rbf_eval_backward2.h"

namespace f3d {
namespace rbf {
namespace {

template <int D, typename T>
__global__ void k_forward(EvalArgs<T> a) {
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n < a.n_points) forward_one<D>(a, n);
}

template <int D, typename T>
__global__ void k_backward(EvalArgs<T> a) {
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n < a.n_points) backward_one<D>(a, n, cuda::AtomicAdd{});
}

template <int D, typename T>
__global__ void k_backward2(Backward2Args<T> b) {
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n < b.eval.n_points) backward2_one<D>(b, n, cuda::AtomicAdd{});
}

__global__ void k_count_out_of_range(const int64_t* idx, int64_t n, int64_t m, unsigned long long* bad) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n && (idx[i] < 0 || idx[i] >= m)) atomicAdd(bad, 1ull);
}

template <typename T>
void zero(T* p, int64_t count, cudaStream_t s) {
  if (p && count > 0) cuda::check(cudaMemsetAsync(p, 0, size_t(count) * sizeof(T), s), "rbf eval: zeroing gradients");
}

// The parameter gradients the backward passes scatter into with atomics, zeroed first.
template <typename T>
void zero_parameter_grads(const EvalArgs<T>& a, cudaStream_t s) {
  zero(a.dcenters, a.n_bases * a.n_dims, s);
  zero(a.dshapes, a.n_bases * shape_size(a.shape, a.n_dims), s);
  zero(a.dweights, a.n_bases * a.n_features, s);
}

}  // namespace

int64_t count_out_of_range_cuda(const int64_t* idx, int64_t n, int64_t m, void* stream, int device) {
  if (n == 0) return 0;
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  unsigned long long host = 0;
  cuda::StreamScratch scratch(sizeof(host), s, "rbf eval: cudaMallocAsync");
  auto* bad = static_cast<unsigned long long*>(scratch.get());
  cuda::check(cudaMemsetAsync(bad, 0, sizeof(host), s), "rbf eval: cudaMemsetAsync");
  k_count_out_of_range<<<cuda::blocks_for(n), cuda::kBlock, 0, s>>>(idx, n, m, bad);
  cuda::check(cudaGetLastError(), "rbf eval index check launch");
  cuda::check(cudaMemcpyAsync(&host, bad, sizeof(host), cudaMemcpyDeviceToHost, s), "rbf eval: copying the count");
  scratch.free("rbf eval: cudaFreeAsync");
  cuda::check(cudaStreamSynchronize(s), "rbf eval: cudaStreamSynchronize");
  return int64_t(host);
}

template <typename T>
void eval_forward_cuda(const EvalArgs<T>& a, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (a.n_points == 0) return;
  if (a.n_dims == 2) k_forward<2><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  else k_forward<3><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  cuda::check(cudaGetLastError(), "rbf eval forward launch");
}

template <typename T>
void eval_backward_cuda(const EvalArgs<T>& a, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  zero_parameter_grads(a, s);
  if (a.n_points == 0) return;
  if (a.n_dims == 2) k_backward<2><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  else k_backward<3><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  cuda::check(cudaGetLastError(), "rbf eval backward launch");
}

template <typename T>
void eval_backward2_cuda(const Backward2Args<T>& b, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  const EvalArgs<T>& a = b.eval;
  zero_parameter_grads(a, s);
  if (a.n_points == 0) return;
  if (a.n_dims == 2) k_backward2<2><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(b);
  else k_backward2<3><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(b);
  cuda::check(cudaGetLastError(), "rbf eval double backward launch");
}

template void eval_forward_cuda<float>(const EvalArgs<float>&, void*, int);
template void eval_forward_cuda<double>(const EvalArgs<double>&, void*, int);
template void eval_backward_cuda<float>(const EvalArgs<float>&, void*, int);
template void eval_backward_cuda<double>(const EvalArgs<double>&, void*, int);
template void eval_backward2_cuda<float>(const Backward2Args<float>&, void*, int);
template void eval_backward2_cuda<double>(const Backward2Args<double>&, void*, int);

}  // namespace rbf
}  // namespace f3d
