// CPU launchers for compositing: parallel-for over rays. Each ray writes only its own outputs and
// its own samples, so the result does not depend on the thread count.
#include "common/parallel.h"
#include "render/composite.h"

namespace f3d {
namespace composite {

constexpr int64_t kRayGrain = 256;

template <typename T>
void forward_cpu(const Args<T>& a) {
  parallel_for(a.n_rays, kRayGrain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) forward_ray(a, r);
  });
}

template <typename T>
void backward_cpu(const Args<T>& a) {
  parallel_for(a.n_rays, kRayGrain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) backward_ray(a, r);
  });
}

template void forward_cpu<float>(const Args<float>&);
template void forward_cpu<double>(const Args<double>&);
template void backward_cpu<float>(const Args<float>&);
template void backward_cpu<double>(const Args<double>&);

}  // namespace composite
}  // namespace f3d
