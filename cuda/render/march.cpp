// CPU launchers for ray marching: parallel-for over rays. Each ray writes only its own count or
// its own slice of the samples, so the result does not depend on the thread count.
#include "common/parallel.h"
#include "render/march.h"

namespace f3d {
namespace march {

constexpr int64_t kRayGrain = 256;

template <typename T>
void count_cpu(const Args<T>& a) {
  parallel_for(a.n_rays, kRayGrain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) count_one(a, r);
  });
}

template <typename T>
void emit_cpu(const Args<T>& a) {
  parallel_for(a.n_rays, kRayGrain, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) emit_one(a, r);
  });
}

template void count_cpu<float>(const Args<float>&);
template void count_cpu<double>(const Args<double>&);
template void emit_cpu<float>(const Args<float>&);
template void emit_cpu<double>(const Args<double>&);

}  // namespace march
}  // namespace f3d
