// Bindings for render/march.h: ray marching through an occupancy grid, as count / emit passes
// (Python sizes the sample buffers between them). Every tensor's dtype, shape, device and
// contiguity is checked before a pointer is used.
#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings/tensor.h"
#include "render/march.h"

namespace f3d {
namespace bind {
namespace {

using Vec3 = std::array<double, 3>;
using Res3 = std::array<int, 3>;

constexpr int kMaxLevels = 16;
constexpr int kMaxRes = 4096;

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

struct Rays {
  TensorArg origins, dirs, nears, fars;
};

Rays rays_arg(py::handle origins, py::handle dirs, py::handle nears, py::handle fars) {
  Rays r{tensor_arg(origins, "origins"), tensor_arg(dirs, "dirs"), tensor_arg(nears, "nears"),
         tensor_arg(fars, "fars")};
  expect_shape(r.origins, {-1, 3});
  const int64_t n = r.origins.shape[0];
  expect_shape(r.dirs, {n, 3});
  expect_shape(r.nears, {n});
  expect_shape(r.fars, {n});
  for (const TensorArg* t : {&r.dirs, &r.nears, &r.fars}) expect_same(r.origins, *t);
  return r;
}

struct Grid {
  int levels = 1;
  Res3 res{};
  Vec3 center{}, half{};
  double step = 0, cone = 0, max_step = 0;
};

void check_grid(const Grid& g) {
  if (g.levels < 1 || g.levels > kMaxLevels)
    fail("levels must be between 1 and " + std::to_string(kMaxLevels) + ", got " + std::to_string(g.levels));
  for (int d = 0; d < 3; ++d) {
    // With more than one level, the box of level l must cover whole cells of level l + 1.
    if (g.res[d] < 1 || g.res[d] > kMaxRes || (g.levels > 1 && g.res[d] % 4 != 0))
      fail("resolution must be between 1 and " + std::to_string(kMaxRes) +
           " cells per axis (a multiple of 4 with more than one level), got " + std::to_string(g.res[d]));
    if (!(g.half[d] > 0) || !std::isfinite(g.half[d]) || !std::isfinite(g.center[d]))
      fail("the grid's centre must be finite and its half extents positive");
  }
  if (!(g.step > 0) || !std::isfinite(g.step)) fail("step must be positive and finite");
  if (!(g.cone >= 0) || !std::isfinite(g.cone)) fail("cone must be >= 0 and finite");
  if (!(g.max_step >= g.step) || !std::isfinite(g.max_step)) fail("max_step must be finite and >= step");
}

std::optional<ByteArg> bits_arg(py::handle bits, const Grid& g, const TensorArg& ref) {
  if (bits.is_none()) return std::nullopt;
  ByteArg b = byte_arg(bits, "bits");
  const int64_t cells = int64_t(g.levels) * g.res[0] * g.res[1] * g.res[2];
  expect_index(b, {(cells + 7) / 8}, ref);
  return b;
}

template <typename T>
march::Args<T> march_args(const Rays& r, const std::optional<ByteArg>& bits, const Grid& g) {
  march::Args<T> a;
  a.origins = r.origins.ptr<T>();
  a.dirs = r.dirs.ptr<T>();
  a.nears = r.nears.ptr<T>();
  a.fars = r.fars.ptr<T>();
  a.n_rays = r.origins.shape[0];
  a.bits = bits ? bits->data : nullptr;
  a.levels = g.levels;
  for (int d = 0; d < 3; ++d) {
    a.res[d] = g.res[d];
    a.center[d] = T(g.center[d]);
    a.half[d] = T(g.half[d]);
  }
  a.step = T(g.step);
  a.cone = T(g.cone);
  a.max_step = T(g.max_step);
  return a;
}

Grid grid_of(int levels, const Res3& res, const Vec3& center, const Vec3& half, double step, double cone,
             double max_step) {
  Grid g{levels, res, center, half, step, cone, max_step};
  check_grid(g);
  return g;
}

void march_count(py::handle origins, py::handle dirs, py::handle nears, py::handle fars, py::handle bits,
                 int levels, const Res3& res, const Vec3& center, const Vec3& half, double step, double cone,
                 double max_step, py::handle counts, uintptr_t stream) {
  const Rays r = rays_arg(origins, dirs, nears, fars);
  const Grid g = grid_of(levels, res, center, half, step, cone, max_step);
  const auto b = bits_arg(bits, g, r.origins);
  const IndexArg c = index_arg(counts, "counts");
  expect_index(c, {r.origins.shape[0]}, r.origins);
  with_type(r.origins, [&](auto zero) {
    using T = decltype(zero);
    march::Args<T> a = march_args<T>(r, b, g);
    a.counts = c.data;
    launch(r.origins, [&] { march::count_cpu(a); }, [&](int dev) { march::count_cuda(a, as_stream(stream), dev); });
  });
}

void march_emit(py::handle origins, py::handle dirs, py::handle nears, py::handle fars, py::handle bits, int levels,
                const Res3& res, const Vec3& center, const Vec3& half, double step, double cone, double max_step,
                py::handle offsets, py::handle t_starts, py::handle t_ends, py::handle ray_ids, uintptr_t stream) {
  const Rays r = rays_arg(origins, dirs, nears, fars);
  const Grid g = grid_of(levels, res, center, half, step, cone, max_step);
  const auto b = bits_arg(bits, g, r.origins);
  const IndexArg o = index_arg(offsets, "offsets");
  expect_index(o, {r.origins.shape[0] + 1}, r.origins);
  const TensorArg ts = tensor_arg(t_starts, "t_starts"), te = tensor_arg(t_ends, "t_ends");
  expect_shape(ts, {-1});
  expect_shape(te, {ts.shape[0]});
  expect_same(r.origins, ts);
  expect_same(r.origins, te);
  const IndexArg ids = index_arg(ray_ids, "ray_ids");
  expect_index(ids, {ts.shape[0]}, r.origins);
  check_offsets(o, ts.shape[0], false);
  with_type(r.origins, [&](auto zero) {
    using T = decltype(zero);
    march::Args<T> a = march_args<T>(r, b, g);
    a.offsets = o.data;
    a.t_starts = ts.ptr<T>();
    a.t_ends = te.ptr<T>();
    a.ray_ids = ids.data;
    launch(r.origins, [&] { march::emit_cpu(a); }, [&](int dev) { march::emit_cuda(a, as_stream(stream), dev); });
  });
}

}  // namespace

void register_march(py::module_& m) {
  m.def("march_count", &march_count, py::arg("origins"), py::arg("dirs"), py::arg("nears"), py::arg("fars"),
        py::arg("bits"), py::arg("levels"), py::arg("resolution"), py::arg("center"), py::arg("half"),
        py::arg("step"), py::arg("cone"), py::arg("max_step"), py::arg("counts"), py::arg("stream") = 0,
        "Pass 1: counts (R,) int64 <- samples of each ray (origins, dirs (R, 3); nears, fars (R,)) through the\n"
        "packed occupancy bits (uint8, or None for an empty-space-free box).");
  m.def("march_emit", &march_emit, py::arg("origins"), py::arg("dirs"), py::arg("nears"), py::arg("fars"),
        py::arg("bits"), py::arg("levels"), py::arg("resolution"), py::arg("center"), py::arg("half"),
        py::arg("step"), py::arg("cone"), py::arg("max_step"), py::arg("offsets"), py::arg("t_starts"),
        py::arg("t_ends"), py::arg("ray_ids"), py::arg("stream") = 0,
        "Pass 2: writes each ray's first offsets[r+1]-offsets[r] samples to t_starts, t_ends (S,), ray_ids (S,).");
}

}  // namespace bind
}  // namespace f3d
