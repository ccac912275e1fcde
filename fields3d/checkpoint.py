"""Checkpoints: tensors in safetensors format plus a JSON header, written atomically.

A checkpoint is one ``.safetensors`` file. Its metadata holds ``{"fields3d": <JSON>}`` with at least
``kind`` (what to rebuild) and ``version`` (the fields3d version that wrote it). Writing goes to a
temporary file beside the target and is renamed over it, so a crash never leaves a half-written
checkpoint where a good one was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from . import __version__
from ._io import write_atomic
from .errors import CheckpointError, ModelNotFound

# The command that writes each kind of checkpoint, for the hint when a file is missing.
WRITERS = {
    "band_sdf_grid": "fields3d recon",
    "neural_sdf": "fields3d recon",
    "nerf": "fields3d nerf",
    "generate": "fields3d generate",
}


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state (Adam's moments and step) as checkpoint tensors named
    ``optim.<group>.<param>.<name>``; :func:`restore_optimizer` puts them back."""
    tensors = {}
    for i, group in enumerate(optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            for name, value in optimizer.state.get(p, {}).items():
                tensors[f"optim.{i}.{j}.{name}"] = torch.as_tensor(value)
    return tensors


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], device: torch.device
) -> None:
    """Put :func:`optimizer_tensors`' state back into ``optimizer`` (moments on ``device``, the
    step count on the CPU, where Adam keeps it); parameters without saved state keep none."""
    for i, group in enumerate(optimizer.param_groups):
        for j, p in enumerate(group["params"]):
            prefix = f"optim.{i}.{j}."
            moments = {
                k.split(".")[-1]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)
            }
            if moments:
                moments["step"] = moments["step"].cpu()
                optimizer.state[p] = moments


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` (moved to the CPU, made contiguous) and ``meta`` (JSON-able) to ``path``,
    atomically (:func:`fields3d._io.write_atomic`: a reader never sees half a checkpoint)."""
    from safetensors.torch import save

    header = {"fields3d": json.dumps({**meta, "version": __version__})}
    return write_atomic(
        path, save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=header)
    )


def check_finite(path, tensors: dict[str, torch.Tensor]) -> None:
    """CheckpointError naming the tensors that hold NaN or inf (saved from a diverged run)."""
    bad = [
        name
        for name, t in tensors.items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise CheckpointError(
            f"checkpoint {path} holds NaN or infinite values in {', '.join(sorted(bad)[:3])}; it "
            "was saved from a diverged run: train it again"
        )


def load_checkpoint(
    path: str | os.PathLike, kinds: tuple[str, ...] | None = None
) -> tuple[dict, dict]:
    """Read ``(tensors, meta)`` from ``path``.

    Raises:
        ModelNotFound: no file at ``path``.
        CheckpointError: the file is not a fields3d checkpoint, is corrupt, or holds another kind.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(path, kinds)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safetensors file ({exc})"
        ) from exc
    return tensors, meta


def read_meta(path: str | os.PathLike, kinds: tuple[str, ...] | None = None) -> dict:
    """The JSON header of the checkpoint at ``path``, without reading its tensors (its ``kind``
    says what to rebuild). Raises as :func:`load_checkpoint` does."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = Path(path)
    if not path.is_file():
        writers = [
            f"`{w}`" for w in sorted({WRITERS.get(k, "fields3d") for k in (kinds or WRITERS)})
        ]
        named = (
            " or ".join(writers)
            if len(writers) < 3
            else f"{', '.join(writers[:-1])} or {writers[-1]}"
        )
        raise ModelNotFound(
            f"checkpoint not found: {path}; pass the .safetensors file that {named} wrote"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            header = (f.metadata() or {}).get("fields3d")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safetensors file ({exc})"
        ) from exc
    if header is None:
        raise CheckpointError(f"checkpoint {path} was not written by fields3d (no fields3d header)")
    try:
        meta = json.loads(header)
    except (
        ValueError,
        RecursionError,
    ) as exc:  # bad JSON, a 5000-digit number, nesting past the stack
        raise CheckpointError(f"checkpoint {path} has a corrupt fields3d header ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"checkpoint {path} has a corrupt fields3d header (a JSON {type(meta).__name__}, "
            "not an object)"
        )
    if kinds is not None and meta.get("kind") not in kinds:
        raise CheckpointError(
            f"checkpoint {path} holds a {meta.get('kind')!r}, expected one of {', '.join(map(repr, kinds))}"
        )
    return meta
