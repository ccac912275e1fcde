"""``fields3d mesh``: extract the zero level set of a saved field at any resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._checks import MAX_GRID, check_int
from ..errors import InputError
from ..geometry import mesh_io
from ._common import resolve_device
from .recon.checkpoint import load_field
from .recon.fit import extract


def remesh(
    checkpoint, output, resolution: int = 256, device: str = "auto"
) -> tuple[np.ndarray, np.ndarray, Path]:
    """Mesh the field in ``checkpoint`` on ``resolution``^3 points; returns ``(verts, faces, path)``
    with the vertices in the original input's coordinates.

    Args:
        checkpoint: a field checkpoint from ``fields3d recon`` (``OUT.field.safetensors``).
        output: the mesh to write (.ply, .obj, .off, .stl or .glb), atomically.
        resolution: grid points per axis over the field's cube, 2 to ``MAX_GRID``.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        ``verts`` ``(V, 3)`` float64, ``faces`` ``(F, 3)`` int64 and the path written.

    Raises:
        InputError: a bad setting or output, or a field without a surface at that resolution
            (nothing is written). ModelNotFound, CheckpointError, BackendUnavailable: as
            :func:`~fields3d.pipelines.recon.load_sdf`.

    Example:
        >>> import pathlib, tempfile, torch
        >>> from fields3d.fields import BandSDFGrid
        >>> from fields3d.geometry import Normalization
        >>> from fields3d.pipelines.recon import ReconConfig
        >>> from fields3d.pipelines.recon.checkpoint import save_field
        >>> axis = torch.linspace(-1, 1, 33)
        >>> x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        >>> ball = (x**2 + y**2 + z**2).sqrt() - 0.5  # (33, 33, 33): a sphere in the unit cube
        >>> field = BandSDFGrid.from_coarse(ball, ball.abs() < 0.2)
        >>> tmp = tempfile.TemporaryDirectory()
        >>> norm = Normalization((10, 0, 0), 2.0)  # world = 2 unit + (10, 0, 0)
        >>> checkpoint = pathlib.Path(tmp.name) / "ball.field.safetensors"  # as recon leaves it
        >>> _ = save_field(checkpoint, field, norm, ReconConfig("ball.xyz"))
        >>> import numpy as np
        >>> from fields3d.pipelines.remesh import remesh
        >>> verts, faces, path = remesh(checkpoint, pathlib.Path(tmp.name) / "ball.obj", 33, "cpu")
        >>> verts.shape, faces.shape, verts.dtype, faces.dtype, path.name
        ((1182, 3), (2360, 3), dtype('float64'), dtype('int64'), 'ball.obj')
        >>> radii = np.linalg.norm(verts - (10, 0, 0), axis=1)  # a sphere of radius 1 at (10, 0, 0)
        >>> bool((abs(radii - 1) < 0.01).all())
        True
        >>> tmp.cleanup()
    """
    check_int("resolution", resolution, 2, MAX_GRID)
    if Path(output).suffix.lower() not in mesh_io.MESH_EXTENSIONS:
        raise InputError(
            f"output must end in one of {', '.join(mesh_io.MESH_EXTENSIONS)}, got {str(output)!r}"
        )
    dev = resolve_device(device)
    field, norm, _ = load_field(checkpoint, dev)
    verts, faces = extract(field, resolution, dev)
    if len(faces) == 0:
        raise InputError(
            f"the field in {checkpoint} has no surface at {resolution}^3 points (its values keep one "
            "sign); nothing was written: try a higher --resolution, or fit the field again"
        )
    verts = norm.to_world(verts)
    return verts, faces, mesh_io.save_mesh(verts, faces, output)
