"""Fit an image field to a photograph (instant-NGP's gigapixel task, small): ``fit_image``.

The field is any 2D encoding (a hash grid unless ``FitImageConfig.encoding`` names another) and
an MLP with a sigmoid output (:class:`~fields3d.fields.ImageField`).

Each step draws ``batch_size`` uniformly random continuous positions in ``[0, 1]^2``, samples the
target there by bilinear interpolation between pixel centres (``grid_sample``,
``align_corners=False``, border padding) and takes an Adam step on the mean squared error.
The result is judged on the full image at its own resolution: the field is evaluated on the
pixel centres and compared with the pixels (PSNR in dB, on float values in ``[0, 1]``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .. import __version__
from .._checks import MAX_BATCH, check_int, check_seed, is_number
from .._io import check_output
from ..errors import InputError, check_loss
from ..fields import ImageField
from ._common import (
    DEVICES,
    as_tuple,
    check_path,
    device_name,
    load_image,
    resolve_device,
    write_json,
    write_png,
)
from ._encoding import resolve

# FitImageConfig's hash-grid fields: the default encoding's settings (HashGrid's own defaults)
HASH_GRID_FIELDS = (
    "n_levels",
    "n_features_per_level",
    "log2_hashmap_size",
    "base_resolution",
    "per_level_scale",
)


@dataclass(frozen=True)
class FitImageConfig:
    """Settings of :func:`fit_image`; validated on construction (raises InputError).

    ``per_level_scale=None`` (the default) picks the growth per level so that the finest level
    has as many vertices per axis as the image has pixels along its longer side:
    ``exp(log(max(H, W) / base_resolution) / (n_levels - 1))`` (1 when the image is no larger
    than ``base_resolution`` or there is one level). Finer levels cannot add detail that the
    pixels do not hold; coarser ones blur it. ``log2_hashmap_size=19`` holds every level of a
    724 x 724 image without hashing; larger images hash their finest levels.

    ``encoding``: ``None`` (the default) is a hash grid with the settings above. Otherwise an
    encoding config dict such as ``{"type": "dense_grid", "resolution": 256}``; ``n_input_dims``
    may be left out (it is filled in as 2). For a ``hash_grid`` dict the hash-grid fields above
    fill the settings the dict leaves out (``per_level_scale`` from the image size as described);
    for any other type they must stay at their defaults. A setting given both ways must agree.

    The learning rate is multiplied by ``lr_decay`` when ``lr_decay_at`` fractions of the steps
    are done. ``betas`` and ``eps`` are instant-NGP's Adam settings.

    Example:
        >>> from fields3d.pipelines.fit_image import FitImageConfig
        >>> config = FitImageConfig("photo.png", n_levels=8)  # nothing is read yet
        >>> grid = config.encoding_config()  # per_level_scale: from the image's size, once read
        >>> grid["type"], grid["n_levels"], grid["log2_hashmap_size"], grid["per_level_scale"]
        ('hash_grid', 8, 19, None)
        >>> dense = {"type": "dense_grid"}
        >>> FitImageConfig("photo.png", n_levels=8, encoding=dense)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fields3d.errors.InputError: n_levels=8 is a hash-grid setting but the encoding is ...
    """

    image: str | Path
    out_dir: str | Path = "out/fit-image"
    steps: int = 1000
    batch_size: int = 2**16
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15
    lr_decay: float = 0.33
    lr_decay_at: tuple[float, ...] = (0.5, 0.75, 0.9)
    seed: int = 0
    device: str = "auto"
    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float | None = None
    n_hidden: int = 64
    n_hidden_layers: int = 2
    encoding: dict | None = None

    def __post_init__(self) -> None:
        check_path("image", self.image, "an image file")
        check_path("out_dir", self.out_dir, "the output folder")
        check_int("steps", self.steps, 1)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_seed(self.seed)
        _check_range("lr", self.lr, 0.0, math.inf, "a number > 0")
        _check_range("lr_decay", self.lr_decay, 0.0, 1.0, "a number in (0, 1]")
        if not is_number(self.eps) or not 0 <= self.eps < math.inf:
            raise InputError(f"eps must be a finite number >= 0, got {self.eps!r}")
        betas, decay_at = as_tuple(self.betas), as_tuple(self.lr_decay_at)
        if betas is None or len(betas) != 2 or not all(is_number(b) and 0 <= b < 1 for b in betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if decay_at is None or not all(is_number(f) and 0 < f < 1 for f in decay_at):
            raise InputError(
                f"lr_decay_at must be fractions of the steps in (0, 1), got {self.lr_decay_at!r}"
            )
        if self.device not in DEVICES:
            raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "lr_decay_at", decay_at)
        self._check_hash_grid_fields()
        resolve(self.encoding_config(1.0), 2, "fit-image")  # validates the encoding's settings

    def _check_hash_grid_fields(self) -> None:
        if self.encoding is None:
            return
        if not isinstance(self.encoding, dict):
            raise InputError(
                f'encoding must be None or a dict with a "type" key, got {type(self.encoding).__name__}'
            )
        name = self.encoding.get("type")
        for field in HASH_GRID_FIELDS:
            value = getattr(self, field)
            if value == _DEFAULTS[field]:
                continue
            if name != "hash_grid":
                raise InputError(
                    f"{field}={value!r} is a hash-grid setting but the encoding is {name!r}; "
                    "leave it out or put the encoding's own settings in its dict"
                )
            if field in self.encoding and self.encoding[field] != value:
                raise InputError(
                    f"{field}={value!r} disagrees with the encoding's {field}={self.encoding[field]!r}; "
                    "set it in one place"
                )

    def encoding_config(self, per_level_scale: float | None = None) -> dict:
        """The encoding's config dict, before :func:`~fields3d.pipelines._encoding.resolve` completes it.

        ``per_level_scale`` stands in for a hash grid's ``per_level_scale`` when neither this
        config nor the encoding dict sets one.
        """
        if self.encoding is not None and self.encoding.get("type") != "hash_grid":
            return dict(self.encoding)
        grid = {"type": "hash_grid", **{f: getattr(self, f) for f in HASH_GRID_FIELDS}}
        grid.update(self.encoding or {})
        if grid["per_level_scale"] is None:
            grid["per_level_scale"] = per_level_scale
        return grid


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(FitImageConfig)}


@dataclass
class FitImageResult:
    """What :func:`fit_image` returns; ``paths`` maps ``fit``, ``comparison``, ``metrics``, ``config`` to files.

    ``n_params`` counts the whole field (encoding and MLP); ``encoding`` is the encoding's complete config.
    """

    psnr: float
    seconds: float
    steps: int
    n_params: int
    device: str
    paths: dict[str, Path]
    field: ImageField = dataclasses.field(repr=False)
    encoding: dict = dataclasses.field(default_factory=dict)


def _check_range(name: str, value, lo: float, hi: float, want: str) -> None:
    if not is_number(value) or not lo < value <= hi:
        raise InputError(f"{name} must be {want}, got {value!r}")


def default_per_level_scale(size: int, n_levels: int, base_resolution: int) -> float:
    """Growth per level that makes the finest level ``size`` vertices wide (see FitImageConfig)."""
    if n_levels == 1 or size <= base_resolution:
        return 1.0
    return min(math.exp(math.log(size / base_resolution) / (n_levels - 1)), 16.0)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of values in ``[0, 1]`` (MSE floored at 1e-12: at most 120 dB)."""
    mse = F.mse_loss(prediction.float(), target.float()).item()
    return -10.0 * math.log10(max(mse, 1e-12))


def sample_bilinear(image: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` ``(1, C, H, W)`` at ``uv`` ``(N, 2)`` -> ``(N, C)``.

    Pixel centres sit at ``(i + 0.5) / size``; beyond the outer centres the border value holds.
    """
    grid = (uv * 2 - 1).view(1, 1, -1, 2)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].t()


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]fit-image"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.2e}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not enabled,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build_field(config: FitImageConfig, device: torch.device) -> ImageField:
    """The field, its parameters initialised from ``config.seed`` without touching the global RNG."""
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)
        return ImageField(
            config.encoding, 3, config.n_hidden, config.n_hidden_layers, device=device
        )


def _train(
    field: ImageField, target: torch.Tensor, config: FitImageConfig, progress: bool
) -> float:
    """Run ``config.steps`` Adam steps on random bilinear samples of ``target`` ``(H, W, C)``; returns the last loss."""
    opt = torch.optim.Adam(field.parameters(), lr=config.lr, betas=config.betas, eps=config.eps)
    milestones = sorted({max(1, round(f * config.steps)) for f in config.lr_decay_at})
    schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=config.lr_decay)
    generator = torch.Generator(device=target.device).manual_seed(config.seed)
    image = target.permute(2, 0, 1).unsqueeze(0).contiguous()
    report_every = max(1, config.steps // 100)
    with _progress_bar(progress) as bar:
        task = bar.add_task("fit", total=config.steps, loss=float("nan"))
        for step in range(1, config.steps + 1):
            uv = torch.rand(config.batch_size, 2, generator=generator, device=target.device)
            loss = F.mse_loss(field(uv), sample_bilinear(image, uv))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            if step % report_every == 0 or step == config.steps:
                bar.update(task, completed=step, loss=loss.item())
    return loss.item()


def _write_outputs(
    out_dir: Path, target: torch.Tensor, fit: torch.Tensor, metrics: dict, config: dict
) -> dict:
    error = (fit - target).abs().mul(4)
    comparison = torch.cat((target, fit, error), dim=1)
    return {
        "fit": write_png(out_dir / "fit.png", fit),
        "comparison": write_png(out_dir / "comparison.png", comparison),
        "metrics": write_json(out_dir / "metrics.json", metrics),
        "config": write_json(out_dir / "config.json", config),
    }


def fit_image(config: FitImageConfig, progress: bool = True) -> FitImageResult:
    """Fit an :class:`ImageField` to ``config.image`` and write the outputs to ``config.out_dir``.

    Writes ``fit.png`` (the field at the image's resolution), ``comparison.png`` (target | fit |
    4 x absolute error), ``metrics.json`` and ``config.json`` (the resolved config: the chosen
    device and ``per_level_scale`` filled in), each atomically. ``seconds`` covers training and
    rendering the fit, not reading the image or writing files. A rich progress bar shows the step
    and loss unless ``progress`` is False.

    Args:
        config: the :class:`FitImageConfig` (the image: a PNG or JPEG file, read as
            ``(H, W, 3)`` float32 RGB in ``[0, 1]``, alpha dropped, grey repeated).
        progress: show a progress bar.

    Returns:
        :class:`FitImageResult`: the fit's PSNR in dB on the image's own pixels, the seconds, the
        steps, the field's parameter count, the device, the paths written and the field (maps
        ``(N, 2)`` float32 positions in ``[0, 1]^2`` to ``(N, 3)`` colours).

    Raises:
        ModelNotFound: the image file does not exist.
        InputError: the file cannot be read as an image, or a setting is invalid.
        BackendUnavailable: ``device="cuda"`` on a machine or build without CUDA.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> from fields3d.pipelines.fit_image import FitImageConfig, fit_image
        >>> u = np.linspace(0.0, 1.0, 32)  # a (32, 32, 3) picture: red across, green down
        >>> ramp = np.stack(np.broadcast_arrays(u[None, :], u[:, None], 0.5), axis=-1)
        >>> small = dict(  # a small field, a high learning rate: 40 steps reach 30 dB
        ...     lr=0.05, batch_size=1024, n_levels=4, log2_hashmap_size=10, n_hidden=16,
        ...     n_hidden_layers=1, device="cpu",
        ... )
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     tmp = pathlib.Path(tmp)
        ...     Image.fromarray((ramp * 255).round().astype(np.uint8)).save(tmp / "ramp.png")
        ...     config = FitImageConfig(tmp / "ramp.png", tmp / "fit", steps=40, **small)
        ...     result = fit_image(config, progress=False)
        ...     print(sorted(p.name for p in (tmp / "fit").iterdir()))
        ['comparison.png', 'config.json', 'fit.png', 'metrics.json']
        >>> result.steps, result.n_params, result.psnr > 25  # PSNR in dB
        (40, 5011, True)
    """
    if not isinstance(config, FitImageConfig):
        raise InputError(f"config must be a FitImageConfig, got {type(config).__name__}")
    target = load_image(config.image)
    check_output(
        Path(config.out_dir) / "metrics.json"
    )  # an output that cannot be written fails now, not after
    device = resolve_device(config.device)
    height, width = target.shape[:2]
    config = _resolved(config, max(height, width), device)
    field = _build_field(config, device)
    target = target.to(device)
    start = time.perf_counter()
    final_loss = _train(field, target, config, progress)
    check_loss(final_loss, config.steps, config.lr)
    fit = field.render(height, width)
    _sync(device)
    seconds = time.perf_counter() - start
    n_params = field.n_params
    metrics = {
        "psnr": psnr(fit, target),
        "seconds": seconds,
        "steps": config.steps,
        "final_loss": final_loss,
        "n_params": n_params,
        "encoding_n_params": field.encoding.n_params,
        "encoding": config.encoding,
        "image_size": [height, width],
        "device": device.type,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "fields3d": __version__,
    }
    paths = _write_outputs(Path(config.out_dir), target, fit, metrics, asdict(config))
    return FitImageResult(
        metrics["psnr"], seconds, config.steps, n_params, device.type, paths, field, config.encoding
    )


def _resolved(config: FitImageConfig, size: int, device: torch.device) -> FitImageConfig:
    """``config`` with the paths as strings, the device chosen and the encoding's complete config in
    ``encoding`` (a hash grid's ``per_level_scale`` from the image ``size`` unless set; for a hash
    grid the hash-grid fields mirror the encoding's settings)."""
    encoding = config.encoding_config()
    if encoding["type"] == "hash_grid" and encoding.get("per_level_scale") is None:
        n_levels, base = (encoding.get(k, _DEFAULTS[k]) for k in ("n_levels", "base_resolution"))
        encoding["per_level_scale"] = default_per_level_scale(size, n_levels, base)
    encoding, _ = resolve(encoding, 2, "fit-image")
    grid = {f: encoding[f] for f in HASH_GRID_FIELDS} if encoding["type"] == "hash_grid" else {}
    return dataclasses.replace(
        config,
        image=str(config.image),
        out_dir=str(config.out_dir),
        device=device.type,
        encoding=encoding,
        **grid,
    )
