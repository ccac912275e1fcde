// The passes every table-based encoding kernel offers (hash grid, lattice encodings); the
// bindings drive them all through one code path.
#pragma once

namespace f3d {
namespace enc {

enum class Op { Forward, BackwardX, BackwardTable, BackwardBackwardPoint, BackwardBackwardTable };

}  // namespace enc
}  // namespace f3d
