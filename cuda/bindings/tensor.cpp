#include "bindings/tensor.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

namespace f3d {
namespace bind {

int64_t TensorArg::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

const char* dtype_name(DType t) { return t == DType::Float32 ? "float32" : "float64"; }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (shape.size() == 1) os << ",";
  os << ")";
  return os.str();
}

namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::invalid_argument(msg); }

const DLTensor& dl_tensor(py::handle obj, const std::string& n) {
  if (!PyCapsule_CheckExact(obj.ptr()) || std::strcmp(PyCapsule_GetName(obj.ptr()), "dltensor") != 0)
    fail(n + " must be a DLPack capsule (torch.utils.dlpack.to_dlpack(t)), got " +
         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return static_cast<DLManagedTensor*>(PyCapsule_GetPointer(obj.ptr(), "dltensor"))->dl_tensor;
}

// The device the launchers see. In the emulated test module (FIELDS3D_CUDA_EMU) host tensors
// pass for CUDA device 0, so every call runs the CUDA launchers, on the host.
DLDevice seen_device(const DLDevice& d) {
#ifdef FIELDS3D_CUDA_EMU
  if (d.device_type == kDLCPU) return DLDevice{kDLCUDA, 0};
#endif
  return d;
}

bool is_contiguous(const DLTensor& t) {
  if (t.strides == nullptr) return true;
  for (int d = 0; d < t.ndim; ++d)
    if (t.shape[d] == 0) return true;  // empty: strides are meaningless
  int64_t expected = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    if (t.shape[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

template <typename I>
IntArg<I> int_arg(py::handle obj, const char* name, uint8_t code, const char* type) {
  const std::string n(name);
  const DLTensor& t = dl_tensor(obj, n);
  if (t.dtype.code != code || t.dtype.bits != 8 * sizeof(I) || t.dtype.lanes != 1)
    fail(n + " must be " + type + ", got DLPack dtype code " + std::to_string(t.dtype.code) + " with " +
         std::to_string(t.dtype.bits) + " bits");
  if (t.device.device_type != kDLCPU && t.device.device_type != kDLCUDA)
    fail(n + " must be on the CPU or a CUDA device, got DLPack device type " + std::to_string(t.device.device_type));
  if (!is_contiguous(t)) fail(n + " must be contiguous (call .contiguous() first)");
  IntArg<I> out;
  out.name = n;
  out.keep = py::reinterpret_borrow<py::object>(obj);
  out.device = seen_device(t.device);
  out.shape.assign(t.shape, t.shape + t.ndim);
  out.data = reinterpret_cast<I*>(static_cast<char*>(t.data) + t.byte_offset);
  return out;
}

std::string want_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << (shape[i] < 0 ? "N" : std::to_string(shape[i]));
  os << (shape.size() == 1 ? ",)" : ")");
  return os.str();
}

bool shape_matches(const std::vector<int64_t>& have, const std::vector<int64_t>& want) {
  bool ok = have.size() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = want[i] < 0 || want[i] == have[i];
  return ok;
}

}  // namespace

IndexArg index_arg(py::handle obj, const char* name) { return int_arg<int64_t>(obj, name, kDLInt, "int64"); }
ByteArg byte_arg(py::handle obj, const char* name) { return int_arg<uint8_t>(obj, name, kDLUInt, "uint8"); }

template <typename I>
void expect_index(const IntArg<I>& t, const std::vector<int64_t>& shape, const TensorArg& ref) {
  if (!shape_matches(t.shape, shape)) fail(t.name + " must have shape " + want_str(shape) + ", got " + shape_str(t.shape));
  if (t.device.device_type != ref.device.device_type || t.device.device_id != ref.device.device_id)
    fail(t.name + " must be on the device of " + ref.name);
}
template void expect_index<int64_t>(const IndexArg&, const std::vector<int64_t>&, const TensorArg&);
template void expect_index<uint8_t>(const ByteArg&, const std::vector<int64_t>&, const TensorArg&);

void check_offsets(const IndexArg& o, int64_t n_samples, bool exact) {
  if (o.device.device_type != kDLCPU) return;
  const int64_t n = o.shape[0];
  bool ok = n >= 1 && o.data[0] == 0;
  for (int64_t r = 1; ok && r < n; ++r) ok = o.data[r] >= o.data[r - 1];
  ok = ok && (exact ? o.data[n - 1] == n_samples : o.data[n - 1] <= n_samples);
  if (!ok)
    fail("offsets must start at 0, never decrease and end at " + std::string(exact ? "" : "most at ") +
         "the number of samples (" + std::to_string(n_samples) + ")");
}

TensorArg tensor_arg(py::handle obj, const char* name) {
  const std::string n(name);
  const DLTensor& t = dl_tensor(obj, n);
  TensorArg out;
  out.name = n;
  out.keep = py::reinterpret_borrow<py::object>(obj);
  out.device = seen_device(t.device);
  out.shape.assign(t.shape, t.shape + t.ndim);
  if (t.dtype.code == kDLFloat && t.dtype.bits == 32 && t.dtype.lanes == 1) {
    out.dtype = DType::Float32;
  } else if (t.dtype.code == kDLFloat && t.dtype.bits == 64 && t.dtype.lanes == 1) {
    out.dtype = DType::Float64;
  } else {
    fail(n + " must be float32 or float64, got DLPack dtype code " + std::to_string(t.dtype.code) + " with " +
         std::to_string(t.dtype.bits) + " bits");
  }
  if (t.device.device_type != kDLCPU && t.device.device_type != kDLCUDA)
    fail(n + " must be on the CPU or a CUDA device, got DLPack device type " + std::to_string(t.device.device_type));
  if (!is_contiguous(t)) fail(n + " must be contiguous (call .contiguous() first)");
  out.data = static_cast<char*>(t.data) + t.byte_offset;
  return out;
}

void expect_shape(const TensorArg& t, const std::vector<int64_t>& shape) {
  if (!shape_matches(t.shape, shape)) fail(t.name + " must have shape " + want_str(shape) + ", got " + shape_str(t.shape));
}

void expect_same(const TensorArg& a, const TensorArg& b) {
  if (a.dtype != b.dtype)
    fail(b.name + " must have the dtype of " + a.name + " (" + dtype_name(a.dtype) + "), got " + dtype_name(b.dtype));
  if (a.device.device_type != b.device.device_type || a.device.device_id != b.device.device_id)
    fail(b.name + " must be on the device of " + a.name);
}

}  // namespace bind
}  // namespace f3d
