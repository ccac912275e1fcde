"""Settings of text-guided editing (:class:`EditConfig`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from ..._checks import check_int, check_interval, check_seed, is_number
from ...errors import InputError
from ...render.cameras import MAX_FRAMES
from .grid import MAX_RESOLUTION

MAX_RENDER = 1024
RANGES = {
    "distance_range": (0.2, 10.0),  # camera distance, in units of the source's
    "elevation_range": (-89.0, 89.0),  # degrees
    "azimuth_range": (-360.0, 360.0),  # degrees
}


@dataclass(frozen=True)
class EditConfig:
    """What :func:`fields3d.pipelines.edit.edit` does; validated on construction (InputError).

    ``checkpoint``: the source (``fields3d nerf``, ``generate`` or ``edit`` wrote it).
    ``prompt``: the edit ("wearing a party hat"). ``guidance``: ``"stable_diffusion"`` (a model
    from ``model`` or ``FIELDS3D_SD_MODEL``) or ``"target:MESH_OR_CHECKPOINT"``;
    ``guidance_options``: further settings of the prior.

    The source is distilled into a ``resolution^3`` voxel field (sampled at the vertices, then
    ``distill_steps`` steps fitting ``distill_views`` of its renders), then ``steps`` Adam steps
    (learning rate ``lr`` for the density, ``lr * color_lr_scale`` for the colour: colours move
    at the slightest mismatch of the pictures, and drift) of score distillation on ``render_size``-pixel renders from random
    cameras (distance ``distance_range`` times the source's, elevation and azimuth in their
    ranges, ``batch_size`` a step) plus ``reg_weight`` times the correlation regulariser
    (``reg_window``: None for one correlation over the grid, or the side of its blocks). With
    ``localise`` the edit is then confined by a graph cut (``localise_views`` views of the
    cross-attention of the prompt's tokens, or of ``localise_words``' alone, e.g. ``"party hat"``,
    as Vox-E does; or the departure from the original for a prior without attention; ``mask_threshold``,
    ``smoothness``) and merged into the original.
    """

    checkpoint: str = ""
    prompt: str = ""
    output: str = "out/edit"
    guidance: str = "stable_diffusion"
    model: str | None = None
    guidance_options: dict = dataclasses.field(default_factory=dict)
    device: str = "auto"
    seed: int = 0
    steps: int = 400
    resolution: int = 128
    render_size: int = 64
    batch_size: int = 1
    lr: float = 0.2
    color_lr_scale: float = 0.2
    reg_weight: float = 5.0
    reg_window: int | None = None
    localise: bool = True
    localise_views: int = 8
    localise_words: str | None = None
    mask_threshold: float = 0.2
    smoothness: float = 1.0
    distill_steps: int = 32
    distill_views: int = 8
    distance_range: tuple[float, float] = (0.9, 1.1)
    elevation_range: tuple[float, float] = (-10.0, 45.0)
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    step_size: float | None = None  # marching step in box half-diagonals; None: 2 / 256
    checkpoint_every: float = 60.0
    turntable_frames: int = 24
    turntable_size: int = 128
    mesh_level: float = 10.0  # the density (per object radius) the mesh follows; 0: no mesh
    resume: bool = False

    def __post_init__(self) -> None:
        for name in ("checkpoint", "prompt", "output", "guidance"):
            if not isinstance(getattr(self, name), (str, Path)):
                raise InputError(f"{name} must be a string, got {getattr(self, name)!r}")
        if not str(self.prompt).strip():
            raise InputError(
                f"prompt must describe the edit (e.g. 'wearing a party hat'), got {self.prompt!r}"
            )
        if not str(self.checkpoint):
            raise InputError(
                "checkpoint must be the path of the checkpoint to edit (fields3d nerf, generate "
                "or edit wrote it), got an empty string"
            )
        if self.model is not None and not isinstance(self.model, (str, Path)):
            raise InputError(f"model must be a folder path or None, got {self.model!r}")
        if not isinstance(self.guidance_options, dict):
            raise InputError(
                f"guidance_options must be a table of the prior's settings, got {self.guidance_options!r}"
            )
        check_seed(self.seed)
        check_int("steps", self.steps, 0)
        check_int("resolution", self.resolution, 4, MAX_RESOLUTION)
        check_int("render_size", self.render_size, 8, MAX_RENDER)
        check_int("batch_size", self.batch_size, 1, 64)
        check_int("localise_views", self.localise_views, 1, 360)
        check_int("distill_steps", self.distill_steps, 0)
        check_int("distill_views", self.distill_views, 1, 360)
        check_int("turntable_frames", self.turntable_frames, 0, MAX_FRAMES)
        check_int("turntable_size", self.turntable_size, 8, MAX_RENDER)
        if self.reg_window is not None:
            check_int("reg_window", self.reg_window, 2, self.resolution)
        self._check_numbers()
        for name, (lo, hi) in RANGES.items():
            check_interval(name, getattr(self, name), lo, hi)
        if self.localise_words is not None and not (
            isinstance(self.localise_words, str) and self.localise_words.strip()
        ):
            raise InputError(
                f"localise_words must be None or words of the prompt, got {self.localise_words!r}"
            )
        for name in ("localise", "resume"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def _check_numbers(self) -> None:
        for name in ("lr", "checkpoint_every"):
            value = getattr(self, name)
            if not (is_number(value) and 0 < value < math.inf):
                raise InputError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("reg_weight", "smoothness", "mesh_level", "color_lr_scale"):
            value = getattr(self, name)
            if not (is_number(value) and 0 <= value < math.inf):
                raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (is_number(self.mask_threshold) and 0 < self.mask_threshold < 1):
            raise InputError(
                f"mask_threshold must be a number in (0, 1), got {self.mask_threshold!r}"
            )
        if self.step_size is not None and not (
            is_number(self.step_size) and 1e-4 <= self.step_size <= 1
        ):
            raise InputError(
                f"step_size must be a number from 0.0001 to 1 (box half-diagonals), got {self.step_size!r}"
            )

    @property
    def is_target(self) -> bool:
        return str(self.guidance).partition(":")[0] == "target"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
