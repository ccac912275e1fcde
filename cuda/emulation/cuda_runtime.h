// The CUDA runtime API the launchers use, on the host, for the emulated test module (see
// emulator.h). Device memory is host memory; stream operations run at once. Allocations are
// counted, so tests can see every launcher free its scratch, and filled with 0xCD, so a kernel
// that reads scratch it never wrote gets garbage here as on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "emulator.h"

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

namespace f3d_emu {

// Scratch blocks allocated and not yet freed.
inline int64_t& live_allocations() {
  static int64_t n = 0;
  return n;
}

inline cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) last_error_code() = e;
  return e;
}

}  // namespace f3d_emu

inline const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
  }
  return "unknown error";
}

inline cudaError_t cudaGetLastError() {
  const int e = f3d_emu::last_error_code();
  f3d_emu::last_error_code() = cudaSuccess;
  return cudaError_t(e);
}

inline cudaError_t cudaPeekAtLastError() { return cudaError_t(f3d_emu::last_error_code()); }

inline cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 0;  // no CUDA runtime: the emulator
  return cudaSuccess;
}

inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}

inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}

inline cudaError_t cudaSetDevice(int d) { return f3d_emu::record(d == 0 ? cudaSuccess : cudaErrorInvalidDevice); }

inline cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) {
  *p = std::malloc(bytes > 0 ? bytes : 1);
  if (*p == nullptr) return f3d_emu::record(cudaErrorMemoryAllocation);
  std::memset(*p, 0xCD, bytes);
  ++f3d_emu::live_allocations();
  return cudaSuccess;
}

inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  if (p == nullptr) return cudaSuccess;
  std::free(p);
  --f3d_emu::live_allocations();
  return cudaSuccess;
}

inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
  if (p == nullptr && bytes > 0) return f3d_emu::record(cudaErrorInvalidValue);
  if (bytes > 0) std::memset(p, value, bytes);
  return cudaSuccess;
}

inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t = nullptr) {
  if ((dst == nullptr || src == nullptr) && bytes > 0) return f3d_emu::record(cudaErrorInvalidValue);
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
