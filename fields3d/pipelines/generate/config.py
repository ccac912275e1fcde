"""Settings of text-to-3D generation and how a TOML job file maps onto them."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from ..._checks import (
    MAX_GRID,
    check_int,
    check_interval,
    check_seed,
    is_int,
    is_number,
    rgb_triple,
)
from ...errors import InputError, ModelNotFound
from ...render.cameras import MAX_FRAMES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Render sizes: a 512-pixel picture is what Stable Diffusion's VAE takes; more is wasted.
MAX_RESOLUTION = 1024
MAX_BATCH_VIEWS = 64
MAX_GRID_RESOLUTION = 256
RANGES = {
    # name: (lowest, highest) any value may take
    "radius_range": (0.5, 100.0),  # camera distance, in units of the object's radius
    "elevation_range": (-89.0, 89.0),  # degrees above the plane normal to up
    "azimuth_range": (-360.0, 360.0),  # degrees; 0 is the front
    "fov_range": (1.0, 179.0),  # degrees
    "light_distance_range": (0.1, 100.0),  # light distance from the centre, object radii
}


@dataclass(frozen=True)
class GenerateConfig:
    """What :func:`fields3d.pipelines.generate.generate` does; validated on construction (InputError).

    The prior is ``guidance``: ``"stable_diffusion"`` (a model from ``model`` or
    ``FIELDS3D_SD_MODEL``) or ``"target:MESH_OR_CHECKPOINT"`` (no model: the exact denoiser of a
    known object's renders, :class:`~fields3d.guidance.TargetGuidance`); ``guidance_options``
    are further settings of its constructor (``guidance_scale``, ``latents``, ``weighting``...).

    Training stops at ``steps`` or after ``time_budget`` seconds, whichever comes first. Each step
    renders ``batch_size`` views of ``resolution`` pixels square from random cameras (distance in
    ``radius_range`` object radii from the prior's centre, elevation, azimuth and field of view
    in their ranges, ``front_share`` of the views with ``|azimuth| < 45``), lit by a point light
    near the camera, shaded ``"albedo"`` for ``albedo_share`` of the steps, ``"textureless"`` for
    ``textureless_share`` and ``"lambert"`` otherwise (None: 0.2 and 0.3 with a text prior, 0
    and 0 with target guidance, whose pictures are Lambertian).

    ``background``: ``"learned"`` (a small direction MLP), three numbers in [0, 1], or None
    (learned with a text prior, the target's background with target guidance).

    ``latent_field``: the fast coarse mode with Stable Diffusion: the field renders 4 latent
    colour channels (Latent-NeRF) that are the prior's latents directly (``latents="direct"``,
    resized to the latent size), always unlit (``"albedo"``) over a learned latent background;
    the turntable decodes the latent renders through the VAE and the mesh is a plain grey.
    """

    prompt: str = ""
    output: str = "out/generate"
    guidance: str = "stable_diffusion"
    model: str | None = None
    guidance_options: dict = dataclasses.field(default_factory=dict)
    device: str = "auto"
    seed: int = 0
    steps: int | None = 1000
    time_budget: float | None = None
    resolution: int = 64
    batch_size: int = 1
    lr: float = 1e-2
    radius_range: tuple[float, float] = (3.0, 3.6)
    elevation_range: tuple[float, float] = (-10.0, 45.0)
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    fov_range: tuple[float, float] = (40.0, 45.0)
    front_share: float = 0.0
    light_distance_range: tuple[float, float] = (2.5, 4.0)
    light_perturb: float = 1.0
    ambient: float = 0.1
    albedo_share: float | None = None
    textureless_share: float | None = None
    background: str | tuple | list | None = None
    orient_weight: float = 1e-2
    sparsity_weight: float = 0.0
    encoding: dict | None = None
    n_hidden: int = 64
    blob_scale: float = 10.0
    blob_radius: float = 0.5
    grid_resolution: int = 32
    grid_every: int = 8
    step_size: float | None = None  # marching step in object radii; None: box diagonal / 256
    checkpoint_every: float = 60.0  # seconds between checkpoints
    turntable_frames: int = 24
    turntable_size: int = 128
    mesh_resolution: int = 128
    mesh_level: float = 10.0  # the density (per object radius) the mesh follows
    eval_views: int = 8
    resume: bool = False
    latent_field: bool = False

    def __post_init__(self) -> None:
        for name in ("prompt", "output", "guidance"):
            if not isinstance(getattr(self, name), (str, Path)):
                raise InputError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.model is not None and not isinstance(self.model, (str, Path)):
            raise InputError(f"model must be a folder path or None, got {self.model!r}")
        if not isinstance(self.guidance_options, dict):
            raise InputError(
                f"guidance_options must be a table of the prior's settings, got {self.guidance_options!r}"
            )
        check_seed(self.seed)
        if self.steps is None and self.time_budget is None:
            raise InputError("set steps or time_budget (or both): training needs a stopping rule")
        if self.steps is not None:
            check_int("steps", self.steps, 1)
        if self.time_budget is not None and not (
            is_number(self.time_budget) and 0 < self.time_budget < math.inf
        ):
            raise InputError(
                f"time_budget must be a number of seconds > 0, got {self.time_budget!r}"
            )
        check_int("resolution", self.resolution, 8, MAX_RESOLUTION)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH_VIEWS)
        for name, (lo, hi) in RANGES.items():
            check_interval(name, getattr(self, name), lo, hi)
        for name in ("front_share", "ambient", "albedo_share", "textureless_share"):
            value = getattr(self, name)
            if value is None and name.endswith("share") and name != "front_share":
                continue
            if not (is_number(value) and 0 <= value <= 1):
                raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
        if (self.albedo_share or 0) + (self.textureless_share or 0) > 1:
            raise InputError(
                "albedo_share + textureless_share must be at most 1, got "
                f"{self.albedo_share} + {self.textureless_share}"
            )
        if self.background is not None and self.background != "learned":
            rgb_triple("background", self.background)
        for name in ("lr", "checkpoint_every"):
            value = getattr(self, name)
            if not (is_number(value) and 0 < value < math.inf):
                raise InputError(f"{name} must be a finite number > 0, got {value!r}")
        for name in ("orient_weight", "sparsity_weight", "light_perturb", "blob_scale"):
            value = getattr(self, name)
            if not (is_number(value) and 0 <= value < math.inf):
                raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (is_number(self.blob_radius) and 0 < self.blob_radius <= 2):
            raise InputError(f"blob_radius must be a number in (0, 2], got {self.blob_radius!r}")
        if self.encoding is not None and not isinstance(self.encoding, dict):
            raise InputError(f"encoding must be an encoding config table, got {self.encoding!r}")
        check_int("n_hidden", self.n_hidden, 1, 1024)
        g = self.grid_resolution
        if not (is_int(g) and 8 <= g <= MAX_GRID_RESOLUTION and g % 4 == 0):
            raise InputError(
                f"grid_resolution must be a multiple of 4 from 8 to {MAX_GRID_RESOLUTION}, got {g!r}"
            )
        check_int("grid_every", self.grid_every, 1)
        if self.step_size is not None and not (
            is_number(self.step_size) and 1e-4 <= self.step_size <= 1
        ):
            raise InputError(
                f"step_size must be a number from 0.0001 to 1 (object radii), got {self.step_size!r}"
            )
        check_int("turntable_frames", self.turntable_frames, 0, MAX_FRAMES)
        check_int("turntable_size", self.turntable_size, 8, MAX_RESOLUTION)
        m = self.mesh_resolution
        if not (is_int(m) and (m == 0 or 8 <= m <= MAX_GRID)):
            raise InputError(
                f"mesh_resolution must be 0 (no mesh) or an integer from 8 to {MAX_GRID}, got {m!r}"
            )
        if not (is_number(self.mesh_level) and 0 < self.mesh_level < math.inf):
            raise InputError(
                f"mesh_level must be a number > 0 (a density), got {self.mesh_level!r}"
            )
        check_int("eval_views", self.eval_views, 0, 360)
        if not isinstance(self.resume, bool):
            raise InputError(f"resume must be true or false, got {self.resume!r}")
        if not isinstance(self.latent_field, bool):
            raise InputError(f"latent_field must be true or false, got {self.latent_field!r}")
        if self.latent_field and self.is_target:
            raise InputError(
                "latent_field needs Stable Diffusion guidance (its renders are the model's "
                "latents); target guidance compares RGB pictures"
            )
        if self.latent_field and self.background not in (None, "learned"):
            raise InputError(
                "latent_field learns its background in latent colours: leave background unset "
                f'or "learned", got {self.background!r}'
            )

    @property
    def is_target(self) -> bool:
        return str(self.guidance).partition(":")[0] == "target"

    def shares(self) -> tuple[float, float]:
        """``(albedo_share, textureless_share)`` with the defaults of the class docstring
        (a latent field is always unlit: ``(1, 0)``)."""
        if self.latent_field:
            return 1.0, 0.0
        albedo = (
            self.albedo_share if self.albedo_share is not None else (0.0 if self.is_target else 0.2)
        )
        plain = (
            self.textureless_share
            if self.textureless_share is not None
            else (0.0 if self.is_target else 0.3)
        )
        return albedo, plain

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


TUPLES = {f.name for f in dataclasses.fields(GenerateConfig) if f.name.endswith("_range")}


def load_job(path: str | Path, overrides: dict | None = None) -> GenerateConfig:
    """A :class:`GenerateConfig` from the ``[generate]`` table of a TOML job file, then
    ``overrides`` (the command line's). A relative ``target:PATH`` or ``model`` in the file is
    read from the job file's folder; ``output`` stays relative to the current folder.

    Raises ModelNotFound for a missing file and InputError for bad TOML or unknown keys.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(
            f"job file not found: {path}; pass a TOML file with a [generate] table (see scenes/)"
        )
    try:
        table = tomllib.loads(path.read_text()).get("generate")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"job file {path} is not valid TOML ({exc})") from exc
    if not isinstance(table, dict):
        raise InputError(f"job file {path} has no [generate] table")
    guidance = table.get("guidance")
    if isinstance(guidance, str) and guidance.startswith("target:"):
        table["guidance"] = "target:" + _from_job(path, guidance.removeprefix("target:"))
    model = table.get("model")
    if isinstance(model, str) and (path.parent / model).exists():  # else a cached model's name
        table["model"] = _from_job(path, model)
    values = {**table, **(overrides or {})}
    known = {f.name for f in dataclasses.fields(GenerateConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"job file {path}: unknown keys {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    for name in TUPLES & set(values):
        if isinstance(values[name], list):
            values[name] = tuple(values[name])
    return GenerateConfig(**values)


def _from_job(job: Path, value: str) -> str:
    return value if Path(value).is_absolute() else str(job.parent / value)
