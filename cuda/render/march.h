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
// fixed steps of `step`, on the grid t0 + k * step). A step [t, t + dt] is a sample when the
// cell holding its midpoint is occupied; otherwise t jumps to where the ray leaves that cell
// (for fixed steps, to the first grid step whose midpoint is past it), so empty space costs one visit per cell. The
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

// A walk through the cells of one level along a ray (Amanatides & Woo): the cell, the direction
// of travel per axis and the level's frame. Where the ray leaves the cell is worked out from the
// cell's walls with the ray's reciprocal direction: no division per cell, and no error that
// accumulates from cell to cell.
template <typename T>
struct Walk {
  int level = 0;
  int ijk[3] = {};
  int dir[3] = {};  // +1, -1, or 0 where the ray is parallel to the axis
  T lo[3] = {};
  T size[3] = {};
};

template <typename T>
F3D_HD inline void start_walk(const Args<T>& a, const T* x, const T* d, int l, Walk<T>& w) {
  cell_of(a, x, l, w.ijk);
  w.level = l;
  const T scale = T(int64_t(1) << l);
  for (int k = 0; k < 3; ++k) {
    const T h = a.half[k] * scale;
    w.lo[k] = a.center[k] - h;
    w.size[k] = T(2) * h / T(a.res[k]);
    w.dir[k] = d[k] > T(0) ? 1 : (d[k] < T(0) ? -1 : 0);
  }
}

// Where o + t d crosses the wall of the walk's cell across axis k (huge when parallel to it).
template <typename T>
F3D_HD inline T wall_t(const Walk<T>& w, const T* o, const T* inv, int k) {
  if (w.dir[k] == 0) return huge_<T>();
  const T wall = w.lo[k] + T(w.ijk[k] + (w.dir[k] > 0 ? 1 : 0)) * w.size[k];
  return (wall - o[k]) * inv[k];
}

// Where the ray leaves the walk's cell; `axis` gets the wall's axis.
template <typename T>
F3D_HD inline T walk_exit(const Walk<T>& w, const T* o, const T* inv, int& axis) {
  T t = huge_<T>();
  axis = 0;
  for (int k = 0; k < 3; ++k) {
    const T tk = wall_t(w, o, inv, k);
    if (tk < t) {
      t = tk;
      axis = k;
    }
  }
  return t;
}

// Steps into the next cell across `axis`; false when that cell is outside the level's grid, or
// (above level 0) inside the next finer box, where the caller locates the ray again.
template <typename T>
F3D_HD inline bool advance(const Args<T>& a, Walk<T>& w, int axis) {
  w.ijk[axis] += w.dir[axis];
  if (w.ijk[axis] < 0 || w.ijk[axis] >= a.res[axis]) return false;
  if (w.level == 0) return true;
  bool inner = true;
  for (int k = 0; k < 3; ++k) inner = inner && w.ijk[k] >= a.res[k] / 4 && w.ijk[k] < 3 * (a.res[k] / 4);
  return !inner;
}

template <typename T>
F3D_HD inline int64_t cell_index(const Args<T>& a, const Walk<T>& w) {
  const int64_t per_level = int64_t(a.res[0]) * a.res[1] * a.res[2];
  return w.level * per_level + (int64_t(w.ijk[0]) * a.res[1] + w.ijk[1]) * a.res[2] + w.ijk[2];
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
  if (d[0] == T(0) && d[1] == T(0) && d[2] == T(0)) t1 = -huge_<T>();      // no direction: no samples
  t0 = max_(t0, a.nears[r]);
  t1 = min_(t1, a.fars[r]);
}

template <typename T>
F3D_HD inline T step_at(const Args<T>& a, T t) {
  return a.cone == T(0) ? a.step : min_(max_(t * a.cone, a.step), a.max_step);
}

// The midpoint of fixed step k, computed the one way every comparison here uses.
template <typename T>
F3D_HD inline T mid_of(const Args<T>& a, T t0, int64_t k) {
  return (t0 + T(k) * a.step) + T(0.5) * a.step;
}

// The first fixed step whose midpoint is at or past x, exactly as mid_of compares (the division
// gives it to within one step; the float comparisons settle it).
template <typename T>
F3D_HD inline int64_t first_past(const Args<T>& a, T t0, T x) {
  int64_t k = int64_t(ceil_((x - t0) / a.step - T(0.5)));
  if (k < 0) k = 0;
  while (k > 0 && !(mid_of(a, t0, k - 1) < x)) --k;
  while (mid_of(a, t0, k) < x) ++k;
  return k;
}

// Emits the steps of one cell whose midpoints lie before `exit` (and, when `first`, at least the
// current step, whose midpoint the caller located in the cell); advances t (and k, for fixed steps, which stop before
// k_end: the first grid step at or past t1). Counting fixed steps needs no loop.
template <bool Count, typename T, typename Emit>
F3D_HD inline void emit_cell(const Args<T>& a, T t0, T t1, int64_t k_end, T exit, int64_t limit, bool first, T& t,
                             int64_t& k, int64_t& n, Emit&& emit) {
  if (a.cone == T(0)) {
    const int64_t end = first_past(a, t0, exit);
    int64_t stop = end > k ? end : (first ? k + 1 : k);
    stop = stop < k_end ? stop : k_end;
    if (Count) {
      n += stop - k;
      k = stop;
    }
    for (; k < stop && n != limit; ++k) {
      const T ts = t0 + T(k) * a.step;
      emit(ts, ts + a.step);
      ++n;
    }
    t = t0 + T(k) * a.step;
    return;
  }
  T dt = step_at(a, t);
  while (true) {
    emit(t, t + dt);
    ++n;
    t += dt;
    if (!(t < t1) || n == limit) return;
    dt = step_at(a, t);
    if (!(t + T(0.5) * dt < exit)) return;  // the next midpoint leaves this cell
  }
}

// The first step index k with t0 + k * step >= t1, exactly as the float comparison decides.
template <typename T>
F3D_HD inline int64_t step_end(const Args<T>& a, T t0, T t1) {
  if (a.cone != T(0)) return 0;
  int64_t k = int64_t(ceil_((t1 - t0) / a.step));
  while (k > 0 && !(t0 + T(k - 1) * a.step < t1)) --k;
  while (t0 + T(k) * a.step < t1) ++k;
  return k;
}

// Fixed steps after crossing empty cells: k moves up to the first step whose midpoint is at or past
// `entry`, where the current cell starts.
template <typename T>
F3D_HD inline void catch_up(const Args<T>& a, T t0, T entry, T& t, int64_t& k) {
  const int64_t first = first_past(a, t0, entry);
  if (first > k) {
    k = first;
    t = t0 + T(k) * a.step;
  }
}

// Leaves an empty cell: t moves to the first step whose midpoint is at or past `exit`.
template <typename T>
F3D_HD inline void skip_cell(const Args<T>& a, T t0, T exit, T& t, int64_t& k) {
  if (a.cone == T(0)) {
    const int64_t end = first_past(a, t0, exit);
    k = end > k ? end : k + 1;
    t = t0 + T(k) * a.step;
  } else {
    t = exit > t ? exit : t + step_at(a, t);
  }
}

// Walks ray r, calling emit(t_start, t_end) for each sample, and returns the sample count.
// Stops early once `limit` samples were emitted (limit < 0: no limit). The ray is located (level
// and cell from the midpoint of its current step) where it starts and wherever it changes level;
// in between it walks cell to cell, emitting the steps of occupied cells and jumping over empty
// ones, so every cell costs a few multiplications, not a division per step.
template <bool Count, typename T, typename Emit>
F3D_HD inline int64_t march_ray(const Args<T>& a, int64_t r, int64_t limit, Emit&& emit) {
  T t0, t1;
  ray_interval(a, r, t0, t1);
  if (!(t0 < t1)) return 0;  // also false for NaN
  const T* o = a.origins + 3 * r;
  const T* d = a.dirs + 3 * r;
  T inv[3];
  for (int c = 0; c < 3; ++c) inv[c] = d[c] == T(0) ? T(0) : T(1) / d[c];
  const bool fixed = a.cone == T(0);
  int64_t n = 0, k = 0;  // k: step index for fixed steps
  const int64_t k_end = step_end(a, t0, t1);
  T t = t0;
  while (t < t1 && n != limit) {
    T x[3];
    const T mid = t + T(0.5) * step_at(a, t);
    for (int c = 0; c < 3; ++c) x[c] = o[c] + mid * d[c];
    const int l = level_of(a, x);
    if (l >= a.levels) break;
    Walk<T> w;
    start_walk(a, x, d, l, w);
    bool located = true, first = true;
    const int64_t k_located = k;
    bool behind = false;  // fixed steps: k still lies before `entry`, the start of the walk's cell
    T entry = T(0);
    while (located) {
      int axis;
      T exit = walk_exit(w, o, inv, axis);
      const bool occ = occupied(a, cell_index(a, w));
      if (fixed && !occ) {  // cross the empty cell without working out the steps
        behind = true;
        first = false;
        entry = exit;
        located = advance(a, w, axis);
        continue;
      }
      if (behind) catch_up(a, t0, entry, t, k);
      if (occ) emit_cell<Count>(a, t0, t1, k_end, exit, limit, first, t, k, n, emit);
      else skip_cell(a, t0, exit, t, k);
      behind = first = false;
      if (!(t < t1) || n == limit) return n;
      const T next = t + T(0.5) * step_at(a, t);  // the next step's midpoint
      while (located && !(next < exit)) {
        located = advance(a, w, axis);
        exit = walk_exit(w, o, inv, axis);
      }
    }
    if (behind) {  // left the level from empty cells
      catch_up(a, t0, entry, t, k);
      if (k == k_located) {  // its midpoint was located in an empty cell: never stand still
        ++k;
        t = t0 + T(k) * a.step;
      }
    }
  }
  return n;
}

template <typename T>
F3D_HD inline void count_one(const Args<T>& a, int64_t r) {
  a.counts[r] = march_ray<true>(a, r, int64_t(-1), [](T, T) {});
}

template <typename T>
F3D_HD inline void emit_one(const Args<T>& a, int64_t r) {
  int64_t s = a.offsets[r];
  const int64_t limit = a.offsets[r + 1] - s;
  if (limit <= 0) return;
  march_ray<false>(a, r, limit, [&](T ts, T te) {
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
