"""Settings of the NeRF pipeline and how a TOML job file maps onto them."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from ..._checks import (
    MAX_BATCH,
    MAX_GRID,
    check_choice,
    check_int,
    check_seed,
    is_int,
    is_number,
)
from ...errors import InputError, ModelNotFound
from ...fields.radiance import VIEWS, field_options
from ...render.cameras import MAX_FRAMES
from ...render.march import MAX_SUBDIVIDE
from .learned import OCCUPANCY

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


DEVICE_DEFAULTS = {
    "cuda": {
        "samples_per_step": 1 << 18,
        "grid_resolution": 128,
        "log2_hashmap_size": 19,
        "color_layers": 2,
    },
    "cpu": {
        "samples_per_step": 1 << 15,
        "grid_resolution": 64,
        "log2_hashmap_size": 17,
        "color_layers": 1,
    },
}
STEPS_PER_DIAGONAL = {"cuda": 1024, "cpu": 512}
MAX_HIDDEN = 1024  # MLP width: instant-NGP's is 64; 10^5 asked for 40 GB of weights
MAX_GRID_RESOLUTION = (
    512  # occupancy cells per axis: 512^3 is 134 M cells, half OccupancyGrid's limit
)


@dataclass(frozen=True)
class NerfConfig:
    """What :func:`fields3d.pipelines.nerf.train_nerf` does; validated on construction (InputError).

    Training stops at ``steps`` or after ``time_budget`` seconds of training, whichever comes
    first (at least one must be set). The learning rate drops by ``lr_decay`` at the fractions
    ``lr_decay_at`` of that budget. Settings left None are picked per device by :meth:`resolved`
    (:data:`DEVICE_DEFAULTS`): a GPU takes instant-NGP's sizes; two CPU cores get a smaller hash
    table (Adam's pass over 2^19 rows per level costs more than the rays), one hidden colour layer
    and fewer samples per step, so that they take many more steps in the same time.

    ``data``: a NeRF-synthetic or instant-NGP scene folder
    (:func:`fields3d.render.datasets.load_scene`); ``output``: the output folder; ``downscale``:
    picture size divisor; ``samples_per_step``: samples marched per training step (rays
    follow); ``step_size``: the marching step (None: the scene box's diagonal over
    :data:`STEPS_PER_DIAGONAL`); ``grid_resolution``: occupancy cells per axis, updated every
    ``grid_every`` steps (in warm-up mode for the first ``warmup_steps``); ``n_levels``,
    ``log2_hashmap_size``, ``max_resolution``: the hash grid's; ``n_hidden``, ``color_layers``,
    ``view``, ``field_modulation`` (``"none"``, ``"cam"``, ``"cam-hash"``), ``mlp`` (``"plain"``,
    ``"mi"``), ``density_layers``: the field's (:class:`~fields3d.fields.RadianceField`;
    ``color_net``, their older name, is turned into them); ``train_views``: train on this many of
    the training views, evenly spaced (few-shot; None: all); ``background_weight`` and
    ``anneal_steps``: the few-shot regularisers (:mod:`fields3d.pipelines.nerf.fewshot`);
    ``mesh_resolution`` > 0 also meshes the density at
    ``mesh_level``; ``resume`` continues from the output's checkpoint. :func:`load_job` reads one
    from a TOML job file.

    ``occupancy``: ``"grid"`` (the cascaded grid, the default) or ``"learned"`` (an occupancy
    network, :mod:`~fields3d.pipelines.nerf.learned`), with ``empty_share`` the imbalanced
    occupancy loss's share of points called empty and ``occupancy_subdivide`` its coarse
    candidate steps.

    Example:
        >>> from fields3d.pipelines.nerf import NerfConfig
        >>> config = NerfConfig(data="assets/scenes/spot", steps=2000, time_budget=None)
        >>> config.samples_per_step, config.grid_resolution  # None: picked per device
        (None, None)
        >>> cpu = config.resolved("cpu")
        >>> cpu.device, cpu.samples_per_step, cpu.grid_resolution, cpu.log2_hashmap_size
        ('cpu', 32768, 64, 17)
        >>> NerfConfig(data="assets/scenes/spot", time_budget=None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: set steps or time_budget (or both): training needs a ...
    """

    data: str
    output: str = "out/nerf"
    device: str = "auto"
    steps: int | None = None
    time_budget: float | None = 600.0
    downscale: int = 1
    seed: int = 0
    samples_per_step: int | None = None
    lr: float = 1e-2
    lr_decay: float = 0.33
    lr_decay_at: tuple[float, ...] = (0.5, 0.75, 0.9)
    step_size: float | None = None
    grid_resolution: int | None = None
    grid_every: int = 16
    warmup_steps: int = 256
    random_background: bool = True
    n_levels: int = 16
    log2_hashmap_size: int | None = None
    max_resolution: int = 2048
    n_hidden: int = 64
    color_layers: int | None = None
    view: str = "sh"
    field_modulation: str = "none"
    mlp: str = "plain"
    density_layers: int = 1
    color_net: str | None = None  # the older name of field_modulation and mlp; None once mapped
    train_views: int | None = None
    background_weight: float = 0.0
    anneal_steps: int = 0
    occupancy: str = "grid"
    empty_share: float = 0.9
    occupancy_subdivide: int = 4
    checkpoint_every: float = 60.0  # seconds between checkpoints
    eval_chunk: int = 1 << 13
    turntable_frames: int = 36
    mesh_resolution: int = (
        0  # > 0: also write mesh.ply, the density's iso-surface on this many points per axis
    )
    mesh_level: float = 10.0
    resume: bool = False

    def __post_init__(self) -> None:
        self._check_types()
        if self.steps is None and self.time_budget is None:
            raise InputError("set steps or time_budget (or both): training needs a stopping rule")
        if self.steps is not None:
            check_int("steps", self.steps, 1)
        if self.time_budget is not None and (
            not is_number(self.time_budget) or not 0 < self.time_budget < math.inf
        ):
            raise InputError(
                f"time_budget must be a number of seconds > 0, got {self.time_budget!r}"
            )
        for name, minimum in (("downscale", 1), ("grid_every", 1), ("warmup_steps", 0)):
            check_int(name, getattr(self, name), minimum)
        check_int("turntable_frames", self.turntable_frames, 0, MAX_FRAMES)
        check_int("eval_chunk", self.eval_chunk, 1, MAX_BATCH)
        if (
            not is_int(self.mesh_resolution)
            or not 0 <= self.mesh_resolution <= MAX_GRID
            or self.mesh_resolution == 1
        ):
            raise InputError(
                f"mesh_resolution must be 0 (no mesh) or an integer from 2 to {MAX_GRID} (grid points "
                f"per axis), got {self.mesh_resolution!r}"
            )
        if self.samples_per_step is not None:
            check_int("samples_per_step", self.samples_per_step, 256, MAX_BATCH)
        for name, minimum in (("log2_hashmap_size", 10), ("color_layers", 0)):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum)
        g = self.grid_resolution
        if g is not None and (not is_int(g) or not 8 <= g <= MAX_GRID_RESOLUTION or g % 4):
            raise InputError(
                f"grid_resolution must be a multiple of 4 from 8 to {MAX_GRID_RESOLUTION} (occupancy cells "
                f"per axis), got {g!r}"
            )
        if self.step_size is not None and (not is_number(self.step_size) or not self.step_size > 0):
            raise InputError(f"step_size must be a number > 0, got {self.step_size!r}")
        check_choice("occupancy", self.occupancy, OCCUPANCY)
        if not is_number(self.empty_share) or not 0 < self.empty_share < 1:
            raise InputError(
                f"empty_share must be a number in (0, 1), the share of points the occupancy "
                f"network should call empty, got {self.empty_share!r}"
            )
        check_int("occupancy_subdivide", self.occupancy_subdivide, 1, MAX_SUBDIVIDE)
        if self.view not in VIEWS:
            raise InputError(f"view must be 'sh' or 'none', got {self.view!r}")
        modulation, mlp = field_options(self.field_modulation, self.mlp, self.color_net)
        object.__setattr__(self, "field_modulation", modulation)
        object.__setattr__(self, "mlp", mlp)
        object.__setattr__(self, "color_net", None)
        check_int("density_layers", self.density_layers, 1, 8)
        if self.train_views is not None:
            check_int("train_views", self.train_views, 1)
        check_int("anneal_steps", self.anneal_steps, 0)
        w = self.background_weight
        if not is_number(w) or not 0 <= w < math.inf:
            raise InputError(f"background_weight must be a finite number >= 0, got {w!r}")

    def _check_types(self) -> None:
        """The settings a job file can get wrong that the checks below do not reach."""
        for name in ("data", "output"):
            if not isinstance(getattr(self, name), (str, Path)):
                raise InputError(
                    f"{name} must be a folder path (a string), got {getattr(self, name)!r}"
                )
        for name, minimum in (("n_levels", 1), ("max_resolution", 2)):
            check_int(name, getattr(self, name), minimum)
        check_int("n_hidden", self.n_hidden, 1, MAX_HIDDEN)
        check_seed(self.seed)
        if self.color_layers is not None and (
            not isinstance(self.color_layers, int) or self.color_layers > 8
        ):
            raise InputError(
                f"color_layers must be an integer from 0 to 8, got {self.color_layers!r}"
            )
        for name in ("lr", "checkpoint_every"):
            value = getattr(self, name)
            if not is_number(value) or not 0 < value < math.inf:
                raise InputError(f"{name} must be a finite number > 0, got {value!r}")
        if not is_number(self.lr_decay) or not 0 < self.lr_decay <= 1:
            raise InputError(f"lr_decay must be a number in (0, 1], got {self.lr_decay!r}")
        at = self.lr_decay_at
        if not isinstance(at, (list, tuple)) or not all(is_number(f) and 0 < f < 1 for f in at):
            raise InputError(
                f"lr_decay_at must be a list of fractions of the budget in (0, 1), got {at!r}"
            )
        if not is_number(self.mesh_level) or not math.isfinite(self.mesh_level):
            raise InputError(
                f"mesh_level must be a finite number (a density), got {self.mesh_level!r}"
            )

    def resolved(self, device: str) -> NerfConfig:
        """This config with ``device`` and every None setting filled in for that device."""
        picks = {k: v for k, v in DEVICE_DEFAULTS[device].items() if getattr(self, k) is None}
        return dataclasses.replace(self, device=device, **picks)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_job(path: str | Path, overrides: dict | None = None) -> NerfConfig:
    """A :class:`NerfConfig` from the ``[nerf]`` table of a TOML job file, then ``overrides``.

    A relative ``data`` in the file is read from the job file's folder (:func:`job_path`), so the
    job runs from any folder; ``output``, like ``overrides`` (the command line's), stays relative
    to the current folder, where a command's outputs usually go.

    Raises ModelNotFound for a missing file and InputError for bad TOML or unknown keys.

    Example:
        >>> import pathlib, tempfile
        >>> from fields3d.pipelines.nerf import load_job
        >>> toml = '[nerf]\\ndata = "spot"\\ntime_budget = 120\\nlr_decay_at = [0.5, 0.8]\\n'
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     job = pathlib.Path(tmp) / "spot.toml"
        ...     _ = job.write_text(toml)
        ...     config = load_job(job, {"steps": 500})  # overrides: the command line's
        ...     print(pathlib.Path(config.data).relative_to(tmp).as_posix(), config.output)
        spot out/nerf
        >>> config.time_budget, config.steps, config.lr_decay_at
        (120, 500, (0.5, 0.8))
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(
            f"job file not found: {path}; pass a TOML file with a [nerf] table (see scenes/)"
        )
    try:
        table = tomllib.loads(path.read_text()).get("nerf")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"job file {path} is not valid TOML ({exc})") from exc
    if not isinstance(table, dict):
        raise InputError(f"job file {path} has no [nerf] table")
    if isinstance(table.get("data"), str):
        table["data"] = job_path(path, table["data"])
    values = {**table, **(overrides or {})}
    known = {f.name for f in dataclasses.fields(NerfConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"job file {path}: unknown keys {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    if "data" not in values:
        raise InputError(f"job file {path} must set data, the scene folder")
    if "lr_decay_at" in values:
        if isinstance(
            values["lr_decay_at"], list
        ):  # TOML arrays; anything else fails the config's check
            values["lr_decay_at"] = tuple(values["lr_decay_at"])
    return NerfConfig(**values)


def job_path(job: Path, value: str) -> str:
    """A path named in the job file ``job``: an absolute one as it is, a relative one from the job
    file's folder."""
    return value if Path(value).is_absolute() else str(job.parent / value)
