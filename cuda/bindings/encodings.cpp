// Bindings for the encodings: a layout object built once per module (hash grid, or a lattice
// encoding: dense grid, tri-plane, simplex grid), and host functions that check every tensor
// against it before dispatching to the CPU or CUDA launcher (bindings/encoding_call.h).
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

// The hash grid runs on the lattice kernels (its stencil is lattice::Hashed); its layout is a
// distinct type only so that Python sees HashGridLayout and LatticeLayout as different classes.
struct HashGridLayout : lattice::Layout {};

struct HashGridKernels {
  using Layout = HashGridLayout;
  static constexpr bool kLookup = false;
  template <typename T>
  using Args = lattice::Args<T>;
  static const char* name() { return "hash grid"; }
  template <typename T>
  static void cpu(enc::Op op, const Args<T>& a) { lattice::launch_cpu<T>(op, a); }
#ifdef FIELDS3D_WITH_CUDA
  static void cuda(enc::Op op, const Args<float>& a, void* s, int device) { lattice::launch_cuda(op, a, s, device); }
#endif
};

struct LatticeKernels {
  using Layout = lattice::Layout;
  static constexpr bool kLookup = true;  // Layout has n_lut and lut
  template <typename T>
  using Args = lattice::Args<T>;
  static const char* name() { return "lattice encoding"; }
  template <typename T>
  static void cpu(enc::Op op, const Args<T>& a) { lattice::launch_cpu<T>(op, a); }
#ifdef FIELDS3D_WITH_CUDA
  static void cuda(enc::Op op, const Args<float>& a, void* s, int device) { lattice::launch_cuda(op, a, s, device); }
#endif
};

void check_levels(size_t levels, int max_levels, const std::vector<size_t>& others, const char* names) {
  if (levels < 1 || levels > size_t(max_levels))
    fail("the number of levels must be between 1 and " + std::to_string(max_levels) + ", got " +
         std::to_string(levels));
  for (size_t n : others)
    if (n != levels) fail(std::string(names) + " must have one entry per level");
}

lattice::Interp parse_interp(const std::string& interpolation) {
  using lattice::Interp;
  if (interpolation == "linear") return Interp::Linear;
  if (interpolation == "smoothstep") return Interp::Smoothstep;
  fail("interpolation must be 'linear' or 'smoothstep', got '" + interpolation + "'");
}

HashGridLayout make_hash_layout(int n_dims, int n_features, const std::string& interpolation,
                                const std::vector<double>& scales, const std::vector<uint32_t>& resolutions,
                                const std::vector<uint32_t>& sizes, const std::vector<bool>& hashed) {
  HashGridLayout L;
  L.kind = lattice::Kind::Hash;
  if (n_dims < 1 || n_dims > lattice::kMaxDims) fail("n_dims must be 1, 2, 3 or 4, got " + std::to_string(n_dims));
  if (n_features != 1 && n_features != 2 && n_features != 4 && n_features != 8)
    fail("n_features must be 1, 2, 4 or 8, got " + std::to_string(n_features));
  const size_t levels = scales.size();
  check_levels(levels, lattice::kMaxLevels, {resolutions.size(), sizes.size(), hashed.size()},
               "scales, resolutions, sizes and hashed");
  L.interp = parse_interp(interpolation);
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
    L.lut_offset[l] = -1;
    offset += sizes[l];
  }
  L.n_entries = offset;
  return L;
}

lattice::Kind parse_kind(const std::string& kind, int n_dims) {
  if (kind == "dense" && (n_dims == 2 || n_dims == 3)) return lattice::Kind::Dense;
  if (kind == "triplane" && n_dims == 3) return lattice::Kind::TriPlane;
  if (kind == "simplex" && n_dims >= 2 && n_dims <= 4) return lattice::Kind::Simplex;
  fail("unsupported lattice kind '" + kind + "' with n_dims " + std::to_string(n_dims) +
       " (dense: 2 or 3, triplane: 3, simplex: 2 to 4)");
}

// Rows a level needs when indexed densely: R^D (dense), R^2 (a tri-plane plane).
uint64_t dense_rows(lattice::Kind kind, int n_dims, uint32_t res) {
  const int dims = kind == lattice::Kind::TriPlane ? 2 : n_dims;
  uint64_t rows = 1;
  for (int d = 0; d < dims; ++d) rows *= res;
  return rows;
}

lattice::Layout make_lattice_layout(const std::string& kind, int n_dims, int n_features,
                                    const std::string& interpolation, const std::vector<double>& scales,
                                    const std::vector<uint32_t>& resolutions, const std::vector<uint32_t>& sizes,
                                    const std::vector<bool>& hashed, const std::vector<std::vector<int>>& axes) {
  lattice::Layout L;
  L.kind = parse_kind(kind, n_dims);
  if (n_features < 1 || n_features > lattice::kMaxFeatures)
    fail("n_features must be between 1 and 32, got " + std::to_string(n_features));
  if (L.kind == lattice::Kind::Simplex && n_features != 1 && n_features != 2 && n_features != 4 && n_features != 8)
    fail("simplex n_features must be 1, 2, 4 or 8, got " + std::to_string(n_features));
  const size_t levels = scales.size();
  check_levels(levels, lattice::kMaxLevels, {resolutions.size(), sizes.size(), hashed.size(), axes.size()},
               "scales, resolutions, sizes, hashed and axes");
  L.interp = parse_interp(interpolation);
  L.n_dims = n_dims;
  L.n_features = n_features;
  L.n_levels = int(levels);
  L.skew = (std::sqrt(double(n_dims) + 1.0) - 1.0) / n_dims;
  int64_t offset = 0;
  for (size_t l = 0; l < levels; ++l) {
    if (!(scales[l] > 0.0) || scales[l] > 1073741824.0) fail("level scales must be positive and at most 2^30");
    if (resolutions[l] < 2) fail("level resolutions must be at least 2");
    const bool simplex = L.kind == lattice::Kind::Simplex;
    if (!simplex && (hashed[l] || std::fabs(scales[l] - (resolutions[l] - 1.0)) > 1e-9))
      fail("dense and tri-plane levels are not hashed and have scale resolution - 1");
    if (!simplex && sizes[l] < dense_rows(L.kind, n_dims, resolutions[l]))
      fail("a level that is not hashed needs at least resolution^dims rows");
    if (sizes[l] < 1) fail("level sizes must be at least 1");
    if (hashed[l] && (sizes[l] < 1 || (sizes[l] & (sizes[l] - 1)) != 0))
      fail("hashed levels must hold a power-of-two number of rows");
    if (axes[l].size() != 2 || axes[l][0] < 0 || axes[l][0] >= n_dims || axes[l][1] < 0 || axes[l][1] >= n_dims ||
        axes[l][0] == axes[l][1])
      fail("axes must list two different input axes per level");
    L.scale[l] = scales[l];
    L.resolution[l] = resolutions[l];
    L.size[l] = sizes[l];
    L.hashed[l] = hashed[l];
    L.axes[l][0] = axes[l][0];
    L.axes[l][1] = axes[l][1];
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

template <class Layout>
void def_layout_properties(py::class_<Layout>& c) {
  c.def_property_readonly("n_entries", [](const Layout& L) { return L.n_entries; })
      .def_property_readonly("n_levels", [](const Layout& L) { return L.n_levels; })
      .def_property_readonly("n_features", [](const Layout& L) { return L.n_features; })
      .def_property_readonly("offsets", [](const Layout& L) {
        return std::vector<int64_t>(L.offset, L.offset + L.n_levels);
      });
}

}  // namespace

void register_encodings(py::module_& m) {
  py::class_<HashGridLayout> hash(m, "HashGridLayout", "Checked table layout of a hash grid (built by HashGridConfig).",
                                 class_scope());
  hash.def(py::init(&make_hash_layout), py::arg("n_dims"), py::arg("n_features"), py::arg("interpolation"),
           py::arg("scales"), py::arg("resolutions"), py::arg("sizes"), py::arg("hashed"));
  def_layout_properties(hash);
  encoding::def_ops<HashGridKernels>(m, "hash_grid");

  py::class_<lattice::Layout> lat(m, "LatticeLayout",
                                  "Checked table layout of a dense grid, tri-plane or simplex grid.", class_scope());
  lat.def(py::init(&make_lattice_layout), py::arg("kind"), py::arg("n_dims"), py::arg("n_features"),
          py::arg("interpolation"), py::arg("scales"), py::arg("resolutions"), py::arg("sizes"), py::arg("hashed"),
          py::arg("axes"));
  def_layout_properties(lat);
  lat.def_property_readonly("n_lut", [](const lattice::Layout& L) { return L.n_lut; },
                            "Entries of the simplex direct levels' row lookup (0: none).");
  encoding::def_ops<LatticeKernels>(m, "lattice");
}

}  // namespace bind
}  // namespace f3d
