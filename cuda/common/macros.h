// Shared macros for code compiled by both the host compiler and nvcc.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define F3D_HD __host__ __device__
#else
#define F3D_HD
#endif

namespace f3d {

F3D_HD inline float floor_(float v) { return floorf(v); }
F3D_HD inline double floor_(double v) { return ::floor(v); }

template <int V>
struct IntC {
  static constexpr int value = V;
};

}  // namespace f3d
