// CUDA launchers for the lattice encodings of lattice.h (hash grid, dense grid, tri-plane, simplex
// grid): thin __global__ wrappers around its per-element functions (one thread per point and level
// where the work is per level, one per point where levels are summed; table gradients by atomicAdd).
#include <cuda_runtime.h>

#include <stdexcept>

#include "common/cuda_launch.cuh"
#include "encodings/lattice.h"

namespace f3d {
namespace lattice {
namespace {

using cuda::AtomicAdd;
using cuda::shared_args;

__device__ inline int64_t thread_index() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }

template <class S, int F>
__global__ void k_forward(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t t = thread_index();
  const int L = a.layout.n_levels;
  if (t >= a.n_points * L) return;
  forward_one<S, F>(a, t / L, int(t % L));
}

template <class S, int F>
__global__ void k_backward_x(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t i = thread_index();
  if (i >= a.n_points) return;
  float g[S::kDims] = {};
  for (int l = 0; l < a.layout.n_levels; ++l) backward_x_level<S, F>(a, i, l, g);
  for (int d = 0; d < S::kDims; ++d) a.dx[i * S::kDims + d] = g[d];
}

template <class S, int F>
__global__ void k_backward_table(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t t = thread_index();
  const int L = a.layout.n_levels;
  if (t >= a.n_points * L) return;
  backward_table_one<S, F>(a, t / L, int(t % L), AtomicAdd{});
}

template <class S, int F>
__global__ void k_backward_backward_point(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t i = thread_index();
  if (i >= a.n_points) return;
  float g[S::kDims] = {};
  for (int l = 0; l < a.layout.n_levels; ++l) backward_backward_level<S, F>(a, i, l, g);
  if (a.dx)
    for (int d = 0; d < S::kDims; ++d) a.dx[i * S::kDims + d] = g[d];
}

template <class S, int F>
__global__ void k_backward_backward_table(Args<float> args) {
  const Args<float>& a = shared_args(args);
  const int64_t t = thread_index();
  const int L = a.layout.n_levels;
  if (t >= a.n_points * L) return;
  backward_backward_table_one<S, F>(a, t / L, int(t % L), AtomicAdd{});
}

template <class S, int F>
void run(Op op, const Args<float>& a, cudaStream_t s) {
  using cuda::blocks_for;
  using cuda::kBlock;
  const int64_t per_level = a.n_points * a.layout.n_levels;
  switch (op) {
    case Op::Forward: k_forward<S, F><<<blocks_for(per_level), kBlock, 0, s>>>(a); break;
    case Op::BackwardX: k_backward_x<S, F><<<blocks_for(a.n_points), kBlock, 0, s>>>(a); break;
    case Op::BackwardTable: k_backward_table<S, F><<<blocks_for(per_level), kBlock, 0, s>>>(a); break;
    case Op::BackwardBackwardPoint:
      k_backward_backward_point<S, F><<<blocks_for(a.n_points), kBlock, 0, s>>>(a);
      break;
    case Op::BackwardBackwardTable:
      k_backward_backward_table<S, F><<<blocks_for(per_level), kBlock, 0, s>>>(a);
      break;
  }
}

}  // namespace

void launch_cuda(Op op, const Args<float>& a, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (op == Op::BackwardTable || op == Op::BackwardBackwardTable)  // the table gradient is overwritten
    cuda::check(cudaMemsetAsync(a.dtable, 0, size_t(a.layout.n_entries) * a.layout.n_features * sizeof(float), s),
                "lattice encoding cudaMemsetAsync");
  if (a.n_points == 0) return;
  const bool ok = dispatch(a.layout, [&](auto stencil, auto fc) { run<decltype(stencil), decltype(fc)::value>(op, a, s); });
  if (!ok) throw std::invalid_argument("lattice encoding: unsupported kind/n_dims/n_features");
  cuda::check(cudaGetLastError(), "lattice encoding launch");
}

}  // namespace lattice
}  // namespace f3d
