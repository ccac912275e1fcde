// Tensors cross into the core as DLPack capsules. TensorArg reads one without taking ownership
// (the capsule keeps the producer's tensor alive) and checks dtype, shape, device and strides:
// the last line of defence before memory is touched.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/dlpack.h"

namespace f3d {
namespace bind {

namespace py = pybind11;

enum class DType { Float32, Float64 };

struct TensorArg {
  std::string name;
  void* data = nullptr;
  DLDevice device{kDLCPU, 0};
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  py::object keep;  // the capsule

  int64_t numel() const;
  bool is_cuda() const { return device.device_type == kDLCUDA; }
  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
};

const char* dtype_name(DType t);

// An optional tensor's data pointer, or null when it was not given.
template <typename T>
T* opt_ptr(const std::optional<TensorArg>& t) { return t ? t->ptr<T>() : nullptr; }

// Reads a DLPack capsule named `name`; raises ValueError unless it holds a contiguous float32 or
// float64 tensor on the CPU or a CUDA device.
TensorArg tensor_arg(py::handle obj, const char* name);

// Raises ValueError unless t has exactly the given shape (-1 matches any extent).
void expect_shape(const TensorArg& t, const std::vector<int64_t>& shape);
// Raises ValueError unless b has a's dtype and device.
void expect_same(const TensorArg& a, const TensorArg& b);

std::string shape_str(const std::vector<int64_t>& shape);

// A contiguous integer tensor (int64 indices or uint8 bytes) from a DLPack capsule.
template <typename I>
struct IntArg {
  std::string name;
  I* data = nullptr;
  DLDevice device{kDLCPU, 0};
  std::vector<int64_t> shape;
  py::object keep;
};
using IndexArg = IntArg<int64_t>;
using ByteArg = IntArg<uint8_t>;

// Read a DLPack capsule named `name`; raise ValueError unless it holds a contiguous int64
// (index_arg) or uint8 (byte_arg) tensor on the CPU or a CUDA device.
IndexArg index_arg(py::handle obj, const char* name);
ByteArg byte_arg(py::handle obj, const char* name);

// Raise ValueError unless t has the shape (-1 matches any extent) and ref's device.
template <typename I>
void expect_index(const IntArg<I>& t, const std::vector<int64_t>& shape, const TensorArg& ref);

// Packed ray samples (march.cpp, composite.cpp): on the CPU, offsets (R + 1,) must start at 0,
// never decrease and end at n_samples (exact) or at most at it; on CUDA the caller guarantees it
// (the Python layer builds them with a cumulative sum). Raises ValueError otherwise.
void check_offsets(const IndexArg& o, int64_t n_samples, bool exact);

// Runs the CPU or the CUDA launcher for t's device, without the GIL. A build without CUDA never
// calls `cuda`, so its launchers (not compiled there) are not referenced at any optimisation level.
template <typename Arg, typename Cpu, typename Cuda>
void launch(const Arg& t, Cpu&& cpu, [[maybe_unused]] Cuda&& cuda) {
  const bool on_cuda = t.device.device_type == kDLCUDA;
#ifdef FIELDS3D_WITH_CUDA
  py::gil_scoped_release release;
  if (on_cuda) cuda(t.device.device_id);
  else cpu();
#else
  if (on_cuda) throw std::runtime_error("fields3d._core was built without CUDA");
  py::gil_scoped_release release;
  cpu();
#endif
}

// Calls fn(T{}) with T the float type of t.
template <typename Fn>
void with_type(const TensorArg& t, Fn&& fn) {
  if (t.dtype == DType::Float32) fn(float{});
  else fn(double{});
}

inline void* as_stream(uintptr_t s) { return reinterpret_cast<void*>(s); }

// Every py::class_ takes this. pybind11 registers a C++ type once per process, so the emulated
// test module's classes are local to it, which lets it load beside _core.
inline py::module_local class_scope() {
#ifdef FIELDS3D_CUDA_EMU
  return py::module_local(true);
#else
  return py::module_local(false);
#endif
}

}  // namespace bind
}  // namespace f3d
