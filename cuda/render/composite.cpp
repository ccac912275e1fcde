// CPU launchers for compositing: parallel-for over rays. Each ray writes only its own outputs and
// its own samples, so the result does not depend on the thread count.
//
// Work goes with samples, not rays: in a picture of an object most rays miss it and the hits sit
// in a band of rows, so equal ray ranges left one thread most of the work (benchmarks/RESULTS.md,
// "Figures moved out of code comments"). The rays are cut into ranges of about equal sample
// counts instead.
#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "render/composite.h"

namespace f3d {
namespace composite {
namespace {

constexpr int64_t kSampleGrain = 1 << 14;  // samples a range holds at least
constexpr int kRangesPerThread = 8;

// Ray r's range for ranges [cut[i], cut[i + 1]) of about equal samples (offsets[] non-decreasing).
template <typename T, typename Body>
void for_sample_ranges(const Args<T>& a, Body&& body) {
  const int64_t samples = a.offsets[a.n_rays] - a.offsets[0];
  const int64_t n = std::max<int64_t>(1, std::min<int64_t>(int64_t(num_threads()) * kRangesPerThread,
                                                           samples / kSampleGrain));
  std::vector<int64_t> cut(size_t(n) + 1, a.n_rays);
  cut[0] = 0;
  for (int64_t i = 1; i < n; ++i) {
    const int64_t target = a.offsets[0] + samples * i / n;
    cut[size_t(i)] = std::upper_bound(a.offsets, a.offsets + a.n_rays, target) - a.offsets;
  }
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t r = cut[size_t(i)]; r < cut[size_t(i) + 1]; ++r) body(r);
  });
}

}  // namespace

template <typename T>
void forward_cpu(const Args<T>& a) {
  if (a.n_rays > 0) for_sample_ranges(a, [&](int64_t r) { forward_ray(a, r); });
}

template <typename T>
void backward_cpu(const Args<T>& a) {
  if (a.n_rays > 0) for_sample_ranges(a, [&](int64_t r) { backward_ray(a, r); });
}

template void forward_cpu<float>(const Args<float>&);
template void forward_cpu<double>(const Args<double>&);
template void backward_cpu<float>(const Args<float>&);
template void backward_cpu<double>(const Args<double>&);

}  // namespace composite
}  // namespace f3d
