"""Few-shot NeRF: training on a few of the views, and two cheap regularisers for sparse views.

mi-MLP (Zhu et al., CVPR 2024) pairs its network with two regularisers for sparse views, a
background regulariser and an annealing of where samples are taken. Their exact terms are not
copied here (the pipeline differs: random backgrounds, an occupancy-grid marcher); these are the
cheap forms this pipeline affords, with no second render and no extra network:

- ``background_weight``: rays whose target pixel is transparent (alpha 0) add
  ``background_weight * opacity^2`` to the loss: nothing may stand in front of the background.
  With random backgrounds the colour loss already asks for that; the term asks directly, and
  it reaches rays whose random background happens to match what the field shows.
- ``anneal_steps`` (sample-space annealing, RegNeRF's, which the paper takes up): for the first
  ``anneal_steps`` steps the field is transparent outside a box around the scene's centre that
  grows linearly from :data:`ANNEAL_START` of the scene box to all of it, so early steps place
  density near the centre, where all views see it, instead of on floaters close to a camera.

:func:`select_views` picks the training views (``train_views``): evenly spaced over the split's
order, the first always among them.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ...errors import InputError
from ...render.cameras import Cameras
from ...render.datasets import PosedImages

ANNEAL_START = 0.5  # the annealed box's first size, a fraction of the scene box's


def select_views(scene: PosedImages, n: int | None, data) -> PosedImages:
    """``n`` of ``scene``'s views, evenly spaced (``round(i * (N - 1) / (n - 1))``); all for None.

    InputError when ``n`` is more than the scene has (``data`` names the scene in the message).
    """
    if n is None or n == len(scene):
        return scene
    if n > len(scene):
        raise InputError(
            f"train_views is {n} but {data} has {len(scene)} training views; ask for at most "
            f"{len(scene)}, or leave train_views out for all of them"
        )
    ids = torch.linspace(0, len(scene) - 1, n, dtype=torch.float64).round().long().tolist()
    cams = scene.cameras
    parts = {k: getattr(cams, k)[ids] for k in ("c2w", "fx", "fy", "cx", "cy")}
    return dataclasses.replace(
        scene,
        images=scene.images[ids],
        cameras=Cameras(**parts, width=cams.width, height=cams.height),
        files=tuple(scene.files[i] for i in ids),
    )


def background_loss(opacity: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Mean ``opacity^2`` over the rays whose target alpha is 0; ``(R,)`` each, a 0-d tensor
    (zero when no ray sees the background)."""
    empty = alpha <= 0
    if not bool(empty.any()):
        return opacity.sum() * 0.0
    return opacity[empty].square().mean()


def anneal_fraction(step: int, anneal_steps: int) -> float:
    """The annealed box's size as a fraction of the scene box's at ``step`` (1 once annealed)."""
    if step >= anneal_steps:
        return 1.0
    return ANNEAL_START + (1.0 - ANNEAL_START) * step / anneal_steps


class AnnealedField(nn.Module):
    """``field`` with zero density outside the box of ``fraction`` of ``aabb`` about its centre."""

    def __init__(self, field: nn.Module, aabb: torch.Tensor, fraction: float) -> None:
        super().__init__()
        self.field = field
        self.centre = (aabb[0] + aabb[1]) / 2
        self.half = (aabb[1] - aabb[0]) / 2 * fraction

    def _inside(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.centre.to(x)).abs() <= self.half.to(x)).all(1)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return self.field.density(x) * self._inside(x)

    def forward(self, x: torch.Tensor, dirs: torch.Tensor):
        sigma, rgb = self.field(x, dirs)
        return sigma * self._inside(x), rgb
