"""Any trained model from its checkpoint, by the kind the checkpoint holds: ``load_model``.

Both kinds render the same way, which is what a viewer or ``fields3d render`` needs:
``model.orbit(frames, width)`` gives cameras around the scene and ``model.render(cameras, i)``
a dict with ``color`` (H, W, 3), ``depth`` and ``opacity`` (H, W).
"""

from __future__ import annotations

import os

from ..checkpoint import WRITERS, read_meta
from .edit.checkpoint import load_edit
from .edit.model import KIND as EDIT
from .edit.model import EditModel
from .generate.checkpoint import KIND as GENERATE
from .generate.model import GenerativeModel, load_generative
from .nerf.checkpoint import KIND as NERF
from .nerf.model import NerfModel, load_nerf
from .recon.model import SdfModel, load_sdf


def load_model(
    path: str | os.PathLike, device: str = "auto"
) -> NerfModel | SdfModel | GenerativeModel | EditModel:
    """A :class:`NerfModel` (from ``fields3d nerf``), an :class:`SdfModel` (``fields3d recon``'s
    ``.field.safetensors``), a :class:`GenerativeModel` (``fields3d generate``) or an
    :class:`EditModel` (``fields3d edit``), on ``device``.

    Args:
        path: the checkpoint (its header says which kind it holds).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns:
        The model: ``model.orbit(frames, width)`` gives
        :class:`~fields3d.render.cameras.Cameras` around it and ``model.render(cameras, i)`` a
        dict of float32 tensors, ``color`` ``(H, W, 3)``, ``depth`` and ``opacity`` ``(H, W)``.

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: not a fields3d model checkpoint, or
            a corrupt or incomplete one. BackendUnavailable: ``device="cuda"`` without CUDA.

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
        >>> from fields3d.pipelines.models import load_model
        >>> model = load_model(checkpoint, device="cpu")
        >>> type(model).__name__, model.kind
        ('SdfModel', 'band_sdf_grid')
        >>> out = model.render(model.orbit(8, width=32), 3)  # the fourth of 8 views
        >>> out["color"].shape, out["depth"].shape, out["opacity"].dtype
        (torch.Size([32, 32, 3]), torch.Size([32, 32]), torch.float32)
        >>> tmp.cleanup()
    """
    if read_meta(path).get("kind") == EDIT:  # `fields3d edit`'s voxel field
        return load_edit(path, device)
    kind = read_meta(path, tuple(WRITERS))["kind"]
    if kind == GENERATE:
        return load_generative(path, device)
    return load_nerf(path, device) if kind == NERF else load_sdf(path, device)
