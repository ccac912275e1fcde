// CPU launchers for the lattice encodings of lattice.h: parallel-for over point ranges for the per-point
// passes; table gradients either owned level by level (enough levels to keep every thread busy)
// or accumulated per point range into private copies that are summed afterwards (a dense grid
// has a single level). Both are race-free and give the same sums on every run.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include "common/parallel.h"
#include "common/ranges.h"
#include "encodings/lattice.h"
#include "encodings/lattice_blocks.h"

namespace f3d {
namespace lattice {
namespace {

// Private table copies are capped at this many bytes in all; past it fewer ranges run at once.
constexpr int64_t kScratchBytes = int64_t(1) << 30;

// Runs scatter(out, b, e, l0, l1) so that the points [b, e) at levels [l0, l1) add into
// out.dtable, and leaves the total in a.dtable (which it overwrites). `vertices`: rows a point
// reads per level. A private copy costs zeroing and summing the whole table, so copies are used
// only where each one carries at least 4 times its size in scattered rows; below that the copy's
// zeroing and summing cost more than the contention they save (benchmarks/RESULTS.md, "Figures
// moved out of code comments").
template <typename T, typename Scatter>
void scatter_table(const Args<T>& a, int vertices, Scatter&& scatter) {
  const Layout& L = a.layout;
  const int64_t n = a.n_points, cells = L.n_entries * L.n_features;
  const int threads = num_threads();
  const int64_t by_memory = std::max<int64_t>(1, kScratchBytes / std::max<int64_t>(1, cells * int64_t(sizeof(T))));
  const int64_t by_points = (n + kMinRange - 1) / kMinRange;
  const int64_t by_work = 1 + n * vertices * L.n_levels / (4 * std::max<int64_t>(1, L.n_entries));
  const int64_t parts = std::min<int64_t>({threads, by_memory, by_points, by_work});
  if (L.n_levels >= 2 * threads || parts <= 1) {
    parallel_for(L.n_levels, 1, [&](int64_t b, int64_t e) {
      zero_levels(a, int(b), int(e));
      scatter(a, 0, n, int(b), int(e));
    });
    return;
  }
  std::vector<std::vector<T>> copies(size_t(parts - 1), std::vector<T>(size_t(cells), T(0)));
  const int64_t range = (n + parts - 1) / parts;
  parallel_for(parts, 1, [&](int64_t pb, int64_t pe) {
    for (int64_t p = pb; p < pe; ++p) {
      Args<T> out = a;
      if (p == 0) zero_rows(a.dtable, 0, cells, 1);
      else out.dtable = copies[size_t(p - 1)].data();
      scatter(out, p * range, std::min(n, (p + 1) * range), 0, L.n_levels);
    }
  });
  parallel_for(cells, 1 << 14, [&](int64_t b, int64_t e) {
    for (const std::vector<T>& c : copies)
      for (int64_t j = b; j < e; ++j) a.dtable[j] += c[size_t(j)];
  });
}

// A level's table is walked in blocks (lattice_blocks.h) only where it is bigger than a core's L2
// (2 MB on the EPYC this was tuned on): a table that stays in L2 costs little per miss, and the
// record then costs more than it saves. At 2^18 points the 3D hash grid's forward took 58 ms
// blocked against 34 ms point by point with 2^8-row tables, 71 against 52 ms with 2^17 rows (1 MB
// a level), and 55 against 73 ms with 2^19 rows (4 MB); benchmarks/RESULTS.md.
constexpr int64_t kBlockMinBytes = int64_t(2) << 20;

// Per level in [l0, l1): block(b, e, l) over the points [b, e) if the level's table is big enough,
// else point(i, l) for each of them.
template <typename T, class Block, class Point>
void each_level(const Layout& L, int64_t b, int64_t e, int l0, int l1, Block&& block, Point&& point) {
  for (int l = l0; l < l1; ++l) {
    if (int64_t(L.size[l]) * L.n_features * int64_t(sizeof(T)) >= kBlockMinBytes) {
      block(b, e, l);
    } else {
      for (int64_t i = b; i < e; ++i) point(i, l);
    }
  }
}

template <class S, int F, typename T>
void run(Op op, const Args<T>& a) {
  constexpr int D = S::kDims;
  const int64_t n = a.n_points;
  const int levels = a.layout.n_levels;
  switch (op) {
    case Op::Forward:
      per_thread_ranges(n, [&](int64_t b, int64_t e) {
        each_level<T>(
            a.layout, b, e, 0, levels, [&](int64_t pb, int64_t pe, int l) { forward_block<S, F>(a, pb, pe, l); },
            [&](int64_t i, int l) { forward_one<S, F>(a, i, l); });
      });
      break;
    case Op::BackwardX:
      per_thread_ranges(n, [&](int64_t b, int64_t e) {
        zero_rows(a.dx, b, e, D);
        each_level<T>(
            a.layout, b, e, 0, levels, [&](int64_t pb, int64_t pe, int l) { backward_x_block<S, F>(a, pb, pe, l); },
            [&](int64_t i, int l) { backward_x_level<S, F>(a, i, l, a.dx + i * D); });
      });
      break;
    case Op::BackwardTable:
      scatter_table(a, S::kVertices, [](const Args<T>& out, int64_t b, int64_t e, int l0, int l1) {
        each_level<T>(
            out.layout, b, e, l0, l1,
            [&](int64_t pb, int64_t pe, int l) { backward_table_block<S, F>(out, pb, pe, l); },
            [&](int64_t i, int l) { backward_table_one<S, F>(out, i, l, PlainAdd{}); });
      });
      break;
    case Op::BackwardBackwardPoint:
      per_thread_ranges(n, [&](int64_t b, int64_t e) {
        T scratch[D] = {};
        if (a.dx) zero_rows(a.dx, b, e, D);
        each_level<T>(
            a.layout, b, e, 0, levels,
            [&](int64_t pb, int64_t pe, int l) { backward_backward_block<S, F>(a, pb, pe, l); },
            [&](int64_t i, int l) { backward_backward_level<S, F>(a, i, l, a.dx ? a.dx + i * D : scratch); });
      });
      break;
    case Op::BackwardBackwardTable:
      scatter_table(a, S::kVertices, [](const Args<T>& out, int64_t b, int64_t e, int l0, int l1) {
        each_level<T>(
            out.layout, b, e, l0, l1,
            [&](int64_t pb, int64_t pe, int l) { backward_backward_table_block<S, F>(out, pb, pe, l); },
            [&](int64_t i, int l) { backward_backward_table_one<S, F>(out, i, l, PlainAdd{}); });
      });
      break;
  }
}

}  // namespace

template <typename T>
void launch_cpu(Op op, const Args<T>& a) {
  const bool ok = dispatch(a.layout, [&](auto stencil, auto fc) { run<decltype(stencil), decltype(fc)::value, T>(op, a); });
  if (!ok) throw std::invalid_argument("lattice encoding: unsupported kind/n_dims/n_features");
}

template void launch_cpu<float>(Op, const Args<float>&);
template void launch_cpu<double>(Op, const Args<double>&);

}  // namespace lattice
}  // namespace f3d
