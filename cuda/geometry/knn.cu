// CUDA launcher of the neighbour search, all on the caller's stream with no host round trip:
// the grid is built on the device by the same counting sort as build_grid on the host (count the
// centers per cell with atomics, an exclusive scan for the cells' starts, a scatter through
// per-cell cursors), then one thread per query runs knn_one from knn.h. The scatter's order
// within a cell depends on the atomics, but the search orders candidates by (distance, index), so
// the result does not.
#include <cuda_runtime.h>

#include <cub/device/device_scan.cuh>

#include "common/cuda_launch.cuh"
#include "geometry/knn.h"

namespace f3d {
namespace knn {
namespace {

using Count = unsigned long long;  // atomicAdd's 64-bit type; counts are >= 0 and fit int64_t
static_assert(sizeof(Count) == sizeof(int64_t), "cell_start is int64_t");

template <int D, typename T>
__global__ void k_knn(KnnArgs<T> a) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < a.n_points) knn_one<D>(a, i);
}

template <typename T>
__global__ void k_count(KnnArgs<T> a, Count* counts) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < a.n_centers) atomicAdd(counts + cell_of(a, a.centers + m * a.n_dims), Count(1));
}

template <typename T>
__global__ void k_scatter(KnnArgs<T> a, Count* cursor) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < a.n_centers) a.order[atomicAdd(cursor + cell_of(a, a.centers + m * a.n_dims), Count(1))] = m;
}

// cell_start (n_cells + 1) and order (M) from the centers, on stream s. Scratch: the counts,
// which become the cursors, and cub's scan storage, from the stream-ordered allocator.
template <typename T>
void build_grid_on_device(const KnnArgs<T>& a, cudaStream_t s) {
  const int64_t n = a.res[0] * a.res[1] * a.res[2] + 1;  // <= kMaxCells + 1: an int for cub
  Count* start = reinterpret_cast<Count*>(a.cell_start);
  size_t scan_bytes = 0;
  cuda::check(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, start, start, int(n), s), "knn: scan size");
  const size_t scan_space = (scan_bytes + 255) / 256 * 256;  // cub's storage first, where the allocation is aligned
  cuda::StreamScratch scratch(scan_space + n * sizeof(Count), s, "knn: scratch allocation");
  void* scan_tmp = scratch.get();
  Count* counts = reinterpret_cast<Count*>(static_cast<char*>(scratch.get()) + scan_space);
  cuda::check(cudaMemsetAsync(counts, 0, n * sizeof(Count), s), "knn: zeroing the counts");
  if (a.n_centers > 0) k_count<<<cuda::blocks_for(a.n_centers), cuda::kBlock, 0, s>>>(a, counts);
  cuda::check(cudaGetLastError(), "knn: count launch");
  cuda::check(cub::DeviceScan::ExclusiveSum(scan_tmp, scan_bytes, counts, start, int(n), s), "knn: scan");
  cuda::check(cudaMemcpyAsync(counts, start, n * sizeof(Count), cudaMemcpyDeviceToDevice, s),
              "knn: copying the cell starts to the cursors");
  if (a.n_centers > 0) k_scatter<<<cuda::blocks_for(a.n_centers), cuda::kBlock, 0, s>>>(a, counts);
  cuda::check(cudaGetLastError(), "knn: scatter launch");
  scratch.free("knn: freeing the scratch");
}

}  // namespace

template <typename T>
void knn_cuda(const KnnArgs<T>& a, void* stream, int device) {
  const cuda::DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  build_grid_on_device(a, s);
  if (a.n_points == 0) return;
  if (a.n_dims == 2) k_knn<2><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  else k_knn<3><<<cuda::blocks_for(a.n_points), cuda::kBlock, 0, s>>>(a);
  cuda::check(cudaGetLastError(), "knn launch");
}

template void knn_cuda<float>(const KnnArgs<float>&, void*, int);
template void knn_cuda<double>(const KnnArgs<double>&, void*, int);

}  // namespace knn
}  // namespace f3d
