// The host functions a table-based encoding binds (forward, backward, double backward), written
// once over a Kernels trait:
//   using Layout;  (with n_levels, n_features, n_dims, n_entries, and n_lut / lut: a row lookup
//                   passed per call, n_lut = 0 where the layout has none)
//   template <typename T> using Args;  static const char* name(const Layout&);  (for messages)
//   template <typename T> static void cpu(enc::Op, const Args<T>&);
//   static void cuda(enc::Op, const Args<float>&, void* stream, int device);
// Every tensor is checked against the layout before a launcher touches memory.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/tensor.h"
#include "encodings/encoding_ops.h"

namespace f3d {
namespace bind {
namespace encoding {

using enc::Op;

[[noreturn]] inline void fail(const std::string& msg) { throw std::invalid_argument(msg); }

template <class K>
struct Call {
  using Layout = typename K::Layout;
  const Layout& L;
  TensorArg x, table;
  std::optional<TensorArg> dy, ddx, ddtable, y, dx, dtable, ddy;
  std::optional<IndexArg> lut;

  Call(const Layout& layout, py::handle x_obj, py::handle table_obj, py::handle lut_obj)
      : L(layout), x(tensor_arg(x_obj, "x")), table(tensor_arg(table_obj, "table")) {
    expect_shape(x, {-1, L.n_dims});  // checked before any other argument is read
    expect_shape(table, {L.n_entries, L.n_features});
    expect_same(x, table);
    read_lut(lut_obj);
  }

  void read_lut(py::handle obj) {
    const int64_t n_lut = L.n_lut;
    if (n_lut == 0) {
      if (!obj.is_none()) fail(std::string("this ") + K::name(L) + " layout has no row lookup: pass lut=None");
      return;
    }
    if (obj.is_none())
      fail("this layout needs its row lookup: lut, int64 of shape (" + std::to_string(n_lut) + ",)");
    lut = index_arg(obj, "lut");
    expect_index(*lut, {n_lut}, x);
  }

  int64_t out_cols() const { return int64_t(L.n_levels) * L.n_features; }

  // Reads an (N, cols) tensor, or a table-shaped one when cols < 0; None gives nullopt.
  std::optional<TensorArg> arg(py::handle obj, const char* name, int64_t cols, bool required = false) const {
    if (obj.is_none() && !required) return std::nullopt;
    TensorArg t = tensor_arg(obj, name);
    if (cols < 0) expect_shape(t, {L.n_entries, L.n_features});
    else expect_shape(t, {x.shape[0], cols});
    expect_same(x, t);
    return t;
  }

  template <typename T>
  typename K::template Args<T> args() const {
    typename K::template Args<T> a;
    a.layout = L;
    a.layout.lut = lut ? lut->data : nullptr;
    a.n_points = x.shape[0];
    a.x = x.ptr<T>();
    a.table = table.ptr<T>();
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
      if (x.dtype != DType::Float32)
        fail(std::string("CUDA ") + K::name(L) + " kernels take float32, got " + dtype_name(x.dtype));
      const auto a = args<float>();
      py::gil_scoped_release release;
      K::cuda(op, a, reinterpret_cast<void*>(stream), x.device.device_id);
#else
      (void)stream;
      throw std::runtime_error("fields3d._core was built without CUDA");
#endif
      return;
    }
    if (x.dtype == DType::Float32) {
      const auto a = args<float>();
      py::gil_scoped_release release;
      K::template cpu<float>(op, a);
    } else {
      const auto a = args<double>();
      py::gil_scoped_release release;
      K::template cpu<double>(op, a);
    }
  }
};

template <class K>
void forward(const typename K::Layout& L, py::handle x, py::handle table, py::handle y, uintptr_t stream,
             py::handle lut) {
  Call<K> c(L, x, table, lut);
  c.y = c.arg(y, "y", c.out_cols(), true);
  c.launch(Op::Forward, stream);
}

template <class K>
void backward(const typename K::Layout& L, py::handle x, py::handle table, py::handle dy, py::handle dx,
              py::handle dtable, uintptr_t stream, py::handle lut) {
  Call<K> c(L, x, table, lut);
  c.dy = c.arg(dy, "dy", c.out_cols(), true);
  c.dx = c.arg(dx, "dx", L.n_dims);
  c.dtable = c.arg(dtable, "dtable", -1);
  if (c.dx) c.launch(Op::BackwardX, stream);
  if (c.dtable) c.launch(Op::BackwardTable, stream);
}

template <class K>
void backward_backward(const typename K::Layout& L, py::handle x, py::handle table, py::handle dy, py::handle ddx,
                       py::handle ddtable, py::handle ddy, py::handle dx, py::handle dtable, uintptr_t stream,
                       py::handle lut) {
  Call<K> c(L, x, table, lut);
  c.dy = c.arg(dy, "dy", c.out_cols(), true);
  c.ddx = c.arg(ddx, "ddx", L.n_dims);
  c.ddtable = c.arg(ddtable, "ddtable", -1);
  c.ddy = c.arg(ddy, "ddy", c.out_cols());
  c.dx = c.arg(dx, "dx", L.n_dims);
  c.dtable = c.arg(dtable, "dtable", -1);
  if (c.dtable && !c.ddx) fail("dtable needs ddx (with ddx None the table gradient is zero: skip it)");
  if (c.ddy || c.dx) c.launch(Op::BackwardBackwardPoint, stream);
  if (c.dtable) c.launch(Op::BackwardBackwardTable, stream);
}

}  // namespace encoding
}  // namespace bind
}  // namespace f3d
