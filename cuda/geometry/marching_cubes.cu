// CUDA launchers for marching cubes: thin kernels around the per-element functions of
// marching_cubes.h, all on the caller's stream.
//
// Dense: one warp per point row. Lane l takes k = k0 + l, so loads along a row coalesce; the
// slab at k + 1 comes from the next lane by a shuffle. Within each 32-point chunk a stream's
// vertex ids are the stream's running id plus the number of lower lanes crossing (a ballot and a
// popcount), and triangle offsets a warp scan of the lanes' triangle counts: the same ids the
// CPU's serial walk gives. Sparse: one thread per cell. Scan: cub::DeviceScan over (vertices,
// triangles) pairs, its scratch taken from the stream-ordered allocator and freed on the stream.
#include <cub/device/device_scan.cuh>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common/cuda_launch.cuh"
#include "geometry/marching_cubes.h"

namespace f3d {
namespace mc {
namespace {

constexpr int kWarp = 32;
constexpr unsigned kFull = 0xffffffffu;

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string("marching cubes CUDA ") + what + ": " + cudaGetErrorString(err));
}

using cuda::blocks_for;
using cuda::DeviceGuard;
using cuda::kBlock;

// Slabs at k and k + 1 for this lane (s1 = s0 at the last k; both 0 past the row).
template <typename T>
__device__ void lane_slabs(const DenseArgs<T>& a, const RowQuad<T>& q, int64_t k, int lane, uint32_t& s0,
                           uint32_t& s1) {
  s0 = k < a.nz ? slab(q, k, a.level) : 0u;
  s1 = __shfl_down_sync(kFull, s0, 1);
  if (lane == kWarp - 1 && k + 1 < a.nz) s1 = slab(q, k + 1, a.level);
  if (k + 1 >= a.nz) s1 = s0;
}

__device__ int64_t warp_sum(int64_t v) {
  for (int d = kWarp / 2; d > 0; d /= 2) v += __shfl_down_sync(kFull, v, d);
  return v;
}

__device__ int64_t warp_inclusive_scan(int64_t v, int lane) {
  for (int d = 1; d < kWarp; d *= 2) {
    const int64_t u = __shfl_up_sync(kFull, v, d);
    if (lane >= d) v += u;
  }
  return v;
}

template <typename T>
__global__ void k_dense_count(DenseArgs<T> a) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= a.nx * a.ny) return;  // whole warps leave together
  const RowQuad<T> q = row_quad(a, r);
  int64_t n[4] = {0, 0, 0, 0};
  for (int64_t k0 = 0; k0 < a.nz; k0 += kWarp) {
    const int64_t k = k0 + lane;
    uint32_t s0, s1;
    lane_slabs(a, q, k, lane, s0, s1);
    if (k >= a.nz) continue;
    const uint32_t f = stream_flags(s0, s1);
    n[0] += f & 1u;
    n[1] += (f >> kY0) & 1u;
    n[2] += (f >> kZ0) & 1u;
    if (q.cells && k + 1 < a.nz) n[3] += tri_count(s0 | (s1 << 4));
  }
  for (int c = 0; c < 4; ++c) {
    const int64_t total = warp_sum(n[c]);
    if (lane == 0) a.counts[kCountCols * r + c] = total;
  }
}

template <typename T>
__global__ void k_dense_emit(DenseArgs<T> a) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= a.nx * a.ny || row_is_empty(a, r)) return;  // whole warps leave together
  const RowQuad<T> q = row_quad(a, r);
  int64_t cur[kStreams];
  for (int s = 0; s < kStreams; ++s) cur[s] = a.counts[kCountCols * q.id[stream_row(s)] + stream_col(s)];
  int64_t tri = a.counts[kCountCols * r + kTriCol];
  const unsigned lower = (1u << lane) - 1u;
  for (int64_t k0 = 0; k0 < a.nz; k0 += kWarp) {
    const int64_t k = k0 + lane;
    uint32_t s0, s1;
    lane_slabs(a, q, k, lane, s0, s1);
    const uint32_t f = k < a.nz ? stream_flags(s0, s1) : 0u;
    int64_t mine[kStreams];
    for (int s = 0; s < kStreams; ++s) {
      const unsigned crossing = __ballot_sync(kFull, (f >> s) & 1u);
      mine[s] = cur[s] + __popc(crossing & lower);
      cur[s] += __popc(crossing);
    }
    const uint32_t cube = (q.cells && k + 1 < a.nz) ? (s0 | (s1 << 4)) : 0u;
    const int64_t nt = tri_count(cube);
    const int64_t inclusive = warp_inclusive_scan(nt, lane);
    if (k < a.nz) write_row_vertices(a, q, k, f, mine);
    if (nt > 0) write_cell_faces(a, cube, tri + inclusive - nt, mine, f);
    tri += __shfl_sync(kFull, inclusive, kWarp - 1);
  }
}

template <typename T>
__global__ void k_sparse_count(SparseArgs<T> a) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < a.n_cells) sparse_count_one(a, m);
}

template <typename T>
__global__ void k_sparse_emit(SparseArgs<T> a) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m < a.n_cells) sparse_emit_one(a, m);
}

struct Pair {
  int64_t v, t;
};

struct PairSum {
  __device__ Pair operator()(const Pair& x, const Pair& y) const { return Pair{x.v + y.v, x.t + y.t}; }
};

__global__ void k_pairs(const int64_t* counts, int64_t n, int n_vert_cols, Pair* pairs) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n) return;
  const int64_t* row = counts + kCountCols * r;
  int64_t v = 0;
  for (int c = 0; c < n_vert_cols; ++c) v += row[c];
  pairs[r] = Pair{v, row[kTriCol]};
}

// pairs: exclusive sums of the rows; writes the offsets and, from the last row, the totals.
__global__ void k_offsets(int64_t* counts, int64_t n, int n_vert_cols, const Pair* pairs, Pair* totals) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= n) return;
  int64_t* row = counts + kCountCols * r;
  int64_t v = pairs[r].v;
  for (int c = 0; c < n_vert_cols; ++c) {
    const int64_t count = row[c];
    row[c] = v;
    v += count;
  }
  const int64_t t = pairs[r].t + row[kTriCol];
  row[kTriCol] = pairs[r].t;
  if (r == n - 1) *totals = Pair{v, t};
}

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

template <typename T>
void dense_count_cuda(const DenseArgs<T>& a, void* stream, int device) {
  const DeviceGuard guard(device);
  const int64_t rows = a.nx * a.ny;
  if (rows == 0) return;
  k_dense_count<T><<<blocks_for(rows * kWarp), kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  check(cudaGetLastError(), "launch");
}

template <typename T>
void dense_emit_cuda(const DenseArgs<T>& a, void* stream, int device) {
  const DeviceGuard guard(device);
  const int64_t rows = a.nx * a.ny;
  if (rows == 0 || (a.n_verts == 0 && a.n_faces == 0)) return;
  k_dense_emit<T><<<blocks_for(rows * kWarp), kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  check(cudaGetLastError(), "launch");
}

template <typename T>
void sparse_count_cuda(const SparseArgs<T>& a, void* stream, int device) {
  const DeviceGuard guard(device);
  if (a.n_cells == 0) return;
  k_sparse_count<T><<<blocks_for(a.n_cells), kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  check(cudaGetLastError(), "launch");
}

template <typename T>
void sparse_emit_cuda(const SparseArgs<T>& a, void* stream, int device) {
  const DeviceGuard guard(device);
  if (a.n_cells == 0 || (a.n_verts == 0 && a.n_faces == 0)) return;
  k_sparse_emit<T><<<blocks_for(a.n_cells), kBlock, 0, static_cast<cudaStream_t>(stream)>>>(a);
  check(cudaGetLastError(), "launch");
}

Totals scan_cuda(int64_t* counts, int64_t n, int n_vert_cols, void* stream, int device) {
  const DeviceGuard guard(device);
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (n == 0) return Totals{};
  size_t temp_bytes = 0;
  check(cub::DeviceScan::ExclusiveScan(nullptr, temp_bytes, static_cast<Pair*>(nullptr), static_cast<Pair*>(nullptr),
                                       PairSum{}, Pair{0, 0}, n, s),
        "scan size");
  const size_t pair_bytes = align_up(sizeof(Pair) * size_t(n));
  char* scratch = nullptr;
  check(cudaMallocAsync(reinterpret_cast<void**>(&scratch), pair_bytes + align_up(sizeof(Pair)) + temp_bytes, s),
        "cudaMallocAsync");
  Pair* pairs = reinterpret_cast<Pair*>(scratch);
  Pair* totals = reinterpret_cast<Pair*>(scratch + pair_bytes);
  void* temp = scratch + pair_bytes + align_up(sizeof(Pair));
  Pair host{0, 0};
  cudaError_t err = cudaSuccess;
  k_pairs<<<blocks_for(n), kBlock, 0, s>>>(counts, n, n_vert_cols, pairs);
  err = cudaGetLastError();
  if (err == cudaSuccess)
    err = cub::DeviceScan::ExclusiveScan(temp, temp_bytes, pairs, pairs, PairSum{}, Pair{0, 0}, n, s);
  if (err == cudaSuccess) {
    k_offsets<<<blocks_for(n), kBlock, 0, s>>>(counts, n, n_vert_cols, pairs, totals);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpyAsync(&host, totals, sizeof(Pair), cudaMemcpyDeviceToHost, s);
  const cudaError_t freed = cudaFreeAsync(scratch, s);
  if (err == cudaSuccess) err = cudaStreamSynchronize(s);
  check(err, "scan");
  check(freed, "cudaFreeAsync");
  return Totals{host.v, host.t};
}

template void dense_count_cuda<float>(const DenseArgs<float>&, void*, int);
template void dense_count_cuda<double>(const DenseArgs<double>&, void*, int);
template void dense_emit_cuda<float>(const DenseArgs<float>&, void*, int);
template void dense_emit_cuda<double>(const DenseArgs<double>&, void*, int);
template void sparse_count_cuda<float>(const SparseArgs<float>&, void*, int);
template void sparse_count_cuda<double>(const SparseArgs<double>&, void*, int);
template void sparse_emit_cuda<float>(const SparseArgs<float>&, void*, int);
template void sparse_emit_cuda<double>(const SparseArgs<double>&, void*, int);

}  // namespace mc
}  // namespace f3d
