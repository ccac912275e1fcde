// A CUDA execution model on the host, for testing the CUDA launchers on machines without a GPU.
//
// Only the test module fields3d._core_emu uses it (CMake option FIELDS3D_CUDA_EMU): the .cu files
// are compiled by the host compiler with `kernel<<<grid, block, smem, stream>>>(args)` rewritten to
// `launch(Config(grid, block, smem, stream), [&] { kernel(args); })` (rewrite_launches.py), and
// this directory's cuda_runtime.h and cub/ shadow the toolkit's headers.
//
// Each launch runs its blocks one after another on the calling thread. A block's threads are
// fibers (fiber.h) switched at __syncthreads() and at warp operations, so blocks see the
// semantics kernels rely on: a shared-memory variable is one object for the whole block, a
// barrier waits for every thread still running, a warp shuffle exchanges values between the 32
// lanes of a warp. Misuse a GPU would punish with wrong results or a hang is a loud error here:
// a full-mask warp operation after lanes of the warp have returned (undefined behaviour), a
// barrier some threads never reach (deadlock), a launch configuration CUDA refuses.
//
// Not modelled: device memory (pointers are host pointers), streams and asynchrony, memory
// ordering between threads (atomics are plain read-modify-writes: one fiber runs at a time), the
// __CUDA_ARCH__ branches of the shared headers (the host branch is compiled), timing.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber.h"

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static  // blocks run one at a time: one object per block in effect
#define __launch_bounds__(...)

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

typedef struct CUstream_st* cudaStream_t;

namespace f3d_emu {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

struct Barrier {
  int arrived = 0;
  unsigned generation = 0;
};

struct Fiber {
  Stack* stack = nullptr;
  uint3 index;
  int linear = 0;
  bool done = false;
  const unsigned* waits_on = nullptr;  // a barrier's generation, until it changes
  unsigned waits_for = 0;
};

struct Warp {
  Barrier barrier;
  int live = 0;  // lanes not yet returned
  uint64_t slots[kWarpSize] = {};
};

// The block being run on this host thread.
struct Block {
  dim3 grid, dim;
  uint3 index{0, 0, 0};
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Barrier barrier;
  int live = 0;
  Fiber* current = nullptr;
  Context scheduler;
  const std::function<void()>* body = nullptr;
  std::string error;
};

inline thread_local Block* g_block = nullptr;
inline thread_local std::vector<std::unique_ptr<Stack>> g_stacks;  // stack t runs thread t of a block

inline Block& block() {
  if (g_block == nullptr) throw std::logic_error("CUDA built-in used outside an emulated kernel");
  return *g_block;
}

// Records the first error of the launch and parks the fiber for good: the scheduler abandons the
// block and the launch throws on the host side (exceptions cannot cross a fiber's stack).
[[noreturn]] inline void fail(const std::string& message) {
  Block& b = block();
  if (b.error.empty()) b.error = message;
  jump(b.current->stack->context, b.scheduler);
  std::abort();  // never resumed: the scheduler resets the stack
}

inline void wait_until_changed(const unsigned* generation, unsigned seen) {
  Block& b = block();
  b.current->waits_on = generation;
  b.current->waits_for = seen;
  jump(b.current->stack->context, b.scheduler);
}

// Arrives at `bar`, which opens once `expected` threads have arrived.
inline void arrive(Barrier& bar, int expected) {
  const unsigned seen = bar.generation;
  if (++bar.arrived >= expected) {
    bar.arrived = 0;
    ++bar.generation;
    return;
  }
  wait_until_changed(&bar.generation, seen);
}

inline Warp& my_warp(int& lane) {
  Block& b = block();
  lane = b.current->linear % kWarpSize;
  return b.warps[b.current->linear / kWarpSize];
}

inline Warp& warp_for_op(const char* op, unsigned mask, int& lane) {
  Warp& w = my_warp(lane);
  if (mask != kFullMask) fail(std::string(op) + ": the emulator supports full-mask warp operations only");
  if (w.live != kWarpSize)
    fail(std::string(op) + " with mask 0xffffffff in a warp where " + std::to_string(kWarpSize - w.live) +
         " of 32 lanes have returned (undefined behaviour on a GPU)");
  return w;
}

// Every lane deposits v; returns lane src(lane)'s value.
template <typename T, typename Src>
T shuffle(const char* op, unsigned mask, T v, Src src) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "warp shuffles move at most 8 bytes");
  int lane;
  Warp& w = warp_for_op(op, mask, lane);
  w.slots[lane] = 0;
  std::memcpy(&w.slots[lane], &v, sizeof(T));
  arrive(w.barrier, w.live);
  T out;
  std::memcpy(&out, &w.slots[src(lane)], sizeof(T));
  arrive(w.barrier, w.live);  // nobody writes a slot before every lane has read
  return out;
}

inline unsigned ballot(unsigned mask, bool predicate) {
  int lane;
  Warp& w = warp_for_op("__ballot_sync", mask, lane);
  w.slots[lane] = predicate ? 1u : 0u;
  arrive(w.barrier, w.live);
  unsigned bits = 0;
  for (int l = 0; l < kWarpSize; ++l) bits |= unsigned(w.slots[l] != 0) << l;
  arrive(w.barrier, w.live);
  return bits;
}

// What every stack runs: the current thread's work, then back to the scheduler, which resumes it
// here for the next thread it gives this stack.
[[noreturn]] inline void thread_main() {
  arrived_on_new_stack();
  for (;;) {
    Block& b = block();
    (*b.body)();
    b.current->done = true;
    jump(b.current->stack->context, b.scheduler);
  }
}

// A thread has returned: barriers that waited only for it open; a warp operation some lanes wait
// at can no longer complete.
inline void on_exit(Block& b, Fiber& f) {
  --b.live;
  Warp& w = b.warps[f.linear / kWarpSize];
  --w.live;
  if (w.barrier.arrived > 0 && b.error.empty())
    b.error = "thread " + std::to_string(f.linear) + " returned while other lanes of its warp wait at a warp operation";
  if (b.barrier.arrived > 0 && b.barrier.arrived >= b.live) {
    b.barrier.arrived = 0;
    ++b.barrier.generation;
  }
}

inline void make_fibers(Block& b) {
  const int n = int(b.dim.x * b.dim.y * b.dim.z);
  while (int(g_stacks.size()) < n) {
    g_stacks.emplace_back(new Stack);
    g_stacks.back()->reset(thread_main);
  }
  b.fibers.assign(size_t(n), Fiber{});
  b.warps.assign(size_t((n + kWarpSize - 1) / kWarpSize), Warp{});
  for (int t = 0; t < n; ++t) {
    Fiber& f = b.fibers[size_t(t)];
    f.stack = g_stacks[size_t(t)].get();
    f.linear = t;
    f.index = uint3{unsigned(t) % b.dim.x, unsigned(t) / b.dim.x % b.dim.y, unsigned(t) / (b.dim.x * b.dim.y)};
    ++b.warps[size_t(t / kWarpSize)].live;
  }
  b.live = n;
  b.barrier = Barrier{};
}

// After a failure the unfinished threads' stacks hold abandoned frames: start them afresh.
inline void reset_stacks(Block& b) {
  for (Fiber& f : b.fibers)
    if (!f.done) f.stack->reset(thread_main);
}

// Runs every thread of the block to its end; false (with b.error) if that cannot happen.
inline bool run_block(Block& b) {
  make_fibers(b);
  while (b.live > 0) {
    bool ran = false;
    for (Fiber& f : b.fibers) {
      if (f.done || (f.waits_on != nullptr && *f.waits_on == f.waits_for)) continue;
      f.waits_on = nullptr;
      b.current = &f;
      jump(b.scheduler, f.stack->context);
      b.current = nullptr;
      ran = true;
      if (f.done) on_exit(b, f);  // a fiber that failed is parked, not done
      if (!b.error.empty()) return false;
    }
    if (!ran) {
      b.error = "deadlock: " + std::to_string(b.live) + " threads wait at a barrier the others never reach";
      return false;
    }
  }
  return true;
}

// The error cudaGetLastError reports next (a cudaError_t value).
inline int& last_error_code() {
  static thread_local int code = 0;
  return code;
}

// Whether CUDA accepts the launch (else cudaErrorInvalidConfiguration): blocks in 1..2^31-1 x
// 65535 x 65535, 1..1024 threads a block (z at most 64), at most 48 KiB of dynamic shared memory.
inline bool valid_config(const dim3& grid, const dim3& dim, size_t shared_bytes) {
  const uint64_t threads = uint64_t(dim.x) * dim.y * dim.z;
  return grid.x > 0 && grid.y > 0 && grid.z > 0 && grid.x <= 0x7fffffffu && grid.y <= 65535u && grid.z <= 65535u &&
         threads > 0 && threads <= 1024 && dim.z <= 64 && shared_bytes <= 48 * 1024;
}

struct Config {
  dim3 grid, block;
  size_t shared_bytes;
  Config(dim3 g, dim3 b, size_t smem = 0, cudaStream_t = nullptr) : grid(g), block(b), shared_bytes(smem) {}
};

// Runs `body` (one thread's work) for every thread of the grid. An invalid configuration sets the
// error cudaGetLastError reports, as CUDA does; a failure inside the kernel throws.
template <typename Body>
void launch(const Config& c, Body&& body) {
  if (!valid_config(c.grid, c.block, c.shared_bytes)) {
    last_error_code() = 9;  // cudaErrorInvalidConfiguration
    return;
  }
  if (g_block != nullptr) throw std::logic_error("emulated kernels cannot launch kernels");
  const std::function<void()> fn(std::forward<Body>(body));
  Block b;
  b.grid = c.grid;
  b.dim = c.block;
  b.body = &fn;
  this_thread_stack(b.scheduler);
  g_block = &b;
  for (unsigned z = 0; z < c.grid.z; ++z)
    for (unsigned y = 0; y < c.grid.y; ++y)
      for (unsigned x = 0; x < c.grid.x; ++x) {
        b.index = uint3{x, y, z};
        if (!run_block(b)) {
          reset_stacks(b);
          g_block = nullptr;
          throw std::runtime_error("emulated CUDA kernel, block (" + std::to_string(x) + ", " + std::to_string(y) +
                                   ", " + std::to_string(z) + "): " + b.error);
        }
      }
  g_block = nullptr;
}

}  // namespace f3d_emu

#define threadIdx (::f3d_emu::block().current->index)
#define blockIdx (::f3d_emu::block().index)
#define blockDim (::f3d_emu::block().dim)
#define gridDim (::f3d_emu::block().grid)
#define warpSize 32

inline void __syncthreads() {
  f3d_emu::Block& b = f3d_emu::block();
  f3d_emu::arrive(b.barrier, b.live);
}

inline void __syncwarp(unsigned mask = f3d_emu::kFullMask) {
  int lane;
  f3d_emu::Warp& w = f3d_emu::warp_for_op("__syncwarp", mask, lane);
  f3d_emu::arrive(w.barrier, w.live);
}

template <typename T>
T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  if (width != 32) f3d_emu::fail("__shfl_sync: the emulator supports width 32 only");
  return f3d_emu::shuffle("__shfl_sync", mask, v, [&](int) { return ((src % 32) + 32) % 32; });
}

template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  if (width != 32) f3d_emu::fail("__shfl_down_sync: the emulator supports width 32 only");
  return f3d_emu::shuffle("__shfl_down_sync", mask, v,
                          [&](int lane) { return lane + int(delta) < 32 ? lane + int(delta) : lane; });
}

template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  if (width != 32) f3d_emu::fail("__shfl_up_sync: the emulator supports width 32 only");
  return f3d_emu::shuffle("__shfl_up_sync", mask, v,
                          [&](int lane) { return lane - int(delta) >= 0 ? lane - int(delta) : lane; });
}

inline unsigned __ballot_sync(unsigned mask, int predicate) { return f3d_emu::ballot(mask, predicate != 0); }

inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }

// One fiber runs at a time, so a plain read-modify-write is atomic.
template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}
