// Loop shapes shared by the CPU launchers of the table-based encodings (lattice.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "common/parallel.h"

namespace f3d {

struct PlainAdd {
  template <typename T>
  void operator()(T* p, T v) const { *p += v; }
};

// Points are split into one contiguous range per thread, and each range is walked level by
// level: consecutive lookups then share one level's table, which is what keeps the coarse levels
// in cache (the lattice launchers walk a level in blocks of points: encodings/lattice_blocks.h).
constexpr int64_t kMinRange = 1024;

// Calls body(begin, end) once per range; returns the number of ranges.
template <typename Body>
inline int64_t per_thread_ranges(int64_t n, Body&& body) {
  const int64_t range = std::max<int64_t>(kMinRange, (n + num_threads() - 1) / num_threads());
  const int64_t ranges = (n + range - 1) / range;
  parallel_for(ranges, 1, [&](int64_t rb, int64_t re) {
    for (int64_t r = rb; r < re; ++r) body(r * range, std::min(n, (r + 1) * range));
  });
  return ranges;
}

template <typename T>
inline void zero_rows(T* p, int64_t b, int64_t e, int cols) {
  std::fill(p + b * cols, p + e * cols, T(0));
}

// Zeroes the table-gradient rows of levels [l0, l1) (a.dtable, laid out by a.layout).
template <class A>
inline void zero_levels(const A& a, int l0, int l1) {
  const auto& L = a.layout;
  for (int l = l0; l < l1; ++l) zero_rows(a.dtable, L.offset[l], L.offset[l] + L.size[l], L.n_features);
}

}  // namespace f3d
