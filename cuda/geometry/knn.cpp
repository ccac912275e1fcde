// CPU side of the neighbour search: the grid's shape, its counting sort (the CUDA launcher
// runs the same sort on the device) and the parallel-for over queries. Every query writes
// only its own row, so the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/parallel.h"
#include "geometry/knn.h"

namespace f3d {
namespace knn {

namespace {

constexpr int64_t kQueryGrain = 256;

// The cell edge over the axes longer than one cell: axes shorter than the edge get one cell and
// leave the volume, which makes the edge grow; repeat until no axis drops out.
double cell_edge(const double* ext, int n_dims, double target_cells) {
  bool active[kMaxDims] = {};
  for (int d = 0; d < n_dims; ++d) active[d] = ext[d] > 0.0;
  double cell = 0.0;
  for (int round = 0; round <= n_dims; ++round) {
    double log_volume = 0.0;
    int n_active = 0;
    for (int d = 0; d < n_dims; ++d)
      if (active[d]) log_volume += std::log(ext[d]), ++n_active;
    if (n_active == 0) return 1.0;
    cell = std::exp((log_volume - std::log(target_cells)) / n_active);
    bool dropped = false;
    for (int d = 0; d < n_dims; ++d)
      if (active[d] && ext[d] < cell) active[d] = false, dropped = true;
    if (!dropped) break;
  }
  return cell;
}

}  // namespace

GridShape grid_shape(const double* lo, const double* hi, int n_dims, int64_t n_centers, int k) {
  double ext[kMaxDims] = {0.0, 0.0, 0.0};
  for (int d = 0; d < n_dims; ++d) ext[d] = std::max(0.0, hi[d] - lo[d]);
  const double target = std::max(1.0, double(n_centers) / std::max(1, k));
  GridShape g;
  g.cell = cell_edge(ext, n_dims, target);
  if (!(g.cell > 0.0) || !std::isfinite(g.cell)) g.cell = 1.0;
  for (;;) {
    for (int d = 0; d < kMaxDims; ++d)
      g.res[d] = d < n_dims ? std::max<int64_t>(1, int64_t(std::ceil(std::min(ext[d] / g.cell, 1e7)))) : 1;
    if (g.n_cells() <= kMaxCells) return g;
    g.cell *= 1.25;
  }
}

template <typename T>
void build_grid(const KnnArgs<T>& a, const T* centers_host, int64_t* cell_start, int64_t* order) {
  const int64_t n_cells = a.res[0] * a.res[1] * a.res[2];
  std::fill(cell_start, cell_start + n_cells + 1, int64_t(0));
  for (int64_t m = 0; m < a.n_centers; ++m) ++cell_start[cell_of(a, centers_host + m * a.n_dims)];
  int64_t sum = 0;  // exclusive prefix: cell_start[c] = first slot of cell c
  for (int64_t c = 0; c <= n_cells; ++c) {
    const int64_t count = cell_start[c];
    cell_start[c] = sum;
    sum += count;
  }
  // Scatter, advancing each cell's start to its end (= the next cell's start); then shift back.
  for (int64_t m = 0; m < a.n_centers; ++m) order[cell_start[cell_of(a, centers_host + m * a.n_dims)]++] = m;
  for (int64_t c = n_cells; c > 0; --c) cell_start[c] = cell_start[c - 1];
  cell_start[0] = 0;
}

template <typename T>
void knn_cpu(const KnnArgs<T>& a) {
  build_grid(a, a.centers, a.cell_start, a.order);
  parallel_for(a.n_points, kQueryGrain, [&](int64_t b, int64_t e) {
    if (a.n_dims == 2)
      for (int64_t i = b; i < e; ++i) knn_one<2>(a, i);
    else
      for (int64_t i = b; i < e; ++i) knn_one<3>(a, i);
  });
}

template void build_grid<float>(const KnnArgs<float>&, const float*, int64_t*, int64_t*);
template void build_grid<double>(const KnnArgs<double>&, const double*, int64_t*, int64_t*);
template void knn_cpu<float>(const KnnArgs<float>&);
template void knn_cpu<double>(const KnnArgs<double>&);

#ifndef FIELDS3D_WITH_CUDA
// A CPU-only build still links the CUDA entry point; it refuses (the binding checks first).
template <typename T>
void knn_cuda(const KnnArgs<T>&, void*, int) {
  throw std::runtime_error("fields3d._core was built without CUDA");
}
template void knn_cuda<float>(const KnnArgs<float>&, void*, int);
template void knn_cuda<double>(const KnnArgs<double>&, void*, int);
#endif

}  // namespace knn
}  // namespace f3d
