// CPU launchers of the fused RBF evaluation and its double backward. Forward, dx (and the double
// backward's ddy): every point writes only its own row.
// Parameter gradients: the points are cut into a fixed number of chunks (from N and the size of
// one gradient copy, never from the thread count); chunk 0 accumulates into the outputs, every
// other chunk into its own zeroed copy, and the copies are added in chunk order. Each sum is then
// taken in the same order for any thread count, so the result is bitwise the same.
#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>

#include "common/parallel.h"
#include "common/ranges.h"
#include "encodings/rbf_eval.h"
#include "encodings/rbf_eval_backward2.h"

namespace f3d {
namespace rbf {
namespace {

constexpr int64_t kPointGrain = 256;
constexpr int64_t kChunkPoints = 2048;                 // at least this many points per chunk
constexpr int64_t kMaxChunks = 64;                     // enough for 64 threads
constexpr int64_t kScratchBytes = int64_t(256) << 20;  // all copies together stay below this

// The parameter-gradient arrays, as one list of (pointer, length).
template <typename T>
struct GradParts {
  T* ptr[3] = {nullptr, nullptr, nullptr};
  int64_t len[3] = {0, 0, 0};
  int64_t total() const { return len[0] + len[1] + len[2]; }
};

template <typename T>
GradParts<T> grad_parts(const EvalArgs<T>& a) {
  GradParts<T> p;
  p.ptr[0] = a.dcenters, p.len[0] = a.dcenters ? a.n_bases * a.n_dims : 0;
  p.ptr[1] = a.dshapes, p.len[1] = a.dshapes ? a.n_bases * shape_size(a.shape, a.n_dims) : 0;
  p.ptr[2] = a.dweights, p.len[2] = a.dweights ? a.n_bases * a.n_features : 0;
  return p;
}

// Chunk c's arguments: its gradient pointers into its own copy (c >= 1) or the outputs (c = 0).
template <typename T>
EvalArgs<T> chunk_args(const EvalArgs<T>& a, const GradParts<T>& p, T* copy) {
  EvalArgs<T> c = a;
  if (copy == nullptr) return c;
  T** dst[3] = {&c.dcenters, &c.dshapes, &c.dweights};
  int64_t at = 0;
  for (int i = 0; i < 3; ++i) {
    if (p.ptr[i]) *dst[i] = copy + at;
    at += p.len[i];
  }
  return c;
}

int64_t chunk_count(int64_t n_points, int64_t copy_bytes) {
  const int64_t by_points = (n_points + kChunkPoints - 1) / kChunkPoints;
  const int64_t by_memory = 1 + kScratchBytes / std::max<int64_t>(1, copy_bytes);
  return std::max<int64_t>(1, std::min({kMaxChunks, by_points, by_memory}));
}

// Runs body(args, b, e) over point ranges [b, e) covering all points, with the parameter
// gradients of `a` (zeroed here) scattered deterministically: chunk c > 0 gets args pointing into
// its own zeroed copy, and the copies are added into the outputs in chunk order.
template <typename T, class Body>
void scatter_points(const EvalArgs<T>& a, Body&& body) {
  const GradParts<T> p = grad_parts(a);
  const int64_t n = a.n_points, total = p.total();
  for (int i = 0; i < 3; ++i)
    if (p.ptr[i]) std::fill(p.ptr[i], p.ptr[i] + p.len[i], T(0));
  if (total == 0) {  // per-point outputs only: no scatter
    parallel_for(n, kPointGrain, [&](int64_t b, int64_t e) { body(a, b, e); });
    return;
  }
  const int64_t chunks = chunk_count(n, total * int64_t(sizeof(T)));
  const int64_t per = (n + chunks - 1) / chunks;
  const std::unique_ptr<T[]> copies(new T[size_t((chunks - 1) * total)]);  // zeroed by their chunk
  parallel_for(chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      T* copy = c == 0 ? nullptr : copies.get() + (c - 1) * total;
      if (copy) std::fill(copy, copy + total, T(0));
      body(chunk_args(a, p, copy), c * per, std::min(n, (c + 1) * per));
    }
  });
  int64_t at = 0;
  for (int i = 0; i < 3; ++i) {  // element-wise sums, in chunk order
    T* out = p.ptr[i];
    if (out) {
      parallel_for(p.len[i], 4096, [&](int64_t b, int64_t e) {
        for (int64_t c = 1; c < chunks; ++c) {
          const T* src = copies.get() + (c - 1) * total + at;
          for (int64_t m = b; m < e; ++m) out[m] += src[m];
        }
      });
    }
    at += p.len[i];
  }
}

template <int D, typename T>
void backward(const EvalArgs<T>& a) {
  scatter_points(a, [](const EvalArgs<T>& c, int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n) backward_one<D>(c, n, PlainAdd{});
  });
}

template <int D, typename T>
void backward2(const Backward2Args<T>& args) {
  scatter_points(args.eval, [&](const EvalArgs<T>& c, int64_t b, int64_t e) {
    Backward2Args<T> chunk = args;
    chunk.eval = c;
    for (int64_t n = b; n < e; ++n) backward2_one<D>(chunk, n, PlainAdd{});
  });
}

template <typename T, typename Fn>
void with_dims(const EvalArgs<T>& a, Fn&& fn) {
  if (a.n_dims == 2) fn(IntC<2>{});
  else if (a.n_dims == 3) fn(IntC<3>{});
  else throw std::invalid_argument("rbf eval: n_dims must be 2 or 3");
}

}  // namespace

int64_t count_out_of_range_cpu(const int64_t* idx, int64_t n, int64_t m) {
  std::atomic<int64_t> bad{0};
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    int64_t count = 0;
    for (int64_t i = b; i < e; ++i) count += idx[i] < 0 || idx[i] >= m;
    bad += count;
  });
  return bad.load();
}

template <typename T>
void eval_forward_cpu(const EvalArgs<T>& a) {
  with_dims(a, [&](auto dc) {
    constexpr int D = decltype(dc)::value;
    parallel_for(a.n_points, kPointGrain, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) forward_one<D>(a, n);
    });
  });
}

template <typename T>
void eval_backward_cpu(const EvalArgs<T>& a) {
  with_dims(a, [&](auto dc) { backward<decltype(dc)::value>(a); });
}

template <typename T>
void eval_backward2_cpu(const Backward2Args<T>& b) {
  with_dims(b.eval, [&](auto dc) { backward2<decltype(dc)::value>(b); });
}

template void eval_forward_cpu<float>(const EvalArgs<float>&);
template void eval_forward_cpu<double>(const EvalArgs<double>&);
template void eval_backward_cpu<float>(const EvalArgs<float>&);
template void eval_backward_cpu<double>(const EvalArgs<double>&);
template void eval_backward2_cpu<float>(const Backward2Args<float>&);
template void eval_backward2_cpu<double>(const Backward2Args<double>&);

#ifndef FIELDS3D_WITH_CUDA
// A CPU-only build still links the CUDA entry points; they refuse (the binding checks first).
int64_t count_out_of_range_cuda(const int64_t*, int64_t, int64_t, void*, int) {
  throw std::runtime_error("fields3d._core was built without CUDA");
}
template <typename T>
void eval_forward_cuda(const EvalArgs<T>&, void*, int) {
  throw std::runtime_error("fields3d._core was built without CUDA");
}
template <typename T>
void eval_backward_cuda(const EvalArgs<T>&, void*, int) {
  throw std::runtime_error("fields3d._core was built without CUDA");
}
template <typename T>
void eval_backward2_cuda(const Backward2Args<T>&, void*, int) {
  throw std::runtime_error("fields3d._core was built without CUDA");
}
template void eval_forward_cuda<float>(const EvalArgs<float>&, void*, int);
template void eval_forward_cuda<double>(const EvalArgs<double>&, void*, int);
template void eval_backward_cuda<float>(const EvalArgs<float>&, void*, int);
template void eval_backward_cuda<double>(const EvalArgs<double>&, void*, int);
template void eval_backward2_cuda<float>(const Backward2Args<float>&, void*, int);
template void eval_backward2_cuda<double>(const Backward2Args<double>&, void*, int);
#endif

}  // namespace rbf
}  // namespace f3d
