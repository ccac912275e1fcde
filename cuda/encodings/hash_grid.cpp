// CPU launchers for the hash-grid kernels: parallel-for over points (or over levels where the
// kernel scatters into the table, so that each level's rows are owned by one task: no races,
// and the sums come out in the same order every run).
#include <algorithm>
#include <stdexcept>

#include "common/parallel.h"
#include "encodings/hash_grid.h"

namespace f3d {
namespace hashgrid {
namespace {

struct PlainAdd {
  template <typename T>
  void operator()(T* p, T v) const { *p += v; }
};

// Points per chunk: a chunk runs level by level over its points, so that one level's table
// stays in cache while the chunk is worked through.
constexpr int64_t kGrain = 1024;
// Rows are fetched this many points ahead: lookups are random, and the latency of a miss, not
// arithmetic, bounds these kernels on the CPU.
constexpr int64_t kAhead = 8;

template <int D, typename T>
inline void prefetch(const Args<T>& a, int64_t i, int level, const T* base, int F, bool write) {
  int64_t rows[1 << D];
  corner_rows<D>(a, i, level, rows);
  for (int c = 0; c < (1 << D); ++c) {
    if (write) __builtin_prefetch(base + rows[c] * F, 1);
    else __builtin_prefetch(base + rows[c] * F, 0);
  }
}

// Calls body(i, level) for every point in [b, e), level-major, prefetching table rows ahead.
template <int D, typename T, typename Body>
inline void levels_then_points(const Args<T>& a, int64_t b, int64_t e, int level_begin, int level_end,
                               const T* base, int F, bool write, Body&& body) {
  for (int l = level_begin; l < level_end; ++l) {
    for (int64_t i = b; i < e; ++i) {
      if (i + kAhead < e) prefetch<D>(a, i + kAhead, l, base, F, write);
      body(i, l);
    }
  }
}

template <int D, int F, typename T>
void run(Op op, const Args<T>& a) {
  const int64_t n = a.n_points;
  const int levels = a.layout.n_levels;
  auto zero_rows = [](T* p, int64_t b, int64_t e, int cols) {
    std::fill(p + b * cols, p + e * cols, T(0));
  };
  switch (op) {
    case Op::Forward:
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
        levels_then_points<D>(a, b, e, 0, levels, a.table, F, false,
                              [&](int64_t i, int l) { forward_one<D, F>(a, i, l); });
      });
      break;
    case Op::BackwardX:
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
        zero_rows(a.dx, b, e, D);
        levels_then_points<D>(a, b, e, 0, levels, a.table, F, false,
                              [&](int64_t i, int l) { backward_x_level<D, F>(a, i, l, a.dx + i * D); });
      });
      break;
    case Op::BackwardTable:
      parallel_for(levels, 1, [&](int64_t b, int64_t e) {
        levels_then_points<D>(a, 0, n, int(b), int(e), a.dtable, F, true,
                              [&](int64_t i, int l) { backward_table_one<D, F>(a, i, l, PlainAdd{}); });
      });
      break;
    case Op::BackwardBackwardPoint:
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
        T scratch[D];
        if (a.dx) zero_rows(a.dx, b, e, D);
        levels_then_points<D>(a, b, e, 0, levels, a.table, F, false, [&](int64_t i, int l) {
          backward_backward_level<D, F>(a, i, l, a.dx ? a.dx + i * D : scratch);
        });
      });
      break;
    case Op::BackwardBackwardTable:
      parallel_for(levels, 1, [&](int64_t b, int64_t e) {
        levels_then_points<D>(a, 0, n, int(b), int(e), a.dtable, F, true, [&](int64_t i, int l) {
          backward_backward_table_one<D, F>(a, i, l, PlainAdd{});
        });
      });
      break;
  }
}

}  // namespace

template <typename T>
void launch_cpu(Op op, const Args<T>& a) {
  const bool ok = dispatch_dims(a.layout.n_dims, a.layout.n_features, [&](auto dc, auto fc) {
    run<decltype(dc)::value, decltype(fc)::value, T>(op, a);
  });
  if (!ok) throw std::invalid_argument("hash grid: unsupported n_dims/n_features");
}

template void launch_cpu<float>(Op, const Args<float>&);
template void launch_cpu<double>(Op, const Args<double>&);

}  // namespace hashgrid
}  // namespace f3d
