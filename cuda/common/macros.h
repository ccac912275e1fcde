// Shared macros for code compiled by both the host compiler and nvcc.
#pragma once

#include <cmath>

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

template <int V>
struct IntC {
  static constexpr int value = V;
};

}  // namespace f3d
