"""Reading and writing triangle meshes (PLY, OBJ, OFF, STL, GLB) through trimesh, with clear errors.

Loading keeps the file's geometry as it is: no vertex merging or face repair, except that vertices
no face uses are dropped and STL's per-triangle vertices are merged. OBJ faces index the file's
``v`` lines, so texture seams do not split vertices (trimesh's default would, which makes a closed
model such as ``spot.obj`` look open). Materials and colours are not read. Writing is atomic: the
file is written beside its destination under a temporary name and renamed over it, so a failed
write never leaves a half-written mesh or destroys the previous one.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import trimesh

from .._checks import to_numpy
from .._io import write_atomic
from ..errors import InputError, ModelNotFound

MESH_EXTENSIONS = (".ply", ".obj", ".off", ".stl", ".glb")
FLOAT32_EXTENSIONS = (".ply", ".stl", ".glb")  # formats that store positions as float32


def _or_list(items) -> str:
    """``(".a", ".b", ".c")`` -> ``".a, .b or .c"``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _describe_extension(path: Path) -> str:
    return f"unsupported extension '{path.suffix}'" if path.suffix else "no extension"


def load_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Read a triangle mesh from a .ply, .obj, .off, .stl or .glb file.

    Returns a ``trimesh.Trimesh`` with ``vertices`` ``(V, 3)`` float64 and ``faces`` ``(F, 3)``
    int64 (F >= 1). A GLB scene's meshes are joined, with their transforms applied.

    Raises ModelNotFound for a missing file and InputError for an unsupported extension, a file the
    parser cannot read, a file without triangles, NaN or infinite vertices, and out-of-range faces.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from fields3d.geometry import load_mesh, save_mesh
        >>> verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
        >>> faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # a tetrahedron
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     mesh = load_mesh(save_mesh(verts, faces, pathlib.Path(tmp) / "tet.obj"))
        >>> mesh.vertices.shape, mesh.vertices.dtype, mesh.faces.shape, mesh.faces.dtype
        ((4, 3), dtype('float64'), (4, 3), dtype('int64'))
        >>> bool(mesh.is_watertight), mesh.metadata["file_name"]
        (True, 'tet.obj')
    """
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(
            f"mesh not found: {path}; pass the path of a {_or_list(MESH_EXTENSIONS)} file"
        )
    ext = path.suffix.lower()
    if ext not in MESH_EXTENSIONS:
        raise InputError(
            f"cannot read mesh {path}: {_describe_extension(path)}; use one of {', '.join(MESH_EXTENSIONS)}"
        )
    mesh = _triangles_in(_trimesh_load(path, "mesh"))
    if mesh is None:
        raise InputError(
            f"mesh {path} holds no triangles; to reconstruct a point cloud use fields3d recon"
        )
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if faces.min() < 0 or faces.max() >= len(vertices):
        worst = int(faces.min() if faces.min() < 0 else faces.max())
        raise InputError(
            f"mesh {path} has a face that refers to vertex {worst} but its vertices are numbered "
            f"0 to {len(vertices) - 1}; the file is corrupt, re-export it"
        )
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False, validate=False)
    mesh.remove_unreferenced_vertices()
    bad = ~np.isfinite(mesh.vertices).all(axis=1)
    if bad.any():
        raise InputError(
            f"mesh {path} has NaN or infinite coordinates in {int(bad.sum())} of its {len(bad)} vertices; "
            "repair or re-export it"
        )
    if ext == ".stl":
        mesh.merge_vertices()
    mesh.metadata.update({"file_name": path.name, "file_path": str(path)})
    return mesh


def save_mesh(verts, faces, path: str | os.PathLike) -> Path:
    """Write a triangle mesh atomically; the format follows the extension.

    ``verts``: ``(V, 3)`` floating point, ``faces``: ``(F, 3)`` integer indices into ``verts``;
    numpy arrays or torch tensors (any device). ``.ply`` is written as binary PLY; ``.obj``,
    ``.off``, ``.stl`` and ``.glb`` as trimesh writes them. STL and GLB store float32 positions, PLY
    float32 unless that loses detail (then float64), OBJ 8 and OFF 10 decimals (more for meshes
    smaller than 1). Parent
    folders are created. The file appears complete or not at all; an existing file is replaced only
    once the new one is fully written. Returns ``path`` as a ``Path``.

    Raises InputError, before anything is written, for an unsupported extension or bad arrays.

    Example:
        >>> import pathlib, tempfile
        >>> import torch
        >>> from fields3d.geometry import load_mesh, save_mesh
        >>> verts = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # (V, 3)
        >>> faces = torch.tensor([[0, 1, 2]])  # (F, 3) int64
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_mesh(verts, faces, pathlib.Path(tmp) / "out" / "triangle.ply")
        ...     print(path.name, path.stat().st_size > 0, load_mesh(path).faces.tolist())
        triangle.ply True [[0, 1, 2]]
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in MESH_EXTENSIONS:
        raise InputError(
            f"cannot write mesh {path}: {_describe_extension(path)}; use one of {', '.join(MESH_EXTENSIONS)}"
        )
    verts, faces = mesh_arrays(verts, faces)
    reach = float(np.abs(verts).max(initial=0.0))
    if ext in FLOAT32_EXTENSIONS and reach > float(np.finfo(np.float32).max):
        raise InputError(
            f"cannot write mesh {path}: its coordinates reach {reach:.3g}, beyond the float32 range "
            f"{ext} stores (3.4e+38); write .obj or .off, or scale the mesh down"
        )
    return write_atomic(path, _encode(verts, faces, ext))


def _encode(verts: np.ndarray, faces: np.ndarray, ext: str) -> bytes:
    """The file's bytes. Meshes float32 cannot hold (a scan in UTM metres: 5e6 with mm detail) go to
    PLY as doubles; OBJ and OFF get decimals enough for the mesh's size (a 1e-7 mesh collapsed at 8)."""
    extent = float(np.ptp(verts, axis=0).max(initial=0.0)) if len(verts) else 0.0
    if ext == ".ply" and np.abs(verts - verts.astype(np.float32)).max(initial=0.0) > 1e-6 * extent:
        return _ply_double(verts, faces)
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, process=False, validate=False)
    if ext in (".obj", ".off"):
        small = max(0, math.ceil(-math.log10(extent))) if extent > 0 else 0
        data = mesh.export(file_type=ext[1:], digits=(8 if ext == ".obj" else 10) + small)
    else:
        data = mesh.export(file_type=ext[1:])
    return data.encode() if isinstance(data, str) else data


def _ply_double(verts: np.ndarray, faces: np.ndarray) -> bytes:
    """Binary little-endian PLY with float64 positions (trimesh writes float32 only)."""
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(verts)}\nproperty double x\n"
        f"property double y\nproperty double z\nelement face {len(faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    rows = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    rows["n"], rows["v"] = 3, faces
    return (
        header.encode("ascii") + np.ascontiguousarray(verts, dtype="<f8").tobytes() + rows.tobytes()
    )


def rescaled(verts: np.ndarray) -> np.ndarray:
    """``verts`` times the power of two that brings its largest finite |coordinate| into [0.5, 1):
    exact, and areas and normals computed from it cannot overflow (a mesh at 1e300 squares to inf)."""
    finite = np.abs(verts[np.isfinite(verts)])
    reach = finite.max() if finite.size else 0.0
    return np.ldexp(verts, -np.frexp(reach)[1]) if reach > 0 else verts


def mesh_arrays(verts, faces, *, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Check ``verts`` ``(V, 3)`` float and ``faces`` ``(F, 3)`` int (numpy or torch); return numpy.

    Returns ``(verts, faces)`` as float64 ``(V, 3)`` and int64 ``(F, 3)``. Messages name the
    arrays ``<prefix>verts`` and ``<prefix>faces``.
    """
    v, f = to_numpy(verts), to_numpy(faces)
    if v.ndim != 2 or v.shape[1] != 3 or v.dtype.kind != "f":
        raise InputError(
            f"{prefix}verts must be a float array of shape (V, 3), got {v.dtype} {tuple(v.shape)}"
        )
    if f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu":
        raise InputError(
            f"{prefix}faces must be an integer array of shape (F, 3), got {f.dtype} {tuple(f.shape)}"
        )
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise InputError(
            f"{prefix}verts has NaN or infinite coordinates in {int(bad.sum())} of its {len(v)} rows "
            f"(first at index {int(np.argmax(bad))}); a mesh cannot hold them"
        )
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise InputError(
            f"{prefix}faces must index {prefix}verts (0 to {len(v) - 1}), "
            f"got indices from {int(f.min())} to {int(f.max())}"
        )
    return v.astype(np.float64, copy=False), f.astype(np.int64, copy=False)


def _trimesh_load(path: Path, kind: str):
    """``trimesh.load`` without processing; a parser failure becomes InputError naming the file."""
    ext = path.suffix.lower()
    options = {"process": False}
    if ext == ".obj":
        options.update(maintain_order=True, skip_materials=True)
    _check_text(path, ext, kind)
    try:
        return trimesh.load(path, file_type=ext[1:], **options)
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise InputError(
            f"cannot read {kind} {path}: {detail}; check that it is a complete, valid {ext} file"
        ) from exc


# An OBJ face index 0 (or -0): OBJ counts vertices from 1, and trimesh would read 0 as the last vertex.
_OBJ_ZERO = re.compile(rb"(?m)^f(?=[ \t])[^\n]*?[ \t][-+]?0+(?=[/ \t\r\n]|\Z)")


def _check_text(path: Path, ext: str, kind: str) -> None:
    """InputError for text files trimesh reads without complaint into the wrong mesh: an OBJ face
    with index 0, an ASCII PLY whose data lines do not match its header's counts (trimesh reads a
    face line as a missing vertex)."""
    if ext not in (".obj", ".ply"):
        return
    if ext == ".ply":
        with open(path, "rb") as f:
            start = f.read(200)
        if start.startswith(b"ply") and b"format ascii" in start:
            _check_ascii_ply(path, path.read_bytes(), kind)
        return
    data = path.read_bytes()
    zero = _OBJ_ZERO.search(data)
    if zero:
        end = data.find(b"\n", zero.start())
        text = (
            data[zero.start() : end if end >= 0 else len(data)]
            .decode(errors="replace")
            .strip()[:80]
        )
        line = data.count(b"\n", 0, zero.start()) + 1
        raise InputError(
            f"cannot read {kind} {path}: line {line} ({text!r}) uses vertex index 0, but OBJ numbers "
            "vertices from 1; re-export the file"
        )


def _check_ascii_ply(path: Path, data: bytes, kind: str) -> None:
    head, sep, body = data.partition(b"end_header")
    if not sep:
        return  # trimesh names a header without its end
    counts = re.findall(rb"(?m)^element[ \t]+(\S+)[ \t]+(\d+)", head)
    declared = sum(int(n) for _, n in counts)
    lines = sum(1 for line in body.split(b"\n")[1:] if line.strip())
    if lines != declared:
        listed = ", ".join(f"{int(n)} {name.decode(errors='replace')}" for name, n in counts)
        raise InputError(
            f"cannot read {kind} {path}: its header declares {listed} ({declared} data lines) but the "
            f"file holds {lines}; it is truncated or its header is wrong: re-export it"
        )


def _triangles_in(loaded) -> trimesh.Trimesh | None:
    """The triangles of whatever trimesh loaded (a scene's meshes joined), or None when there are none."""
    if isinstance(loaded, trimesh.Scene):
        if not any(
            isinstance(g, trimesh.Trimesh) and len(g.faces) for g in loaded.geometry.values()
        ):
            return None
        loaded = loaded.to_mesh()
    if isinstance(loaded, trimesh.Trimesh) and len(loaded.faces):
        return loaded
    return None
