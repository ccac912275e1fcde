"""The fast pictures of a NeRF while a viewer's camera moves: ``nerf_preview``.

A trained NeRF costs a hash-grid lookup and two MLPs per sample, about a second for a 256^2 frame
on two CPU cores. While the camera moves the viewer renders instead the field baked into a dense
grid (:func:`~fields3d.fields.baked.bake_radiance`: density and the colour averaged over view
directions, about 128 cells a side, a whole number per occupancy cell: 34 MB), marched over the occupied part of the finest
occupancy level (:meth:`~fields3d.render.OccupancyGrid.occupied_spec`) with one step per baked
cell. Once the camera rests, the frame that follows is rendered from the field itself.

A model is baked once, at its first preview (about half a second on the CPU for the shipped
scene), and the bake is kept while the model lives: a live training run's snapshots are each
baked when first previewed.

Only NeRFs are baked: a generated checkpoint is lit by a headlight at the eye, so its colours
change with the camera in a way the bake does not keep; its previews are rendered from the field,
at the preview's smaller size.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, replace

from ..fields.baked import BakedRadiance, bake_radiance
from ..render.march import GridSpec
from ..render.volume import RenderSettings

CELLS = 128  # baked cells along each axis, about: a whole number per occupancy cell (>= 1)


@dataclass(frozen=True)
class Preview:
    """What a preview renders: the baked ``field``, the cropped grid ``spec`` and the
    ``settings`` (the model's, with a step of one baked cell and no pruning pass)."""

    field: BakedRadiance
    spec: GridSpec
    settings: RenderSettings


_CACHE: dict[int, tuple[weakref.ref, Preview]] = {}
_LOCK = threading.Lock()


def nerf_preview(model) -> Preview | None:
    """The :class:`Preview` of a NeRF model (a :class:`~fields3d.pipelines.nerf.NerfModel`),
    baked at the first call and kept while ``model`` lives; None for a model of another kind."""
    if getattr(model, "kind", None) != "nerf":
        return None
    key = id(model)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is model:
            return hit[1]
    preview = _bake(model)
    with _LOCK:
        for k in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
            del _CACHE[k]
        _CACHE[key] = (weakref.ref(model), preview)
    return preview


def _bake(model) -> Preview:
    factor = max(1, CELLS // model.grid.resolution)
    field = bake_radiance(model.field, model.grid, factor, view_dependent=False)
    cell = min(float(h) * 2 / (field.resolution - 1) for h in model.grid.half)
    settings = replace(model.settings, step=max(model.settings.step, cell), prune=False)
    return Preview(field, model.grid.occupied_spec(), settings)
