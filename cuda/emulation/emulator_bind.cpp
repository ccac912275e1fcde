// fields3d._core_emu only: the emulator's self-test kernels (selftest.cu) and its allocation count.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_runtime.h"

namespace py = pybind11;

namespace f3d {
namespace emu_selftest {
std::vector<int64_t> warp_scan(int64_t n, int block);
std::vector<int64_t> ballot_down();
std::vector<int64_t> reverse(int block);
void shuffle_after_return();
void mixed_barriers();
std::string launch_error(unsigned blocks, unsigned threads);
}  // namespace emu_selftest

namespace bind {

void register_emulator(py::module_& m) {
  py::module_ e = m.def_submodule("emulator", "The host emulation of CUDA this test module runs its kernels on.");
  e.def("live_allocations", [] { return f3d_emu::live_allocations(); },
        "Scratch blocks the launchers allocated and have not freed.");
  e.def("warp_scan", &emu_selftest::warp_scan, py::arg("n"), py::arg("block"));
  e.def("ballot_down", &emu_selftest::ballot_down);
  e.def("reverse", &emu_selftest::reverse, py::arg("block"));
  e.def("shuffle_after_return", &emu_selftest::shuffle_after_return);
  e.def("mixed_barriers", &emu_selftest::mixed_barriers);
  e.def("launch_error", &emu_selftest::launch_error, py::arg("blocks"), py::arg("threads"));
}

}  // namespace bind
}  // namespace f3d
