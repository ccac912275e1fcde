// Marching cubes, per-element work shared by the CPU launcher (marching_cubes.cpp) and the CUDA
// launcher (marching_cubes.cu).
//
// Conventions. A grid point is "below" when value <= level (a value equal to the level counts as
// below), and bit c of a cube's case index is set when its corner c is below (corner and edge
// numbering in mc_tables.h, with x, y, z = the volume's axes 0, 1, 2). An edge crosses when its
// ends differ; its vertex sits at t = (level - v0) / (v1 - v0) from the lower-index end, so a
// corner exactly at the level gives a vertex on that corner (and possibly zero-area triangles
// there; elsewhere only where t rounds to 0 or 1). Triangles wind counter-clockwise seen from the
// side above the level: normals point toward increasing values (outward for a signed distance
// that is negative inside).
//
// Welding: one vertex per crossing edge, shared by every cube around it. Vertex ids come from
// exclusive prefix sums of per-row (dense) or per-cell (sparse) counts, so the output order is
// fixed: the same for any thread count, and the same on CUDA.
//
// Dense layout. Point (i, j, k) is volume[(i * ny + j) * nz + k]; a "row" is the nz points of one
// (i, j), r = i * ny + j. Row r owns the crossing edges that start at its points: along x (to row
// (i+1, j)), along y (to row (i, j+1)) and along z. Its vertices are numbered x edges first, then
// y, then z, each in k order; rows follow each other in r order. Cell row r is the cubes between
// rows (i, j), (i+1, j), (i+1, j+1), (i, j+1) (corners 0..3 of the cube's bottom face), written
// in k order, triangles in table order.
//
// Sparse layout (narrow band). Active cells are given by sorted linear indices
// (i * (ny-1) + j) * (nz-1) + k and their 8 corner values. Each crossing edge is emitted by the
// active cell with the smallest index among the (up to 4) cells sharing it; its vertex id is that
// cell's vertex offset plus the edge's rank among the edges the cell emits (lowest edge number
// first). Cells are numbered in the given order.
#pragma once

#include <cstdint>

#include "common/macros.h"
#include "geometry/mc_tables.h"

namespace f3d {
namespace mc {

// Columns of the per-row / per-cell count array. The count kernels write counts; the scan turns
// the vertex columns [0, n_vert_cols) and the triangle column into exclusive offsets.
constexpr int kCountCols = 4;
constexpr int kTriCol = 3;
constexpr int kMaskCol = 1;  // sparse: the 12-bit mask of emitted edges (left as is by the scan)

template <typename T>
struct DenseArgs {
  const T* volume = nullptr;  // (nx, ny, nz)
  int64_t nx = 0, ny = 0, nz = 0;
  T level = T(0);
  T origin[3] = {};
  T spacing[3] = {};
  int64_t* counts = nullptr;  // (nx * ny, 4): [x, y, z vertices, triangles] -> offsets after the scan
  T* verts = nullptr;         // (V, 3)
  int64_t* faces = nullptr;   // (F, 3)
  int64_t n_verts = 0, n_faces = 0;  // V and F: writes past them are skipped (never out of bounds)
  // CPU launchers only, optional: (nx * ny, ceil(nz / 64)) words, bit k of row r's words set when
  // value k of volume row r is at or below the level. The count pass writes them; the emit pass
  // then takes a row's bits from there and reads the volume only at crossing edges.
  uint64_t* below = nullptr;
};

template <typename T>
struct SparseArgs {
  const int64_t* cells = nullptr;  // (M,) linear cell indices, strictly increasing
  const T* values = nullptr;       // (M, 8) corner values, corner order of mc_tables.h
  int64_t n_cells = 0;
  int64_t nx = 0, ny = 0, nz = 0;  // grid points per axis
  T level = T(0);
  T origin[3] = {};
  T spacing[3] = {};
  int64_t* counts = nullptr;  // (M, 4): [vertices, emitted-edge mask, 0, triangles] -> offsets
  T* verts = nullptr;         // (V, 3)
  int64_t* faces = nullptr;   // (F, 3)
  int64_t n_verts = 0, n_faces = 0;
};

// ---- shared pieces -----------------------------------------------------------------------------

F3D_HD inline int popcount(uint32_t v) {
#if defined(__CUDA_ARCH__)
  return __popc(v);
#else
  return __builtin_popcount(v);
#endif
}

// Triangles of a case (0 for cases 0 and 255).
F3D_HD inline int tri_count(uint32_t cube) {
  if (cube == 0u || cube == 255u) return 0;
  const int8_t* t = tri_row(cube);
  int n = 0;
  while (t[3 * n] >= 0) ++n;
  return n;
}

// Writes the case's triangles as vertex ids: id_of(edge) -> int64. The table winds triangles
// toward the below side; writing (a, c, b) turns them toward the side above the level.
template <typename IdOf>
F3D_HD inline void write_faces(uint32_t cube, IdOf&& id_of, int64_t* faces) {
  const int8_t* t = tri_row(cube);
  for (int n = 0; t[n] >= 0; n += 3) {
    faces[n] = id_of(t[n]);
    faces[n + 1] = id_of(t[n + 2]);
    faces[n + 2] = id_of(t[n + 1]);
  }
}

// origin + p * spacing without fused multiply-add on the device, so CUDA rounds like the CPU.
template <typename T>
F3D_HD inline T world(T origin, T p, T spacing) {
  return mul_add_rn(p, spacing, origin);
}

// The vertex on the edge from point (i, j, k) one step along `axis`, ends valued v0 and v1.
template <typename T>
F3D_HD inline void write_vertex(T* out, const T origin[3], const T spacing[3], int64_t i, int64_t j, int64_t k,
                                int axis, T v0, T v1, T level) {
  const T t = (level - v0) / (v1 - v0);
  T p[3] = {T(i), T(j), T(k)};
  p[axis] += t;
  for (int d = 0; d < 3; ++d) out[d] = world(origin[d], p[d], spacing[d]);
}

// ---- dense: rows ------------------------------------------------------------------------------

// The four point rows around cell row (i, j), in the corner order of a cube's bottom face:
// (i, j), (i+1, j), (i+1, j+1), (i, j+1). Rows past the grid alias row (i, j), so edges toward
// them never cross; `cells` says whether the cell row exists.
template <typename T>
struct RowQuad {
  const T* row[4];
  int64_t id[4];
  int64_t i, j;
  bool cells;
};

template <typename T>
F3D_HD inline RowQuad<T> row_quad(const DenseArgs<T>& a, int64_t r) {
  RowQuad<T> q;
  q.i = r / a.ny;
  q.j = r % a.ny;
  const bool has_x = q.i + 1 < a.nx, has_y = q.j + 1 < a.ny;
  q.cells = has_x && has_y;
  q.id[0] = r;
  q.id[1] = has_x ? r + a.ny : r;
  q.id[2] = q.cells ? r + a.ny + 1 : r;
  q.id[3] = has_y ? r + 1 : r;
  for (int c = 0; c < 4; ++c) q.row[c] = a.volume + q.id[c] * a.nz;
  return q;
}

// Bits of the four rows at k: bit c set when row c's value is below the level.
template <typename T>
F3D_HD inline uint32_t slab(const RowQuad<T>& q, int64_t k, T level) {
  return uint32_t(q.row[0][k] <= level) | (uint32_t(q.row[1][k] <= level) << 1) |
         (uint32_t(q.row[2][k] <= level) << 2) | (uint32_t(q.row[3][k] <= level) << 3);
}

// Edge "streams" of a cell row at k: the crossing flags (bit s) of
//   0 X0: x edge of row (i, j)      1 X1: x edge of row (i, j+1)
//   2 Y0: y edge of row (i, j)      3 Y1: y edge of row (i+1, j)
//   4..7 Zc: z edge (k to k+1) of row c of the quad.
// s0, s1: slabs at k and k+1 (pass s1 = s0 at the last k: no z edge).
enum Stream { kX0 = 0, kX1 = 1, kY0 = 2, kY1 = 3, kZ0 = 4 };
constexpr int kStreams = 8;

F3D_HD inline uint32_t stream_flags(uint32_t s0, uint32_t s1) {
  const uint32_t b0 = s0 & 1u, b1 = (s0 >> 1) & 1u, b2 = (s0 >> 2) & 1u, b3 = (s0 >> 3) & 1u;
  return (b0 ^ b1) | ((b3 ^ b2) << 1) | ((b0 ^ b3) << 2) | ((b1 ^ b2) << 3) | (((s0 ^ s1) & 15u) << 4);
}

// Row of the quad whose vertex block holds stream s (the row owning that edge).
F3D_HD inline int stream_row(int s) {
  static constexpr int kRow[kStreams] = {0, 3, 0, 1, 0, 1, 2, 3};
  return kRow[s];
}

// Column of the offsets array where stream s's vertex block starts (x, y or z block).
F3D_HD inline int stream_col(int s) { return s < kY0 ? 0 : (s < kZ0 ? 1 : 2); }

// Vertex id of cube edge e at k, given each stream's first id at k (`cur`) and the flags at k.
// Edges 4..7 lie at k+1: one past the stream's id at k if the stream crosses at k.
F3D_HD inline int64_t dense_edge_id(int e, const int64_t cur[kStreams], uint32_t flags) {
  static constexpr int8_t kStream[12] = {kX0, kY1, kX1, kY0, kX0, kY1, kX1, kY0, 4, 5, 6, 7};
  const int s = kStream[e];
  return cur[s] + ((e >= 4 && e < 8) ? int64_t((flags >> s) & 1u) : 0);
}

// After the scan: true when row r owns no vertex and no triangle (its offsets equal the next's).
template <typename T>
F3D_HD inline bool row_is_empty(const DenseArgs<T>& a, int64_t r) {
  const int64_t* o = a.counts + kCountCols * r;
  const bool last = r + 1 == a.nx * a.ny;
  const int64_t next_vert = last ? a.n_verts : o[kCountCols], next_tri = last ? a.n_faces : o[kCountCols + kTriCol];
  return o[0] == next_vert && o[kTriCol] == next_tri;
}

// Writes the vertices owned by row (q.i, q.j) at k: ids from cur (streams X0, Y0, Z0).
template <typename T>
F3D_HD inline void write_row_vertices(const DenseArgs<T>& a, const RowQuad<T>& q, int64_t k, uint32_t flags,
                                      const int64_t cur[kStreams]) {
  const T* r0 = q.row[0];
  const T ends[3] = {q.row[1][k], q.row[3][k], (flags & (1u << kZ0)) ? r0[k + 1] : r0[k]};
  const int stream[3] = {kX0, kY0, kZ0};
  for (int axis = 0; axis < 3; ++axis) {
    const int64_t id = cur[stream[axis]];
    if (((flags >> stream[axis]) & 1u) && id < a.n_verts)
      write_vertex(a.verts + 3 * id, a.origin, a.spacing, q.i, q.j, k, axis, r0[k], ends[axis], a.level);
  }
}

// Writes the triangles of cell (q.i, q.j, k) from triangle `first` on (skipped past n_faces).
template <typename T>
F3D_HD inline void write_cell_faces(const DenseArgs<T>& a, uint32_t cube, int64_t first, const int64_t cur[kStreams],
                                    uint32_t flags) {
  if (first + tri_count(cube) > a.n_faces) return;
  write_faces(cube, [&](int e) { return dense_edge_id(e, cur, flags); }, a.faces + 3 * first);
}

// ---- sparse: cells ----------------------------------------------------------------------------

// Corner offsets (bit 0: x, 1: y, 2: z) and each edge's ends (lower-index end first) and axis.
F3D_HD inline uint32_t corner_offset(int c) {
  static constexpr uint8_t kOff[8] = {0, 1, 3, 2, 4, 5, 7, 6};
  return kOff[c];
}
F3D_HD inline int edge_end(int e, int side) {
  static constexpr int8_t kEnds[12][2] = {{0, 1}, {1, 2}, {3, 2}, {0, 3}, {4, 5}, {5, 6},
                                   {7, 6}, {4, 7}, {0, 4}, {1, 5}, {2, 6}, {3, 7}};
  return kEnds[e][side];
}
F3D_HD inline int edge_axis(int e) { return e >= 8 ? 2 : ((e & 1) ? 1 : 0); }

// Edge number of the `axis` edge at offset (ob, oc) along the other two axes (in increasing order).
F3D_HD inline int edge_at(int axis, int ob, int oc) {
  static constexpr int8_t kEdge[3][2][2] = {{{0, 4}, {2, 6}}, {{3, 7}, {1, 5}}, {{8, 11}, {9, 10}}};
  return kEdge[axis][ob][oc];
}

template <typename T>
F3D_HD inline uint32_t cell_case(const T* v, T level) {
  uint32_t cube = 0;
  for (int c = 0; c < 8; ++c) cube |= uint32_t(v[c] <= level) << c;
  return cube;
}

// Edges whose ends differ in the case (bit e).
F3D_HD inline uint32_t crossing_edges(uint32_t cube) {
  uint32_t m = 0;
  for (int e = 0; e < 12; ++e) m |= (((cube >> edge_end(e, 0)) ^ (cube >> edge_end(e, 1))) & 1u) << e;
  return m;
}

// Position of `key` in the sorted cells, or -1.
F3D_HD inline int64_t find_cell(const int64_t* cells, int64_t n, int64_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (cells[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return (lo < n && cells[lo] == key) ? lo : -1;
}

struct CellPos {
  int64_t p[3];
};

template <typename T>
F3D_HD inline CellPos cell_pos(const SparseArgs<T>& a, int64_t key) {
  const int64_t cy = a.ny - 1, cz = a.nz - 1;
  return CellPos{{key / (cy * cz), (key / cz) % cy, key % cz}};
}

template <typename T>
F3D_HD inline int64_t cell_key(const SparseArgs<T>& a, const int64_t p[3]) {
  return (p[0] * (a.ny - 1) + p[1]) * (a.nz - 1) + p[2];
}

// The cell that emits edge e of cell m (at `pos`): the first active cell, in index order, of the
// cells sharing the edge. Returns its position in the cell list and the edge's number there.
template <typename T>
F3D_HD inline int64_t edge_owner(const SparseArgs<T>& a, int64_t m, const CellPos& pos, int e, int& owner_edge) {
  const int axis = edge_axis(e);
  const int b = axis == 0 ? 1 : 0, c = axis == 2 ? 1 : 2;  // the other two axes
  const uint32_t off = corner_offset(edge_end(e, 0));
  int64_t point[3];
  for (int d = 0; d < 3; ++d) point[d] = pos.p[d] + ((off >> d) & 1u);
  const int64_t n_cells[3] = {a.nx - 1, a.ny - 1, a.nz - 1};
  for (int ob = 1; ob >= 0; --ob) {
    for (int oc = 1; oc >= 0; --oc) {
      int64_t q[3] = {point[0], point[1], point[2]};
      q[b] -= ob;
      q[c] -= oc;
      if (q[b] < 0 || q[c] < 0 || q[b] >= n_cells[b] || q[c] >= n_cells[c]) continue;
      owner_edge = edge_at(axis, ob, oc);
      if (q[b] == pos.p[b] && q[c] == pos.p[c]) return m;
      const int64_t found = find_cell(a.cells, a.n_cells, cell_key(a, q));
      if (found >= 0) return found;
    }
  }
  owner_edge = e;  // not reached: the cell itself shares the edge
  return m;
}

// Pass 1 for cell m: counts[m] = [emitted vertices, emitted-edge mask, 0, triangles].
template <typename T>
F3D_HD inline void sparse_count_one(const SparseArgs<T>& a, int64_t m) {
  const uint32_t cube = cell_case(a.values + 8 * m, a.level);
  const uint32_t crossing = (cube == 0u || cube == 255u) ? 0u : crossing_edges(cube);
  const CellPos pos = cell_pos(a, a.cells[m]);
  uint32_t mask = 0;
  for (int e = 0; e < 12; ++e) {
    if (!((crossing >> e) & 1u)) continue;
    int owner_edge;
    if (edge_owner(a, m, pos, e, owner_edge) == m) mask |= 1u << e;
  }
  int64_t* out = a.counts + kCountCols * m;
  out[0] = popcount(mask);
  out[kMaskCol] = mask;
  out[2] = 0;
  out[kTriCol] = tri_count(cube);
}

// Pass 2 for cell m: its emitted vertices and its triangles. A triangle corner whose owner does
// not emit the edge (corner values that disagree between cells) gets id -1.
template <typename T>
F3D_HD inline void sparse_emit_one(const SparseArgs<T>& a, int64_t m) {
  const T* v = a.values + 8 * m;
  const uint32_t cube = cell_case(v, a.level);
  if (cube == 0u || cube == 255u) return;
  const uint32_t crossing = crossing_edges(cube);
  const CellPos pos = cell_pos(a, a.cells[m]);
  const int64_t* own = a.counts + kCountCols * m;
  const uint32_t own_mask = uint32_t(own[kMaskCol]);
  int64_t ids[12];
  for (int e = 0; e < 12; ++e) {
    ids[e] = -1;
    if (!((crossing >> e) & 1u)) continue;
    int oe = e;
    const int64_t owner = edge_owner(a, m, pos, e, oe);
    const int64_t* oc = a.counts + kCountCols * owner;
    const uint32_t mask = uint32_t(oc[kMaskCol]);
    if ((mask >> oe) & 1u) ids[e] = oc[0] + popcount(mask & ((1u << oe) - 1u));
  }
  for (int e = 0; e < 12; ++e) {
    if (!((own_mask >> e) & 1u) || ids[e] < 0 || ids[e] >= a.n_verts) continue;
    const uint32_t o = corner_offset(edge_end(e, 0));
    write_vertex(a.verts + 3 * ids[e], a.origin, a.spacing, pos.p[0] + (o & 1u), pos.p[1] + ((o >> 1) & 1u),
                 pos.p[2] + ((o >> 2) & 1u), edge_axis(e), v[edge_end(e, 0)], v[edge_end(e, 1)], a.level);
  }
  if (own[kTriCol] + tri_count(cube) <= a.n_faces)
    write_faces(cube, [&](int e) { return ids[e]; }, a.faces + 3 * own[kTriCol]);
}

// ---- launchers ----------------------------------------------------------------------------------
// CPU: T = float or double, threads from f3d::num_threads(). CUDA: float or double, on `stream`
// (the device is the one the pointers live on, made current for the call).
//
// count: writes the count array. scan: turns it into exclusive offsets in place (vertex columns
// [0, n_vert_cols) as consecutive blocks of one running total, the triangle column as another)
// and returns the totals {V, F} (CUDA: waits for the stream). emit: writes verts and faces.

struct Totals {
  int64_t verts = 0, faces = 0;
};

template <typename T>
bool dense_count_cpu(const DenseArgs<T>& a);  // also returns whether every value was finite
template <typename T>
void dense_emit_cpu(const DenseArgs<T>& a);
template <typename T>
void sparse_count_cpu(const SparseArgs<T>& a);
template <typename T>
void sparse_emit_cpu(const SparseArgs<T>& a);
Totals scan_cpu(int64_t* counts, int64_t n, int n_vert_cols);

template <typename T>
void dense_count_cuda(const DenseArgs<T>& a, void* stream, int device);
template <typename T>
void dense_emit_cuda(const DenseArgs<T>& a, void* stream, int device);
template <typename T>
void sparse_count_cuda(const SparseArgs<T>& a, void* stream, int device);
template <typename T>
void sparse_emit_cuda(const SparseArgs<T>& a, void* stream, int device);
Totals scan_cuda(int64_t* counts, int64_t n, int n_vert_cols, void* stream, int device);

}  // namespace mc
}  // namespace f3d
