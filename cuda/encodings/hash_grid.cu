// CUDA launchers for the hash-grid kernels: thin __global__ wrappers around the per-element
// functions in hash_grid.h. One thread per (point, level) where the work is per level (threads
// of a warp write neighbouring output rows), one per point where levels are summed; table
// gradients use atomicAdd.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common/cuda_launch.cuh"
#include "encodings/hash_grid.h"

namespace f3d {
namespace hashgrid {
namespace {

using cuda::AtomicAdd;
using cuda::shared_args;

template <int D, int F>
__global__ void k_forward(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int L = a.layout.n_levels;
  if (t >= a.n_points * L) return;
  forward_one<D, F>(a, t / L, int(t % L));
}

template <int D, int F>
__global__ void k_backward_x(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.n_points) return;
  float g[D] = {};
  for (int l = 0; l < a.layout.n_levels; ++l) backward_x_level<D, F>(a, i, l, g);
  for (int d = 0; d < D; ++d) a.dx[i * D + d] = g[d];
}

template <int D, int F>
__global__ void k_backward_table(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int L = a.layout.n_levels;
  if (t >= a.n_points * L) return;
  backward_table_one<D, F>(a, t / L, int(t % L), AtomicAdd{});
}

template <int D, int F>
__global__ void k_backward_backward_point(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.n_points) return;
  float g[D] = {};
  for (int l = 0; l < a.layout.n_levels; ++l) backward_backward_level<D, F>(a, i, l, g);
  if (a.dx)
    for (int d = 0; d < D; ++d) a.dx[i * D + d] = g[d];
}

template <int D, int F>
__global__ void k_backward_backward_table(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int L = a.layout.n_levels;
  if (t >= a.n_points * L) return;
  backward_backward_table_one<D, F>(a, t / L, int(t % L), AtomicAdd{});
}

constexpr int kBlock = 256;

unsigned blocks_for(int64_t n) { return unsigned((n + kBlock - 1) / kBlock); }

template <int D, int F>
void run(Op op, const Args<float>& a, cudaStream_t s) {
  const int64_t per_level = a.n_points * a.layout.n_levels;
  switch (op) {
    case Op::Forward: k_forward<D, F><<<blocks_for(per_level), kBlock, 0, s>>>(a); break;
    case Op::BackwardX: k_backward_x<D, F><<<blocks_for(a.n_points), kBlock, 0, s>>>(a); break;
    case Op::BackwardTable: k_backward_table<D, F><<<blocks_for(per_level), kBlock, 0, s>>>(a); break;
    case Op::BackwardBackwardPoint:
      k_backward_backward_point<D, F><<<blocks_for(a.n_points), kBlock, 0, s>>>(a);
      break;
    case Op::BackwardBackwardTable:
      k_backward_backward_table<D, F><<<blocks_for(per_level), kBlock, 0, s>>>(a);
      break;
  }
}

}  // namespace

void launch_cuda(Op op, const Args<float>& a, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (op == Op::BackwardTable || op == Op::BackwardBackwardTable)  // the table gradient is overwritten
    cuda::check(cudaMemsetAsync(a.dtable, 0, size_t(a.layout.n_entries) * a.layout.n_features * sizeof(float), s),
                "hash grid CUDA cudaMemsetAsync");
  if (a.n_points == 0) return;
  const bool ok = dispatch_dims(a.layout.n_dims, a.layout.n_features, [&](auto dc, auto fc) {
    run<decltype(dc)::value, decltype(fc)::value>(op, a, s);
  });
  if (!ok) throw std::invalid_argument("hash grid: unsupported n_dims/n_features");
  cuda::check(cudaGetLastError(), "hash grid CUDA launch");
}

}  // namespace hashgrid
}  // namespace f3d
