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
    with the vertices in the original input's coordinates."""
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
