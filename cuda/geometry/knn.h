// K nearest centers of query points through a uniform grid over the centers: a general neighbour
// search (the RBF encoding's bases, recon's point neighbours). The per-query work is shared by the
// CPU launcher (knn.cpp) and the CUDA launcher (knn.cu).
//
// Grid. `res` cells per axis of edge `cell` from `origin` (D = 2 uses res[2] = 1). A center or a
// query belongs to the cell floor((p - origin) / cell), clamped per axis to [0, res - 1], so points
// outside the grid's box fall into its boundary cells (grid_shape() sizes the box to the centers'
// bounding box, about `k` centers per cell; any origin/cell/res gives the same answer, only slower).
// Cell c (linear index (z * ry + y) * rx + x) holds the centers order[cell_start[c] .. cell_start[c+1]),
// built by counting sort (build_grid on the host; the CUDA launcher sorts on the device).
//
// Search. From the query's (clamped) cell, rings of cells at Chebyshev distance r = 0, 1, 2, ...
// are scanned; a cell is skipped once K candidates are held and its box is farther than the K-th
// (the boundary cells reach to infinity on their outer side, for the clamped points). The search
// stops when every cell was scanned, or K candidates are held and the K-th lies no farther than the
// nearest face of the scanned block that has cells beyond it (less a small margin for rounding).
// Candidates are ordered by (squared distance, center index), so ties break by the lower index and
// the result does not depend on the scan order or the launch. A NaN squared distance (a NaN
// center) counts as +inf. A query with a NaN coordinate gets indices -1 and squared distances NaN.
#pragma once

#include <cstdint>

#include "common/macros.h"

namespace f3d {
namespace knn {

constexpr int kMaxK = 32;
constexpr int kMaxDims = 3;
constexpr int64_t kMaxCells = int64_t(1) << 24;  // grid_shape() stays below this

// The grid's cells: chosen from the centers' bounding box by grid_shape().
struct GridShape {
  double cell = 1.0;
  int64_t res[kMaxDims] = {1, 1, 1};
  int64_t n_cells() const { return res[0] * res[1] * res[2]; }
};

// About `k` centers per cell of a cubic grid over the box [lo, hi] (D = 2 or 3 entries): the cell
// edge is (volume * k / M)^(1/D) over the axes longer than one cell (an axis of zero extent gets
// one cell), at most kMaxCells cells. A box of zero extent gives one cell of edge 1.
GridShape grid_shape(const double* lo, const double* hi, int n_dims, int64_t n_centers, int k);

template <typename T>
struct KnnArgs {
  int n_dims = 3;  // 2 or 3
  int k = 1;       // 1 .. kMaxK, at most n_centers
  int64_t n_centers = 0;
  int64_t n_points = 0;
  T origin[kMaxDims] = {};
  T cell = T(1);
  int64_t res[kMaxDims] = {1, 1, 1};
  const T* centers = nullptr;          // (M, D)
  const T* points = nullptr;           // (N, D)
  int64_t* cell_start = nullptr;  // (n_cells + 1,) written by the launcher (the grid)
  int64_t* order = nullptr;       // (M,) center ids, cell by cell, written by the launcher
  int64_t* indices = nullptr;           // (N, K) out: nearest first
  T* dist2 = nullptr;                   // (N, K) out: their squared distances
};

// The (clamped) cell coordinate of p along one axis.
template <typename T>
F3D_HD inline int64_t cell_coord(T p, T origin, T cell, int64_t res) {
  const T c = (p - origin) / cell;
  if (!(c >= T(0))) return 0;  // below the grid, or NaN
  if (c >= T(res - 1)) return res - 1;  // also +inf
  return static_cast<int64_t>(c);
}

template <typename T>
F3D_HD inline int64_t cell_of(const KnnArgs<T>& a, const T* p) {
  int64_t q[kMaxDims] = {0, 0, 0};
  for (int d = 0; d < a.n_dims; ++d) q[d] = cell_coord(p[d], a.origin[d], a.cell, a.res[d]);
  return (q[2] * a.res[1] + q[1]) * a.res[0] + q[0];
}

// The K best candidates so far, sorted by (dist2, index).
template <typename T>
struct Best {
  T d[kMaxK];
  int64_t i[kMaxK];
  int count = 0;
  int k = 1;

  F3D_HD static bool less(T d0, int64_t i0, T d1, int64_t i1) { return d0 < d1 || (d0 == d1 && i0 < i1); }
  F3D_HD bool full() const { return count == k; }
  F3D_HD void offer(T dist, int64_t index) {
    if (count == k && !less(dist, index, d[k - 1], i[k - 1])) return;
    int j = count < k ? count++ : k - 1;
    for (; j > 0 && less(dist, index, d[j - 1], i[j - 1]); --j) {
      d[j] = d[j - 1];
      i[j] = i[j - 1];
    }
    d[j] = dist;
    i[j] = index;
  }
};

template <typename T>
F3D_HD inline T inf_() { return T(1) / T(0); }

// Distance from p to the cell's slab along one axis; the boundary cells reach to +-infinity.
template <typename T>
F3D_HD inline T slab_gap(T p, int64_t c, T origin, T cell, int64_t res) {
  T gap = T(0);
  if (c > 0) gap = (origin + T(c) * cell) - p;
  if (c < res - 1) {
    const T above = p - (origin + T(c + 1) * cell);
    gap = above > gap ? above : gap;
  }
  return gap > T(0) ? gap : T(0);
}

template <int D, typename T>
F3D_HD inline void scan_cell(const KnnArgs<T>& a, const T* p, const int64_t* c, Best<T>& best) {
  // Cells whose box is farther than the K-th candidate cannot improve it (a small margin keeps
  // rounding of the box faces from skipping a near tie).
  if (best.full()) {
    T gap2 = T(0);
    for (int d = 0; d < D; ++d) {
      const T g = slab_gap(p[d], c[d], a.origin[d], a.cell, a.res[d]) * T(0.9999);
      gap2 += g * g;
    }
    if (gap2 > best.d[best.k - 1]) return;
  }
  const int64_t id = (c[2] * a.res[1] + c[1]) * a.res[0] + c[0];
  for (int64_t j = a.cell_start[id]; j < a.cell_start[id + 1]; ++j) {
    const int64_t m = a.order[j];
    const T* x = a.centers + m * D;
    T d2 = T(0);
    for (int d = 0; d < D; ++d) {
      const T v = p[d] - x[d];
      d2 = mul_add_rn(v, v, d2);  // unfused on CUDA: the CPU's distances, so the same neighbours and order
    }
    best.offer(d2 != d2 ? inf_<T>() : d2, m);
  }
}

F3D_HD inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
F3D_HD inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Scans the cells at Chebyshev distance exactly r from q (those inside the grid).
template <int D, typename T>
F3D_HD inline void scan_ring(const KnnArgs<T>& a, const T* p, const int64_t* q, int64_t r, Best<T>& best) {
  int64_t c[kMaxDims];
  const int64_t x0 = max64(0, q[0] - r), x1 = min64(a.res[0] - 1, q[0] + r);
  for (c[2] = max64(0, q[2] - r); c[2] <= min64(a.res[2] - 1, q[2] + r); ++c[2]) {
    const bool edge_z = D == 3 && (c[2] == q[2] - r || c[2] == q[2] + r);
    for (c[1] = max64(0, q[1] - r); c[1] <= min64(a.res[1] - 1, q[1] + r); ++c[1]) {
      if (r == 0 || edge_z || c[1] == q[1] - r || c[1] == q[1] + r) {
        for (c[0] = x0; c[0] <= x1; ++c[0]) scan_cell<D>(a, p, c, best);
      } else {  // inside the ring's span on the other axes: only its two x ends
        if ((c[0] = q[0] - r) >= 0) scan_cell<D>(a, p, c, best);
        if ((c[0] = q[0] + r) < a.res[0]) scan_cell<D>(a, p, c, best);
      }
    }
  }
}

// After rings 0..r: the distance from p to the nearest face of the scanned block that has cells
// beyond it; false when no axis has cells beyond (everything was scanned).
template <int D, typename T>
F3D_HD inline bool unscanned_bound(const KnnArgs<T>& a, const T* p, const int64_t* q, int64_t r, T& bound) {
  bool more = false;
  bound = inf_<T>();
  for (int d = 0; d < D; ++d) {
    if (q[d] - r > 0) {
      const T g = p[d] - (a.origin[d] + T(q[d] - r) * a.cell);
      bound = g < bound ? g : bound;
      more = true;
    }
    if (q[d] + r + 1 < a.res[d]) {
      const T g = (a.origin[d] + T(q[d] + r + 1) * a.cell) - p[d];
      bound = g < bound ? g : bound;
      more = true;
    }
  }
  bound = bound > T(0) ? bound * T(0.9999) : T(0);
  return more;
}

template <int D, typename T>
F3D_HD inline void knn_one(const KnnArgs<T>& a, int64_t i) {
  const T* p = a.points + i * D;
  int64_t* out_i = a.indices + i * a.k;
  T* out_d = a.dist2 + i * a.k;
  bool nan = false;
  for (int d = 0; d < D; ++d) nan |= p[d] != p[d];
  if (nan) {
    for (int j = 0; j < a.k; ++j) out_i[j] = -1, out_d[j] = T(NAN);
    return;
  }
  int64_t q[kMaxDims] = {0, 0, 0};
  for (int d = 0; d < D; ++d) q[d] = cell_coord(p[d], a.origin[d], a.cell, a.res[d]);
  Best<T> best;
  best.k = a.k;
  for (int64_t r = 0;; ++r) {
    scan_ring<D>(a, p, q, r, best);
    T bound;
    if (!unscanned_bound<D>(a, p, q, r, bound)) break;
    if (best.full() && best.d[a.k - 1] <= bound * bound) break;
  }
  for (int j = 0; j < a.k; ++j) out_i[j] = best.i[j], out_d[j] = best.d[j];
}

// Counting sort of the centers into the grid's cells, on the host: cell_start (n_cells + 1,) and
// order (M,) are written; within a cell, centers keep their index order.
template <typename T>
void build_grid(const KnnArgs<T>& a, const T* centers_host, int64_t* cell_start, int64_t* order);

// Launchers. CPU: builds the grid into a.cell_start / a.order (host memory), then searches in
// parallel. CUDA: a.centers, a.points, a.cell_start, a.order, a.indices, a.dist2 on `device`; the
// grid is built and searched on the device (one thread per query), all on `stream`, without
// synchronising it.
template <typename T>
void knn_cpu(const KnnArgs<T>& a);
template <typename T>
void knn_cuda(const KnnArgs<T>& a, void* stream, int device);

}  // namespace knn
}  // namespace f3d
