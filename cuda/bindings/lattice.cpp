// Bindings for the lattice encodings (encodings/lattice.h: hash grid, dense grid, tri-plane,
// simplex grid): one layout type, LatticeLayout, built once per module by make_layout, and host
// functions lattice_forward / _backward / _backward_backward that check every tensor against it
// before dispatching to the CPU or CUDA launcher (bindings/encoding_call.h). The layout's kind
// picks the kernel.
#include <pybind11/stl.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/encoding_call.h"
#include "encodings/lattice.h"

namespace f3d {
namespace bind {
namespace {

using encoding::fail;

// The Kernels trait of encoding_call.h, one for all four encodings: they share the launchers, and
// the layout's kind picks the stencil (lattice::dispatch). Messages name the hash grid as before.
struct LatticeKernels {
  using Layout = lattice::Layout;
  template <typename T>
  using Args = lattice::Args<T>;
  static const char* name(const Layout& L) { return L.kind == lattice::Kind::Hash ? "hash grid" : "lattice encoding"; }
  template <typename T>
  static void cpu(enc::Op op, const Args<T>& a) { lattice::launch_cpu<T>(op, a); }
#ifdef FIELDS3D_WITH_CUDA
  static void cuda(enc::Op op, const Args<float>& a, void* s, int device) { lattice::launch_cuda(op, a, s, device); }
#endif
};

lattice::Interp parse_interp(const std::string& interpolation) {
  using lattice::Interp;
  if (interpolation == "linear") return Interp::Linear;
  if (interpolation == "smoothstep") return Interp::Smoothstep;
  fail("interpolation must be 'linear' or 'smoothstep', got '" + interpolation + "'");
}

lattice::Kind parse_kind(const std::string& kind, int n_dims) {
  if (kind == "hash") {
    if (n_dims < 1 || n_dims > lattice::kMaxDims) fail("n_dims must be 1, 2, 3 or 4, got " + std::to_string(n_dims));
    return lattice::Kind::Hash;
  }
  if (kind == "dense" && (n_dims == 2 || n_dims == 3)) return lattice::Kind::Dense;
  if (kind == "triplane" && n_dims == 3) return lattice::Kind::TriPlane;
  if (kind == "simplex" && n_dims >= 2 && n_dims <= 4) return lattice::Kind::Simplex;
  fail("unsupported lattice kind '" + kind + "' with n_dims " + std::to_string(n_dims) +
       " (dense: 2 or 3, triplane: 3, simplex: 2 to 4)");
}

void check_features(lattice::Kind kind, int n_features) {
  const bool pow2 = n_features == 1 || n_features == 2 || n_features == 4 || n_features == 8;
  if (kind == lattice::Kind::Hash) {
    if (!pow2) fail("n_features must be 1, 2, 4 or 8, got " + std::to_string(n_features));
    return;
  }
  if (n_features < 1 || n_features > lattice::kMaxFeatures)
    fail("n_features must be between 1 and 32, got " + std::to_string(n_features));
  if (kind == lattice::Kind::Simplex && !pow2)
    fail("simplex n_features must be 1, 2, 4 or 8, got " + std::to_string(n_features));
}

// Rows a level needs when indexed densely: R^D (dense), R^2 (a tri-plane plane).
uint64_t dense_rows(lattice::Kind kind, int n_dims, uint32_t res) {
  const int dims = kind == lattice::Kind::TriPlane ? 2 : n_dims;
  uint64_t rows = 1;
  for (int d = 0; d < dims; ++d) rows *= res;
  return rows;
}

// The checked layout of any lattice encoding. kind: "hash" (1 to 4 dims), "dense" (2 or 3),
// "triplane" (3) or "simplex" (2 to 4). Per level: scale, resolution (vertices per axis), sizes
// (rows), hashed, and axes (a tri-plane level's two input axes; read by no other kind, and
// checked for every kind but the hash grid, whose 1D inputs have no second axis).
lattice::Layout make_layout(const std::string& kind, int n_dims, int n_features, const std::string& interpolation,
                            const std::vector<double>& scales, const std::vector<uint32_t>& resolutions,
                            const std::vector<uint32_t>& sizes, const std::vector<bool>& hashed,
                            const std::vector<std::vector<int>>& axes) {
  lattice::Layout L;
  L.kind = parse_kind(kind, n_dims);
  const bool hash = L.kind == lattice::Kind::Hash, simplex = L.kind == lattice::Kind::Simplex;
  check_features(L.kind, n_features);
  const size_t levels = scales.size();
  if (levels < 1 || levels > size_t(lattice::kMaxLevels))
    fail("the number of levels must be between 1 and " + std::to_string(lattice::kMaxLevels) + ", got " +
         std::to_string(levels));
  for (size_t n : {resolutions.size(), sizes.size(), hashed.size(), axes.size()})
    if (n != levels) fail("scales, resolutions, sizes, hashed and axes must have one entry per level");
  L.interp = parse_interp(interpolation);
  L.n_dims = n_dims;
  L.n_features = n_features;
  L.n_levels = int(levels);
  if (!hash) L.skew = (std::sqrt(double(n_dims) + 1.0) - 1.0) / n_dims;
  int64_t offset = 0;
  for (size_t l = 0; l < levels; ++l) {
    if (hash) {
      if (!(scales[l] > 0.0) || scales[l] > 4294967295.0) fail("level scales must be positive and below 2^32");
    } else {
      if (!(scales[l] > 0.0) || scales[l] > 1073741824.0) fail("level scales must be positive and at most 2^30");
      if (resolutions[l] < 2) fail("level resolutions must be at least 2");
    }
    if (!hash && !simplex) {  // dense grid, tri-plane
      if (hashed[l] || std::fabs(scales[l] - (resolutions[l] - 1.0)) > 1e-9)
        fail("dense and tri-plane levels are not hashed and have scale resolution - 1");
      if (sizes[l] < dense_rows(L.kind, n_dims, resolutions[l]))
        fail("a level that is not hashed needs at least resolution^dims rows");
    }
    if (sizes[l] < 1) fail("level sizes must be at least 1");
    if (hashed[l] && (sizes[l] & (sizes[l] - 1)) != 0) fail("hashed levels must hold a power-of-two number of rows");
    if (!hash && (axes[l].size() != 2 || axes[l][0] < 0 || axes[l][0] >= n_dims || axes[l][1] < 0 ||
                  axes[l][1] >= n_dims || axes[l][0] == axes[l][1]))
      fail("axes must list two different input axes per level");
    L.scale[l] = scales[l];
    L.resolution[l] = resolutions[l];
    L.size[l] = sizes[l];
    L.hashed[l] = hashed[l];
    if (!hash) {
      L.axes[l][0] = axes[l][0];
      L.axes[l][1] = axes[l][1];
    }
    L.offset[l] = offset;
    offset += sizes[l];
    L.lut_offset[l] = -1;
    if (simplex && !hashed[l]) {  // direct simplex level: a row lookup over R^(D-1) prefixes
      const uint64_t prefixes = dense_rows(L.kind, n_dims - 1, resolutions[l]);
      if (prefixes * resolutions[l] > (uint64_t(1) << 32))
        fail("a simplex level that is not hashed needs resolution^dims below 2^32");
      L.lut_offset[l] = L.n_lut;
      L.n_lut += int64_t(prefixes);
    }
  }
  L.n_entries = offset;
  return L;
}

}  // namespace

void register_lattice(py::module_& m) {
  using K = LatticeKernels;
  using lattice::Layout;
  py::class_<Layout>(m, "LatticeLayout",
                     "Checked table layout of a lattice encoding: hash grid, dense grid, tri-plane or simplex grid.",
                     class_scope())
      .def(py::init(&make_layout), py::arg("kind"), py::arg("n_dims"), py::arg("n_features"),
           py::arg("interpolation"), py::arg("scales"), py::arg("resolutions"), py::arg("sizes"), py::arg("hashed"),
           py::arg("axes"))
      .def_property_readonly("n_entries", [](const Layout& L) { return L.n_entries; })
      .def_property_readonly("n_levels", [](const Layout& L) { return L.n_levels; })
      .def_property_readonly("n_features", [](const Layout& L) { return L.n_features; })
      .def_property_readonly("offsets",
                             [](const Layout& L) { return std::vector<int64_t>(L.offset, L.offset + L.n_levels); })
      .def_property_readonly("n_lut", [](const Layout& L) { return L.n_lut; },
                             "Entries of the simplex direct levels' row lookup (0: none).");
  m.def("lattice_forward", &encoding::forward<K>, py::arg("layout"), py::arg("x"), py::arg("table"), py::arg("y"),
        py::arg("stream") = 0, py::arg("lut") = py::none(),
        "y (N, L*F) = encoding of x (N, D) with table (n_entries, F).");
  m.def("lattice_backward", &encoding::backward<K>, py::arg("layout"), py::arg("x"), py::arg("table"), py::arg("dy"),
        py::arg("dx"), py::arg("dtable"), py::arg("stream") = 0, py::arg("lut") = py::none(),
        "Writes dx (N, D) and dtable (n_entries, F); either may be None.");
  m.def("lattice_backward_backward", &encoding::backward_backward<K>, py::arg("layout"), py::arg("x"),
        py::arg("table"), py::arg("dy"), py::arg("ddx"), py::arg("ddtable"), py::arg("ddy"), py::arg("dx"),
        py::arg("dtable"), py::arg("stream") = 0, py::arg("lut") = py::none(),
        "Gradients of the backward pass: writes ddy, dx and dtable; None skips an input/output.");
  m.attr("HASH_PRIMES") = py::make_tuple(lattice::kHashPrimes.p[0], lattice::kHashPrimes.p[1],
                                         lattice::kHashPrimes.p[2], lattice::kHashPrimes.p[3]);
}

}  // namespace bind
}  // namespace f3d
