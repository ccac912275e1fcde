// CPU launchers for marching cubes: parallel-for over point rows (dense) or cells (sparse). Each
// row or cell writes only its own outputs at offsets fixed by the scan, so the result does not
// depend on the thread count.
//
// Dense rows work on bit planes: bit k of a row's plane says whether value k is below the level
// (64 points per word, from SIMD compares where available). The crossing flags of every edge
// stream (marching_cubes.h) and the cells that are neither all below nor all above then come out
// of a few word operations, and only crossing edges and cut cells are visited, found with
// count-trailing-zeros; a stream's vertex id at k is its row offset plus a popcount of the flags
// before k. This gives the same ids as the serial walk of the definition (and the CUDA kernels).
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/parallel.h"
#include "geometry/marching_cubes.h"

namespace f3d {
namespace mc {
namespace {

constexpr int64_t kRowGrain = 4;     // rows per task (a row is nz cells)
constexpr int64_t kCellGrain = 256;  // sparse cells per task

// 64 bits: bit b set when v[b] <= level, for the n <= 64 values at v (missing bits are 0).
// `finite` is cleared if any of them is NaN or infinite (v - v is then NaN, not 0).
inline uint64_t below_word(const float* v, int n, float level, bool& finite) {
  uint64_t m = 0;
  int b = 0;
#if defined(__SSE2__)
  if (n == 64) {  // a whole word, unrolled: constant shifts, and one finiteness test at the end
    const __m128 l = _mm_set1_ps(level);
    __m128 bad = _mm_setzero_ps();  // OR of every v - v: all bits 0 while every value is finite
    F3D_UNROLL
    for (int k = 0; k < 64; k += 4) {
      const __m128 x = _mm_loadu_ps(v + k);
      m |= uint64_t(_mm_movemask_ps(_mm_cmple_ps(x, l))) << k;
      bad = _mm_or_ps(bad, _mm_sub_ps(x, x));
    }
    finite = finite && _mm_movemask_ps(_mm_cmpeq_ps(bad, _mm_setzero_ps())) == 0xF;
    return m;
  }
  const __m128 l = _mm_set1_ps(level), zero = _mm_setzero_ps();
  int ok = 0xF;
  for (; b + 4 <= n; b += 4) {
    const __m128 x = _mm_loadu_ps(v + b);
    m |= uint64_t(_mm_movemask_ps(_mm_cmple_ps(x, l))) << b;
    ok &= _mm_movemask_ps(_mm_cmpeq_ps(_mm_sub_ps(x, x), zero));
  }
  finite = finite && ok == 0xF;
#endif
  for (; b < n; ++b) {
    m |= uint64_t(v[b] <= level) << b;
    finite = finite && v[b] - v[b] == 0.0f;
  }
  return m;
}

inline uint64_t below_word(const double* v, int n, double level, bool& finite) {
  uint64_t m = 0;
  int b = 0;
#if defined(__SSE2__)
  const __m128d l = _mm_set1_pd(level), zero = _mm_setzero_pd();
  int ok = 0x3;
  for (; b + 2 <= n; b += 2) {
    const __m128d x = _mm_loadu_pd(v + b);
    m |= uint64_t(_mm_movemask_pd(_mm_cmple_pd(x, l))) << b;
    ok &= _mm_movemask_pd(_mm_cmpeq_pd(_mm_sub_pd(x, x), zero));
  }
  finite = finite && ok == 0x3;
#endif
  for (; b < n; ++b) {
    m |= uint64_t(v[b] <= level) << b;
    finite = finite && v[b] - v[b] == 0.0;
  }
  return m;
}

inline int ctz(uint64_t v) { return __builtin_ctzll(v); }
inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

// The row functions that count bits are compiled twice on x86, with and without the POPCNT
// instruction, and the loader picks one for the CPU: the baseline x86-64 target has none, and
// GCC's library popcount it calls instead took a quarter of marching cubes' instructions.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__SANITIZE_ADDRESS__)
#define F3D_POPCNT_CLONES __attribute__((target_clones("popcnt", "default")))
#else
#define F3D_POPCNT_CLONES
#endif

// Bits [0, n) of word w of a plane with `limit` valid bits (k < limit).
inline uint64_t valid(int64_t w, int64_t limit) {
  const int64_t n = limit - 64 * w;
  return n >= 64 ? ~uint64_t(0) : (n <= 0 ? 0 : (uint64_t(1) << n) - 1);
}

// Bit planes of one cell row: the four rows' below bits, each stream's crossing bits and the cut
// cells (`cut`, bit k: cell k is neither all below nor all above). Buffers live for a task; the
// below bits of a row are kept while the next quads still use it (row r + 1 of quad r is row 0
// of quad r + 1), so each row is compared about twice instead of four times.
class Planes {
 public:
  int64_t words = 0;
  std::vector<uint64_t> stream[kStreams], cut;
  bool finite = true;  // every value read so far is finite (every row is read at least once)

  // The planes of quad q: its rows' below bits compared from the volume (and kept in a.below,
  // where given, for the emit pass), or with `from_bits`, taken from a.below.
  template <typename T>
  void fill(const DenseArgs<T>& a, const RowQuad<T>& q, bool from_bits) {
    if ((a.nz + 63) / 64 != words) {
      words = (a.nz + 63) / 64;
      for (auto& p : pool_) p.assign(words, 0);
      for (auto& p : stream) p.assign(words, 0);
      cut.assign(words, 0);
      std::fill(held_, held_ + 4, int64_t(-1));
    }
    if (from_bits) {
      for (int c = 0; c < 4; ++c) bits_[c] = a.below + q.id[c] * words;
    } else {
      load_rows(a, q);
      for (int c = 0; c < 4; ++c) bits_[c] = pool_[slot_[c]].data();
      if (a.below) std::copy(bits_[0], bits_[0] + words, a.below + q.id[0] * words);
    }
    for (int64_t w = 0; w < words; ++w) fill_word(w, a.nz, q.cells);
  }

  const uint64_t* below(int c) const { return bits_[c]; }

  // Case index of cell k (bit c: corner c below); k + 1 < nz.
  uint32_t cube(int64_t k) const {
    const int64_t w = k / 64, b = k % 64, w1 = (k + 1) / 64, b1 = (k + 1) % 64;
    uint32_t cube = 0;
    for (int c = 0; c < 4; ++c) {
      cube |= uint32_t((below(c)[w] >> b) & 1u) << c;
      cube |= uint32_t((below(c)[w1] >> b1) & 1u) << (c + 4);
    }
    return cube;
  }

 private:
  std::vector<uint64_t> pool_[4];
  int64_t held_[4] = {-1, -1, -1, -1};  // the row whose bits each pool buffer holds
  int slot_[4] = {0, 0, 0, 0};          // the pool buffer of each quad row
  const uint64_t* bits_[4] = {};        // each quad row's below bits (a pool buffer or a.below)

  template <typename T>
  void load_rows(const DenseArgs<T>& a, const RowQuad<T>& q) {
    bool used[4] = {false, false, false, false};
    for (int c = 0; c < 4; ++c) {
      slot_[c] = -1;
      for (int p = 0; p < 4 && slot_[c] < 0; ++p)
        if (held_[p] == q.id[c]) slot_[c] = p;
      if (slot_[c] >= 0) used[slot_[c]] = true;
    }
    for (int c = 0; c < 4; ++c) {
      if (slot_[c] >= 0) continue;
      int p = 0;
      while (used[p]) ++p;
      used[p] = true;
      slot_[c] = p;
      held_[p] = q.id[c];
      for (int64_t w = 0; w < words; ++w)
        pool_[p][w] = below_word(q.row[c] + 64 * w, int(std::min<int64_t>(64, a.nz - 64 * w)), a.level, finite);
      for (int d = c + 1; d < 4; ++d)  // an aliased row shares the buffer
        if (q.id[d] == q.id[c]) slot_[d] = p;
    }
  }

  // Bit k of the result: bit k + 1 of the plane.
  uint64_t next(const uint64_t* p, int64_t w) const {
    return (p[w] >> 1) | (w + 1 < words ? p[w + 1] << 63 : 0);
  }

  void fill_word(int64_t w, int64_t nz, bool cells) {
    const uint64_t b0 = below(0)[w], b1 = below(1)[w], b2 = below(2)[w], b3 = below(3)[w];
    const uint64_t has_next = valid(w, nz - 1);  // z edges and cells need k + 1 < nz
    stream[kX0][w] = b0 ^ b1;
    stream[kX1][w] = b3 ^ b2;
    stream[kY0][w] = b0 ^ b3;
    stream[kY1][w] = b1 ^ b2;
    uint64_t all_next = ~uint64_t(0), any_next = 0;
    for (int c = 0; c < 4; ++c) {
      const uint64_t n = next(below(c), w);
      stream[kZ0 + c][w] = (below(c)[w] ^ n) & has_next;
      all_next &= n;
      any_next |= n;
    }
    const uint64_t all = b0 & b1 & b2 & b3, any = b0 | b1 | b2 | b3;
    cut[w] = cells ? ((any | any_next) & ~(all & all_next) & has_next) : 0;
  }
};

// Calls fn(k) for each set bit k of a plane, in increasing k.
template <typename Fn>
inline void for_each_bit(const std::vector<uint64_t>& plane, int64_t words, Fn&& fn) {
  for (int64_t w = 0; w < words; ++w)
    for (uint64_t m = plane[w]; m; m &= m - 1) fn(64 * w + ctz(m));
}

// Runs body(quad, planes) for every row (or, with skip_empty, for every row the scan gave
// vertices or triangles), with one Planes buffer per task; the planes come from a.below where
// `from_bits`. Returns false if a value read was not finite.
template <typename T, typename Body>
inline bool for_each_row(const DenseArgs<T>& a, Body&& body, bool skip_empty = false, bool from_bits = false) {
  std::atomic<bool> finite{true};
  parallel_for(a.nx * a.ny, kRowGrain, [&](int64_t b, int64_t e) {
    Planes planes;
    for (int64_t r = b; r < e; ++r) {
      if (skip_empty && row_is_empty(a, r)) continue;
      const RowQuad<T> q = row_quad(a, r);
      planes.fill(a, q, from_bits);
      body(q, planes);
    }
    if (!planes.finite) finite.store(false);
  });
  return finite.load();
}

template <typename T>
F3D_POPCNT_CLONES void count_row(const DenseArgs<T>& a, const RowQuad<T>& q, const Planes& p) {
  int64_t n[4] = {0, 0, 0, 0};
  for (int64_t w = 0; w < p.words; ++w) {
    n[0] += popcount64(p.stream[kX0][w]);
    n[1] += popcount64(p.stream[kY0][w]);
    n[2] += popcount64(p.stream[kZ0][w]);
  }
  for_each_bit(p.cut, p.words, [&](int64_t k) { n[3] += tri_count(p.cube(k)); });
  std::copy(n, n + 4, a.counts + kCountCols * (q.id[0]));
}

template <typename T>
void emit_vertices(const DenseArgs<T>& a, const RowQuad<T>& q, const Planes& p) {
  const int stream[3] = {kX0, kY0, kZ0};
  for (int axis = 0; axis < 3; ++axis) {
    int64_t id = a.counts[kCountCols * q.id[0] + axis];
    const T* r0 = q.row[0];
    const T* r1 = axis == 0 ? q.row[1] : (axis == 1 ? q.row[3] : q.row[0] + 1);
    for_each_bit(p.stream[stream[axis]], p.words, [&](int64_t k) {
      if (id < a.n_verts) write_vertex(a.verts + 3 * id, a.origin, a.spacing, q.i, q.j, k, axis, r0[k], r1[k], a.level);
      ++id;
    });
  }
}

template <typename T>
F3D_POPCNT_CLONES void emit_faces(const DenseArgs<T>& a, const RowQuad<T>& q, const Planes& p) {
  int64_t start[kStreams];  // each stream's id at the start of word w
  for (int s = 0; s < kStreams; ++s) start[s] = a.counts[kCountCols * q.id[stream_row(s)] + stream_col(s)];
  int64_t tri = a.counts[kCountCols * q.id[0] + kTriCol];
  for (int64_t w = 0; w < p.words; ++w) {
    for (uint64_t m = p.cut[w]; m; m &= m - 1) {
      const int b = ctz(m);
      const uint64_t before = (uint64_t(1) << b) - 1;
      int64_t cur[kStreams];
      uint32_t flags = 0;
      for (int s = 0; s < kStreams; ++s) {
        cur[s] = start[s] + popcount64(p.stream[s][w] & before);
        flags |= uint32_t((p.stream[s][w] >> b) & 1u) << s;
      }
      const uint32_t cube = p.cube(64 * w + b);
      write_cell_faces(a, cube, tri, cur, flags);
      tri += tri_count(cube);
    }
    for (int s = 0; s < kStreams; ++s) start[s] += popcount64(p.stream[s][w]);
  }
}

template <typename Body>
inline void for_each(int64_t n, int64_t grain, Body&& body) {
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) body(i);
  });
}

// Rewrites rows [b, e) as exclusive offsets starting from `run`; returns the running totals.
inline Totals offsets_of(int64_t* counts, int64_t b, int64_t e, int n_vert_cols, Totals run) {
  for (int64_t r = b; r < e; ++r) {
    int64_t* row = counts + kCountCols * r;
    for (int c = 0; c < n_vert_cols; ++c) {
      const int64_t n = row[c];
      row[c] = run.verts;
      run.verts += n;
    }
    const int64_t n = row[kTriCol];
    row[kTriCol] = run.faces;
    run.faces += n;
  }
  return run;
}

}  // namespace

template <typename T>
bool dense_count_cpu(const DenseArgs<T>& a) {
  return for_each_row(a, [&](const RowQuad<T>& q, const Planes& p) { count_row(a, q, p); });
}

template <typename T>
void dense_emit_cpu(const DenseArgs<T>& a) {
  for_each_row(a, [&](const RowQuad<T>& q, const Planes& p) {
    emit_vertices(a, q, p);
    emit_faces(a, q, p);
  }, /*skip_empty=*/true, /*from_bits=*/a.below != nullptr);
}

template <typename T>
void sparse_count_cpu(const SparseArgs<T>& a) {
  for_each(a.n_cells, kCellGrain, [&](int64_t m) { sparse_count_one(a, m); });
}

template <typename T>
void sparse_emit_cpu(const SparseArgs<T>& a) {
  for_each(a.n_cells, kCellGrain, [&](int64_t m) { sparse_emit_one(a, m); });
}

// Chunked exclusive scan: per-chunk totals in parallel, a serial scan of those, then each chunk
// rewritten from its start in parallel. Integer sums, so the result is the same for any split.
Totals scan_cpu(int64_t* counts, int64_t n, int n_vert_cols) {
  const int64_t chunk = std::max<int64_t>(4096, (n + 4 * num_threads() - 1) / (4 * num_threads()));
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  std::vector<Totals> start(n_chunks);
  auto range = [&](int64_t c) { return std::make_pair(c * chunk, std::min(n, (c + 1) * chunk)); };
  for_each(n_chunks, 1, [&](int64_t c) {
    Totals sum;
    for (int64_t r = range(c).first; r < range(c).second; ++r) {
      for (int col = 0; col < n_vert_cols; ++col) sum.verts += counts[kCountCols * r + col];
      sum.faces += counts[kCountCols * r + kTriCol];
    }
    start[c] = sum;
  });
  Totals run;
  for (Totals& s : start) {
    const Totals sum = s;
    s = run;
    run.verts += sum.verts;
    run.faces += sum.faces;
  }
  for_each(n_chunks, 1, [&](int64_t c) { offsets_of(counts, range(c).first, range(c).second, n_vert_cols, start[c]); });
  return run;
}

#ifndef FIELDS3D_WITH_CUDA
// A CPU-only build still links the CUDA entry points; they refuse (the binding checks first).
namespace {
[[noreturn]] void no_cuda() { throw std::runtime_error("fields3d._core was built without CUDA"); }
}  // namespace
template <typename T>
void dense_count_cuda(const DenseArgs<T>&, void*, int) { no_cuda(); }
template <typename T>
void dense_emit_cuda(const DenseArgs<T>&, void*, int) { no_cuda(); }
template <typename T>
void sparse_count_cuda(const SparseArgs<T>&, void*, int) { no_cuda(); }
template <typename T>
void sparse_emit_cuda(const SparseArgs<T>&, void*, int) { no_cuda(); }
Totals scan_cuda(int64_t*, int64_t, int, void*, int) { no_cuda(); }
#define F3D_MC_CUDA_STUBS(T)                                            \
  template void dense_count_cuda<T>(const DenseArgs<T>&, void*, int);   \
  template void dense_emit_cuda<T>(const DenseArgs<T>&, void*, int);    \
  template void sparse_count_cuda<T>(const SparseArgs<T>&, void*, int); \
  template void sparse_emit_cuda<T>(const SparseArgs<T>&, void*, int);
F3D_MC_CUDA_STUBS(float)
F3D_MC_CUDA_STUBS(double)
#undef F3D_MC_CUDA_STUBS
#endif

template bool dense_count_cpu<float>(const DenseArgs<float>&);
template bool dense_count_cpu<double>(const DenseArgs<double>&);
template void dense_emit_cpu<float>(const DenseArgs<float>&);
template void dense_emit_cpu<double>(const DenseArgs<double>&);
template void sparse_count_cpu<float>(const SparseArgs<float>&);
template void sparse_count_cpu<double>(const SparseArgs<double>&);
template void sparse_emit_cpu<float>(const SparseArgs<float>&);
template void sparse_emit_cpu<double>(const SparseArgs<double>&);

}  // namespace mc
}  // namespace f3d
