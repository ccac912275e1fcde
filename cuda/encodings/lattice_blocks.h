// The CPU launcher's blocked passes over the lattice encodings (lattice.h): points are taken in
// blocks of kBlock at one level, in two loops. The first visits each point's stencil and records
// the rows it reads with their weights (and dw/dx where the pass needs it), touching no table; it
// also prefetches each row. The second reads (forward, backward to x) or adds into (backward to
// the table) the recorded rows in a tight loop whose loads depend on nothing but the record.
//
// Why: a hashed level's table (4 MB at T = 2^19) lives in L3, and each point reads 2^D rows at
// random in it. Interleaved with the ~100 instructions of the stencil, only the rows of the next
// point or two fit the core's out-of-order window, so few misses were in flight at a time; the
// prefetches of a block's first loop put all of its rows in flight at once.
//
// The arithmetic is the per-point functions' (forward_one, backward_x_level, backward_table_one)
// in the same order, so results are bitwise those of the unblocked loops (and of the CUDA
// launcher's per-point kernels, which keep those functions).
#pragma once

#include <algorithm>
#include <cstdint>

#include "encodings/lattice.h"

namespace f3d {
namespace lattice {

// Points per block: the first loop's record (2^D rows and weights per point, 32 points: 6 KB for
// the 3D hash grid, 15 KB with dw) stays in L1 until the second loop reads it.
constexpr int kBlock = 32;

// What a pass needs of each vertex beyond its row and weight.
enum class Need { Weight, Grad, GradHess };

template <class S, typename T, Need kNeed>
struct BlockRecord {
  static constexpr int D = S::kDims, V = S::kVertices;
  static constexpr bool kGrad = kNeed != Need::Weight, kHess = kNeed == Need::GradHess;
  int64_t row[kBlock * V];
  T w[kBlock * V];
  T dw[kGrad ? kBlock * V * D : 1];
  T hu[kHess ? kBlock * V * D : 1];
  bool nan[kBlock];

  // Visits the stencils of the points [b, min(e, b + kBlock)) at `level` (with u = us[i], the
  // point's ddx, where the pass wants hu), prefetching their rows of `table` and `table2` (either
  // may be null); returns the number of points.
  int fill(const Layout& L, const T* xs, const T* us, int64_t b, int64_t e, int level, int nf,
           const T* table, const T* table2) {
    const int count = int(std::min<int64_t>(kBlock, e - b));
    for (int p = 0; p < count; ++p) {
      const T* x = xs + (b + p) * D;
      nan[p] = has_nan(x, D);
      if (nan[p]) continue;
      T u_reg[D];  // in registers, as backward_backward_level keeps it
      if (kHess && us)
        for (int d = 0; d < D; ++d) u_reg[d] = us[(b + p) * D + d];
      const T* u = kHess && us ? u_reg : nullptr;
      int k = p * V;
      S::visit(L, level, x, u, [&](const Vertex<D, T>& v) {
        row[k] = v.row;
        w[k] = v.w;
        if constexpr (kGrad)
          for (int d = 0; d < D; ++d) dw[k * D + d] = v.dw[d];
        if constexpr (kHess)
          for (int d = 0; d < D; ++d) hu[k * D + d] = v.hu[d];
        if (table) __builtin_prefetch(table + v.row * nf);
        if (table2) __builtin_prefetch(table2 + v.row * nf);
        ++k;
      });
    }
    return count;
  }
};

// forward_one over the points [b, e) at `level`.
template <class S, int F, typename T>
void forward_block(const Args<T>& a, int64_t b, int64_t e, int level) {
  constexpr int V = S::kVertices;
  const int nf = n_feat<F>(a.layout);
  BlockRecord<S, T, Need::Weight> r;
  for (int64_t start = b; start < e; start += kBlock) {
    const int count = r.fill(a.layout, a.x, nullptr, start, e, level, nf, a.table, nullptr);
    for (int p = 0; p < count; ++p) {
      T acc[kBuf<F>];
      for (int f = 0; f < nf; ++f) acc[f] = r.nan[p] ? T(NAN) : T(0);
      if (!r.nan[p]) {
        F3D_UNROLL
        for (int v = 0; v < V; ++v) {  // constant bounds: unrolled
          const int k = p * V + v;
          const T* row = a.table + r.row[k] * nf;
          for (int f = 0; f < nf; ++f) acc[f] += r.w[k] * row[f];
        }
      }
      T* y = a.y + feature_offset<F>(a.layout, start + p, level);
      for (int f = 0; f < nf; ++f) y[f] = acc[f];
    }
  }
}

// backward_x_level over the points [b, e) at `level`: dx rows of those points accumulate.
template <class S, int F, typename T>
void backward_x_block(const Args<T>& a, int64_t b, int64_t e, int level) {
  constexpr int D = S::kDims, V = S::kVertices;
  const int nf = n_feat<F>(a.layout);
  BlockRecord<S, T, Need::Grad> r;
  for (int64_t start = b; start < e; start += kBlock) {
    const int count = r.fill(a.layout, a.x, nullptr, start, e, level, nf, a.table, nullptr);
    for (int p = 0; p < count; ++p) {
      if (r.nan[p]) continue;
      const T* dy = a.dy + feature_offset<F>(a.layout, start + p, level);
      T* g = a.dx + (start + p) * D;
      F3D_UNROLL
      for (int v = 0; v < V; ++v) {
        const int k = p * V + v;
        const T* row = a.table + r.row[k] * nf;
        T dot = T(0);
        for (int f = 0; f < nf; ++f) dot += dy[f] * row[f];
        for (int d = 0; d < D; ++d) g[d] += dot * r.dw[k * D + d];
      }
    }
  }
}

// backward_table_one over the points [b, e) at `level` (out.dtable: this range's sums).
template <class S, int F, typename T>
void backward_table_block(const Args<T>& out, int64_t b, int64_t e, int level) {
  constexpr int V = S::kVertices;
  const int nf = n_feat<F>(out.layout);
  BlockRecord<S, T, Need::Weight> r;
  for (int64_t start = b; start < e; start += kBlock) {
    const int count = r.fill(out.layout, out.x, nullptr, start, e, level, nf, out.dtable, nullptr);
    for (int p = 0; p < count; ++p) {
      if (r.nan[p]) continue;
      const T* dy = out.dy + feature_offset<F>(out.layout, start + p, level);
      F3D_UNROLL
      for (int v = 0; v < V; ++v) {
        const int k = p * V + v;
        T* g = out.dtable + r.row[k] * nf;
        for (int f = 0; f < nf; ++f) g[f] += r.w[k] * dy[f];
      }
    }
  }
}

// backward_backward_level over the points [b, e) at `level`: ddy rows written, gx rows (a.dx, or
// nothing when it is null) accumulate.
template <class S, int F, typename T>
void backward_backward_block(const Args<T>& a, int64_t b, int64_t e, int level) {
  constexpr int D = S::kDims, V = S::kVertices;
  const int nf = n_feat<F>(a.layout);
  BlockRecord<S, T, Need::GradHess> r;
  for (int64_t start = b; start < e; start += kBlock) {
    const int count = r.fill(a.layout, a.x, a.ddx, start, e, level, nf, a.ddx ? a.table : nullptr, a.ddtable);
    for (int p = 0; p < count; ++p) {
      const int64_t at = feature_offset<F>(a.layout, start + p, level);
      const T* dy = a.dy + at;
      T ddy[kBuf<F>], scratch[D] = {};
      T* gx = a.dx ? a.dx + (start + p) * D : scratch;
      for (int f = 0; f < nf; ++f) ddy[f] = T(0);
      if (!r.nan[p]) {
        F3D_UNROLL
        for (int v = 0; v < V; ++v) {
          const int k = p * V + v;
          if (a.ddx) {
            const T* u = a.ddx + (start + p) * D;
            const T* row = a.table + r.row[k] * nf;
            T udw = T(0), dot = T(0);
            for (int d = 0; d < D; ++d) udw += u[d] * r.dw[k * D + d];
            for (int f = 0; f < nf; ++f) {
              ddy[f] += row[f] * udw;
              dot += dy[f] * row[f];
            }
            for (int d = 0; d < D; ++d) gx[d] += dot * r.hu[k * D + d];
          }
          if (a.ddtable) {
            const T* vv = a.ddtable + r.row[k] * nf;
            T dot = T(0);
            for (int f = 0; f < nf; ++f) {
              ddy[f] += r.w[k] * vv[f];
              dot += dy[f] * vv[f];
            }
            for (int d = 0; d < D; ++d) gx[d] += dot * r.dw[k * D + d];
          }
        }
      }
      if (a.ddy)
        for (int f = 0; f < nf; ++f) a.ddy[at + f] = ddy[f];
    }
  }
}

// backward_backward_table_one over the points [b, e) at `level` (out.dtable: this range's sums).
template <class S, int F, typename T>
void backward_backward_table_block(const Args<T>& out, int64_t b, int64_t e, int level) {
  constexpr int D = S::kDims, V = S::kVertices;
  const int nf = n_feat<F>(out.layout);
  BlockRecord<S, T, Need::Grad> r;
  for (int64_t start = b; start < e; start += kBlock) {
    const int count = r.fill(out.layout, out.x, nullptr, start, e, level, nf, out.dtable, nullptr);
    for (int p = 0; p < count; ++p) {
      if (r.nan[p]) continue;
      const T* dy = out.dy + feature_offset<F>(out.layout, start + p, level);
      const T* u = out.ddx + (start + p) * D;
      F3D_UNROLL
      for (int v = 0; v < V; ++v) {
        const int k = p * V + v;
        T udw = T(0);
        for (int d = 0; d < D; ++d) udw += u[d] * r.dw[k * D + d];
        T* g = out.dtable + r.row[k] * nf;
        for (int f = 0; f < nf; ++f) g[f] += dy[f] * udw;
      }
    }
  }
}

}  // namespace lattice
}  // namespace f3d
