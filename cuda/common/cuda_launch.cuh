// Small helpers shared by the CUDA launchers: error checks, a device guard and grid sizes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace f3d {
namespace cuda {

inline void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// Makes `device` current for the scope, restoring the previous device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    changed_ = previous_ != device;
    if (changed_) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

// Stream-ordered scratch memory for one launcher call: freed on the stream by free(), which
// reports a failure, or, when a check throws first, by the destructor, so errors do not leak it.
class StreamScratch {
 public:
  StreamScratch(size_t bytes, cudaStream_t s, const char* what) : stream_(s) {
    check(cudaMallocAsync(&ptr_, bytes, s), what);
  }
  ~StreamScratch() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  void* get() const { return ptr_; }
  void free(const char* what) {
    void* p = ptr_;
    ptr_ = nullptr;
    check(cudaFreeAsync(p, stream_), what);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

constexpr int kBlock = 128;

inline unsigned blocks_for(int64_t threads) { return unsigned((threads + kBlock - 1) / kBlock); }

struct AtomicAdd {
  __device__ void operator()(float* p, float v) const { atomicAdd(p, v); }
  __device__ void operator()(double* p, double v) const { atomicAdd(p, v); }  // sm_60 and later
};

// The kernel arguments copied into shared memory by the block. Threads of a warp that index the
// per-level arrays of a kernel parameter with different levels serialise (constant cache) or
// spill to local memory; from shared memory such reads are cheap.
template <class A>
__device__ const A& shared_args(const A& a) {
  static_assert(sizeof(A) % 8 == 0, "the arguments are copied to shared memory in 8-byte words");
  __shared__ uint64_t words[sizeof(A) / 8];
  const uint64_t* src = reinterpret_cast<const uint64_t*>(&a);
  for (unsigned k = threadIdx.x; k < sizeof(A) / 8; k += blockDim.x) words[k] = src[k];
  __syncthreads();
  return *reinterpret_cast<const A*>(words);
}

}  // namespace cuda
}  // namespace f3d
