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
// so one walk per ray over the forward's w_s and T_s, with running sums, gives every gradient:
//   g_sigma_s = dt_s [ g_out . (T_{s+1} v_s - (out - sum_{k<=s} w_k v_k)) + g_opacity T_end
//                      + g_w_s T_{s+1} - (sum_k g_w_k w_k - sum_{k<=s} g_w_k w_k) ],
//   g_values_s = w_s g_out.
#pragma once

#include <cstdint>
#include <type_traits>

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
  T* weights = nullptr;  // (S,); an input of the backward
  T* trans = nullptr;    // (S,) transmittance before each sample (0 after an early stop); ditto
  // backward inputs (out and opacity above are the forward's) and outputs
  const T* g_out = nullptr;      // (R, C)
  const T* g_opacity = nullptr;  // (R,)
  const T* g_weights = nullptr;  // (S,), may be null
  T* g_sigmas = nullptr;         // (S,)
  T* g_values = nullptr;         // (S, C)
};

// exp(x) - 1 for float, inline and branch-free so that a block of samples compiles to SIMD on the
// host (glibc's expm1f is a call per sample and was half of the forward's instructions). x is
// clamped to [-87.3, 88] (the result is -1 below, as expm1f's is to within an ulp); NaN stays NaN.
// x = n ln2 + r with |r| <= ln2/2; expm1(x) = 2^n expm1(r) + (2^n - 1), where expm1(r) is its
// Taylor series to r^7 (truncation below 2e-8 relative) and 2^n is built from the exponent bits.
// Within 2 ulp of expm1 wherever the result is above 1e-38 in magnitude.
F3D_HD inline float expm1_(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.0f ? 88.0f : x;
  const float shifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  const float k = x * 1.44269504f + shifter;
  const float n = k - shifter;
  const float r = (x - n * 0.693145752f) - n * 1.42860677e-6f;  // ln2 split: the first part times n is exact
  const float p = r + r * r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040))))));
  const float scale = bits_to_float((float_to_bits(k) - 0x4B400000u + 127u) << 23);  // 2^n
  return scale * p + (scale - 1.0f);
}
F3D_HD inline double expm1_(double v) { return ::expm1(v); }

// Samples are taken in blocks of kBlock: the block's alphas (the only transcendental work) are
// computed together, lanes independent, then walked in order. A compile-time trip count lets the
// host compiler keep the block in registers and vectorise the alphas.
constexpr int kBlock = 8;

template <typename T>
F3D_HD inline T alpha_at(const Args<T>& a, int64_t s) {
  return -expm1_(-a.sigmas[s] * (a.t_ends[s] - a.t_starts[s]));
}

// alpha_i = 1 - exp(-tau_i) for samples [s, s + n), n <= kBlock, into alpha[0, n). A full block
// reads its samples as vectors; in the last, partial one lanes past n repeat sample s.
template <typename T>
F3D_HD inline void block_alphas(const Args<T>& a, int64_t s, int64_t n, T (&alpha)[kBlock]) {
  if (n == kBlock) {
    F3D_SIMD_LOOP
    for (int i = 0; i < kBlock; ++i) alpha[i] = alpha_at(a, s + i);
  } else {
    F3D_SIMD_LOOP
    for (int i = 0; i < kBlock; ++i) alpha[i] = alpha_at(a, s + (i < n ? i : 0));
  }
}

F3D_HD inline int64_t block_size(int64_t s, int64_t end) { return end - s < kBlock ? end - s : kBlock; }

// Walks the live samples (those before the early stop) of ray r, calling
// visit(s, t, alpha) with t the transmittance before sample s (decay = 1 - alpha); returns
// (through t and s) the transmittance after the last live sample and the first dead sample.
template <typename T, typename Visit>
F3D_HD inline void walk_ray(const Args<T>& a, int64_t r, T& t, int64_t& s, Visit&& visit) {
  const int64_t end = a.offsets[r + 1];
  t = T(1);
  s = a.offsets[r];
  while (s < end && !(t < a.t_min)) {
    T alpha[kBlock];
    const int64_t n = block_size(s, end);
    block_alphas(a, s, n, alpha);
    F3D_UNROLL
    for (int i = 0; i < kBlock; ++i) {
      if (i == n || t < a.t_min) break;
      visit(s, t, alpha[i]);
      t *= T(1) - alpha[i];
      ++s;
    }
  }
}

// The value channels of a ray: C > 0 a compile-time count (the usual 1, 3 and 4: colour, colour +
// depth), whose sums stay in registers, off the per-sample loads and stores; C == 0: a.channels
// at run time, summed in memory.
template <typename T, int C>
F3D_HD inline int channel_count(const Args<T>& a) {
  return C > 0 ? C : a.channels;
}

template <typename T, int C>
F3D_HD inline void forward_ray_c(const Args<T>& a, int64_t r) {
  const int nc = channel_count<T, C>(a);
  T* out = a.out + r * nc;
  T acc[C > 0 ? C : 1];
  T* sum = C > 0 ? acc : out;
  F3D_UNROLL
  for (int c = 0; c < nc; ++c) sum[c] = T(0);
  T t;
  int64_t s;
  walk_ray(a, r, t, s, [&](int64_t k, T tk, T alpha) {
    const T w = tk * alpha;
    const T* v = a.values + k * nc;
    F3D_UNROLL
    for (int c = 0; c < nc; ++c) sum[c] += w * v[c];
    a.weights[k] = w;
    a.trans[k] = tk;
  });
  if (C > 0)
    for (int c = 0; c < nc; ++c) out[c] = acc[c];
  for (const int64_t end = a.offsets[r + 1]; s < end; ++s) {
    a.weights[s] = T(0);
    a.trans[s] = T(0);
  }
  a.opacity[r] = T(1) - t;
}

// Calls fn(std::integral_constant<int, C>()) with C the compile-time count for a.channels (0: run time).
template <typename T, typename Fn>
F3D_HD inline void with_channels(const Args<T>& a, Fn&& fn) {
  switch (a.channels) {
    case 1: fn(std::integral_constant<int, 1>()); break;
    case 3: fn(std::integral_constant<int, 3>()); break;
    case 4: fn(std::integral_constant<int, 4>()); break;
    default: fn(std::integral_constant<int, 0>()); break;
  }
}

template <typename T>
F3D_HD inline void forward_ray(const Args<T>& a, int64_t r) {
  with_channels(a, [&](auto c) { forward_ray_c<T, decltype(c)::value>(a, r); });
}

// The backward reads the forward's weights w_s and transmittances T_s (its `trans` output, 0 past
// the early stop) instead of recomputing them: sample s was live iff !(T_s < t_min), exactly the
// forward's test, and T_{s+1} = T_s - w_s. No transcendental work, and no blocks.
template <typename T>
F3D_HD inline bool live(const Args<T>& a, int64_t s) {
  return !(a.trans[s] < a.t_min);
}

// Sum over the ray's live samples of g_w_s w_s (0 without g_weights).
template <typename T>
F3D_HD inline T weight_grad_total(const Args<T>& a, int64_t r) {
  T total = T(0);
  if (a.g_weights == nullptr) return total;
  for (int64_t s = a.offsets[r]; s < a.offsets[r + 1] && live(a, s); ++s) total += a.g_weights[s] * a.weights[s];
  return total;
}

// g_out . (out - prefix) with prefix = sum_{k<=s} w_k v_k kept per channel in `rest`, which
// starts as g_out . out and loses g_out . w_s v_s at each sample.
template <typename T, int C>
F3D_HD inline void backward_ray_c(const Args<T>& a, int64_t r) {
  const int nc = channel_count<T, C>(a);
  const T* g = a.g_out + r * nc;
  T g_reg[C > 0 ? C : 1];
  if (C > 0) {
    for (int c = 0; c < nc; ++c) g_reg[c] = g[c];
    g = g_reg;
  }
  const T* out = a.out + r * nc;
  T rest = T(0);
  for (int c = 0; c < nc; ++c) rest += g[c] * out[c];
  T rest_w = weight_grad_total(a, r);
  const T op_term = a.g_opacity[r] * (T(1) - a.opacity[r]);
  const int64_t end = a.offsets[r + 1];
  int64_t s = a.offsets[r];
  for (; s < end && live(a, s); ++s) {
    const T w = a.weights[s];
    const T t_next = a.trans[s] - w;
    const T* v = a.values + s * nc;
    T* g_v = a.g_values + s * nc;
    T gv = T(0);
    F3D_UNROLL
    for (int c = 0; c < nc; ++c) {
      gv += g[c] * v[c];
      g_v[c] = w * g[c];
    }
    rest -= w * gv;
    T gtau = t_next * gv - rest + op_term;
    if (a.g_weights != nullptr) {
      rest_w -= a.g_weights[s] * w;
      gtau += a.g_weights[s] * t_next - rest_w;
    }
    a.g_sigmas[s] = gtau * (a.t_ends[s] - a.t_starts[s]);
  }
  for (int64_t k = s; k < end; ++k) a.g_sigmas[k] = T(0);
  for (int64_t k = s * nc; k < end * nc; ++k) a.g_values[k] = T(0);  // one run, not one per sample
}

template <typename T>
F3D_HD inline void backward_ray(const Args<T>& a, int64_t r) {
  with_channels(a, [&](auto c) { backward_ray_c<T, decltype(c)::value>(a, r); });
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
