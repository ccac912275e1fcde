// Ray marching through a cascaded occupancy grid, per-ray work shared by the CPU launcher
// (march.cpp) and the CUDA launcher (march.cu).
//
// Grid. `levels` nested boxes share one centre; level l spans centre +- half * 2^l and holds
// res[0] x res[1] x res[2] cells (with more than one level, multiples of 4: then the box of level
// l is made of whole cells of level l + 1, and jumping to the exit of a coarse cell never skips
// a finer one). Cell (i, j, k) of level l is bit
// (l * rx * ry * rz + (i * ry + j) * rz + k) of `bits`: bit (b & 7) of byte b >> 3. A point
// belongs to the finest level whose box holds it; bits == nullptr marks every cell occupied.
//
// Marching. A ray o + t d (d need not be unit: t is in units of |d|) is clipped to [near, far]
// and to the outermost box. From t = t0 it steps dt = clamp(t * cone, step, max_step) (cone = 0:
// fixed steps of `step`, on the lattice t0 + k * step). A step [t, t + dt] is a sample when the
// cell holding its midpoint is occupied; otherwise t jumps to where the ray leaves that cell
// (for fixed steps, to the first lattice step whose midpoint is past it), so empty space costs one visit per cell. The
// count pass and the emit pass run the same loop, so they agree sample for sample; the emit pass
// writes at most the count the caller allocated for the ray (never past the buffers).
#pragma once

#include <cstdint>

#include "common/macros.h"

namespace f3d {
namespace march {

template <typename T>
struct Args {
  const T* origins = nullptr;  // (R, 3)
  const T* dirs = nullptr;     // (R, 3)
  const T* nears = nullptr;    // (R,)
  const T* fars = nullptr;     // (R,)
  int64_t n_rays = 0;
  const uint8_t* bits = nullptr;  // packed occupancy, levels * rx * ry * rz bits; nullptr: all occupied
  int levels = 1;
  int res[3] = {1, 1, 1};
  T center[3] = {};
  T half[3] = {};  // level 0 half extent per axis
  T step = T(0);   // the smallest step (> 0)
  T cone = T(0);   // dt grows as t * cone
  T max_step = T(0);  // the largest step (>= step)
  int64_t* counts = nullptr;        // count pass: (R,) samples per ray
  const int64_t* offsets = nullptr;  // emit pass: (R + 1,) first sample of each ray, then the total
  T* t_starts = nullptr;             // (S,)
  T* t_ends = nullptr;               // (S,)
  int64_t* ray_ids = nullptr;        // (S,)
};

F3D_HD inline float abs_(float v) { return fabsf(v); }
F3D_HD inline double abs_(double v) { return ::fabs(v); }
F3D_HD inline float ceil_(float v) { return ceilf(v); }
F3D_HD inline double ceil_(double v) { return ::ceil(v); }
F3D_HD inline float frexp_(float v, int* e) { return frexpf(v, e); }
F3D_HD inline double frexp_(double v, int* e) { return ::frexp(v, e); }
template <typename T>
F3D_HD inline T min_(T a, T b) { return a < b ? a : b; }
template <typename T>
F3D_HD inline T max_(T a, T b) { return a > b ? a : b; }
template <typename T>
F3D_HD inline T huge_() { return T(1e30); }

// Entry and exit of o + t d through the box centre +- h; t_in > t_out when it misses.
template <typename T>
F3D_HD inline void ray_box(const T* o, const T* d, const T* c, const T* h, T& t_in, T& t_out) {
  t_in = -huge_<T>();
  t_out = huge_<T>();
  for (int a = 0; a < 3; ++a) {
    if (d[a] == T(0)) {
      if (abs_(o[a] - c[a]) > h[a]) t_out = -huge_<T>();
      continue;
    }
    const T inv = T(1) / d[a];
    T t1 = (c[a] - h[a] - o[a]) * inv, t2 = (c[a] + h[a] - o[a]) * inv;
    if (t1 > t2) {
      const T s = t1;
      t1 = t2;
      t2 = s;
    }
    t_in = max_(t_in, t1);
    t_out = min_(t_out, t2);
  }
}

// The finest level whose box holds x (levels when none does).
template <typename T>
F3D_HD inline int level_of(const Args<T>& a, const T* x) {
  T m = T(0);
  for (int d = 0; d < 3; ++d) m = max_(m, abs_(x[d] - a.center[d]) / a.half[d]);
  if (m < T(1)) return 0;
  int e = 0;
  frexp_(m, &e);  // m < 2^e <= 2m: the box of level e holds x
  return e < a.levels ? e : a.levels;
}

// Cell of x in level l (clamped into the grid) and its linear index.
template <typename T>
F3D_HD inline int64_t cell_of(const Args<T>& a, const T* x, int l, int* ijk) {
  const T scale = T(int64_t(1) << l);
  for (int d = 0; d < 3; ++d) {
    const T h = a.half[d] * scale;
    const T u = (x[d] - (a.center[d] - h)) / (T(2) * h) * T(a.res[d]);
    int i = int(floor_(u));
    ijk[d] = i < 0 ? 0 : (i >= a.res[d] ? a.res[d] - 1 : i);
  }
  const int64_t per_level = int64_t(a.res[0]) * a.res[1] * a.res[2];
  return l * per_level + (int64_t(ijk[0]) * a.res[1] + ijk[1]) * a.res[2] + ijk[2];
}

template <typename T>
F3D_HD inline bool occupied(const Args<T>& a, int64_t cell) {
  if (a.bits == nullptr) return true;
  return (a.bits[cell >> 3] >> (cell & 7)) & 1;
}

// Where o + t d leaves cell ijk of level l.
template <typename T>
F3D_HD inline T cell_exit(const Args<T>& a, const T* o, const T* d, int l, const int* ijk) {
  const T scale = T(int64_t(1) << l);
  T t = huge_<T>();
  for (int k = 0; k < 3; ++k) {
    if (d[k] == T(0)) continue;
    const T h = a.half[k] * scale;
    const T size = T(2) * h / T(a.res[k]);
    const T wall = a.center[k] - h + T(ijk[k] + (d[k] > T(0) ? 1 : 0)) * size;
    t = min_(t, (wall - o[k]) / d[k]);
  }
  return t;
}

// The clipped interval [t0, t1] of ray r; t0 >= t1 when nothing is left.
template <typename T>
F3D_HD inline void ray_interval(const Args<T>& a, int64_t r, T& t0, T& t1) {
  const T* o = a.origins + 3 * r;
  const T* d = a.dirs + 3 * r;
  T h[3];
  const T outer = T(int64_t(1) << (a.levels - 1));
  for (int k = 0; k < 3; ++k) h[k] = a.half[k] * outer;
  ray_box(o, d, a.center, h, t0, t1);
  for (int k = 0; k < 3; ++k)
    if (!(o[k] - o[k] == T(0) && d[k] - d[k] == T(0))) t1 = -huge_<T>();  // NaN or infinite: no samples
  t0 = max_(t0, a.nears[r]);
  t1 = min_(t1, a.fars[r]);
}

template <typename T>
F3D_HD inline T step_at(const Args<T>& a, T t) {
  return a.cone == T(0) ? a.step : min_(max_(t * a.cone, a.step), a.max_step);
}

// Walks ray r, calling emit(t_start, t_end) for each sample, and returns the sample count.
// Stops early once `limit` samples were emitted (limit < 0: no limit). Each cell is located once:
// in an occupied cell every step whose midpoint lies before the cell's exit is emitted without
// locating the cell again; an empty cell is jumped over.
template <typename T, typename Emit>
F3D_HD inline int64_t march_ray(const Args<T>& a, int64_t r, int64_t limit, Emit&& emit) {
  T t0, t1;
  ray_interval(a, r, t0, t1);
  if (!(t0 < t1)) return 0;  // also false for NaN
  const T* o = a.origins + 3 * r;
  const T* d = a.dirs + 3 * r;
  const bool fixed = a.cone == T(0);
  int64_t n = 0, k = 0;  // k: lattice index for fixed steps
  T t = t0;
  while (t < t1 && n != limit) {
    T dt = step_at(a, t);
    const T mid = t + T(0.5) * dt;
    T x[3];
    for (int c = 0; c < 3; ++c) x[c] = o[c] + mid * d[c];
    const int l = level_of(a, x);
    if (l >= a.levels) break;
    int ijk[3];
    const int64_t cell = cell_of(a, x, l, ijk);
    const T exit = cell_exit(a, o, d, l, ijk);
    // fixed steps: the first step whose midpoint is at or past the exit
    const int64_t end = fixed ? int64_t(ceil_((exit - t0) / a.step - T(0.5))) : 0;
    if (!occupied(a, cell)) {
      if (fixed) {
        k = end > k ? end : k + 1;
        t = t0 + T(k) * a.step;
      } else {
        t = exit > t ? exit : t + dt;
      }
      continue;
    }
    if (fixed) {
      const int64_t stop = end > k ? end : k + 1;  // the current step's midpoint is in this cell
      for (; k < stop && t < t1 && n != limit; ++k, t = t0 + T(k) * a.step) {
        emit(t, t + a.step);
        ++n;
      }
      continue;
    }
    while (true) {
      emit(t, t + dt);
      ++n;
      t += dt;
      if (!(t < t1) || n == limit) break;
      dt = step_at(a, t);
      if (!(t + T(0.5) * dt < exit)) break;  // the next midpoint leaves this cell
    }
  }
  return n;
}

template <typename T>
F3D_HD inline void count_one(const Args<T>& a, int64_t r) {
  a.counts[r] = march_ray(a, r, int64_t(-1), [](T, T) {});
}

template <typename T>
F3D_HD inline void emit_one(const Args<T>& a, int64_t r) {
  int64_t s = a.offsets[r];
  const int64_t limit = a.offsets[r + 1] - s;
  if (limit <= 0) return;
  march_ray(a, r, limit, [&](T ts, T te) {
    a.t_starts[s] = ts;
    a.t_ends[s] = te;
    a.ray_ids[s] = r;
    ++s;
  });
}

template <typename T>
void count_cpu(const Args<T>& a);
template <typename T>
void emit_cpu(const Args<T>& a);
template <typename T>
void count_cuda(const Args<T>& a, void* stream, int device);
template <typename T>
void emit_cuda(const Args<T>& a, void* stream, int device);

}  // namespace march
}  // namespace f3d
