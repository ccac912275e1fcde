// Volume-rendering compositing of packed samples, per-ray work shared by the CPU launcher
// (composite.cpp) and the CUDA launcher (composite.cu).
//
// Ray r owns samples [offsets[r], offsets[r + 1]) in order along the ray. Sample s has density
// sigma_s over [t_start, t_end]: tau_s = sigma_s (t_end - t_start), alpha_s = 1 - exp(-tau_s),
// transmittance T_s = prod_{j<s} exp(-tau_j), weight w_s = T_s alpha_s. The ray accumulates
// out = sum_s w_s v_s over C value channels and opacity = sum_s w_s = 1 - T_end. Early stop:
// once T_s < t_min the ray ends there (samples from s on get weight 0 and no gradient), the same
// rule in forward and backward.
//
// Backward. With T_{s+1} = T_s exp(-tau_s) and out = sum_s (T_s - T_{s+1}) v_s,
//   d out / d tau_s = T_{s+1} v_s - sum_{k>s} w_k v_k,
//   d opacity / d tau_s = T_end,
//   d w_k / d tau_s = T_{s+1} when k = s, -w_k when k > s,
// so one forward walk per ray with running sums gives every gradient:
//   g_sigma_s = dt_s [ g_out . (T_{s+1} v_s - (out - sum_{k<=s} w_k v_k)) + g_opacity T_end
//                      + g_w_s T_{s+1} - (sum_k g_w_k w_k - sum_{k<=s} g_w_k w_k) ],
//   g_values_s = w_s g_out.
#pragma once

#include <cstdint>

#include "common/macros.h"

namespace f3d {
namespace composite {

template <typename T>
struct Args {
  const T* sigmas = nullptr;    // (S,)
  const T* t_starts = nullptr;  // (S,)
  const T* t_ends = nullptr;    // (S,)
  const T* values = nullptr;    // (S, C), may be null when C == 0
  const int64_t* offsets = nullptr;  // (R + 1,)
  int64_t n_rays = 0;
  int channels = 0;
  T t_min = T(0);  // early-stop transmittance
  // forward outputs
  T* out = nullptr;      // (R, C)
  T* opacity = nullptr;  // (R,)
  T* weights = nullptr;  // (S,)
  T* trans = nullptr;    // (S,) transmittance before each sample (0 after an early stop)
  // backward inputs (out and opacity above are the forward's) and outputs
  const T* g_out = nullptr;      // (R, C)
  const T* g_opacity = nullptr;  // (R,)
  const T* g_weights = nullptr;  // (S,), may be null
  T* g_sigmas = nullptr;         // (S,)
  T* g_values = nullptr;         // (S, C)
};

F3D_HD inline float expm1_(float v) { return expm1f(v); }
F3D_HD inline double expm1_(double v) { return ::expm1(v); }

// alpha = 1 - exp(-tau) without cancellation for small tau, and decay = exp(-tau) as 1 - alpha:
// one transcendental per sample. (decay loses relative precision only where alpha ~ 1, where
// T * decay is below any early-stop threshold anyway.)
template <typename T>
F3D_HD inline T alpha_of(const Args<T>& a, int64_t s, T& decay) {
  const T alpha = -expm1_(-a.sigmas[s] * (a.t_ends[s] - a.t_starts[s]));
  decay = T(1) - alpha;
  return alpha;
}

template <typename T>
F3D_HD inline void forward_ray(const Args<T>& a, int64_t r) {
  const int C = a.channels;
  T* out = a.out + r * C;
  for (int c = 0; c < C; ++c) out[c] = T(0);
  T t = T(1);
  const int64_t end = a.offsets[r + 1];
  int64_t s = a.offsets[r];
  for (; s < end && !(t < a.t_min); ++s) {
    T decay;
    const T w = t * alpha_of(a, s, decay);
    const T* v = a.values + s * C;
    for (int c = 0; c < C; ++c) out[c] += w * v[c];
    a.weights[s] = w;
    a.trans[s] = t;
    t *= decay;
  }
  for (; s < end; ++s) {
    a.weights[s] = T(0);
    a.trans[s] = T(0);
  }
  a.opacity[r] = T(1) - t;
}

// Sum over the ray's live samples of g_w_s w_s (0 without g_weights).
template <typename T>
F3D_HD inline T weight_grad_total(const Args<T>& a, int64_t r) {
  T total = T(0);
  if (a.g_weights == nullptr) return total;
  T t = T(1);
  for (int64_t s = a.offsets[r]; s < a.offsets[r + 1] && !(t < a.t_min); ++s) {
    T decay;
    total += a.g_weights[s] * t * alpha_of(a, s, decay);
    t *= decay;
  }
  return total;
}

// g_out . (out - prefix) with prefix = sum_{k<=s} w_k v_k kept per channel in `rest`, which
// starts as g_out . out and loses g_out . w_s v_s at each sample.
template <typename T>
F3D_HD inline void backward_ray(const Args<T>& a, int64_t r) {
  const int C = a.channels;
  const T* g = a.g_out + r * C;
  const T* out = a.out + r * C;
  T rest = T(0);
  for (int c = 0; c < C; ++c) rest += g[c] * out[c];
  T rest_w = weight_grad_total(a, r);
  const T op_term = a.g_opacity[r] * (T(1) - a.opacity[r]);
  T t = T(1);
  const int64_t end = a.offsets[r + 1];
  int64_t s = a.offsets[r];
  for (; s < end && !(t < a.t_min); ++s) {
    T decay;
    const T w = t * alpha_of(a, s, decay);
    const T t_next = t * decay;
    const T* v = a.values + s * C;
    T gv = T(0);
    for (int c = 0; c < C; ++c) {
      gv += g[c] * v[c];
      a.g_values[s * C + c] = w * g[c];
    }
    rest -= w * gv;
    T gtau = t_next * gv - rest + op_term;
    if (a.g_weights != nullptr) {
      rest_w -= a.g_weights[s] * w;
      gtau += a.g_weights[s] * t_next - rest_w;
    }
    a.g_sigmas[s] = gtau * (a.t_ends[s] - a.t_starts[s]);
    t = t_next;
  }
  for (; s < end; ++s) {
    a.g_sigmas[s] = T(0);
    for (int c = 0; c < C; ++c) a.g_values[s * C + c] = T(0);
  }
}

template <typename T>
void forward_cpu(const Args<T>& a);
template <typename T>
void backward_cpu(const Args<T>& a);
template <typename T>
void forward_cuda(const Args<T>& a, void* stream, int device);
template <typename T>
void backward_cuda(const Args<T>& a, void* stream, int device);

}  // namespace composite
}  // namespace f3d
