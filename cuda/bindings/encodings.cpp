// Bindings for the encodings: a layout object built once per module, and host functions that
// check every tensor against it before dispatching to the CPU or CUDA launcher.
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/tensor.h"
#include "encodings/hash_grid.h"

namespace f3d {
namespace bind {
namespace {

using hashgrid::Args;
using hashgrid::Layout;
using hashgrid::Op;

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

Layout make_layout(int n_dims, int n_features, const std::string& interpolation, const std::vector<double>& scales,
                   const std::vector<uint32_t>& resolutions, const std::vector<uint32_t>& sizes,
                   const std::vector<bool>& hashed) {
  Layout L;
  if (n_dims < 1 || n_dims > hashgrid::kMaxDims) fail("n_dims must be 1, 2, 3 or 4, got " + std::to_string(n_dims));
  if (n_features != 1 && n_features != 2 && n_features != 4 && n_features != 8)
    fail("n_features must be 1, 2, 4 or 8, got " + std::to_string(n_features));
  const size_t levels = scales.size();
  if (levels < 1 || levels > size_t(hashgrid::kMaxLevels))
    fail("the number of levels must be between 1 and " + std::to_string(hashgrid::kMaxLevels) + ", got " +
         std::to_string(levels));
  if (resolutions.size() != levels || sizes.size() != levels || hashed.size() != levels)
    fail("scales, resolutions, sizes and hashed must have one entry per level");
  if (interpolation == "linear") L.interp = hashgrid::Interp::Linear;
  else if (interpolation == "smoothstep") L.interp = hashgrid::Interp::Smoothstep;
  else fail("interpolation must be 'linear' or 'smoothstep', got '" + interpolation + "'");
  L.n_dims = n_dims;
  L.n_features = n_features;
  L.n_levels = int(levels);
  int64_t offset = 0;
  for (size_t l = 0; l < levels; ++l) {
    if (!(scales[l] > 0.0) || scales[l] > 4294967295.0) fail("level scales must be positive and below 2^32");
    if (sizes[l] < 1) fail("level sizes must be at least 1");
    if (hashed[l] && (sizes[l] & (sizes[l] - 1)) != 0) fail("hashed levels must hold a power-of-two number of rows");
    L.scale[l] = scales[l];
    L.resolution[l] = resolutions[l];
    L.size[l] = sizes[l];
    L.hashed[l] = hashed[l];
    L.offset[l] = offset;
    offset += sizes[l];
  }
  L.n_entries = offset;
  return L;
}

// Checks the tensors shared by every hash-grid op and returns Args with x and table filled in.
template <typename T>
Args<T> base_args(const Layout& L, const TensorArg& x, const TensorArg& table) {
  expect_shape(x, {-1, L.n_dims});
  expect_shape(table, {L.n_entries, L.n_features});
  expect_same(x, table);
  Args<T> a;
  a.layout = L;
  a.n_points = x.shape[0];
  a.x = x.ptr<T>();
  a.table = table.ptr<T>();
  return a;
}

TensorArg point_arg(const Layout& L, const TensorArg& x, py::handle obj, const char* name, int64_t cols) {
  TensorArg t = tensor_arg(obj, name);
  expect_shape(t, {x.shape[0], cols});
  expect_same(x, t);
  return t;
}

TensorArg table_arg(const Layout& L, const TensorArg& x, py::handle obj, const char* name) {
  TensorArg t = tensor_arg(obj, name);
  expect_shape(t, {L.n_entries, L.n_features});
  expect_same(x, t);
  return t;
}

template <typename T>
T* opt_ptr(const std::optional<TensorArg>& t) { return t ? t->ptr<T>() : nullptr; }

struct Call {
  const Layout& L;
  TensorArg x, table;
  std::optional<TensorArg> dy, ddx, ddtable, y, dx, dtable, ddy;

  template <typename T>
  Args<T> args() const {
    Args<T> a = base_args<T>(L, x, table);
    a.dy = opt_ptr<T>(dy);
    a.ddx = opt_ptr<T>(ddx);
    a.ddtable = opt_ptr<T>(ddtable);
    a.y = opt_ptr<T>(y);
    a.dx = opt_ptr<T>(dx);
    a.dtable = opt_ptr<T>(dtable);
    a.ddy = opt_ptr<T>(ddy);
    return a;
  }

  void launch(Op op, uintptr_t stream) const {
    if (x.is_cuda()) {
#ifdef FIELDS3D_WITH_CUDA
      if (x.dtype != DType::Float32) fail("CUDA hash grid kernels take float32, got " + std::string(dtype_name(x.dtype)));
      const Args<float> a = args<float>();
      py::gil_scoped_release release;
      hashgrid::launch_cuda(op, a, reinterpret_cast<void*>(stream), x.device.device_id);
#else
      (void)stream;
      throw std::runtime_error("fields3d._core was built without CUDA");
#endif
      return;
    }
    if (x.dtype == DType::Float32) {
      const Args<float> a = args<float>();
      py::gil_scoped_release release;
      hashgrid::launch_cpu<float>(op, a);
    } else {
      const Args<double> a = args<double>();
      py::gil_scoped_release release;
      hashgrid::launch_cpu<double>(op, a);
    }
  }
};

std::optional<TensorArg> maybe(const Layout& L, const TensorArg& x, py::handle obj, const char* name, int64_t cols) {
  if (obj.is_none()) return std::nullopt;
  return cols < 0 ? table_arg(L, x, obj, name) : point_arg(L, x, obj, name, cols);
}

void forward(const Layout& L, py::handle x, py::handle table, py::handle y, uintptr_t stream) {
  Call c{L, tensor_arg(x, "x"), tensor_arg(table, "table")};
  base_args<float>(L, c.x, c.table);  // shape checks before any other argument is read
  c.y = point_arg(L, c.x, y, "y", int64_t(L.n_levels) * L.n_features);
  c.launch(Op::Forward, stream);
}

void backward(const Layout& L, py::handle x, py::handle table, py::handle dy, py::handle dx, py::handle dtable,
              uintptr_t stream) {
  Call c{L, tensor_arg(x, "x"), tensor_arg(table, "table")};
  base_args<float>(L, c.x, c.table);
  const int64_t out_cols = int64_t(L.n_levels) * L.n_features;
  c.dy = point_arg(L, c.x, dy, "dy", out_cols);
  c.dx = maybe(L, c.x, dx, "dx", L.n_dims);
  c.dtable = maybe(L, c.x, dtable, "dtable", -1);
  if (c.dx) c.launch(Op::BackwardX, stream);
  if (c.dtable) c.launch(Op::BackwardTable, stream);
}

void backward_backward(const Layout& L, py::handle x, py::handle table, py::handle dy, py::handle ddx,
                       py::handle ddtable, py::handle ddy, py::handle dx, py::handle dtable, uintptr_t stream) {
  Call c{L, tensor_arg(x, "x"), tensor_arg(table, "table")};
  base_args<float>(L, c.x, c.table);
  const int64_t out_cols = int64_t(L.n_levels) * L.n_features;
  c.dy = point_arg(L, c.x, dy, "dy", out_cols);
  c.ddx = maybe(L, c.x, ddx, "ddx", L.n_dims);
  c.ddtable = maybe(L, c.x, ddtable, "ddtable", -1);
  c.ddy = maybe(L, c.x, ddy, "ddy", out_cols);
  c.dx = maybe(L, c.x, dx, "dx", L.n_dims);
  c.dtable = maybe(L, c.x, dtable, "dtable", -1);
  if (c.dtable && !c.ddx) fail("dtable needs ddx (with ddx None the table gradient is zero: skip it)");
  if (c.ddy || c.dx) c.launch(Op::BackwardBackwardPoint, stream);
  if (c.dtable) c.launch(Op::BackwardBackwardTable, stream);
}

}  // namespace

void register_encodings(py::module_& m) {
  py::class_<Layout>(m, "HashGridLayout", "Checked table layout of a hash grid (built by HashGridConfig).")
      .def(py::init(&make_layout), py::arg("n_dims"), py::arg("n_features"), py::arg("interpolation"),
           py::arg("scales"), py::arg("resolutions"), py::arg("sizes"), py::arg("hashed"))
      .def_property_readonly("n_entries", [](const Layout& L) { return L.n_entries; })
      .def_property_readonly("n_levels", [](const Layout& L) { return L.n_levels; })
      .def_property_readonly("offsets", [](const Layout& L) {
        return std::vector<int64_t>(L.offset, L.offset + L.n_levels);
      });
  m.def("hash_grid_forward", &forward, py::arg("layout"), py::arg("x"), py::arg("table"), py::arg("y"),
        py::arg("stream") = 0, "y (N, L*F) = encoding of x (N, D) with table (n_entries, F).");
  m.def("hash_grid_backward", &backward, py::arg("layout"), py::arg("x"), py::arg("table"), py::arg("dy"),
        py::arg("dx"), py::arg("dtable"), py::arg("stream") = 0,
        "Writes dx (N, D) and dtable (n_entries, F); either may be None.");
  m.def("hash_grid_backward_backward", &backward_backward, py::arg("layout"), py::arg("x"), py::arg("table"),
        py::arg("dy"), py::arg("ddx"), py::arg("ddtable"), py::arg("ddy"), py::arg("dx"), py::arg("dtable"),
        py::arg("stream") = 0,
        "Gradients of the backward pass: writes ddy, dx and dtable; None skips an input/output.");
}

}  // namespace bind
}  // namespace f3d
