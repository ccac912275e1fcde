// Multiresolution hash-grid encoding (instant-NGP), per-element work shared by the CPU launcher
// (hash_grid.cpp) and the CUDA launcher (hash_grid.cu).
//
// For level l with scale s_l, a point x in [0,1]^D sits in the cell floor(x * s_l + 0.5); its
// 2^D corners are looked up in the level's table (directly when resolution^D fits the table,
// otherwise by the coherent-prime XOR hash) and interpolated with weights
//   w_c(x) = prod_d (c_d ? s(f_d) : 1 - s(f_d)),  f = frac(x * s_l + 0.5),
// s(f) = f (linear) or f^2 (3 - 2f) (smoothstep). Outside [0,1] x is clamped (zero gradient
// along clamped axes). A point with a NaN coordinate encodes to NaN and contributes no gradient.
//
// Derivatives: y = sum_c w_c T[c]; dL/dT[c] += w_c dL/dy; dL/dx = sum_c (dL/dy . T[c]) dw_c/dx.
// Double backward differentiates the latter two w.r.t. (dL/dy, x, T), see the functions below.
#pragma once

#include <cstdint>

#include "common/macros.h"
#include "encodings/encoding_ops.h"
#include "encodings/multilinear.h"

namespace f3d {
namespace hashgrid {

using multilinear::prod_except;
using multilinear::weight_grad;
using multilinear::weight_hess_vec;

constexpr int kMaxLevels = 32;
constexpr int kMaxDims = 4;

enum class Interp : int { Linear = 0, Smoothstep = 1 };

// Where each level lives in the table. Computed in Python (HashGridConfig, the documented
// specification) and checked by the binding.
struct Layout {
  int n_dims = 0;
  int n_levels = 0;
  int n_features = 0;
  Interp interp = Interp::Linear;
  double scale[kMaxLevels] = {};
  uint32_t resolution[kMaxLevels] = {};
  uint32_t size[kMaxLevels] = {};   // entries (rows of F features) in the level
  int64_t offset[kMaxLevels] = {};  // first entry of the level
  bool hashed[kMaxLevels] = {};
  int64_t n_entries = 0;
};

template <typename T>
using Args = enc::TableArgs<Layout, T>;

// The cell a point falls in at one level. Per axis and side (0 = lower vertex, 1 = upper): the
// vertex's share of the table index (its coordinate times the prime or the stride), and its
// interpolation factor with first and second derivatives w.r.t. x. A corner's index and weight
// combine one side per axis, so the per-corner work is a few selects.
template <int D, typename T>
struct Cell {
  uint32_t part[2][D];
  T w[2][D];    // 1 - s, s
  T dw[2][D];   // d w / d x (zero along clamped axes)
  T ddw[2][D];  // d^2 w / d x^2
};

template <int D, typename T>
F3D_HD inline bool has_nan(const T* x) {
  bool nan = false;
  for (int d = 0; d < D; ++d) nan |= (x[d] != x[d]);
  return nan;
}

template <int D, typename T>
F3D_HD inline void make_cell(const Layout& L, int level, const T* x, Cell<D, T>& c) {
  const uint32_t primes[4] = {1u, 2654435761u, 805459861u, 3674653429u};
  const T scale = static_cast<T>(L.scale[level]);
  uint32_t stride = 1;
  for (int d = 0; d < D; ++d) {
    T xi = x[d];
    const T chain = (xi >= T(0) && xi <= T(1)) ? scale : T(0);
    xi = xi < T(0) ? T(0) : (xi > T(1) ? T(1) : xi);
    const T pos = xi * scale + T(0.5);
    const T fl = floor_nonneg(pos);
    const T f = pos - fl;
    const uint32_t base = static_cast<uint32_t>(fl);
    const uint32_t mult = L.hashed[level] ? primes[d] : stride;
    c.part[0][d] = base * mult;
    c.part[1][d] = (base + 1u) * mult;
    stride *= L.resolution[level];
    T s, ds, dds;
    if (L.interp == Interp::Smoothstep) {
      s = f * f * (T(3) - T(2) * f);
      ds = T(6) * f * (T(1) - f) * chain;
      dds = (T(6) - T(12) * f) * chain * chain;
    } else {
      s = f;
      ds = chain;
      dds = T(0);
    }
    c.w[0][d] = T(1) - s;
    c.w[1][d] = s;
    c.dw[0][d] = -ds;
    c.dw[1][d] = ds;
    c.ddw[0][d] = -dds;
    c.ddw[1][d] = dds;
  }
}

// Row of the table holding corner `corner` (bit d set = upper along axis d) of the cell.
template <int D, typename T>
F3D_HD inline int64_t corner_row(const Layout& L, int level, const Cell<D, T>& c, uint32_t corner) {
  uint32_t index = 0;
  const uint32_t size = L.size[level];
  if (L.hashed[level]) {
    for (int d = 0; d < D; ++d) index ^= c.part[(corner >> d) & 1u][d];
    index &= size - 1u;  // hashed levels hold 2^k rows
  } else {
    for (int d = 0; d < D; ++d) index += c.part[(corner >> d) & 1u][d];
    if (index >= size) index %= size;  // only at the far face
  }
  return L.offset[level] + static_cast<int64_t>(index);
}

// Per-axis factors of a corner's weight: lin[d] = s or 1-s, dlin = d lin/dx, ddlin = d2 lin/dx2.
template <int D, typename T>
F3D_HD inline void corner_factors(const Cell<D, T>& c, uint32_t corner, T lin[D], T dlin[D], T ddlin[D]) {
  for (int d = 0; d < D; ++d) {
    const uint32_t side = (corner >> d) & 1u;
    lin[d] = c.w[side][d];
    dlin[d] = c.dw[side][d];
    ddlin[d] = c.ddw[side][d];
  }
}

// A corner of a point's cell as the kernels use it: its table row and per-axis weight factors.
template <int D, typename T>
struct Corner {
  int64_t row;
  T lin[D], dlin[D], ddlin[D];
  F3D_HD T weight() const { return prod_except<D>(lin, -1, -1); }
  F3D_HD void weight_grad(T dw[D]) const { hashgrid::weight_grad<D>(lin, dlin, dw); }
};

// Calls fn(corner) for each of the 2^D corners of the cell holding x at `level`.
template <int D, typename T, typename Fn>
F3D_HD inline void for_each_corner(const Layout& L, int level, const T* x, Fn&& fn) {
  Cell<D, T> c;
  make_cell<D>(L, level, x, c);
  F3D_UNROLL
  for (uint32_t corner = 0; corner < (1u << D); ++corner) {
    Corner<D, T> k;
    k.row = corner_row<D>(L, level, c, corner);
    corner_factors<D>(c, corner, k.lin, k.dlin, k.ddlin);
    fn(k);
  }
}

// Offset of point i's features at `level` in (N, L*F) arrays.
template <int F>
F3D_HD inline int64_t feature_offset(const Layout& L, int64_t i, int level) {
  return i * (int64_t(L.n_levels) * F) + int64_t(level) * F;
}

// ---- forward: y[i, level] -------------------------------------------------------------------
template <int D, int F, typename T>
F3D_HD inline void forward_one(const Args<T>& a, int64_t i, int level) {
  const T* x = a.x + i * D;
  T* y = a.y + feature_offset<F>(a.layout, i, level);
  const bool nan = has_nan<D>(x);
  T acc[F];
  for (int f = 0; f < F; ++f) acc[f] = nan ? T(NAN) : T(0);
  if (!nan) {
    for_each_corner<D>(a.layout, level, x, [&](const Corner<D, T>& k) {
      const T w = k.weight();
      const T* e = a.table + k.row * F;
      for (int f = 0; f < F; ++f) acc[f] += w * e[f];
    });
  }
  for (int f = 0; f < F; ++f) y[f] = acc[f];
}

// ---- backward to positions: g[0..D) += this level's part of dL/dx[i] --------------------------
// (The launchers sum the levels: CPU level by level over a range of points, CUDA per point.)
template <int D, int F, typename T>
F3D_HD inline void backward_x_level(const Args<T>& a, int64_t i, int level, T* g) {
  const T* x = a.x + i * D;
  if (has_nan<D>(x)) return;
  const T* dy = a.dy + feature_offset<F>(a.layout, i, level);
  for_each_corner<D>(a.layout, level, x, [&](const Corner<D, T>& k) {
    T dw[D];
    k.weight_grad(dw);
    const T* e = a.table + k.row * F;
    T dot = T(0);
    for (int f = 0; f < F; ++f) dot += dy[f] * e[f];
    for (int d = 0; d < D; ++d) g[d] += dot * dw[d];
  });
}

// ---- backward to the table: dtable[row] += w * dy (Add: plain on CPU, atomic on CUDA) ---------
template <int D, int F, typename T, typename Add>
F3D_HD inline void backward_table_one(const Args<T>& a, int64_t i, int level, Add add) {
  const T* x = a.x + i * D;
  if (has_nan<D>(x)) return;
  const T* dy = a.dy + feature_offset<F>(a.layout, i, level);
  for_each_corner<D>(a.layout, level, x, [&](const Corner<D, T>& k) {
    const T w = k.weight();
    T* g = a.dtable + k.row * F;
    for (int f = 0; f < F; ++f) add(g + f, w * dy[f]);
  });
}

// ---- double backward, per point and level: ddy[i, level] and gx[0..D) += the position part ----
// With u = ddx[i] (gradient w.r.t. the backward's dx) and V = ddtable (w.r.t. its dtable):
//   ddy[f]  = sum_c T[c,f] (u . dw_c) + w_c V[c,f]
//   gx[k]  += sum_c (dy . T[c]) (sum_d u_d d2w_c/dx_d dx_k) + (dy . V[c]) dw_c/dx_k
template <int D, int F, typename T>
F3D_HD inline void backward_backward_level(const Args<T>& a, int64_t i, int level, T* gx) {
  const T* x = a.x + i * D;
  const int64_t at = feature_offset<F>(a.layout, i, level);
  const T* dy = a.dy + at;
  T ddy[F];
  for (int f = 0; f < F; ++f) ddy[f] = T(0);
  if (!has_nan<D>(x)) {
    T u[D];
    for (int d = 0; d < D; ++d) u[d] = a.ddx ? a.ddx[i * D + d] : T(0);
    for_each_corner<D>(a.layout, level, x, [&](const Corner<D, T>& k) {
      T dw[D], hess[D];
      k.weight_grad(dw);
      if (a.ddx) {
        const T* e = a.table + k.row * F;
        T udw = T(0), dot = T(0);
        for (int d = 0; d < D; ++d) udw += u[d] * dw[d];
        for (int f = 0; f < F; ++f) {
          ddy[f] += e[f] * udw;
          dot += dy[f] * e[f];
        }
        weight_hess_vec<D>(k.lin, k.dlin, k.ddlin, u, hess);
        for (int d = 0; d < D; ++d) gx[d] += dot * hess[d];
      }
      if (a.ddtable) {
        const T* v = a.ddtable + k.row * F;
        const T w = k.weight();
        T dot = T(0);
        for (int f = 0; f < F; ++f) {
          ddy[f] += w * v[f];
          dot += dy[f] * v[f];
        }
        for (int d = 0; d < D; ++d) gx[d] += dot * dw[d];
      }
    });
  }
  if (a.ddy)
    for (int f = 0; f < F; ++f) a.ddy[at + f] = ddy[f];
}

// ---- double backward, table part: dtable[c] += dy (u . dw_c) ----------------------------------
template <int D, int F, typename T, typename Add>
F3D_HD inline void backward_backward_table_one(const Args<T>& a, int64_t i, int level, Add add) {
  const T* x = a.x + i * D;
  if (has_nan<D>(x)) return;
  const T* dy = a.dy + feature_offset<F>(a.layout, i, level);
  const T* u = a.ddx + i * D;
  for_each_corner<D>(a.layout, level, x, [&](const Corner<D, T>& k) {
    T dw[D];
    k.weight_grad(dw);
    T udw = T(0);
    for (int d = 0; d < D; ++d) udw += u[d] * dw[d];
    T* g = a.dtable + k.row * F;
    for (int f = 0; f < F; ++f) add(g + f, dy[f] * udw);
  });
}

// Calls fn(IntC<D>, IntC<F>) for the supported (D, F); returns false for unsupported ones.
template <typename Fn>
inline bool dispatch_dims(int d, int f, Fn&& fn) {
  auto with_f = [&](auto dc) {
    switch (f) {
      case 1: fn(dc, IntC<1>{}); return true;
      case 2: fn(dc, IntC<2>{}); return true;
      case 4: fn(dc, IntC<4>{}); return true;
      case 8: fn(dc, IntC<8>{}); return true;
      default: return false;
    }
  };
  switch (d) {
    case 1: return with_f(IntC<1>{});
    case 2: return with_f(IntC<2>{});
    case 3: return with_f(IntC<3>{});
    case 4: return with_f(IntC<4>{});
    default: return false;
  }
}

// Launchers. CPU: T = float or double, threads from f3d::num_threads(), table gradients
// race-free (each level's rows belong to one task). CUDA: float, on `stream`.
using enc::Op;

template <typename T>
void launch_cpu(Op op, const Args<T>& a);
void launch_cuda(Op op, const Args<float>& a, void* stream, int device);

}  // namespace hashgrid
}  // namespace f3d
