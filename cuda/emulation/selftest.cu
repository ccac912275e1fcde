// Kernels that check the emulator itself (emulator.h): warp shuffles, ballots, shared memory and
// barriers give what CUDA defines, and misuse is reported. Built only into fields3d._core_emu.
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace f3d {
namespace emu_selftest {
namespace {

// Inclusive scan of the thread indices within each warp, by __shfl_up_sync.
__global__ void k_warp_scan(int64_t* out, int64_t n) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int lane = threadIdx.x % 32;
  int64_t v = i;
  for (int d = 1; d < 32; d *= 2) {
    const int64_t u = __shfl_up_sync(0xffffffffu, v, d);
    if (lane >= d) v += u;
  }
  if (i < n) out[i] = v;
}

// Each lane: the number of lower lanes whose index is a multiple of 3 (ballot and popcount), and
// the value of the next lane by __shfl_down_sync.
__global__ void k_ballot_down(int64_t* lower, int64_t* next) {
  const int lane = threadIdx.x % 32;
  const unsigned bits = __ballot_sync(0xffffffffu, lane % 3 == 0);
  lower[threadIdx.x] = __popc(bits & ((1u << lane) - 1u));
  next[threadIdx.x] = __shfl_down_sync(0xffffffffu, int64_t(threadIdx.x), 1);
}

// The block's thread indices, reversed through shared memory.
__global__ void k_reverse(int64_t* out) {
  __shared__ int64_t words[1024];
  words[threadIdx.x] = threadIdx.x;
  __syncthreads();
  out[threadIdx.x] = words[blockDim.x - 1 - threadIdx.x];
}

// Half of warp 0 returns, the rest shuffle with a full mask: undefined on a GPU.
__global__ void k_shuffle_after_return(int64_t* out) {
  if (threadIdx.x < 16) return;
  out[threadIdx.x] = __shfl_sync(0xffffffffu, int64_t(threadIdx.x), 0);
}

// Lanes 0-15 wait at a warp barrier while lanes 16-31 wait at the block barrier: a hang on a GPU.
__global__ void k_mixed_barriers() {
  if (threadIdx.x < 16) __syncwarp();
  else __syncthreads();
}

__global__ void k_nothing() {}

}  // namespace

std::vector<int64_t> warp_scan(int64_t n, int block) {
  std::vector<int64_t> out(size_t(n), -1);
  k_warp_scan<<<unsigned((n + block - 1) / block), block>>>(out.data(), n);
  return out;
}

std::vector<int64_t> ballot_down() {
  std::vector<int64_t> lower(64), next(64);
  k_ballot_down<<<1, 64>>>(lower.data(), next.data());
  lower.insert(lower.end(), next.begin(), next.end());
  return lower;
}

std::vector<int64_t> reverse(int block) {
  std::vector<int64_t> out(size_t(block), -1);
  k_reverse<<<1, block>>>(out.data());
  return out;
}

void shuffle_after_return() {
  std::vector<int64_t> out(32);
  k_shuffle_after_return<<<1, 32>>>(out.data());
}

void mixed_barriers() { k_mixed_barriers<<<1, 64>>>(); }

// The error cudaGetLastError reports after launching `blocks` blocks of `threads`.
std::string launch_error(unsigned blocks, unsigned threads) {
  k_nothing<<<blocks, threads>>>();
  return cudaGetErrorString(cudaGetLastError());
}

}  // namespace emu_selftest
}  // namespace f3d
