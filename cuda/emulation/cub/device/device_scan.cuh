// cub::DeviceScan for the emulated test module (see ../../emulator.h): a serial scan on the host.
// As with cub, a first call with no storage asks for its size, and the scan may run in place.
#pragma once

#include <cstddef>
#include <type_traits>

#include "../../cuda_runtime.h"

namespace cub {

struct DeviceScan {
  template <typename In, typename Out, typename Op, typename Init, typename N>
  static cudaError_t ExclusiveScan(void* storage, size_t& bytes, In in, Out out, Op op, Init init, N n,
                                   cudaStream_t = nullptr) {
    if (storage == nullptr) {
      bytes = 256;  // cub needs some; the launchers must allocate what is asked for
      return cudaSuccess;
    }
    if (bytes < 256) return f3d_emu::record(cudaErrorInvalidValue);
    Init acc = init;
    for (N i = 0; i < n; ++i) {
      const Init x = in[i];  // read before writing: in and out may be the same array
      out[i] = acc;
      acc = op(acc, x);
    }
    return cudaSuccess;
  }

  template <typename In, typename Out, typename N>
  static cudaError_t ExclusiveSum(void* storage, size_t& bytes, In in, Out out, N n, cudaStream_t s = nullptr) {
    using T = typename std::remove_cv<typename std::remove_reference<decltype(*in)>::type>::type;
    return ExclusiveScan(storage, bytes, in, out, [](const T& a, const T& b) { return a + b; }, T(0), n, s);
  }
};

}  // namespace cub
