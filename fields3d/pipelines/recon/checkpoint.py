"""The checkpoint of a fitted recon field (``OUT.field.safetensors``): the field's tensors, its
kind and settings, and the normalization back to the input's coordinates; what ``fields3d mesh``
and :func:`~fields3d.pipelines.recon.load_sdf` read."""

from __future__ import annotations

from pathlib import Path

import torch

from ...checkpoint import check_finite, load_checkpoint, save_checkpoint
from ...errors import CheckpointError, InputError, one_line
from ...fields.sdf_grid import BandSDFGrid
from ...geometry.pointcloud import Normalization

KINDS = ("band_sdf_grid", "neural_sdf")


def save_field(path: Path, field, norm: Normalization, config) -> Path:
    """Checkpoint of a fitted field with what ``fields3d mesh`` needs to mesh it again."""
    meta = {
        "normalization": norm.to_dict(),
        "recon": {"method": config.method, "input": str(config.input)},
    }
    if isinstance(field, BandSDFGrid):
        meta |= {"kind": "band_sdf_grid", "resolution": field.resolution}
        tensors = {"coarse": field.coarse, "band_index": field.band_index, "values": field.values}
    else:
        meta |= {"kind": "neural_sdf", "config": field.config()}
        tensors = dict(field.state_dict())
    return save_checkpoint(path, tensors, meta)


def load_field(path, device: torch.device):
    """``(field, normalization, meta)`` from a checkpoint written by :func:`save_field`."""
    tensors, meta = load_checkpoint(path, KINDS)
    try:
        norm = Normalization.from_dict(meta["normalization"])
        if meta["kind"] == "band_sdf_grid":
            field = BandSDFGrid.from_parts(
                tensors["coarse"], tensors["band_index"], tensors["values"], int(meta["resolution"])
            )
        else:
            from ...fields.neural_sdf import NeuralSDF

            field = NeuralSDF.from_config(meta["config"])
            field.load_state_dict(tensors)
    except (
        KeyError,
        IndexError,
        ValueError,
        RuntimeError,
        TypeError,
        AttributeError,
        OverflowError,
        InputError,
    ) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete {meta.get('kind')} ({one_line(exc)})"
        ) from exc
    check_finite(path, tensors)
    return field.to(device), norm, meta
