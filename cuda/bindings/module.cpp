// fields3d._core: one register_*() per binding file, each named after the core file it binds
// (lattice.cpp: encodings/lattice.h; knn.cpp: geometry/knn.h; marching_cubes.cpp:
// geometry/marching_cubes.h; march.cpp and composite.cpp: render/march.h and render/composite.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "common/parallel.h"

#ifdef FIELDS3D_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace py = pybind11;

namespace f3d {
namespace bind {
void register_lattice(py::module_& m);
void register_marching_cubes(py::module_& m);
void register_knn(py::module_& m);
void register_rbf_eval(py::module_& m);
void register_march(py::module_& m);
void register_composite(py::module_& m);
#ifdef FIELDS3D_CUDA_EMU
void register_emulator(py::module_& m);
#endif
}
}  // namespace f3d

#ifndef FIELDS3D_CUDA_ARCHS
#define FIELDS3D_CUDA_ARCHS ""
#endif
#ifndef FIELDS3D_MODULE
#define FIELDS3D_MODULE _core  // _core_emu: the emulated test module
#endif
#ifndef FIELDS3D_VERSION
#define FIELDS3D_VERSION "0"
#endif

namespace {

py::dict build_info() {
  py::dict d;
  d["version"] = FIELDS3D_VERSION;
  d["cxx_compiler"] = __VERSION__;
#ifdef FIELDS3D_WITH_CUDA
  d["cuda"] = true;
#ifdef FIELDS3D_CUDA_EMU
  d["cuda_emulated"] = true;
#endif
  d["cuda_archs"] = std::string(FIELDS3D_CUDA_ARCHS);
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  d["cuda_runtime"] = std::to_string(runtime / 1000) + "." + std::to_string((runtime % 1000) / 10);
#else
  d["cuda"] = false;
  d["cuda_archs"] = std::string();
  d["cuda_runtime"] = py::none();
#endif
  return d;
}

int cuda_device_count() {
#ifdef FIELDS3D_WITH_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
#else
  return 0;
#endif
}

}  // namespace

PYBIND11_MODULE(FIELDS3D_MODULE, m) {
  m.doc() = "fields3d compiled core (framework-free C++/CUDA kernels).";
  m.def("build_info", &build_info, "Version, compiler and compiled backends of this build.");
  m.def("cuda_device_count", &cuda_device_count, "CUDA devices this build can use (0 without CUDA).");
  m.def("num_threads", &f3d::num_threads, "Threads the CPU kernels use.");
  m.def("set_num_threads", &f3d::set_num_threads, py::arg("n"), "Set the CPU kernels' thread count.");
  f3d::bind::register_lattice(m);
  f3d::bind::register_marching_cubes(m);
  f3d::bind::register_knn(m);
  f3d::bind::register_rbf_eval(m);
  f3d::bind::register_march(m);
  f3d::bind::register_composite(m);
#ifdef FIELDS3D_CUDA_EMU
  f3d::bind::register_emulator(m);
#endif
}
