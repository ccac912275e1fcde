// The lattice encodings: hash grid, dense grid, tri-plane and simplex grid.
//
// "Lattice" has one meaning across the core and fields3d: the regular arrangement of vertices an
// encoding keeps a table row for and interpolates between, cubic (hash grid, dense grid, each
// tri-plane plane) or simplicial (the simplex grid's skewed lattice). A *lattice encoding* is an
// encoding built that way: this namespace, the binding's LatticeLayout and lattice_* functions,
// and fields3d/encodings/_lattice.py. A plain grid of samples (an SDF volume, marching cubes'
// input, a neighbour search's cells) is a grid, not a lattice.
//
// The per-element work is shared by the CPU launcher (lattice.cpp) and the CUDA launcher
// (lattice.cu), and written once for all four: the kernel bodies are generic over a *stencil*,
// which lists the table rows a point reads at one level together with each row's weight w and
// dw/dx (and d2w/dx2 . u when asked).
//
// Stencils:
//  - Hashed<D> (D = 1 to 4): the multiresolution hash grid (instant-NGP), see below.
//  - Dense<D> (D = 2, 3): `resolution` R vertices per axis at x = i / (R - 1) (corners aligned),
//    multilinear over the 2^D corners of the cell holding x; rows sum_d i_d R^d.
//  - TriPlane: level l is one axis-aligned plane over the input axes axes[l] with R_l^2
//    vertices, bilinear over 4 corners. The aggregation of the planes (sum, product, concat)
//    is elementwise and happens in torch, over the level-major output.
//  - Simplex<D> (D = 2, 3, 4): p = x * scale is skewed into the simplex lattice,
//    q = p + k sum(p) with k = (sqrt(D+1) - 1) / D. With f = frac(q) sorted descending (order
//    pi, ties by axis), the enclosing simplex has the D+1 vertices v_0 = floor(q),
//    v_j = v_{j-1} + e_{pi_j}, with barycentric weights w_0 = 1 - f_pi1,
//    w_j = f_pij - f_pi(j+1), w_D = f_piD (affine in x inside a simplex: no second derivative).
//    Rows: hashed levels use the instant-NGP XOR hash with the hash grid's primes. Direct levels
//    index only the vertices points can reach (skewing fills 58% of the lattice's bounding box in
//    2D, 25% in 3D): a lookup over the first D - 1 coordinates, the prefix sum_{d<D-1} v_d R^d,
//    gives base[prefix], and the row is base[prefix] + v_{D-1} (built by the Python config,
//    fields3d/encodings/_simplex_rows.py).
// Coordinates outside [0,1] are clamped (zero gradient along clamped axes); a point with a NaN
// coordinate encodes to NaN and contributes no gradient.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/macros.h"
#include "encodings/encoding_ops.h"
#include "encodings/multilinear.h"

namespace f3d {
namespace lattice {

constexpr int kMaxLevels = 32;
constexpr int kMaxDims = 4;
constexpr int kMaxFeatures = 32;

// The coherent primes of the instant-NGP hash, one per input axis (hash grid and simplex grid).
// The one copy: the kernels make a local HashPrimes (a constant array in registers, as a literal
// list would be), the binding hands kHashPrimes to Python as fields3d._core.HASH_PRIMES.
struct HashPrimes {
  uint32_t p[4] = {1u, 2654435761u, 805459861u, 3674653429u};
};
constexpr HashPrimes kHashPrimes{};

enum class Kind : int { Dense = 0, TriPlane = 1, Simplex = 2, Hash = 3 };
enum class Interp : int { Linear = 0, Smoothstep = 1 };

// Built and checked by the binding from the Python config (the documented specification).
struct Layout {
  Kind kind = Kind::Dense;
  int n_dims = 0;  // input dimensions
  int n_levels = 0;
  int n_features = 0;
  Interp interp = Interp::Linear;  // hash grid, dense grid and tri-plane; the simplex is always barycentric
  double skew = 0.0;               // simplex: (sqrt(D+1) - 1) / D
  double scale[kMaxLevels] = {};   // dense/tri-plane: resolution - 1; hash grid, simplex: lattice scale
  uint32_t resolution[kMaxLevels] = {};  // vertices per (skewed) axis
  uint32_t size[kMaxLevels] = {};        // rows of the level
  int64_t offset[kMaxLevels] = {};       // first row of the level
  bool hashed[kMaxLevels] = {};
  int axes[kMaxLevels][2] = {};  // tri-plane: the input axes of each level's plane
  int64_t n_entries = 0;
  // Simplex direct levels: their row lookup, R^(D-1) entries from lut_offset[level] (-1 for
  // levels without one) in an n_lut-entry int64 array on the points' device, set per call.
  int64_t lut_offset[kMaxLevels] = {};
  int64_t n_lut = 0;
  const int64_t* lut = nullptr;
};

template <typename T>
using Args = enc::TableArgs<Layout, T>;

// One row a point reads: its weight, dw/dx, and hu = (d2w/dx2) u when the stencil was given u.
template <int D, typename T>
struct Vertex {
  int64_t row;
  T w;
  T dw[D];
  T hu[D];
};

// The clamped coordinate and the chain factor d(x * scale)/dx (0 along a clamped axis).
template <typename T>
F3D_HD inline T clamp_unit(T xi, T scale, T& chain) {
  chain = (xi >= T(0) && xi <= T(1)) ? scale : T(0);
  return xi < T(0) ? T(0) : (xi > T(1) ? T(1) : xi);
}

// Interpolation factors along one axis from the fractional coordinate f: w = (1 - s, s) with
// s = f (linear) or f^2 (3 - 2f) (smoothstep), and their first and second derivatives w.r.t. x
// (chain = d f / d x: the scale, or 0 along a clamped axis).
template <typename T>
F3D_HD inline void axis_factors(Interp interp, T f, T chain, T w[2], T dw[2], T ddw[2]) {
  T s = f, ds = chain, dds = T(0);
  if (interp == Interp::Smoothstep) {
    s = f * f * (T(3) - T(2) * f);
    ds = T(6) * f * (T(1) - f) * chain;
    dds = (T(6) - T(12) * f) * chain * chain;
  }
  w[0] = T(1) - s, w[1] = s;
  dw[0] = -ds, dw[1] = ds;
  ddw[0] = -dds, ddw[1] = dds;
}

// Calls fn(vertex) for the 2^C corners of a cell over the input axes `axes` (of D), given each
// axis' factors per side (w[c][side], ...) and row(corner), the corner's table row (bit c of
// corner set: the upper side along axis c). Shared by every multilinear stencil.
template <int C, int D, typename T, typename Row, typename Fn>
F3D_HD inline void visit_corners(const int* axes, const T* u, const T (&w)[C][2], const T (&dw)[C][2],
                                 const T (&ddw)[C][2], Row&& row, Fn&& fn) {
  F3D_UNROLL
  for (uint32_t corner = 0; corner < (1u << C); ++corner) {
    T lin[C], dlin[C], ddlin[C], g[C];
    for (int c = 0; c < C; ++c) {
      const uint32_t side = (corner >> c) & 1u;
      lin[c] = w[c][side], dlin[c] = dw[c][side], ddlin[c] = ddw[c][side];
    }
    Vertex<D, T> v;
    v.row = row(corner);
    v.w = multilinear::prod_except<C>(lin, -1, -1);
    // With C == D the axes are 0 .. D-1 in order (dense grid, hash grid): indexing by c directly
    // keeps v in registers (an index read from `axes` kept GCC from scalarising it).
    if (C < D)
      for (int d = 0; d < D; ++d) v.dw[d] = v.hu[d] = T(0);
    else if (!u)
      for (int d = 0; d < D; ++d) v.hu[d] = T(0);
    multilinear::weight_grad<C>(lin, dlin, g);
    for (int c = 0; c < C; ++c) v.dw[C == D ? c : axes[c]] = g[c];
    if (u) {
      T uc[C];
      for (int c = 0; c < C; ++c) uc[c] = u[C == D ? c : axes[c]];
      multilinear::weight_hess_vec<C>(lin, dlin, ddlin, C == D ? u : uc, g);
      for (int c = 0; c < C; ++c) v.hu[C == D ? c : axes[c]] = g[c];
    }
    fn(v);
  }
}

// Multilinear interpolation over the C input axes `axes` of a grid with R = resolution vertices
// per axis and corners aligned with [0, 1] (shared by Dense and TriPlane).
template <int C, int D, typename T, typename Fn>
F3D_HD inline void visit_cell(const Layout& L, int level, const T* x, const int* axes, const T* u, Fn&& fn) {
  const T scale = static_cast<T>(L.scale[level]);
  const uint32_t res = L.resolution[level];
  uint32_t base[C];
  T w[C][2], dw[C][2], ddw[C][2];
  for (int c = 0; c < C; ++c) {
    T chain;
    const T pos = clamp_unit(x[axes[c]], scale, chain) * scale;
    T fl = floor_nonneg(pos);
    if (fl > T(res - 2)) fl = T(res - 2);  // x = 1 sits at the far end of the last cell
    base[c] = static_cast<uint32_t>(fl);
    axis_factors(L.interp, pos - fl, chain, w[c], dw[c], ddw[c]);
  }
  const int64_t offset = L.offset[level];
  visit_corners<C, D>(axes, u, w, dw, ddw, [&](uint32_t corner) {
    int64_t index = 0, stride = 1;
    for (int c = 0; c < C; ++c) {
      index += int64_t(base[c] + ((corner >> c) & 1u)) * stride;
      stride *= res;
    }
    return offset + index;
  }, fn);
}

// The multiresolution hash grid (instant-NGP), D = 1 to 4. At level l with scale s_l a point sits
// in the cell floor(x s_l + 0.5) (vertices at cell centres, not corner-aligned); its 2^D corners
// are looked up directly (row sum_d v_d R^d, wrapped at the far face) when the level's
// resolution^D fits its rows, otherwise by the coherent-prime XOR hash v_0 ^ v_1 p_1 ^ ... into
// its 2^k rows, and interpolated multilinearly (linear or smoothstep factors).
template <int D>
struct Hashed {
  static constexpr int kDims = D;
  static constexpr int kVertices = 1 << D;
  static constexpr bool kAnyFeatures = false;
  template <typename T, typename Fn>
  F3D_HD static void visit(const Layout& L, int level, const T* x, const T* u, Fn&& fn) {
    // One body per row scheme, as the simplex's: the choice is made once per level, not per corner.
    if (L.hashed[level]) visit_rows<true>(L, level, x, u, fn);
    else visit_rows<false>(L, level, x, u, fn);
  }

  template <bool hashed, typename T, typename Fn>
  F3D_HD static void visit_rows(const Layout& L, int level, const T* x, const T* u, Fn&& fn) {
    const HashPrimes primes{};
    const T scale = static_cast<T>(L.scale[level]);
    // Per axis and side, the vertex's share of the row: its coordinate times the prime or the stride.
    uint32_t part[D][2];
    T w[D][2], dw[D][2], ddw[D][2];
    uint32_t stride = 1;
    for (int d = 0; d < D; ++d) {
      T chain;
      const T pos = mul_add_rn(clamp_unit(x[d], scale, chain), scale, T(0.5));  // the CPU's cell on CUDA too
      const T fl = floor_nonneg(pos);
      const uint32_t base = static_cast<uint32_t>(fl), mult = hashed ? primes.p[d] : stride;
      part[d][0] = base * mult;
      part[d][1] = (base + 1u) * mult;
      stride *= L.resolution[level];
      axis_factors(L.interp, pos - fl, chain, w[d], dw[d], ddw[d]);
    }
    const uint32_t size = L.size[level];
    const int64_t offset = L.offset[level];
    const int axes[4] = {0, 1, 2, 3};
    visit_corners<D, D>(axes, u, w, dw, ddw, [&](uint32_t corner) {
      uint32_t index = 0;
      if constexpr (hashed) {
        for (int d = 0; d < D; ++d) index ^= part[d][(corner >> d) & 1u];
        index &= size - 1u;  // hashed levels hold 2^k rows
      } else {
        for (int d = 0; d < D; ++d) index += part[d][(corner >> d) & 1u];
        if (index >= size) index %= size;  // only at the far face
      }
      return offset + static_cast<int64_t>(index);
    }, fn);
  }
};

template <int D>
struct Dense {
  static constexpr int kDims = D;
  static constexpr int kVertices = 1 << D;
  static constexpr bool kAnyFeatures = true;  // F from 1 to 32, not only 1/2/4/8
  template <typename T, typename Fn>
  F3D_HD static void visit(const Layout& L, int level, const T* x, const T* u, Fn&& fn) {
    const int axes[3] = {0, 1, 2};
    visit_cell<D, D>(L, level, x, axes, u, fn);
  }
};

struct TriPlane {
  static constexpr int kDims = 3;
  static constexpr int kVertices = 4;
  static constexpr bool kAnyFeatures = true;
  template <typename T, typename Fn>
  F3D_HD static void visit(const Layout& L, int level, const T* x, const T* u, Fn&& fn) {
    visit_cell<2, 3>(L, level, x, L.axes[level], u, fn);
  }
};

template <typename T>
F3D_HD inline T max_(T a, T b) { return a > b ? a : b; }
template <typename T>
F3D_HD inline T min_(T a, T b) { return a < b ? a : b; }

// keep ? v : 0 without a branch. On the host GCC turns float selects (and f * T(bool)) into
// jumps, which mispredict on the data-dependent simplex order (1.4 per point and level, the
// simplex forward's largest cost); an integer mask on the bits cannot.
template <typename T>
F3D_HD inline T masked(T v, bool keep) {
#if defined(__CUDA_ARCH__)
  return keep ? v : T(0);
#else
  using Bits = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
  Bits b;
  std::memcpy(&b, &v, sizeof(T));
  b &= Bits(0) - Bits(keep);
  std::memcpy(&v, &b, sizeof(T));
  return v;
#endif
}

template <int D>
struct Simplex {
  static constexpr int kDims = D;
  static constexpr int kVertices = D + 1;
  static constexpr bool kAnyFeatures = false;

  // Branch-free over compile-time indices (no sorted index array to look up at run time): axis
  // d's rank r_d (its place in the descending order) decides everything. Vertex m has
  // coordinate floor(q_d) + (r_d < m), and dw_m/df_d = [r_d == m - 1] - [r_d == m].
  template <typename T, typename Fn>
  F3D_HD static void visit(const Layout& L, int level, const T* x, const T* /*u*/, Fn&& fn) {
    // One body per row scheme: with both in one loop, the direct levels' lookup load kept GCC
    // from if-converting the per-vertex choice, and hashed levels' backward ran slower
    // (benchmarks/RESULTS.md, "Figures moved out of code comments").
    if (L.hashed[level]) visit_rows<true>(L, level, x, fn);  // hu = 0: affine inside a simplex
    else visit_rows<false>(L, level, x, fn);
  }

  template <bool hashed, typename T, typename Fn>
  F3D_HD static void visit_rows(const Layout& L, int level, const T* x, Fn&& fn) {
    const HashPrimes primes{};
    const T scale = static_cast<T>(L.scale[level]);
    const T k = static_cast<T>(L.skew);
    T p[D], chain[D], f[D], sum = T(0);
    for (int d = 0; d < D; ++d) {
      p[d] = clamp_unit(x[d], scale, chain[d]) * scale;
      sum += p[d];
    }
    // The axis' share of the row index at floor(q_d) and floor(q_d) + 1: hashed, its prime
    // multiple; direct, its share of the lookup prefix (the last axis: itself).
    uint32_t part0[D], part1[D];
    uint32_t stride = 1;
    for (int d = 0; d < D; ++d) {
      const T q = mul_add_rn(k, sum, p[d]);  // unfused: the CPU's simplex on CUDA too
      const T fl = floor_nonneg(q);
      f[d] = q - fl;
      const uint32_t base = static_cast<uint32_t>(fl), mult = hashed ? primes.p[d] : (d < D - 1 ? stride : 1u);
      part0[d] = base * mult;
      part1[d] = (base + 1u) * mult;
      stride *= L.resolution[level];
    }
    int rank[D];
    T sorted[D + 1];  // sorted[r] = the r-th largest fractional part; sorted[D] = 0
    for (int d = 0; d < D; ++d) {
      int r = 0;
      for (int e = 0; e < D; ++e) r += e < d ? int(f[e] >= f[d]) : int(f[e] > f[d]);  // no branches
      rank[d] = r;
    }
    for (int d = 0; d < D; ++d) sorted[d] = f[d];
    sorted[D] = T(0);
    for (int i = 0; i < D; ++i)  // bubble network; max_/min_ compile to maxss/minss, not jumps
      for (int j = D - 1; j > i; --j) {
        const T a = sorted[j - 1], b = sorted[j];
        sorted[j - 1] = max_(a, b);
        sorted[j] = min_(a, b);
      }
    const uint32_t size = L.size[level];
    F3D_UNROLL
    for (int m = 0; m <= D; ++m) {
      uint32_t pt[D];
      for (int d = 0; d < D; ++d) {
        const uint32_t upper = 0u - uint32_t(rank[d] < m);  // all ones or zero: a select, not a branch
        pt[d] = part0[d] ^ ((part0[d] ^ part1[d]) & upper);
      }
      uint32_t index = 0;
      if constexpr (hashed) {
        for (int d = 0; d < D; ++d) index ^= pt[d];
        index &= size - 1u;  // hashed levels hold 2^k rows
      } else {
        uint32_t prefix = 0;
        for (int d = 0; d < D - 1; ++d) prefix += pt[d];
        // The prefix is in range: coordinates stay below the resolution, which has a spare
        // vertex. The row guard is for memory safety only (the lookup covers every reachable
        // vertex, tests/encodings/test_simplex_rows.py): a uint32 select, no division.
        const uint32_t row = uint32_t(L.lut[L.lut_offset[level] + prefix]) + pt[D - 1];
        index = row < size ? row : 0u;
      }
      const T gsum = T((m > 0) - (m < D));  // sum of dw/df over the axes
      Vertex<D, T> v;
      v.row = L.offset[level] + static_cast<int64_t>(index);
      v.w = (m == 0 ? T(1) : sorted[m - 1]) - sorted[m];
      for (int d = 0; d < D; ++d) {
        const T g = masked(T(1), rank[d] == m - 1) - masked(T(1), rank[d] == m) + k * gsum;
        v.dw[d] = chain[d] * g;
        v.hu[d] = T(0);
      }
      fn(v);
    }
  }
};

template <typename T>
F3D_HD inline bool has_nan(const T* x, int d) {
  bool nan = false;
  for (int k = 0; k < d; ++k) nan |= (x[k] != x[k]);
  return nan;
}

// F > 0: features known at compile time; F == 0: L.n_features (1..32) at run time.
template <int F>
F3D_HD inline int n_feat(const Layout& L) { return F > 0 ? F : L.n_features; }
template <int F>
constexpr int kBuf = F > 0 ? F : kMaxFeatures;

template <int F>
F3D_HD inline int64_t feature_offset(const Layout& L, int64_t i, int level) {
  const int nf = n_feat<F>(L);
  return i * (int64_t(L.n_levels) * nf) + int64_t(level) * nf;
}

// ---- forward: y[i, level] = sum_v w_v T[v] --------------------------------------------------
template <class S, int F, typename T>
F3D_HD inline void forward_one(const Args<T>& a, int64_t i, int level) {
  constexpr int D = S::kDims;
  const int nf = n_feat<F>(a.layout);
  const T* x = a.x + i * D;
  T* y = a.y + feature_offset<F>(a.layout, i, level);
  const bool nan = has_nan(x, D);
  T acc[kBuf<F>];
  for (int f = 0; f < nf; ++f) acc[f] = nan ? T(NAN) : T(0);
  if (!nan) {
    S::visit(a.layout, level, x, static_cast<const T*>(nullptr), [&](const Vertex<D, T>& v) {
      const T* e = a.table + v.row * nf;
      for (int f = 0; f < nf; ++f) acc[f] += v.w * e[f];
    });
  }
  for (int f = 0; f < nf; ++f) y[f] = acc[f];
}

// ---- backward to positions: g += this level's part of dL/dx[i] ------------------------------
template <class S, int F, typename T>
F3D_HD inline void backward_x_level(const Args<T>& a, int64_t i, int level, T* g) {
  constexpr int D = S::kDims;
  const int nf = n_feat<F>(a.layout);
  const T* x = a.x + i * D;
  if (has_nan(x, D)) return;
  const T* dy = a.dy + feature_offset<F>(a.layout, i, level);
  S::visit(a.layout, level, x, static_cast<const T*>(nullptr), [&](const Vertex<D, T>& v) {
    const T* e = a.table + v.row * nf;
    T dot = T(0);
    for (int f = 0; f < nf; ++f) dot += dy[f] * e[f];
    for (int d = 0; d < D; ++d) g[d] += dot * v.dw[d];
  });
}

// ---- backward to the table: dtable[row] += w dy (Add: plain on CPU, atomic on CUDA) ---------
template <class S, int F, typename T, typename Add>
F3D_HD inline void backward_table_one(const Args<T>& a, int64_t i, int level, Add add) {
  constexpr int D = S::kDims;
  const int nf = n_feat<F>(a.layout);
  const T* x = a.x + i * D;
  if (has_nan(x, D)) return;
  const T* dy = a.dy + feature_offset<F>(a.layout, i, level);
  S::visit(a.layout, level, x, static_cast<const T*>(nullptr), [&](const Vertex<D, T>& v) {
    T* g = a.dtable + v.row * nf;
    for (int f = 0; f < nf; ++f) add(g + f, v.w * dy[f]);
  });
}

// ---- double backward, per point and level (as the hash grid; u = ddx[i], V = ddtable):
//   ddy[f]  = sum_v T[v,f] (u . dw_v) + w_v V[v,f]
//   gx     += sum_v (dy . T[v]) (d2w_v/dx2 u) + (dy . V[v]) dw_v
template <class S, int F, typename T>
F3D_HD inline void backward_backward_level(const Args<T>& a, int64_t i, int level, T* gx) {
  constexpr int D = S::kDims;
  const int nf = n_feat<F>(a.layout);
  const T* x = a.x + i * D;
  const int64_t at = feature_offset<F>(a.layout, i, level);
  const T* dy = a.dy + at;
  T ddy[kBuf<F>];
  for (int f = 0; f < nf; ++f) ddy[f] = T(0);
  if (!has_nan(x, D)) {
    // u in registers: read through a.ddx it would be loaded again at every vertex (the stores
    // to gx and ddy may alias it as far as the compiler knows); 3% of the 3D hash grid's
    // double-backward instructions.
    T u_reg[D];
    if (a.ddx)
      for (int d = 0; d < D; ++d) u_reg[d] = a.ddx[i * D + d];
    const T* u = a.ddx ? u_reg : nullptr;
    S::visit(a.layout, level, x, u, [&](const Vertex<D, T>& v) {
      if (u) {
        const T* e = a.table + v.row * nf;
        T udw = T(0), dot = T(0);
        for (int d = 0; d < D; ++d) udw += u[d] * v.dw[d];
        for (int f = 0; f < nf; ++f) {
          ddy[f] += e[f] * udw;
          dot += dy[f] * e[f];
        }
        for (int d = 0; d < D; ++d) gx[d] += dot * v.hu[d];
      }
      if (a.ddtable) {
        const T* vv = a.ddtable + v.row * nf;
        T dot = T(0);
        for (int f = 0; f < nf; ++f) {
          ddy[f] += v.w * vv[f];
          dot += dy[f] * vv[f];
        }
        for (int d = 0; d < D; ++d) gx[d] += dot * v.dw[d];
      }
    });
  }
  if (a.ddy)
    for (int f = 0; f < nf; ++f) a.ddy[at + f] = ddy[f];
}

// ---- double backward, table part: dtable[v] += dy (u . dw_v) --------------------------------
template <class S, int F, typename T, typename Add>
F3D_HD inline void backward_backward_table_one(const Args<T>& a, int64_t i, int level, Add add) {
  constexpr int D = S::kDims;
  const int nf = n_feat<F>(a.layout);
  const T* x = a.x + i * D;
  if (has_nan(x, D)) return;
  const T* dy = a.dy + feature_offset<F>(a.layout, i, level);
  const T* u = a.ddx + i * D;
  S::visit(a.layout, level, x, static_cast<const T*>(nullptr), [&](const Vertex<D, T>& v) {
    T udw = T(0);
    for (int d = 0; d < D; ++d) udw += u[d] * v.dw[d];
    T* g = a.dtable + v.row * nf;
    for (int f = 0; f < nf; ++f) add(g + f, dy[f] * udw);
  });
}

// Calls fn(Stencil{}, IntC<F>{}) for the layout's kind, dimensions and features (F = 0: the
// run-time path for feature counts other than 1/2/4/8); returns false for unsupported ones.
template <typename Fn>
inline bool dispatch(const Layout& L, Fn&& fn) {
  auto with_f = [&](auto stencil) -> bool {
    using S = decltype(stencil);
    switch (L.n_features) {
      case 1: fn(stencil, IntC<1>{}); return true;
      case 2: fn(stencil, IntC<2>{}); return true;
      case 4: fn(stencil, IntC<4>{}); return true;
      case 8: fn(stencil, IntC<8>{}); return true;
      default:
        if constexpr (S::kAnyFeatures) {
          if (L.n_features >= 1 && L.n_features <= kMaxFeatures) {
            fn(stencil, IntC<0>{});
            return true;
          }
        }
        return false;
    }
  };
  switch (L.kind) {
    case Kind::Dense:
      if (L.n_dims == 2) return with_f(Dense<2>{});
      if (L.n_dims == 3) return with_f(Dense<3>{});
      return false;
    case Kind::TriPlane: return L.n_dims == 3 && with_f(TriPlane{});
    case Kind::Hash:
      if (L.n_dims == 1) return with_f(Hashed<1>{});
      if (L.n_dims == 2) return with_f(Hashed<2>{});
      if (L.n_dims == 3) return with_f(Hashed<3>{});
      if (L.n_dims == 4) return with_f(Hashed<4>{});
      return false;
    case Kind::Simplex:
      if (L.n_dims == 2) return with_f(Simplex<2>{});
      if (L.n_dims == 3) return with_f(Simplex<3>{});
      if (L.n_dims == 4) return with_f(Simplex<4>{});
      return false;
  }
  return false;
}

using enc::Op;

// Launchers. CPU: T = float or double, threads from f3d::num_threads(); table gradients are
// race-free and deterministic for a given thread count. CUDA: float, on `stream`.
template <typename T>
void launch_cpu(Op op, const Args<T>& a);
void launch_cuda(Op op, const Args<float>& a, void* stream, int device);

}  // namespace lattice
}  // namespace f3d
