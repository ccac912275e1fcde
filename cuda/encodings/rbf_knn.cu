// CUDA launcher of the RBF neighbour search: the grid is built on the host (the centers are
// copied there, counting-sorted by build_grid, and the grid copied back, synchronising the
// stream), then one thread per query runs knn_one from rbf_knn.h on the caller's stream. Building
// on the device (a count, a scan and a scatter) is the follow-up for very large center sets.
#include <cuda_runtime.h>

#include <vector>

#include "common/cuda_launch.cuh"
#include "encodings/rbf_knn.h"

namespace f3d {
namespace rbf {
namespace {

template <int D, typename T>
__global__ void k_knn(KnnArgs<T> a) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < a.n_points) knn_one<D>(a, i);
}

template <typename T>
void build_grid_from_device(const KnnArgs<T>& a, cudaStream_t s) {
  const int64_t n_cells = a.res[0] * a.res[1] * a.res[2];
  std::vector<T> centers(size_t(a.n_centers) * a.n_dims);
  std::vector<int64_t> cell_start(size_t(n_cells + 1)), order(size_t(a.n_centers));
  cuda::check(cudaMemcpyAsync(centers.data(), a.centers, centers.size() * sizeof(T), cudaMemcpyDeviceToHost, s),
              "rbf knn: copying the centers to the host");
  cuda::check(cudaStreamSynchronize(s), "rbf knn: cudaStreamSynchronize");
  build_grid(a, centers.data(), cell_start.data(), order.data());
  cuda::check(cudaMemcpyAsync(a.cell_start, cell_start.data(), cell_start.size() * sizeof(int64_t),
                              cudaMemcpyHostToDevice, s),
              "rbf knn: copying the grid to the device");
  cuda::check(cudaMemcpyAsync(a.order, order.data(), order.size() * sizeof(int64_t), cudaMemcpyHostToDevice, s),
              "rbf knn: copying the grid to the device");
  cuda::check(cudaStreamSynchronize(s), "rbf knn: cudaStreamSynchronize");  // before the host vectors go
}

}  // namespace

template <typename T>
void knn_cuda(const KnnArgs<T>& a, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  build_grid_from_device(a, s);
  if (a.n_points == 0) return;
  if (a.n_dims == 2) k_knn<2><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  else k_knn<3><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  cuda::check(cudaGetLastError(), "rbf knn launch");
}

template void knn_cuda<float>(const KnnArgs<float>&, void*, int);
template void knn_cuda<double>(const KnnArgs<double>&, void*, int);

}  // namespace rbf
}  // namespace f3d
