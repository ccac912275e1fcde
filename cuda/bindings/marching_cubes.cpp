// Bindings for geometry/marching_cubes.h: marching cubes on a dense volume or on sparse active
// cells, as count / scan / emit host functions (Python allocates every buffer between them). Each function checks
// dtypes, shapes, devices and contiguity of every tensor before a pointer is used.
#include <pybind11/stl.h>

#include <array>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "bindings/tensor.h"
#include "geometry/marching_cubes.h"

namespace f3d {
namespace bind {
namespace {

using Vec3 = std::array<double, 3>;

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

// ---- dense -------------------------------------------------------------------------------------

TensorArg volume_arg(py::handle volume) {
  TensorArg v = tensor_arg(volume, "volume");
  if (v.shape.size() != 3 || v.shape[0] < 2 || v.shape[1] < 2 || v.shape[2] < 2)
    fail("volume must have shape (X, Y, Z) with X, Y, Z >= 2, got " + shape_str(v.shape));
  return v;
}

template <typename T>
mc::DenseArgs<T> dense_args(const TensorArg& v, double level, int64_t* counts) {
  mc::DenseArgs<T> a;
  a.volume = v.ptr<T>();
  a.nx = v.shape[0];
  a.ny = v.shape[1];
  a.nz = v.shape[2];
  a.level = T(level);
  a.counts = counts;
  return a;
}

template <typename A>
void set_frame(A& a, const Vec3& origin, const Vec3& spacing) {
  for (int d = 0; d < 3; ++d) {
    a.origin[d] = decltype(a.level)(origin[d]);
    a.spacing[d] = decltype(a.level)(spacing[d]);
  }
}

// The rows' below-level bits (DenseArgs::below): None, or an int64 (X*Y, ceil(Z/64)) tensor that
// the CPU count pass fills and the CPU emit pass reads; the CUDA passes read the volume and
// ignore it.
uint64_t* below_arg(py::handle below, const TensorArg& v) {
  if (below.is_none() || v.is_cuda()) return nullptr;
  const IndexArg b = index_arg(below, "below");
  expect_index(b, {v.shape[0] * v.shape[1], (v.shape[2] + 63) / 64}, v);
  return reinterpret_cast<uint64_t*>(b.data);
}

// Returns whether every value is finite on the CPU (checked while counting), None on CUDA.
py::object dense_count(py::handle volume, double level, py::handle counts, uintptr_t stream, py::handle below) {
  const TensorArg v = volume_arg(volume);
  const IndexArg c = index_arg(counts, "counts");
  expect_index(c, {v.shape[0] * v.shape[1], mc::kCountCols}, v);
  uint64_t* bits = below_arg(below, v);
  bool finite = true;
  with_type(v, [&](auto zero) {
    using T = decltype(zero);
    mc::DenseArgs<T> a = dense_args<T>(v, level, c.data);
    a.below = bits;
    launch(v, [&] { finite = mc::dense_count_cpu(a); },
           [&](int dev) { mc::dense_count_cuda(a, as_stream(stream), dev); });
  });
  if (v.is_cuda()) return py::none();
  return py::bool_(finite);
}

// verts (N, 3) of the volume's dtype and faces (N, 3) int64, on its device.
void check_outputs(const TensorArg& ref, const TensorArg& verts, const IndexArg& faces) {
  expect_shape(verts, {-1, 3});
  expect_same(ref, verts);
  expect_index(faces, {-1, 3}, ref);
}

void dense_emit(py::handle volume, double level, const Vec3& origin, const Vec3& spacing, py::handle offsets,
                py::handle verts, py::handle faces, uintptr_t stream, py::handle below) {
  const TensorArg v = volume_arg(volume);
  const IndexArg o = index_arg(offsets, "offsets");
  expect_index(o, {v.shape[0] * v.shape[1], mc::kCountCols}, v);
  const TensorArg vt = tensor_arg(verts, "verts");
  const IndexArg f = index_arg(faces, "faces");
  check_outputs(v, vt, f);
  uint64_t* bits = below_arg(below, v);
  with_type(v, [&](auto zero) {
    using T = decltype(zero);
    mc::DenseArgs<T> a = dense_args<T>(v, level, o.data);
    a.below = bits;
    set_frame(a, origin, spacing);
    a.verts = vt.ptr<T>();
    a.faces = f.data;
    a.n_verts = vt.shape[0];
    a.n_faces = f.shape[0];
    launch(v, [&] { mc::dense_emit_cpu(a); }, [&](int dev) { mc::dense_emit_cuda(a, as_stream(stream), dev); });
  });
}

std::tuple<int64_t, int64_t> scan(py::handle counts, int n_vert_cols, uintptr_t stream) {
  const IndexArg c = index_arg(counts, "counts");
  if (c.shape.size() != 2 || c.shape[1] != mc::kCountCols)
    fail("counts must have shape (N, 4), got " + shape_str(c.shape));
  if (c.device.device_type != kDLCPU && c.device.device_type != kDLCUDA)
    fail("counts must be on the CPU or a CUDA device, got DLPack device type " + std::to_string(c.device.device_type));
  if (n_vert_cols != 1 && n_vert_cols != 3) fail("n_vert_cols must be 1 or 3, got " + std::to_string(n_vert_cols));
  mc::Totals t;
  {
    py::gil_scoped_release release;
    if (c.device.device_type == kDLCUDA)
      t = mc::scan_cuda(c.data, c.shape[0], n_vert_cols, as_stream(stream), c.device.device_id);
    else
      t = mc::scan_cpu(c.data, c.shape[0], n_vert_cols);
  }
  return {t.verts, t.faces};
}

// ---- sparse ------------------------------------------------------------------------------------

struct Sparse {
  IndexArg cells;
  TensorArg values;
};

Sparse sparse_inputs(const std::vector<int64_t>& shape, py::handle cells, py::handle values) {
  if (shape.size() != 3 || shape[0] < 2 || shape[1] < 2 || shape[2] < 2)
    fail("shape must be 3 grid sizes >= 2, got " + shape_str(shape));
  Sparse s{index_arg(cells, "cells"), tensor_arg(values, "values")};
  expect_shape(s.values, {-1, 8});
  expect_index(s.cells, {s.values.shape[0]}, s.values);
  // Checked on the CPU. On CUDA the caller guarantees it (mesh_field sorts unique keys): cells out
  // of order or range give a wrong mesh there, but every read and write stays in bounds.
  if (s.cells.device.device_type == kDLCPU) {
    const int64_t n_cells = (shape[0] - 1) * (shape[1] - 1) * (shape[2] - 1);
    const int64_t* k = s.cells.data;
    for (int64_t m = 0; m < s.cells.shape[0]; ++m)
      if (k[m] < 0 || k[m] >= n_cells || (m > 0 && k[m] <= k[m - 1]))
        fail("cells must be strictly increasing linear cell indices in [0, " + std::to_string(n_cells) + ")");
  }
  return s;
}

template <typename T>
mc::SparseArgs<T> sparse_args(const std::vector<int64_t>& shape, const Sparse& s, double level, int64_t* counts) {
  mc::SparseArgs<T> a;
  a.cells = s.cells.data;
  a.values = s.values.ptr<T>();
  a.n_cells = s.values.shape[0];
  a.nx = shape[0];
  a.ny = shape[1];
  a.nz = shape[2];
  a.level = T(level);
  a.counts = counts;
  return a;
}

void sparse_count(const std::vector<int64_t>& shape, py::handle cells, py::handle values, double level,
                  py::handle counts, uintptr_t stream) {
  const Sparse s = sparse_inputs(shape, cells, values);
  const IndexArg c = index_arg(counts, "counts");
  expect_index(c, {s.values.shape[0], mc::kCountCols}, s.values);
  with_type(s.values, [&](auto zero) {
    using T = decltype(zero);
    const mc::SparseArgs<T> a = sparse_args<T>(shape, s, level, c.data);
    launch(s.values, [&] { mc::sparse_count_cpu(a); },
           [&](int dev) { mc::sparse_count_cuda(a, as_stream(stream), dev); });
  });
}

void sparse_emit(const std::vector<int64_t>& shape, py::handle cells, py::handle values, double level,
                 const Vec3& origin, const Vec3& spacing, py::handle offsets, py::handle verts, py::handle faces,
                 uintptr_t stream) {
  const Sparse s = sparse_inputs(shape, cells, values);
  const IndexArg o = index_arg(offsets, "offsets");
  expect_index(o, {s.values.shape[0], mc::kCountCols}, s.values);
  const TensorArg vt = tensor_arg(verts, "verts");
  const IndexArg f = index_arg(faces, "faces");
  check_outputs(s.values, vt, f);
  with_type(s.values, [&](auto zero) {
    using T = decltype(zero);
    mc::SparseArgs<T> a = sparse_args<T>(shape, s, level, o.data);
    set_frame(a, origin, spacing);
    a.verts = vt.ptr<T>();
    a.faces = f.data;
    a.n_verts = vt.shape[0];
    a.n_faces = f.shape[0];
    launch(s.values, [&] { mc::sparse_emit_cpu(a); },
           [&](int dev) { mc::sparse_emit_cuda(a, as_stream(stream), dev); });
  });
}

}  // namespace

void register_marching_cubes(py::module_& m) {
  m.def("marching_cubes_count", &dense_count, py::arg("volume"), py::arg("level"), py::arg("counts"),
        py::arg("stream") = 0, py::arg("below") = py::none(),
        "Pass 1 on volume (X, Y, Z): counts (X*Y, 4) int64 <- per row [x, y, z crossing edges, triangles];\n"
        "below (X*Y, ceil(Z/64)) int64 or None: each row's below-level bits, for the emit pass (CPU only).\n"
        "Returns whether every value is finite (CPU) or None (CUDA: not checked).");
  m.def("marching_cubes_scan", &scan, py::arg("counts"), py::arg("n_vert_cols"), py::arg("stream") = 0,
        "Turns counts (N, 4) int64 into exclusive offsets in place; returns (n_verts, n_faces).");
  m.def("marching_cubes_emit", &dense_emit, py::arg("volume"), py::arg("level"), py::arg("origin"),
        py::arg("spacing"), py::arg("offsets"), py::arg("verts"), py::arg("faces"), py::arg("stream") = 0,
        py::arg("below") = py::none(),
        "Pass 2: writes verts (V, 3) (the volume's dtype) and faces (F, 3) int64; below: the count\n"
        "pass's bits (then the volume is read only at crossing edges) or None.");
  m.def("marching_cubes_sparse_count", &sparse_count, py::arg("shape"), py::arg("cells"), py::arg("values"),
        py::arg("level"), py::arg("counts"), py::arg("stream") = 0,
        "Pass 1 on active cells (M,) int64 with corner values (M, 8): counts (M, 4) int64.");
  m.def("marching_cubes_sparse_emit", &sparse_emit, py::arg("shape"), py::arg("cells"), py::arg("values"),
        py::arg("level"), py::arg("origin"), py::arg("spacing"), py::arg("offsets"), py::arg("verts"),
        py::arg("faces"), py::arg("stream") = 0, "Pass 2 on active cells: writes verts (V, 3) and faces (F, 3).");
}

}  // namespace bind
}  // namespace f3d
