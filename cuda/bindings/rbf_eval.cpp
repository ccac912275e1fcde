// Bindings for the fused RBF evaluation over given neighbours: rbf_eval_forward writes y (N, F),
// rbf_eval_backward writes dx and the parameter gradients (each optional: None skips it), and
// rbf_eval_backward_backward differentiates that backward (optional incoming gradients and outputs). Every
// tensor's dtype, shape, device and contiguity is checked, and every neighbour index is checked to
// lie in [0, M), before a launcher touches memory.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/tensor.h"
#include "encodings/rbf_eval.h"
#include "encodings/rbf_eval_backward2.h"

namespace f3d {
namespace bind {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

void expect(const TensorArg& t, bool ok, const std::string& want) {
  if (!ok) fail(t.name + " must have shape " + want + ", got " + shape_str(t.shape));
}

rbf::Shape parse_shape(const std::string& s) {
  if (s == "isotropic") return rbf::Shape::Isotropic;
  if (s == "diagonal") return rbf::Shape::Diagonal;
  if (s == "full") return rbf::Shape::Full;
  fail("shape must be 'isotropic', 'diagonal' or 'full', got '" + s + "'");
}

rbf::Kernel parse_kernel(const std::string& s) {
  if (s == "inverse_quadratic") return rbf::Kernel::InverseQuadratic;
  if (s == "gaussian") return rbf::Kernel::Gaussian;
  fail("kernel must be 'inverse_quadratic' or 'gaussian', got '" + s + "'");
}

std::vector<int64_t> shapes_shape(rbf::Shape s, int64_t m, int64_t d) {
  if (s == rbf::Shape::Isotropic) return {m};
  if (s == rbf::Shape::Diagonal) return {m, d};
  return {m, d, d};
}

// The inputs both directions share, checked on construction.
struct Eval {
  TensorArg x, centers, shapes, weights;
  IndexArg idx;
  std::optional<TensorArg> freqs;
  rbf::Shape shape;
  rbf::Kernel kernel;
  int64_t N = 0, D = 0, M = 0, F = 0, K = 0;

  Eval(py::handle x_, py::handle idx_, py::handle c_, py::handle s_, py::handle w_, py::handle f_,
       const std::string& shape_name, const std::string& kernel_name)
      : x(tensor_arg(x_, "x")), centers(tensor_arg(c_, "centers")), shapes(tensor_arg(s_, "shapes")),
        weights(tensor_arg(w_, "weights")), idx(index_arg(idx_, "idx")), shape(parse_shape(shape_name)),
        kernel(parse_kernel(kernel_name)) {
    const auto& xs = x.shape;
    expect(x, xs.size() == 2 && (xs[1] == 2 || xs[1] == 3), "(N, 2) or (N, 3)");
    N = xs[0], D = xs[1];
    const auto& cs = centers.shape;
    expect(centers, cs.size() == 2 && cs[0] >= 1 && cs[1] == D, "(M, " + std::to_string(D) + ") with M >= 1");
    M = cs[0];
    expect_same(x, centers);
    expect_shape(shapes, shapes_shape(shape, M, D));
    expect_same(x, shapes);
    const auto& ws = weights.shape;
    expect(weights, ws.size() == 2 && ws[0] == M && ws[1] >= 1, "(" + std::to_string(M) + ", F) with F >= 1");
    F = ws[1];
    expect_same(x, weights);
    read_freqs(f_);
    read_idx();
  }

  void read_freqs(py::handle f) {
    if (f.is_none()) return;
    freqs = tensor_arg(f, "freqs");
    const auto& fs = freqs->shape;
    expect(*freqs, fs.size() == 1 && fs[0] >= 1 && fs[0] <= F, "(L,) with 1 <= L <= F = " + std::to_string(F));
    expect_same(x, *freqs);
  }

  void read_idx() {
    if (idx.shape.size() != 2 || idx.shape[0] != N)
      fail("idx must have shape (" + std::to_string(N) + ", K), got " + shape_str(idx.shape));
    K = idx.shape[1];
    expect_index(idx, {N, K}, x);
  }

  // Called last, after every shape check: the only check that reads memory (on CUDA it also
  // synchronises the stream). Skipped when the caller vouches for idx (check = false).
  void check_indices(bool check, uintptr_t stream) const {
    if (!check) return;
    int64_t bad = 0;
    launch(x, [&] { bad = rbf::count_out_of_range_cpu(idx.data, N * K, M); },
           [&](int dev) { bad = rbf::count_out_of_range_cuda(idx.data, N * K, M, as_stream(stream), dev); });
    if (bad)
      fail("idx must hold values in [0, M) = [0, " + std::to_string(M) + "), got " + std::to_string(bad) +
           " out of range");
  }

  // A tensor of the given shape, x's dtype and device (opt: or None, an absent input or a skipped output).
  TensorArg need(py::handle obj, const char* name, const std::vector<int64_t>& shape) const {
    TensorArg t = tensor_arg(obj, name);
    expect_shape(t, shape);
    expect_same(x, t);
    return t;
  }
  std::optional<TensorArg> opt(py::handle obj, const char* name, const std::vector<int64_t>& shape) const {
    if (obj.is_none()) return std::nullopt;
    return need(obj, name, shape);
  }

  template <typename T>
  rbf::EvalArgs<T> args() const {
    rbf::EvalArgs<T> a;
    a.n_dims = int(D), a.n_features = int(F), a.k = int(K), a.n_freqs = freqs ? int(freqs->shape[0]) : 0;
    a.shape = shape, a.kernel = kernel, a.n_points = N, a.n_bases = M;
    a.x = x.ptr<T>(), a.idx = idx.data, a.centers = centers.ptr<T>(), a.shapes = shapes.ptr<T>();
    a.weights = weights.ptr<T>(), a.freqs = freqs ? freqs->ptr<T>() : nullptr;
    return a;
  }
};

void forward(py::handle x, py::handle idx, py::handle centers, py::handle shapes, py::handle weights,
             py::handle freqs, const std::string& shape, const std::string& kernel, py::handle y, bool check_idx,
             uintptr_t stream) {
  const Eval e(x, idx, centers, shapes, weights, freqs, shape, kernel);
  const TensorArg out = e.need(y, "y", {e.N, e.F});
  e.check_indices(check_idx, stream);
  with_type(e.x, [&](auto zero) {
    using T = decltype(zero);
    rbf::EvalArgs<T> a = e.args<T>();
    a.y = out.ptr<T>();
    launch(e.x, [&] { rbf::eval_forward_cpu(a); }, [&](int dev) { rbf::eval_forward_cuda(a, as_stream(stream), dev); });
  });
}

void backward(py::handle x, py::handle idx, py::handle centers, py::handle shapes, py::handle weights,
              py::handle freqs, const std::string& shape, const std::string& kernel, py::handle dy, py::handle dx,
              py::handle dcenters, py::handle dshapes, py::handle dweights, bool check_idx, uintptr_t stream) {
  const Eval e(x, idx, centers, shapes, weights, freqs, shape, kernel);
  const TensorArg g = e.need(dy, "dy", {e.N, e.F});
  const auto gx = e.opt(dx, "dx", {e.N, e.D}), gc = e.opt(dcenters, "dcenters", {e.M, e.D});
  const auto gs = e.opt(dshapes, "dshapes", shapes_shape(e.shape, e.M, e.D));
  const auto gw = e.opt(dweights, "dweights", {e.M, e.F});
  e.check_indices(check_idx, stream);
  with_type(e.x, [&](auto zero) {
    using T = decltype(zero);
    rbf::EvalArgs<T> a = e.args<T>();
    a.dy = g.ptr<T>();
    a.dx = opt_ptr<T>(gx), a.dcenters = opt_ptr<T>(gc), a.dshapes = opt_ptr<T>(gs);
    a.dweights = opt_ptr<T>(gw);
    launch(
        e.x, [&] { rbf::eval_backward_cpu(a); }, [&](int dev) { rbf::eval_backward_cuda(a, as_stream(stream), dev); });
  });
}

void backward_backward(py::handle x, py::handle idx, py::handle centers, py::handle shapes, py::handle weights,
                       py::handle freqs, const std::string& shape, const std::string& kernel, py::handle dy,
                       py::handle ddx, py::handle ddcenters, py::handle ddweights, py::handle ddy, py::handle gx,
                       py::handle gcenters, py::handle gshapes, py::handle gweights, bool check_idx,
                       uintptr_t stream) {
  const Eval e(x, idx, centers, shapes, weights, freqs, shape, kernel);
  const TensorArg g = e.need(dy, "dy", {e.N, e.F});
  const auto in_x = e.opt(ddx, "ddx", {e.N, e.D}), in_c = e.opt(ddcenters, "ddcenters", {e.M, e.D});
  const auto in_w = e.opt(ddweights, "ddweights", {e.M, e.F});
  const auto out_dy = e.opt(ddy, "ddy", {e.N, e.F}), out_x = e.opt(gx, "gx", {e.N, e.D});
  const auto out_c = e.opt(gcenters, "gcenters", {e.M, e.D});
  const auto out_s = e.opt(gshapes, "gshapes", shapes_shape(e.shape, e.M, e.D));
  const auto out_w = e.opt(gweights, "gweights", {e.M, e.F});
  e.check_indices(check_idx, stream);
  with_type(e.x, [&](auto zero) {
    using T = decltype(zero);
    rbf::Backward2Args<T> b;
    b.eval = e.args<T>();
    b.eval.dy = g.ptr<T>();
    b.eval.dx = opt_ptr<T>(out_x), b.eval.dcenters = opt_ptr<T>(out_c);
    b.eval.dshapes = opt_ptr<T>(out_s), b.eval.dweights = opt_ptr<T>(out_w);
    b.ddx = opt_ptr<T>(in_x), b.ddcenters = opt_ptr<T>(in_c), b.ddweights = opt_ptr<T>(in_w);
    b.ddy = opt_ptr<T>(out_dy);
    launch(e.x, [&] { rbf::eval_backward2_cpu(b); },
           [&](int dev) { rbf::eval_backward2_cuda(b, as_stream(stream), dev); });
  });
}

}  // namespace

void register_rbf_eval(py::module_& m) {
  m.def("rbf_eval_forward", &forward, py::arg("x"), py::arg("idx"), py::arg("centers"), py::arg("shapes"),
        py::arg("weights"), py::arg("freqs"), py::arg("shape"), py::arg("kernel"), py::arg("y"),
        py::arg("check_idx") = true, py::arg("stream") = 0,
        "RBF encoding over given neighbours: x (N, D), idx (N, K) int64 in [0, M), centers (M, D), shapes\n"
        "(M,) | (M, D) | (M, D, D), weights (M, F), freqs (L,) or None (plain) -> writes y (N, F).\n"
        "check_idx=False skips reading idx to check its range (and, on CUDA, a stream sync): only for\n"
        "indices already checked or made by knn. Likewise for the two backward ops.");
  m.def("rbf_eval_backward", &backward, py::arg("x"), py::arg("idx"), py::arg("centers"), py::arg("shapes"),
        py::arg("weights"), py::arg("freqs"), py::arg("shape"), py::arg("kernel"), py::arg("dy"), py::arg("dx"),
        py::arg("dcenters"), py::arg("dshapes"), py::arg("dweights"), py::arg("check_idx") = true,
        py::arg("stream") = 0,
        "Backward of rbf_eval_forward for dy (N, F): overwrites dx, dcenters, dshapes, dweights (None: skipped).");
  m.def("rbf_eval_backward_backward", &backward_backward, py::arg("x"), py::arg("idx"), py::arg("centers"),
        py::arg("shapes"), py::arg("weights"), py::arg("freqs"), py::arg("shape"), py::arg("kernel"), py::arg("dy"),
        py::arg("ddx"), py::arg("ddcenters"), py::arg("ddweights"), py::arg("ddy"), py::arg("gx"), py::arg("gcenters"),
        py::arg("gshapes"), py::arg("gweights"), py::arg("check_idx") = true, py::arg("stream") = 0,
        "Double backward of rbf_eval_forward: given dy (N, F) and the incoming gradients ddx (N, D), ddcenters\n"
        "(M, D), ddweights (M, F) of rbf_eval_backward's outputs (None: zero), overwrites the gradients w.r.t.\n"
        "dy (ddy), x (gx), centers, shapes and weights (gcenters, gshapes, gweights; None: skipped).");
}

}  // namespace bind
}  // namespace f3d
