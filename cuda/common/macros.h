// Shared macros for code compiled by both the host compiler and nvcc.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define F3D_HD __host__ __device__
#else
#define F3D_HD
#endif

// Fully unroll a loop with a compile-time trip count (corners of a cell, features).
#if defined(__CUDACC__)
#define F3D_UNROLL _Pragma("unroll")
#elif defined(__GNUC__) && !defined(__clang__)
#define F3D_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define F3D_UNROLL _Pragma("unroll")
#else
#define F3D_UNROLL
#endif

// A loop over independent lanes with a compile-time trip count. On the host it stays a loop, for
// GCC's vectoriser (which runs after complete unrolling, and did not vectorise the unrolled
// copies); on the device it is unrolled, so the lanes live in registers.
#if defined(__CUDACC__)
#define F3D_SIMD_LOOP _Pragma("unroll")
#elif defined(__GNUC__) && !defined(__clang__)
#define F3D_SIMD_LOOP _Pragma("GCC unroll 1")
#elif defined(__clang__)
#define F3D_SIMD_LOOP _Pragma("nounroll")
#else
#define F3D_SIMD_LOOP
#endif

namespace f3d {

// The bits of a float and back (a reinterpretation, not a conversion).
F3D_HD inline uint32_t float_to_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
#endif
}
F3D_HD inline float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
#endif
}

F3D_HD inline float floor_(float v) { return floorf(v); }
F3D_HD inline double floor_(double v) { return ::floor(v); }

// floor of a finite v >= 0 below 2^63, as the encodings need it (clamped positions times a
// positive scale). On the host a truncating conversion, which compiles inline: floorf is a
// library call on baseline x86-64 (no SSE4.1 round) and showed in the simplex grid's profile
// (benchmarks/RESULTS.md, "Figures moved out of code comments").
template <typename T>
F3D_HD inline T floor_nonneg(T v) {
#if defined(__CUDA_ARCH__)
  return floor_(v);
#else
  return static_cast<T>(static_cast<int64_t>(v));
#endif
}

// a * b + c with the product rounded before the sum, on the device as on the host. nvcc fuses
// a * b + c into one FMA (a single rounding) and the host build for baseline x86-64 cannot, so
// where a kernel must agree with its CPU twin bit for bit (the cell a point falls in, the order
// of its nearest neighbours) the device rounds twice too.
template <typename T>
F3D_HD inline T mul_add_rn(T a, T b, T c) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) return __fadd_rn(__fmul_rn(a, b), c);
  else return __dadd_rn(__dmul_rn(a, b), c);
#else
  return a * b + c;
#endif
}

template <int V>
struct IntC {
  static constexpr int value = V;
};

}  // namespace f3d
