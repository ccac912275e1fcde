// Weights of multilinear interpolation and their derivatives, used by the multilinear stencils of
// lattice.h (hash grid, dense grid, tri-plane). A corner's weight is the product over axes of a
// per-axis factor lin[d] (s or 1 - s of the fractional coordinate), with first and second
// derivatives dlin[d], ddlin[d] w.r.t. that axis' coordinate.
#pragma once

#include "common/macros.h"

namespace f3d {
namespace multilinear {

// Product of lin over all axes except `skip_a` and `skip_b` (pass -1 to skip none).
template <int D, typename T>
F3D_HD inline T prod_except(const T lin[D], int skip_a, int skip_b) {
  T p = T(1);
  for (int d = 0; d < D; ++d)
    if (d != skip_a && d != skip_b) p *= lin[d];
  return p;
}

// dw/dx_d for every axis.
template <int D, typename T>
F3D_HD inline void weight_grad(const T lin[D], const T dlin[D], T dw[D]) {
  for (int d = 0; d < D; ++d) dw[d] = dlin[d] * prod_except<D>(lin, d, -1);
}

// hess_k = sum_d v_d d2w/(dx_d dx_k).
template <int D, typename T>
F3D_HD inline void weight_hess_vec(const T lin[D], const T dlin[D], const T ddlin[D], const T v[D], T hess[D]) {
  for (int k = 0; k < D; ++k) {
    T acc = T(0);
    for (int d = 0; d < D; ++d) {
      const T h = (d == k) ? ddlin[d] * prod_except<D>(lin, d, -1) : dlin[d] * dlin[k] * prod_except<D>(lin, d, k);
      acc += v[d] * h;
    }
    hess[k] = acc;
  }
}

}  // namespace multilinear
}  // namespace f3d
