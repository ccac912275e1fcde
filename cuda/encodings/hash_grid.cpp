// CPU launchers for the hash-grid kernels: parallel-for over points (or over levels where the
// kernel scatters into the table, so that each level's rows are owned by one task: no races,
// and the sums come out in the same order every run).
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

// Points per chunk: one chunk runs every level over its points, level by level, so a level's
// table stays in cache while the chunk is worked through.
constexpr int64_t kGrain = 1024;

template <int D, int F, typename T>
void run(Op op, const Args<T>& a) {
  const int64_t n = a.n_points;
  const int levels = a.layout.n_levels;
  switch (op) {
    case Op::Forward:
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
        for (int l = 0; l < levels; ++l)
          for (int64_t i = b; i < e; ++i) forward_one<D, F>(a, i, l);
      });
      break;
    case Op::BackwardX:
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) backward_x_one<D, F>(a, i);
      });
      break;
    case Op::BackwardTable:
      parallel_for(levels, 1, [&](int64_t b, int64_t e) {
        for (int64_t l = b; l < e; ++l)
          for (int64_t i = 0; i < n; ++i) backward_table_one<D, F>(a, i, int(l), PlainAdd{});
      });
      break;
    case Op::BackwardBackwardPoint:
      parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) backward_backward_point_one<D, F>(a, i);
      });
      break;
    case Op::BackwardBackwardTable:
      parallel_for(levels, 1, [&](int64_t b, int64_t e) {
        for (int64_t l = b; l < e; ++l)
          for (int64_t i = 0; i < n; ++i) backward_backward_table_one<D, F>(a, i, int(l), PlainAdd{});
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
