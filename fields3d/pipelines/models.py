"""Any trained model from its checkpoint, by the kind the checkpoint holds: ``load_model``.

Both kinds render the same way, which is what a viewer or ``fields3d render`` needs:
``model.orbit(frames, width)`` gives cameras around the scene and ``model.render(cameras, i)``
a dict with ``color`` (H, W, 3), ``depth`` and ``opacity`` (H, W).
"""

from __future__ import annotations

import os

from ..checkpoint import WRITERS, read_meta
from .nerf.checkpoint import KIND as NERF
from .nerf.model import NerfModel, load_nerf
from .recon.model import SdfModel, load_sdf


def load_model(path: str | os.PathLike, device: str = "auto") -> NerfModel | SdfModel:
    """A :class:`NerfModel` (from ``fields3d nerf``) or an :class:`SdfModel` (``fields3d recon``'s
    ``.field.safetensors``), on ``device``.

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: not a fields3d model checkpoint, or
            a corrupt or incomplete one. BackendUnavailable: ``device="cuda"`` without CUDA.
    """
    kind = read_meta(path, tuple(WRITERS))["kind"]
    return load_nerf(path, device) if kind == NERF else load_sdf(path, device)
