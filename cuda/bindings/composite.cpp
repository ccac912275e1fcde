// Bindings for render/composite.h: compositing of packed samples (forward / backward). Every
// tensor's dtype, shape, device and contiguity is checked before a pointer is used.
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/tensor.h"
#include "render/composite.h"

namespace f3d {
namespace bind {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

struct Samples {
  TensorArg sigmas, t_starts, t_ends, values;
  IndexArg offsets;
};

Samples samples_arg(py::handle sigmas, py::handle t_starts, py::handle t_ends, py::handle values,
                    py::handle offsets) {
  Samples s{tensor_arg(sigmas, "sigmas"), tensor_arg(t_starts, "t_starts"), tensor_arg(t_ends, "t_ends"),
            tensor_arg(values, "values"), index_arg(offsets, "offsets")};
  expect_shape(s.sigmas, {-1});
  const int64_t n = s.sigmas.shape[0];
  expect_shape(s.t_starts, {n});
  expect_shape(s.t_ends, {n});
  expect_shape(s.values, {n, -1});
  for (const TensorArg* t : {&s.t_starts, &s.t_ends, &s.values}) expect_same(s.sigmas, *t);
  if (s.offsets.shape.size() != 1 || s.offsets.shape[0] < 1)
    fail("offsets must have shape (R + 1,), got " + shape_str(s.offsets.shape));
  expect_index(s.offsets, {s.offsets.shape[0]}, s.sigmas);
  check_offsets(s.offsets, n, true);
  return s;
}

TensorArg ray_out(py::handle obj, const char* name, const Samples& s, int64_t cols) {
  TensorArg t = tensor_arg(obj, name);
  const int64_t rays = s.offsets.shape[0] - 1;
  if (cols < 0) expect_shape(t, {rays});
  else expect_shape(t, {rays, cols});
  expect_same(s.sigmas, t);
  return t;
}

TensorArg sample_out(py::handle obj, const char* name, const Samples& s) {
  TensorArg t = tensor_arg(obj, name);
  expect_shape(t, {s.sigmas.shape[0]});
  expect_same(s.sigmas, t);
  return t;
}

template <typename T>
composite::Args<T> composite_args(const Samples& s, double t_min) {
  composite::Args<T> a;
  a.sigmas = s.sigmas.ptr<T>();
  a.t_starts = s.t_starts.ptr<T>();
  a.t_ends = s.t_ends.ptr<T>();
  a.values = s.values.ptr<T>();
  a.offsets = s.offsets.data;
  a.n_rays = s.offsets.shape[0] - 1;
  a.channels = int(s.values.shape[1]);
  a.t_min = T(t_min);
  return a;
}

void composite_forward(py::handle sigmas, py::handle t_starts, py::handle t_ends, py::handle values,
                       py::handle offsets, double t_min, py::handle out, py::handle opacity, py::handle weights,
                       py::handle trans, uintptr_t stream) {
  const Samples s = samples_arg(sigmas, t_starts, t_ends, values, offsets);
  const TensorArg o = ray_out(out, "out", s, s.values.shape[1]), op = ray_out(opacity, "opacity", s, -1);
  const TensorArg w = sample_out(weights, "weights", s), tr = sample_out(trans, "trans", s);
  with_type(s.sigmas, [&](auto zero) {
    using T = decltype(zero);
    composite::Args<T> a = composite_args<T>(s, t_min);
    a.out = o.ptr<T>();
    a.opacity = op.ptr<T>();
    a.weights = w.ptr<T>();
    a.trans = tr.ptr<T>();
    launch(s.sigmas, [&] { composite::forward_cpu(a); },
           [&](int dev) { composite::forward_cuda(a, as_stream(stream), dev); });
  });
}

void composite_backward(py::handle sigmas, py::handle t_starts, py::handle t_ends, py::handle values,
                        py::handle offsets, double t_min, py::handle out, py::handle opacity, py::handle weights,
                        py::handle trans, py::handle g_out, py::handle g_opacity, py::handle g_weights,
                        py::handle g_sigmas, py::handle g_values, uintptr_t stream) {
  const Samples s = samples_arg(sigmas, t_starts, t_ends, values, offsets);
  const int64_t C = s.values.shape[1];
  const TensorArg o = ray_out(out, "out", s, C), op = ray_out(opacity, "opacity", s, -1);
  const TensorArg w = sample_out(weights, "weights", s), tr = sample_out(trans, "trans", s);
  const TensorArg go = ray_out(g_out, "g_out", s, C), gop = ray_out(g_opacity, "g_opacity", s, -1);
  std::optional<TensorArg> gw;
  if (!g_weights.is_none()) gw = sample_out(g_weights, "g_weights", s);
  const TensorArg gs = sample_out(g_sigmas, "g_sigmas", s);
  TensorArg gv = tensor_arg(g_values, "g_values");
  expect_shape(gv, {s.sigmas.shape[0], C});
  expect_same(s.sigmas, gv);
  with_type(s.sigmas, [&](auto zero) {
    using T = decltype(zero);
    composite::Args<T> a = composite_args<T>(s, t_min);
    a.out = o.ptr<T>();
    a.opacity = op.ptr<T>();
    a.weights = w.ptr<T>();
    a.trans = tr.ptr<T>();
    a.g_out = go.ptr<T>();
    a.g_opacity = gop.ptr<T>();
    a.g_weights = gw ? gw->ptr<T>() : nullptr;
    a.g_sigmas = gs.ptr<T>();
    a.g_values = gv.ptr<T>();
    launch(s.sigmas, [&] { composite::backward_cpu(a); },
           [&](int dev) { composite::backward_cuda(a, as_stream(stream), dev); });
  });
}

}  // namespace

void register_composite(py::module_& m) {
  m.def("composite_forward", &composite_forward, py::arg("sigmas"), py::arg("t_starts"), py::arg("t_ends"),
        py::arg("values"), py::arg("offsets"), py::arg("t_min"), py::arg("out"), py::arg("opacity"),
        py::arg("weights"), py::arg("trans"), py::arg("stream") = 0,
        "Composites packed samples (S,) with values (S, C) into out (R, C), opacity (R,), weights and trans (S,).");
  m.def("composite_backward", &composite_backward, py::arg("sigmas"), py::arg("t_starts"), py::arg("t_ends"),
        py::arg("values"), py::arg("offsets"), py::arg("t_min"), py::arg("out"), py::arg("opacity"),
        py::arg("weights"), py::arg("trans"), py::arg("g_out"), py::arg("g_opacity"), py::arg("g_weights"),
        py::arg("g_sigmas"), py::arg("g_values"), py::arg("stream") = 0,
        "Gradients of compositing: g_sigmas (S,) and g_values (S, C), from the forward's outputs.");
}

}  // namespace bind
}  // namespace f3d
