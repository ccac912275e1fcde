// CUDA launchers for ray marching: one thread per ray around the per-ray functions of march.h,
// on the caller's stream.
#include "common/cuda_launch.cuh"
#include "render/march.h"

namespace f3d {
namespace march {
namespace {

template <typename T>
__global__ void k_count(Args<T> a) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < a.n_rays) count_one(a, r);
}

template <typename T>
__global__ void k_emit(Args<T> a) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < a.n_rays) emit_one(a, r);
}

}  // namespace

template <typename T>
void count_cuda(const Args<T>& a, void* stream, int device) {
  if (a.n_rays == 0) return;
  cuda::DeviceGuard guard(device);
  k_count<<<cuda::blocks_for(a.n_rays), cuda::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  cuda::check(cudaGetLastError(), "ray marching (count) launch");
}

template <typename T>
void emit_cuda(const Args<T>& a, void* stream, int device) {
  if (a.n_rays == 0) return;
  cuda::DeviceGuard guard(device);
  k_emit<<<cuda::blocks_for(a.n_rays), cuda::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  cuda::check(cudaGetLastError(), "ray marching (emit) launch");
}

template void count_cuda<float>(const Args<float>&, void*, int);
template void count_cuda<double>(const Args<double>&, void*, int);
template void emit_cuda<float>(const Args<float>&, void*, int);
template void emit_cuda<double>(const Args<double>&, void*, int);

}  // namespace march
}  // namespace f3d
