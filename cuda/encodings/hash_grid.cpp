// CPU launchers for the hash-grid kernels: parallel-for over points (or over levels where the
// kernel scatters into the table, so that each level's rows are owned by one task: no races,
// and the sums come out in the same order every run).
#include <algorithm>
#include <stdexcept>

#include "common/parallel.h"
#include "common/ranges.h"
#include "encodings/hash_grid.h"

namespace f3d {
namespace hashgrid {
namespace {

// The table gradient is owned level by level: the task that scatters into a level's rows zeroes
// them first (no separate pass over the whole table, and the rows are warm when written).
template <int D, int F, typename T>
void run(Op op, const Args<T>& a) {
  const int64_t n = a.n_points;
  const int levels = a.layout.n_levels;
  switch (op) {
    case Op::Forward:
      per_thread_ranges(n, [&](int64_t b, int64_t e) {
        levels_then_points(b, e, 0, levels, [&](int64_t i, int l) { forward_one<D, F>(a, i, l); });
      });
      break;
    case Op::BackwardX:
      per_thread_ranges(n, [&](int64_t b, int64_t e) {
        zero_rows(a.dx, b, e, D);
        levels_then_points(b, e, 0, levels, [&](int64_t i, int l) { backward_x_level<D, F>(a, i, l, a.dx + i * D); });
      });
      break;
    case Op::BackwardTable:
      parallel_for(levels, 1, [&](int64_t b, int64_t e) {
        zero_levels(a, int(b), int(e));
        levels_then_points(0, n, int(b), int(e), [&](int64_t i, int l) { backward_table_one<D, F>(a, i, l, PlainAdd{}); });
      });
      break;
    case Op::BackwardBackwardPoint:
      per_thread_ranges(n, [&](int64_t b, int64_t e) {
        T scratch[D];
        if (a.dx) zero_rows(a.dx, b, e, D);
        levels_then_points(b, e, 0, levels, [&](int64_t i, int l) {
          backward_backward_level<D, F>(a, i, l, a.dx ? a.dx + i * D : scratch);
        });
      });
      break;
    case Op::BackwardBackwardTable:
      parallel_for(levels, 1, [&](int64_t b, int64_t e) {
        zero_levels(a, int(b), int(e));
        levels_then_points(0, n, int(b), int(e), [&](int64_t i, int l) {
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
