// Bindings for the neighbour search (geometry/knn.h): the grid's shape from the centers' bounding
// box (knn_grid_shape), and the search itself (knn), which writes the grid and the K nearest
// centers into caller-allocated tensors. Every tensor's dtype, shape, device and contiguity is
// checked before a pointer is used.
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bindings/tensor.h"
#include "geometry/knn.h"

namespace f3d {
namespace bind {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

void check_k(int k, int64_t n_centers) {
  const int64_t most = std::min<int64_t>(knn::kMaxK, n_centers);
  if (k < 1 || k > most)
    fail("k must be between 1 and min(32, number of centers) = " + std::to_string(most) + ", got " +
         std::to_string(k));
}

void check_box(const std::vector<double>& v, size_t n_dims, const char* name) {
  if (v.size() != n_dims)
    fail(std::string(name) + " must have " + std::to_string(n_dims) + " entries, got " + std::to_string(v.size()));
  for (double x : v)
    if (!std::isfinite(x)) fail(std::string(name) + " must be finite");
}

std::pair<double, std::vector<int64_t>> grid_shape(const std::vector<double>& lo, const std::vector<double>& hi,
                                                   int64_t n_centers, int k) {
  if (lo.size() != 2 && lo.size() != 3) fail("lo must have 2 or 3 entries, got " + std::to_string(lo.size()));
  check_box(lo, lo.size(), "lo");
  check_box(hi, lo.size(), "hi");
  if (n_centers < 1) fail("n_centers must be at least 1, got " + std::to_string(n_centers));
  check_k(k, n_centers);
  const knn::GridShape g = knn::grid_shape(lo.data(), hi.data(), int(lo.size()), n_centers, k);
  return {g.cell, std::vector<int64_t>(g.res, g.res + lo.size())};
}

struct Grid {
  std::vector<double> origin;
  double cell;
  std::vector<int64_t> res;
};

int64_t checked_cells(const Grid& g, size_t n_dims) {
  check_box(g.origin, n_dims, "origin");
  if (!(g.cell > 0.0) || !std::isfinite(g.cell)) fail("cell must be positive and finite");
  if (g.res.size() != n_dims) fail("resolution must have " + std::to_string(n_dims) + " entries");
  int64_t cells = 1;
  for (int64_t r : g.res) {
    if (r < 1 || r > knn::kMaxCells) fail("resolution entries must be between 1 and 2^24");
    cells *= r;
    if (cells > knn::kMaxCells) fail("the grid must have at most 2^24 cells");
  }
  return cells;
}

template <typename T>
knn::KnnArgs<T> knn_args(const TensorArg& c, const TensorArg& p, int k, const Grid& g) {
  knn::KnnArgs<T> a;
  a.n_dims = int(c.shape[1]);
  a.k = k;
  a.n_centers = c.shape[0];
  a.n_points = p.shape[0];
  for (int d = 0; d < a.n_dims; ++d) {
    a.origin[d] = T(g.origin[size_t(d)]);
    a.res[d] = g.res[size_t(d)];
  }
  a.cell = T(g.cell);
  a.centers = c.ptr<T>();
  a.points = p.ptr<T>();
  return a;
}

void search(py::handle centers, py::handle points, int k, const std::vector<double>& origin, double cell,
         const std::vector<int64_t>& resolution, py::handle cell_start, py::handle order, py::handle indices,
         py::handle dist2, uintptr_t stream) {
  const TensorArg c = tensor_arg(centers, "centers"), p = tensor_arg(points, "points");
  if (c.shape.size() != 2 || (c.shape[1] != 2 && c.shape[1] != 3))
    fail("centers must have shape (M, 2) or (M, 3), got " + shape_str(c.shape));
  if (c.shape[0] < 1) fail("centers must hold at least one center");
  const int64_t D = c.shape[1], M = c.shape[0];
  expect_shape(p, {-1, D});
  expect_same(c, p);
  check_k(k, M);
  const Grid g{origin, cell, resolution};
  const int64_t n_cells = checked_cells(g, size_t(D));
  const IndexArg cs = index_arg(cell_start, "cell_start"), ord = index_arg(order, "order");
  const IndexArg idx = index_arg(indices, "indices");
  const TensorArg d2 = tensor_arg(dist2, "dist2");
  expect_index(cs, {n_cells + 1}, c);
  expect_index(ord, {M}, c);
  expect_index(idx, {p.shape[0], k}, c);
  expect_shape(d2, {p.shape[0], k});
  expect_same(c, d2);
  with_type(c, [&](auto zero) {
    using T = decltype(zero);
    knn::KnnArgs<T> a = knn_args<T>(c, p, k, g);
    a.cell_start = cs.data;
    a.order = ord.data;
    a.indices = idx.data;
    a.dist2 = d2.ptr<T>();
    launch(c, [&] { knn::knn_cpu(a); }, [&](int dev) { knn::knn_cuda(a, as_stream(stream), dev); });
  });
}

}  // namespace

void register_knn(py::module_& m) {
  m.def("knn_grid_shape", &grid_shape, py::arg("lo"), py::arg("hi"), py::arg("n_centers"), py::arg("k"),
        "(cell, resolution) of a uniform grid over the box [lo, hi] holding about k of n_centers centers per cell.");
  m.def("knn", &search, py::arg("centers"), py::arg("points"), py::arg("k"), py::arg("origin"), py::arg("cell"),
        py::arg("resolution"), py::arg("cell_start"), py::arg("order"), py::arg("indices"), py::arg("dist2"),
        py::arg("stream") = 0,
        "K nearest centers (M, D) of points (N, D), D = 2 or 3: writes the grid (cell_start (n_cells + 1,),\n"
        "order (M,) int64) and indices (N, k) int64 / dist2 (N, k), nearest first, ties by lower index.");
}

}  // namespace bind
}  // namespace f3d
