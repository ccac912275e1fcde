// The passes every table-based encoding kernel offers (lattice.h: hash grid, dense grid,
// tri-plane, simplex grid); the bindings drive them all through one code path.
#pragma once

#include <cstdint>

namespace f3d {
namespace enc {

enum class Op { Forward, BackwardX, BackwardTable, BackwardBackwardPoint, BackwardBackwardTable };

// One params struct for every table-encoding kernel (the encoding's Layout plus pointers); each
// kernel documents what it reads and writes. All arrays are dense row-major; unused pointers are
// null.
template <class Layout, typename T>
struct TableArgs {
  Layout layout;
  int64_t n_points = 0;
  const T* x = nullptr;        // (N, D) positions
  const T* table = nullptr;    // (n_entries, F) parameters
  const T* dy = nullptr;       // (N, L*F) gradient w.r.t. the encoding
  const T* ddx = nullptr;      // (N, D) gradient w.r.t. dx (double backward)
  const T* ddtable = nullptr;  // (n_entries, F) gradient w.r.t. dtable (double backward)
  T* y = nullptr;              // (N, L*F) encoding
  T* dx = nullptr;             // (N, D)
  T* dtable = nullptr;         // (n_entries, F), overwritten (the launchers zero it first)
  T* ddy = nullptr;            // (N, L*F)
};

}  // namespace enc
}  // namespace f3d
