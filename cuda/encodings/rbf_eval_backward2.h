// Double backward of the fused RBF evaluation: the per-point body shared by the CPU launcher
// (rbf_eval.cpp) and the CUDA launcher (rbf_eval.cu).
//
// The first backward (rbf_eval.h) maps dy = g (N, F) to dx, dcenters, dweights (and dshapes).
// This op takes the incoming gradients of those outputs, ddx (N, D), ddcenters (M, D) and
// ddweights (M, F) (each may be null; ddshapes is not covered: the Python side recomputes through
// torch when it is given), and returns the gradients of
//   L2 = sum_n ddx_n . dx_n + sum_j ddcenters_j . dcenters_j + sum_jf ddweights_jf dweights_jf
// w.r.t. dy, x, centers, shapes and weights.
//
// Math, per neighbour j of point n (notation of rbf_eval.h): diff = x - c_j, A = A_j, u = A diff,
// rho = |u|^2, phi = kappa(rho), kappa1 = d phi / d rho, kappa2 = d kappa1 / d rho
// (1 / (1 + rho): -phi^2, 2 phi^3; exp(-rho): -phi, phi); b_f(phi) = sin(omega_f phi) or phi.
// The first backward's position gradient of this neighbour is dd = 2 kappa1 P A^T u with
// P = sum_f g_f w_jf b'_f, and dcenters_j = -sum dd, so the ddx and ddcenters terms together are
//   S = e . dd = 2 kappa1 P q,   e = ddx_n - ddcenters_j,   q = (A e) . u.
// The ddweights term is S_w = sum_f ddw_jf g_f b_f(phi). Their derivatives:
//   d/dg_f    = 2 kappa1 q w_jf b'_f + ddw_jf b_f         (into ddy)
//   d/dw_jf   = 2 kappa1 q g_f b'_f                       (into the weights' gradient)
//   d/drho  R = 2 q (kappa2 P + kappa1^2 P2) + kappa1 Q,  P2 = sum_f g_f w_jf b''_f,
//                                                         Q = sum_f ddw_jf g_f b'_f
//   d/dq  S_q = 2 kappa1 P
// and with rho = |A diff|^2, q = (A e) . (A diff), v = 2 R u + S_q A e:
//   d/d diff = A^T v             (added to the position's gradient, subtracted from center j's)
//   d/dA     = v diff^T + S_q u e^T   (isotropic: its trace; diagonal: its diagonal; full: its
//                                      lower triangle)
#pragma once

#include <cstdint>

#include "encodings/rbf_eval.h"

namespace f3d {
namespace rbf {

// eval holds x, idx, the parameters, freqs and dy (the first backward's input g); its dx,
// dcenters, dshapes and dweights are this op's outputs: the gradients of L2 w.r.t. x and the
// parameters. Every pointer below, and each of those outputs, may be null.
template <typename T>
struct Backward2Args {
  EvalArgs<T> eval;
  const T* ddx = nullptr;        // (N, D) incoming gradient of dx
  const T* ddcenters = nullptr;  // (M, D) of dcenters
  const T* ddweights = nullptr;  // (M, F) of dweights
  T* ddy = nullptr;              // (N, F) output: the gradient w.r.t. dy
};

// The kernel's first and second derivative w.r.t. rho, from its value phi.
template <typename T>
struct KernelSlope {
  T k1, k2;
};

template <typename T>
F3D_HD inline KernelSlope<T> kernel_slope(Kernel kernel, T phi) {
  if (kernel == Kernel::InverseQuadratic) return {-phi * phi, T(2) * phi * phi * phi};
  return {-phi, phi};
}

// v = A_j e.
template <int D, typename T>
F3D_HD inline void apply_shape(const EvalArgs<T>& a, int64_t j, const T* e, T* v) {
  if (a.shape == Shape::Isotropic) {
    F3D_UNROLL for (int d = 0; d < D; ++d) v[d] = a.shapes[j] * e[d];
  } else if (a.shape == Shape::Diagonal) {
    F3D_UNROLL for (int d = 0; d < D; ++d) v[d] = a.shapes[j * D + d] * e[d];
  } else {
    const T* s = a.shapes + j * D * D;
    F3D_UNROLL for (int r = 0; r < D; ++r) {
      T sum = T(0);
      F3D_UNROLL for (int c = 0; c <= r; ++c) sum += s[r * D + c] * e[c];
      v[r] = sum;
    }
  }
}

// v = A_j^T w.
template <int D, typename T>
F3D_HD inline void apply_shape_t(const EvalArgs<T>& a, int64_t j, const T* w, T* v) {
  if (a.shape != Shape::Full) {
    apply_shape<D>(a, j, w, v);  // diagonal: its own transpose
    return;
  }
  const T* s = a.shapes + j * D * D;
  F3D_UNROLL for (int c = 0; c < D; ++c) {
    T sum = T(0);
    F3D_UNROLL for (int r = c; r < D; ++r) sum += s[r * D + c] * w[r];
    v[c] = sum;
  }
}

// Adds the shape parameters' share of G = v diff^T + sq u e^T into ds (basis j).
template <int D, typename T, class Add>
F3D_HD inline void add_shape_grad(const EvalArgs<T>& a, int64_t j, const T* v, const T* diff, T sq, const T* u,
                                  const T* e, T* ds, Add add) {
  if (a.shape == Shape::Isotropic) {
    T trace = T(0);
    F3D_UNROLL for (int d = 0; d < D; ++d) trace += v[d] * diff[d] + sq * u[d] * e[d];
    add(ds + j, trace);
  } else if (a.shape == Shape::Diagonal) {
    F3D_UNROLL for (int d = 0; d < D; ++d) add(ds + j * D + d, v[d] * diff[d] + sq * u[d] * e[d]);
  } else {
    F3D_UNROLL for (int r = 0; r < D; ++r) {
      F3D_UNROLL for (int c = 0; c <= r; ++c) add(ds + (j * D + r) * D + c, v[r] * diff[c] + sq * u[r] * e[c]);
    }
  }
}

// Sums over the channels of one neighbour: P = sum g w b', P2 = sum g w b'', Q = sum ddw g b'.
template <typename T>
struct FeatureSums {
  T p = T(0), p2 = T(0), q = T(0);
};

// One channel: b = its basis value, b1 = b', b2 = b''. Adds into the sums, ddy row and gw row.
template <typename T, class Add>
F3D_HD inline void feature2_channel(int f, T b, T b1, T b2, const T* w, const T* g, const T* ddw, T c1, T* ddy,
                                    T* gw, FeatureSums<T>& s, Add add) {
  const T gw1 = g[f] * b1;
  s.p += gw1 * w[f];
  s.p2 += g[f] * w[f] * b2;
  if (ddw) s.q += ddw[f] * gw1;
  if (ddy) ddy[f] += c1 * w[f] * b1 + (ddw ? ddw[f] * b : T(0));
  if (gw) add(gw + f, c1 * gw1);
}

// The channel loop of one neighbour (w, ddw: its weight rows; g, ddy: the point's rows; gw: its
// weights' gradient row; c1 = 2 kappa1 q). ddw, ddy and gw may be null.
template <typename T, class Add>
F3D_HD inline FeatureSums<T> feature_backward2(const EvalArgs<T>& a, const T* w, const T* g, const T* ddw, T phi,
                                               T c1, T* ddy, T* gw, Add add) {
  const int F = a.n_features, L = a.n_freqs;
  FeatureSums<T> s;
  if (L == 0) {
    for (int f = 0; f < F; ++f) feature2_channel(f, phi, T(1), T(0), w, g, ddw, c1, ddy, gw, s, add);
    return s;
  }
  for (int l = 0; l < L; ++l) {
    const T om = a.freqs[l], arg = phi * om;
    const T sn = sin_(arg), b1 = om * cos_(arg), b2 = -om * om * sn;
    for (int f = l; f < F; f += L) feature2_channel(f, sn, b1, b2, w, g, ddw, c1, ddy, gw, s, add);
  }
  return s;
}

// e = ddx_n - ddcenters_j (the missing ones count as zero).
template <int D, typename T>
F3D_HD inline void direction(const Backward2Args<T>& b, int64_t n, int64_t j, T* e) {
  F3D_UNROLL for (int d = 0; d < D; ++d) {
    e[d] = (b.ddx ? b.ddx[n * D + d] : T(0)) - (b.ddcenters ? b.ddcenters[j * D + d] : T(0));
  }
}

// The position part of one neighbour: d L2 / d diff returned in dd, the shape gradient added.
template <int D, typename T, class Add>
F3D_HD inline void geometry_backward2(const EvalArgs<T>& a, const Neighbour<D, T>& nb, int64_t j, const T* e,
                                      const T* ae, T r, T sq, T* dd, Add add) {
  T v[D];
  F3D_UNROLL for (int d = 0; d < D; ++d) v[d] = T(2) * r * nb.u[d] + sq * ae[d];
  apply_shape_t<D>(a, j, v, dd);
  if (a.dshapes) add_shape_grad<D>(a, j, v, nb.diff, sq, nb.u, e, a.dshapes, add);
}

// One point's double backward: its ddy and x-gradient rows written (when wanted), the parameter
// gradients added through `add` (those not null).
template <int D, typename T, class Add>
F3D_HD inline void backward2_one(const Backward2Args<T>& b, int64_t n, Add add) {
  const EvalArgs<T>& a = b.eval;
  const int F = a.n_features;
  const T* x = a.x + n * D;
  const T* g = a.dy + n * F;
  T* ddy = b.ddy ? b.ddy + n * F : nullptr;
  if (ddy) {
    for (int f = 0; f < F; ++f) ddy[f] = T(0);
  }
  const bool geometry = a.dx || a.dcenters || a.dshapes;
  T gx[D];
  F3D_UNROLL for (int d = 0; d < D; ++d) gx[d] = T(0);
  for (int k = 0; k < a.k; ++k) {
    const int64_t j = a.idx[n * a.k + k];
    const Neighbour<D, T> nb = neighbour<D>(a, x, j);
    T e[D], ae[D], q = T(0);
    direction<D>(b, n, j, e);
    apply_shape<D>(a, j, e, ae);
    F3D_UNROLL for (int d = 0; d < D; ++d) q += ae[d] * nb.u[d];
    const KernelSlope<T> ks = kernel_slope(a.kernel, nb.phi);
    const T* ddw = b.ddweights ? b.ddweights + j * F : nullptr;
    T* gw = a.dweights ? a.dweights + j * F : nullptr;
    const FeatureSums<T> s = feature_backward2(a, a.weights + j * F, g, ddw, nb.phi, T(2) * ks.k1 * q, ddy, gw, add);
    if (!geometry) continue;
    const T r = T(2) * q * (ks.k2 * s.p + ks.k1 * ks.k1 * s.p2) + ks.k1 * s.q;
    T dd[D];
    geometry_backward2<D>(a, nb, j, e, ae, r, T(2) * ks.k1 * s.p, dd, add);
    F3D_UNROLL for (int d = 0; d < D; ++d) {
      gx[d] += dd[d];
      if (a.dcenters) add(a.dcenters + j * D + d, -dd[d]);
    }
  }
  if (a.dx) {
    F3D_UNROLL for (int d = 0; d < D; ++d) a.dx[n * D + d] = gx[d];
  }
}

// Launchers, as eval_backward_*: the outputs given (eval.dx, eval.dcenters, eval.dshapes,
// eval.dweights, ddy) are overwritten; CPU parameter gradients summed over fixed point chunks in
// chunk order (the same for any thread count), CUDA ones with atomics.
template <typename T>
void eval_backward2_cpu(const Backward2Args<T>& b);
template <typename T>
void eval_backward2_cuda(const Backward2Args<T>& b, void* stream, int device);

}  // namespace rbf
}  // namespace f3d
