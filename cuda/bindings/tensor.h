// Tensors cross into the core as DLPack capsules. TensorArg reads one without taking ownership
// (the capsule keeps the producer's tensor alive) and checks dtype, shape, device and strides:
// the last line of defence before memory is touched.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
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

// Reads a DLPack capsule named `name`; raises ValueError unless it holds a contiguous float32 or
// float64 tensor on the CPU or a CUDA device.
TensorArg tensor_arg(py::handle obj, const char* name);

// Raises ValueError unless t has exactly the given shape (-1 matches any extent).
void expect_shape(const TensorArg& t, const std::vector<int64_t>& shape);
// Raises ValueError unless b has a's dtype and device.
void expect_same(const TensorArg& a, const TensorArg& b);

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace bind
}  // namespace f3d
