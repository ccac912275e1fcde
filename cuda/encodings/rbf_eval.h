// Fused evaluation of the adaptive RBF encoding (NeuRBF) over given neighbours: the per-point
// forward and backward, shared by the CPU launcher (rbf_eval.cpp) and the CUDA launcher
// (rbf_eval.cu). The neighbours come from the search in geometry/knn.h.
//
// Math (fields3d/encodings/rbf.py states it in full). Point x (D,), its K neighbours j = idx[n, k]:
//   u_j   = A_j (x - c_j)       A_j = s_j I (isotropic), diag(s_j) (diagonal), tril(S_j) (full)
//   r2_j  = |u_j|^2             (isotropic: s_j^2 |x - c_j|^2)
//   phi_j = 1 / (1 + r2_j)  or  exp(-r2_j)
//   y_f   = sum_k w[j_k, f] b_f(phi_{j_k}),   b_f(phi) = sin(omega_{f mod L} phi), or phi when L = 0.
// Channel f's frequency depends on f only through f mod L, so each neighbour takes L sines (not F):
// channels l, l + L, l + 2L, ... share one.
//
// Backward, given dy (N, F): dx (N, D) is written per point; the parameter gradients are scattered
// (added) into dcenters (M, D), dshapes (M | M x D | M x D x D) and dweights (M, F) through an `Add`
// functor (plain adds into a per-chunk copy on the CPU, atomics on the GPU). For the full shape
// only the lower triangle of dshapes receives gradient (tril's autograd: the upper stays zero).
#pragma once

#include <cstdint>

#include "common/macros.h"

namespace f3d {
namespace rbf {

enum class Shape : int { Isotropic = 0, Diagonal = 1, Full = 2 };
enum class Kernel : int { InverseQuadratic = 0, Gaussian = 1 };

template <typename T>
struct EvalArgs {
  int n_dims = 3;      // D: 2 or 3
  int n_features = 1;  // F
  int k = 1;           // neighbours per point
  int n_freqs = 0;     // L: 0 = plain features
  Shape shape = Shape::Diagonal;
  Kernel kernel = Kernel::InverseQuadratic;
  int64_t n_points = 0;
  int64_t n_bases = 0;
  const T* x = nullptr;          // (N, D)
  const int64_t* idx = nullptr;  // (N, K), values in [0, M)
  const T* centers = nullptr;    // (M, D)
  const T* shapes = nullptr;     // (M,), (M, D) or (M, D, D)
  const T* weights = nullptr;    // (M, F)
  const T* freqs = nullptr;      // (L,) or null
  T* y = nullptr;                // (N, F) forward output
  const T* dy = nullptr;         // (N, F) backward input
  T* dx = nullptr;               // (N, D) backward outputs; each may be null (not wanted)
  T* dcenters = nullptr;         // (M, D)
  T* dshapes = nullptr;          // like shapes
  T* dweights = nullptr;         // (M, F)
};

// Entries of one basis' shape parameters: 1, D or D * D.
inline int64_t shape_size(Shape s, int n_dims) {
  return s == Shape::Isotropic ? 1 : s == Shape::Diagonal ? n_dims : int64_t(n_dims) * n_dims;
}

F3D_HD inline float sin_(float v) { return sinf(v); }
F3D_HD inline double sin_(double v) { return ::sin(v); }
F3D_HD inline float cos_(float v) { return cosf(v); }
F3D_HD inline double cos_(double v) { return ::cos(v); }
F3D_HD inline float exp_(float v) { return expf(v); }
F3D_HD inline double exp_(double v) { return ::exp(v); }

// One neighbour of a point: its offset, the shaped offset u = A (x - c), r2 and the kernel value.
template <int D, typename T>
struct Neighbour {
  T diff[D];
  T u[D];
  T r2;
  T phi;
};

template <int D, typename T>
F3D_HD inline Neighbour<D, T> neighbour(const EvalArgs<T>& a, const T* x, int64_t j) {
  Neighbour<D, T> b;
  const T* c = a.centers + j * D;
  F3D_UNROLL for (int d = 0; d < D; ++d) b.diff[d] = x[d] - c[d];
  T r2 = T(0);
  if (a.shape == Shape::Isotropic) {  // as torch: s^2 * |diff|^2
    const T s = a.shapes[j];
    F3D_UNROLL for (int d = 0; d < D; ++d) b.u[d] = s * b.diff[d], r2 += b.diff[d] * b.diff[d];
    r2 *= s * s;
  } else if (a.shape == Shape::Diagonal) {
    const T* s = a.shapes + j * D;
    F3D_UNROLL for (int d = 0; d < D; ++d) b.u[d] = s[d] * b.diff[d], r2 += b.u[d] * b.u[d];
  } else {  // lower triangle of S only
    const T* s = a.shapes + j * D * D;
    F3D_UNROLL for (int r = 0; r < D; ++r) {
      T v = T(0);
      F3D_UNROLL for (int c2 = 0; c2 <= r; ++c2) v += s[r * D + c2] * b.diff[c2];
      b.u[r] = v;
      r2 += v * v;
    }
  }
  b.r2 = r2;
  b.phi = a.kernel == Kernel::InverseQuadratic ? T(1) / (T(1) + r2) : exp_(-r2);
  return b;
}

// y[f] += w[f] * b_f(phi) over the F channels.
template <typename T>
F3D_HD inline void add_features(const EvalArgs<T>& a, const T* w, T phi, T* y) {
  const int F = a.n_features, L = a.n_freqs;
  if (L == 0) {
    for (int f = 0; f < F; ++f) y[f] += w[f] * phi;
    return;
  }
  for (int l = 0; l < L; ++l) {
    const T s = sin_(phi * a.freqs[l]);
    for (int f = l; f < F; f += L) y[f] += w[f] * s;
  }
}

// y[n, :] = sum_k w[idx_k, :] * b(phi_k).
template <int D, typename T>
F3D_HD inline void forward_one(const EvalArgs<T>& a, int64_t n) {
  const T* x = a.x + n * D;
  const int64_t* idx = a.idx + n * a.k;
  T* y = a.y + n * a.n_features;
  for (int f = 0; f < a.n_features; ++f) y[f] = T(0);
  for (int k = 0; k < a.k; ++k) {
    const int64_t j = idx[k];
    const Neighbour<D, T> b = neighbour<D>(a, x, j);
    add_features(a, a.weights + j * a.n_features, b.phi, y);
  }
}

// d loss / d phi of one neighbour (g = dy row, w = its weight row); adds g_f b_f(phi) into dw
// (when not null).
template <typename T, class Add>
F3D_HD inline T feature_backward(const EvalArgs<T>& a, const T* w, const T* g, T phi, T* dw, Add add) {
  const int F = a.n_features, L = a.n_freqs;
  T dphi = T(0);
  if (L == 0) {
    for (int f = 0; f < F; ++f) {
      dphi += g[f] * w[f];
      if (dw) add(dw + f, g[f] * phi);
    }
    return dphi;
  }
  for (int l = 0; l < L; ++l) {
    const T arg = phi * a.freqs[l];
    const T s = sin_(arg), c = a.freqs[l] * cos_(arg);
    for (int f = l; f < F; f += L) {
      dphi += g[f] * w[f] * c;
      if (dw) add(dw + f, g[f] * s);
    }
  }
  return dphi;
}

// From dr2 = d loss / d r2 of one neighbour: d loss / d diff into dd (D,), and the shape
// parameters' gradient added into ds (when not null).
template <int D, typename T, class Add>
F3D_HD inline void shape_backward(const EvalArgs<T>& a, const Neighbour<D, T>& b, int64_t j, T dr2, T* dd, T* ds,
                                  Add add) {
  const T two = T(2) * dr2;
  if (a.shape == Shape::Isotropic) {
    const T s = a.shapes[j];
    T len2 = T(0);
    F3D_UNROLL for (int d = 0; d < D; ++d) dd[d] = two * s * b.u[d], len2 += b.diff[d] * b.diff[d];
    if (ds) add(ds + j, two * s * len2);
  } else if (a.shape == Shape::Diagonal) {
    const T* s = a.shapes + j * D;
    F3D_UNROLL for (int d = 0; d < D; ++d) {
      dd[d] = two * s[d] * b.u[d];
      if (ds) add(ds + j * D + d, two * b.u[d] * b.diff[d]);
    }
  } else {  // u = L diff: dd = 2 dr2 L^T u, dL[r][c] = 2 dr2 u[r] diff[c] for c <= r
    const T* s = a.shapes + j * D * D;
    F3D_UNROLL for (int c2 = 0; c2 < D; ++c2) {
      T v = T(0);
      F3D_UNROLL for (int r = c2; r < D; ++r) v += s[r * D + c2] * b.u[r];
      dd[c2] = two * v;
    }
    if (ds) {
      F3D_UNROLL for (int r = 0; r < D; ++r) {
        F3D_UNROLL for (int c2 = 0; c2 <= r; ++c2) add(ds + (j * D + r) * D + c2, two * b.u[r] * b.diff[c2]);
      }
    }
  }
}

// One point's backward: dx row written (when wanted), parameter gradients added through `add`
// into dcenters / dshapes / dweights (those not null).
template <int D, typename T, class Add>
F3D_HD inline void backward_one(const EvalArgs<T>& a, int64_t n, Add add) {
  const T* x = a.x + n * D;
  const T* g = a.dy + n * a.n_features;
  const int64_t* idx = a.idx + n * a.k;
  T gx[D];
  F3D_UNROLL for (int d = 0; d < D; ++d) gx[d] = T(0);
  for (int k = 0; k < a.k; ++k) {
    const int64_t j = idx[k];
    const Neighbour<D, T> b = neighbour<D>(a, x, j);
    const T* w = a.weights + j * a.n_features;
    T* dw = a.dweights ? a.dweights + j * a.n_features : nullptr;
    const T dphi = feature_backward(a, w, g, b.phi, dw, add);
    const T dr2 = a.kernel == Kernel::InverseQuadratic ? -dphi * b.phi * b.phi : -dphi * b.phi;
    T dd[D];
    shape_backward<D>(a, b, j, dr2, dd, a.dshapes, add);
    F3D_UNROLL for (int d = 0; d < D; ++d) {
      gx[d] += dd[d];
      if (a.dcenters) add(a.dcenters + j * D + d, -dd[d]);
    }
  }
  if (a.dx) {
    F3D_UNROLL for (int d = 0; d < D; ++d) a.dx[n * D + d] = gx[d];
  }
}

// Launchers. CPU: T = float or double, threads from f3d::num_threads(); the parameter gradients
// are accumulated in a fixed number of point chunks (set by N and the gradient size, not by the
// thread count), each into its own copy, summed in chunk order: the result is the same for any
// thread count. CUDA: float or double, one thread per point on `stream`, atomics for the scatter.
// Backward outputs that are null are skipped; those given are overwritten (zeroed first).
// How many of the n entries of idx lie outside [0, m) (the bindings refuse those before a launch;
// CUDA: idx on `device`, synchronises `stream`).
int64_t count_out_of_range_cpu(const int64_t* idx, int64_t n, int64_t m);
int64_t count_out_of_range_cuda(const int64_t* idx, int64_t n, int64_t m, void* stream, int device);

template <typename T>
void eval_forward_cpu(const EvalArgs<T>& a);
template <typename T>
void eval_backward_cpu(const EvalArgs<T>& a);
template <typename T>
void eval_forward_cuda(const EvalArgs<T>& a, void* stream, int device);
template <typename T>
void eval_backward_cuda(const EvalArgs<T>& a, void* stream, int device);

}  // namespace rbf
}  // namespace f3d
