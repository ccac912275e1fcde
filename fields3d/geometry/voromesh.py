"""VoroMesh extraction: a watertight surface from Voronoi generators marked inside or outside.

A VoroMesh (Maruani et al., "VoroMesh: Learning Watertight Surface Meshes with Voronoi Diagrams",
ICCV 2023) is a set of generators (3D points), each with an occupancy; the surface is the set of
Voronoi faces between two generators of opposite occupancy. It bounds the union of the inside
cells, so it is closed by construction and has no grid staircase.

Construction (qhull through ``scipy.spatial.Delaunay``):

1. The generators are scaled into ``[-1, 1]^3``. 26 *bounding generators*, outside, are added on
   a cube twice the generators' extent (its corners, edge midpoints and face centres): every real
   generator is then strictly inside the convex hull and its cell is bounded. An inside generator
   on the hull of the real ones gets faces against these far cells: its unbounded cell is clipped
   to that cube. All are moved by a deterministic jitter of :data:`JITTER` (relative to the
   extent; the CGAL code of the paper jitters by 1e-7), so that the cospherical sets of a regular
   grid do not give qhull tied, flat tetrahedra.
2. The Delaunay tetrahedra's circumcentres are the Voronoi vertices. The Voronoi face between two
   generators is dual to the Delaunay edge joining them: its polygon is the circumcentres of the
   tetrahedra around that edge, in the order the tetrahedra turn around it.
3. For each Delaunay edge whose ends differ in occupancy, the polygon is ordered counter-clockwise
   about the edge's direction from the inside generator to the outside one (so its normal points
   outward) and fanned into triangles from its lowest-numbered tetrahedron.

The mesh's vertices are tetrahedra, so two faces share a vertex exactly when they share a
circumcentre of the same tetrahedron; no vertex is merged by position. Each Delaunay triangle with
ends of both occupancies lies on exactly two surface polygons, and each tetrahedron with both
occupancies on one cycle of them, so the triangle mesh is closed, edge-manifold and consistently
oriented for any input; tetrahedra whose circumcentres coincide (cospherical generators) give
zero-area triangles rather than a broken surface.

Degenerate input: a generator set without an inside or without an outside generator has no
surface, and raises :class:`~fields3d.errors.InputError` (rather than returning an empty mesh);
so do NaN or infinite coordinates and repeated generators. Coplanar generators are fine: the
bounding generators make the triangulation three-dimensional.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import Delaunay

from .._checks import to_numpy
from ..errors import InputError

#: Jitter of the generators, relative to their extent (see the module docstring).
JITTER = 1e-9
# The 6 edges of a tetrahedron (vertex slots), each with the two other slots.
_EDGES = np.array(
    [(0, 1, 2, 3), (0, 2, 3, 1), (0, 3, 1, 2), (1, 2, 0, 3), (1, 3, 2, 0), (2, 3, 0, 1)]
)


def _bounding_generators() -> np.ndarray:
    """``(26, 3)``: the corners, edge midpoints and face centres of the cube ``[-2, 2]^3``."""
    axis = (-2.0, 0.0, 2.0)
    grid = np.array([(x, y, z) for x in axis for y in axis for z in axis])
    return grid[np.abs(grid).sum(axis=1) > 0]


class VoronoiDiagram:
    """The Voronoi diagram of ``generators``, built once; :meth:`surface` meshes an occupancy.

    Args:
        generators: ``(N, 3)`` float (numpy or torch), N >= 2, finite and distinct.

    Attributes:
        generators: ``(N, 3)`` float64, as given.
        vertices: ``(T, 3)`` float64, the Voronoi vertices (circumcentres of the Delaunay
            tetrahedra of the jittered generators and the bounding ones), in the generators' units.
        tetrahedra: ``(T, 4)`` int64 generator ids; ids ``>= N`` are the bounding generators.

    Raises:
        InputError: a bad shape or dtype, NaN or infinite coordinates, repeated generators.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.voromesh import VoronoiDiagram
        >>> axis = np.linspace(-1.0, 1.0, 5)
        >>> grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        >>> diagram = VoronoiDiagram(grid)  # (125, 3): a 5^3 grid, spacing 0.5
        >>> inside = np.abs(grid).max(axis=1) < 0.75  # the 3^3 generators around the centre
        >>> verts, faces = diagram.surface(inside)
        >>> round(float(np.abs(verts).max()), 6)  # their cells fill the cube [-0.75, 0.75]^3
        0.75
        >>> report = check_surface(verts, faces)
        >>> report["watertight"], report["winding_consistent"], round(report["volume"], 6)
        (True, True, 3.375)
    """

    def __init__(self, generators) -> None:
        points = _check_generators(generators)
        self.generators = points
        self.n = len(points)
        lo, hi = points.min(axis=0), points.max(axis=0)
        self._center = (lo + hi) / 2
        self._scale = max(float((hi - lo).max()) / 2, np.finfo(float).tiny)
        unit = np.concatenate([(points - self._center) / self._scale, _bounding_generators()])
        self._unit = unit + np.random.default_rng(0).uniform(-JITTER, JITTER, unit.shape)
        tri = Delaunay(self._unit)
        dropped = np.setdiff1d(np.arange(self.n), tri.simplices.reshape(-1))
        if len(dropped):
            raise InputError(
                f"generators {dropped[:5].tolist()} lie within rounding of others and have no cell "
                f"({len(dropped)} of {self.n}); drop or spread them"
            )
        self.tetrahedra = tri.simplices.astype(np.int64)
        self._neighbours = tri.neighbors.astype(np.int64)
        self._circumcentres = _circumcentres(self._unit[self.tetrahedra])
        self.vertices = self._circumcentres * self._scale + self._center

    def centroids(self) -> np.ndarray:
        """``(N, 3)`` float64: each generator's mean Voronoi vertex (its cell's vertex centroid,
        where the paper evaluates occupancy)."""
        total = np.zeros((len(self._unit), 3))
        count = np.zeros(len(self._unit))
        ids = self.tetrahedra.reshape(-1)
        np.add.at(total, ids, np.repeat(self.vertices, 4, axis=0))
        np.add.at(count, ids, 1.0)
        return total[: self.n] / count[: self.n, None]

    def surface(self, occupancy) -> tuple[np.ndarray, np.ndarray]:
        """The Voronoi faces between inside and outside generators, as an outward triangle mesh.

        Args:
            occupancy: ``(N,)`` bool (numpy or torch), True inside; at least one of each.

        Returns:
            ``verts`` ``(V, 3)`` float64 (Voronoi vertices) and ``faces`` ``(F, 3)`` int64,
            closed and wound counter-clockwise seen from outside.

        Raises:
            InputError: a bad shape or dtype, or every generator inside (or every one outside):
                no surface.
        """
        inside = np.concatenate([_check_occupancy(occupancy, self.n), np.zeros(26, bool)])
        tet, slot = np.nonzero(
            inside[self.tetrahedra[:, _EDGES[:, 0]]] != inside[self.tetrahedra[:, _EDGES[:, 1]]]
        )
        corners = self.tetrahedra[tet[:, None], _EDGES[slot]]  # (E, 4): the edge's ends, the others
        swap = ~inside[corners[:, 0]]
        corners[swap, 0], corners[swap, 1] = corners[swap, 1], corners[swap, 0].copy()
        u, v, w1, w2 = (self._unit[corners[:, i]] for i in range(4))
        turn = np.einsum("ij,ij->i", v - u, np.cross(w1 - u, w2 - u)) < 0
        corners[turn, 2], corners[turn, 3] = corners[turn, 3], corners[turn, 2].copy()
        # the next tetrahedron counter-clockwise about u -> v: across the face (u, v, w2)
        across = np.argmax(self.tetrahedra[tet] == corners[:, 2:3], axis=1)
        following = self._neighbours[tet, across]
        key = corners[:, 0] * len(self._unit) + corners[:, 1]
        apex = _group_min(key, tet)
        keep = (tet != apex) & (following != apex)
        tris = np.stack([apex[keep], tet[keep], following[keep]], axis=1)
        used, faces = np.unique(tris, return_inverse=True)
        return self.vertices[used], faces.reshape(-1, 3).astype(np.int64)


def voromesh_surface(generators, occupancy) -> tuple[np.ndarray, np.ndarray]:
    """The surface of a VoroMesh: ``VoronoiDiagram(generators).surface(occupancy)``.

    Args:
        generators: ``(N, 3)`` float, finite and distinct. occupancy: ``(N,)`` bool, True inside.

    Returns:
        ``verts`` ``(V, 3)`` float64 and ``faces`` ``(F, 3)`` int64: a closed, outward-wound mesh.

    Raises:
        InputError: as :class:`VoronoiDiagram` and :meth:`VoronoiDiagram.surface`.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry.voromesh import voromesh_surface
        >>> generators = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0],
        ...                        [0, 0, 1], [0, 0, -1]], dtype=float)
        >>> verts, faces = voromesh_surface(generators, np.arange(7) == 0)  # the centre inside
        >>> bool(np.allclose(np.abs(verts).max(axis=1), 0.5))  # its cell: the cube [-0.5, 0.5]^3
        True
        >>> voromesh_surface(generators, np.zeros(7, bool))
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: occupancy marks none of the 7 generators inside, so there is no surface; mark at least one inside and one outside
    """
    return VoronoiDiagram(generators).surface(occupancy)


def check_surface(verts, faces) -> dict:
    """Whether a triangle mesh is closed and consistently wound, and its volume (trimesh's tests).

    Returns ``watertight`` (every edge on exactly two faces), ``winding_consistent`` (the two
    faces of every edge traverse it in opposite directions), ``volume`` (positive for an outward
    mesh), ``faces`` and ``vertices``, as plain Python values. Example in :class:`VoronoiDiagram`.
    """
    mesh = trimesh.Trimesh(np.asarray(verts), np.asarray(faces), process=False, validate=False)
    return {
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "volume": float(mesh.volume),
        "faces": len(mesh.faces),
        "vertices": len(mesh.vertices),
    }


def _check_generators(generators) -> np.ndarray:
    points = to_numpy(generators)
    if points.ndim != 2 or points.shape[1] != 3 or points.dtype.kind != "f" or len(points) < 2:
        raise InputError(
            "generators must be a float array of shape (N, 3) with N >= 2, got "
            f"{points.dtype} {tuple(points.shape)}"
        )
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise InputError(
            f"generators has NaN or infinite coordinates in {int(bad.sum())} of its {len(points)} "
            f"rows (first at index {int(np.argmax(bad))})"
        )
    points = points.astype(np.float64)
    _, first, counts = np.unique(points, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        row = int(first[np.argmax(counts > 1)])
        raise InputError(
            f"generators must be distinct, but row {row} ({points[row].tolist()}) appears "
            f"{int(counts.max())} times; drop the repeats"
        )
    return points


def _check_occupancy(occupancy, n: int) -> np.ndarray:
    inside = to_numpy(occupancy)
    if inside.dtype != bool or inside.shape != (n,):
        raise InputError(
            f"occupancy must be a bool array of shape ({n},), one per generator, got "
            f"{inside.dtype} {tuple(inside.shape)}"
        )
    for kind, none in (("inside", not inside.any()), ("outside", inside.all())):
        if none:
            raise InputError(
                f"occupancy marks none of the {n} generators {kind}, so there is no surface; "
                "mark at least one inside and one outside"
            )
    return inside


def _circumcentres(tet: np.ndarray) -> np.ndarray:
    """``(T, 4, 3)`` tetrahedra -> ``(T, 3)`` circumcentres (relative to the first corner, then back)."""
    a = tet[:, 0]
    e1, e2, e3 = tet[:, 1] - a, tet[:, 2] - a, tet[:, 3] - a
    n1, n2, n3 = (np.einsum("ij,ij->i", e, e)[:, None] for e in (e1, e2, e3))
    det = np.einsum("ij,ij->i", e1, np.cross(e2, e3))[:, None]
    num = n1 * np.cross(e2, e3) + n2 * np.cross(e3, e1) + n3 * np.cross(e1, e2)
    with np.errstate(divide="ignore", invalid="ignore"):  # flat hull tetrahedra of bounding ones
        return a + num / (2.0 * det)


def _group_min(key: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For each row, the smallest ``value`` among the rows with the same ``key``."""
    order = np.lexsort((value, key))
    sorted_key = key[order]
    start = np.r_[0, np.nonzero(np.diff(sorted_key))[0] + 1]
    group = np.cumsum(np.r_[0, np.diff(sorted_key) != 0])
    out = np.empty_like(value)
    out[order] = value[order][start][group]
    return out
