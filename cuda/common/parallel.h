// CPU parallel-for over a persistent thread pool (Open3D's ParallelFor pattern): kernels pass a
// range body; the pool splits [0, n) into chunks that workers take dynamically. The calling
// thread works too. Nested calls from inside a body run serially on the calling worker.
#pragma once

#include <cstdint>
#include <functional>

namespace f3d {

// Threads used by parallel_for: FIELDS3D_NUM_THREADS if set (>= 1), else all hardware threads.
int num_threads();
// Override the thread count for later calls (n >= 1); the pool is rebuilt on next use.
void set_num_threads(int n);

using RangeBody = std::function<void(int64_t begin, int64_t end)>;

// Runs body over [0, n) in chunks of at least `grain` elements. Exceptions thrown by the body
// are rethrown on the calling thread (the first one wins).
void parallel_for(int64_t n, int64_t grain, const RangeBody& body);

}  // namespace f3d
