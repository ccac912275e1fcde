// Shared macros for code compiled by both the host compiler and nvcc.
#pragma once

#include <cmath>
#include <cstdint>

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

namespace f3d {

F3D_HD inline float floor_(float v) { return floorf(v); }
F3D_HD inline double floor_(double v) { return ::floor(v); }

// floor of a finite v >= 0 below 2^63, as the encodings need it (clamped positions times a
// positive scale). On the host a truncating conversion, which compiles inline: floorf is a
// library call on baseline x86-64 (no SSE4.1 round), and took 17% of a simplex-grid forward.
template <typename T>
F3D_HD inline T floor_nonneg(T v) {
#if defined(__CUDA_ARCH__)
  return floor_(v);
#else
  return static_cast<T>(static_cast<int64_t>(v));
#endif
}

template <int V>
struct IntC {
  static constexpr int value = V;
};

}  // namespace f3d
