// CUDA launchers for compositing: one thread per ray around the per-ray functions of composite.h,
// on the caller's stream.
#include "common/cuda_launch.cuh"
#include "render/composite.h"

namespace f3d {
namespace composite {
namespace {

template <typename T>
__global__ void k_forward(Args<T> a) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < a.n_rays) forward_ray(a, r);
}

template <typename T>
__global__ void k_backward(Args<T> a) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < a.n_rays) backward_ray(a, r);
}

}  // namespace

template <typename T>
void forward_cuda(const Args<T>& a, void* stream, int device) {
  if (a.n_rays == 0) return;
  cuda::DeviceGuard guard(device);
  k_forward<<<cuda::blocks_for(a.n_rays), cuda::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  cuda::check(cudaGetLastError(), "compositing forward launch");
}

template <typename T>
void backward_cuda(const Args<T>& a, void* stream, int device) {
  if (a.n_rays == 0) return;
  cuda::DeviceGuard guard(device);
  k_backward<<<cuda::blocks_for(a.n_rays), cuda::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  cuda::check(cudaGetLastError(), "compositing backward launch");
}

template void forward_cuda<float>(const Args<float>&, void*, int);
template void forward_cuda<double>(const Args<double>&, void*, int);
template void backward_cuda<float>(const Args<float>&, void*, int);
template void backward_cuda<double>(const Args<double>&, void*, int);

}  // namespace composite
}  // namespace f3d
