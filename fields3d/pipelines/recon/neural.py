"""Neural-Pull (Ma, Han, Liu & Zwicker, ICML 2021) on a hash-grid SDF: ``fit_neural``.

Queries are drawn around the input points, ``q = p + sigma_p * N(0, I)`` with ``sigma_p`` the
distance of ``p`` to its ``sigma_k``-th neighbour, and each is paired with the input point nearest
to it. The network pulls a query onto the surface along its normalised gradient,
``q' = q - f(q) grad f(q) / |grad f(q)|``, and the pulling loss asks ``q'`` to land on that point:
``|q' - target|^2``. Beside it: a surface term ``|f(p)|`` at the input points, and an eikonal
term ``(|grad f| - 1)^2`` at the queries, the input points and uniform random points of
``[-1, 1]^3``. The pulling and eikonal terms are losses on ``grad f``, so every step
differentiates through the hash grid's double backward.

Two phases, one Adam optimiser, ``progress(step, parts)`` after every step, ``step`` running from
1 to ``init_steps + steps`` (``NeuralConfig.total_steps``):

1. ``init_steps`` of L1 regression onto the closing's signed distance
   (:func:`~fields3d.geometry.closing.closing_sdf` on a ``coarse_resolution`` grid, the radius
   grown past holes in the scan), at grid points jittered within their cell, half drawn uniformly
   and half from a band around the surface: the sign starts right, also inside concavities where
   a sphere would be wrong (parts: ``init``);
2. ``steps`` of Neural-Pull, the learning rate decayed exponentially from ``lr`` to ``lr_final``
   (parts: ``pull``, ``surface``, ``eikonal``, ``loss``).

Deviations from the paper, and why: the network is a hash grid plus a 2-layer MLP instead of an
8-layer MLP (a minute on 2 CPU cores instead of hours on a GPU); the surface and eikonal terms are
additions (the paper has the pulling loss only). The pulling loss cannot tell ``f`` from ``-f``
(both pull a query to the same place), so without a sign to start from and the eikonal term at
the points (an unsigned crease has ``|grad f| ~ 0`` there) the zero level frays into a shell full
of tunnels; the closing initialisation replaces the paper's sphere for that reason.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from ..._checks import MAX_BATCH, check_choice, check_int, check_seed, is_number
from ...encodings import HashGridConfig
from ...errors import InputError
from ...fields.neural_sdf import NeuralSDF
from ...geometry.closing import closing_sdf, grid_points
from .queries import sample_queries


@dataclass(frozen=True)
class NeuralConfig:
    """Settings of :func:`fit_neural`; validated on construction (raises InputError)."""

    steps: int = 600  # Neural-Pull steps (after init_steps)
    init_steps: int = 100  # regression onto the closing's signed distance
    batch_size: int = 4_000  # queries per step (also surface points; uniform points: a quarter)
    queries_per_point: int = 10
    sigma_k: int = 20  # query offset scale: distance to the k-th neighbour
    lr: float = 5e-3
    lr_final: float = 5e-4
    w_pull: float = 1.0
    w_surface: float = 0.1
    w_eikonal: float = 0.02
    n_levels: int = 12
    n_features_per_level: int = 2
    log2_hashmap_size: int = 17
    base_resolution: int = 16
    finest_resolution: int = 256  # vertices per axis of the finest level over [-1, 1]
    interpolation: str = "linear"
    n_hidden: int = 64
    n_hidden_layers: int = 2
    field_modulation: str = "none"  # "cam": Coordinate-Aware Modulation of the MLP (NeuralSDF)
    coarse_resolution: int = 64  # grid of the closing initialisation
    closing_radius: float | None = (
        None  # None: closing_sdf's choice (grown until the inside holds a volume)
    )
    seed: int = 0

    def __post_init__(self) -> None:
        for name, minimum in (
            ("steps", 0),
            ("init_steps", 0),
            ("queries_per_point", 1),
            ("sigma_k", 1),
            ("n_hidden", 1),
            ("n_hidden_layers", 1),
            ("coarse_resolution", 8),
            ("finest_resolution", 2),
        ):
            check_int(name, getattr(self, name), minimum)
        check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        check_seed(self.seed)
        for name in ("lr", "lr_final"):
            if not is_number(getattr(self, name)) or not getattr(self, name) > 0:
                raise InputError(f"{name} must be a number > 0, got {getattr(self, name)!r}")
        if self.closing_radius is not None and not (
            is_number(self.closing_radius) and 0 < self.closing_radius <= 1
        ):
            raise InputError(
                f"closing_radius must be None or a number in (0, 1], got {self.closing_radius!r}"
            )
        for name in ("w_pull", "w_surface", "w_eikonal"):
            if not is_number(getattr(self, name)) or not getattr(self, name) >= 0:
                raise InputError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        check_choice("field_modulation", self.field_modulation, ("none", "cam"))
        self.field_settings()  # validates the hash grid settings

    @property
    def total_steps(self) -> int:
        """The number of ``progress`` calls: ``init_steps + steps``."""
        return self.init_steps + self.steps

    def per_level_scale(self) -> float:
        """Growth per level taking ``base_resolution`` to ``finest_resolution`` in ``n_levels`` levels."""
        if self.n_levels == 1 or self.finest_resolution <= self.base_resolution:
            return 1.0
        return math.exp(
            math.log(self.finest_resolution / self.base_resolution) / (self.n_levels - 1)
        )

    def field_settings(self) -> dict:
        """Keyword arguments of :class:`NeuralSDF` (the hash grid settings checked by HashGridConfig)."""
        settings = {
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": self.per_level_scale(),
            "interpolation": self.interpolation,
            "n_hidden": self.n_hidden,
            "n_hidden_layers": self.n_hidden_layers,
            "field_modulation": self.field_modulation,
        }
        HashGridConfig(
            3,
            *(
                settings[k]
                for k in (
                    "n_levels",
                    "n_features_per_level",
                    "log2_hashmap_size",
                    "base_resolution",
                    "per_level_scale",
                    "interpolation",
                )
            ),
        )
        return settings


def fit_neural(
    points: np.ndarray,
    cfg: NeuralConfig,
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str = "cpu",
    hook=None,
) -> NeuralSDF:
    """Fit a :class:`NeuralSDF` to ``(N, 3)`` points already normalised into ``[-1, 1]^3``.

    ``progress(step, parts)``, if given, is called after each of the ``cfg.total_steps`` =
    ``init_steps + steps`` steps with the loss terms of that step as floats (see the module
    docstring). Returns the field on ``device``, in training mode, with gradients still enabled
    on its parameters. ``hook`` (a :class:`~fields3d.pipelines.hooks.TrainingHook`) is told of
    every step after the closing's, its snapshots are copies of the field, and it may end the
    fit early. Raises InputError for points that are not a finite ``(N, 3)`` array of more
    than ``max(sigma_k, 8)`` points inside ``[-1, 1]^3``.
    """
    points = _check_points(points, cfg)
    device = torch.device(device)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        field = NeuralSDF(**cfg.field_settings(), device=device)
    tree = cKDTree(points)
    opt = torch.optim.Adam(field.parameters(), lr=cfg.lr, betas=(0.9, 0.99), eps=1e-15)
    step = _fit_closing(field, tree, cfg, opt, gen, progress)

    queries = sample_queries(tree, rng, cfg.queries_per_point, cfg.sigma_k)
    q_all, t_all = (torch.from_numpy(a).to(device) for a in queries)
    p_all = torch.from_numpy(points.astype(np.float32)).to(device)
    gamma = (cfg.lr_final / cfg.lr) ** (1.0 / max(cfg.steps, 1))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
    n_uniform = max(1, cfg.batch_size // 4)
    for _ in range(cfg.steps):
        pick = torch.randint(0, q_all.shape[0], (cfg.batch_size,), generator=gen).to(device)
        on = torch.randint(0, p_all.shape[0], (cfg.batch_size,), generator=gen).to(device)
        uniform = (torch.rand(n_uniform, 3, generator=gen) * 2 - 1).to(device)
        loss, parts = _pull_loss(field, q_all[pick], t_all[pick], p_all[on], uniform, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if progress is not None:
            progress(step, parts)
        if hook is not None:
            hook.step(step, parts, lambda: copy.deepcopy(field))
            if hook.should_stop():
                break
    return field


def _check_points(points, cfg: NeuralConfig) -> np.ndarray:
    arr = np.asarray(points) if isinstance(points, np.ndarray) else None
    if (
        arr is None
        or arr.ndim != 2
        or arr.shape[1] != 3
        or not np.issubdtype(arr.dtype, np.floating)
    ):
        got = f"{arr.dtype} {arr.shape}" if arr is not None else type(points).__name__
        raise InputError(f"points must be a float numpy array of shape (N, 3), got {got}")
    need = max(cfg.sigma_k, 8)  # the queries' k-th neighbour, the closing radius's 8th
    if len(arr) <= need:
        raise InputError(
            f"points must hold more than {need} points (sigma_k={cfg.sigma_k}), got {len(arr)}"
        )
    if not np.isfinite(arr).all() or np.abs(arr).max() > 1.0:
        raise InputError("points must be finite and inside [-1, 1]^3; normalise the cloud first")
    return arr.astype(np.float64)


def _fit_closing(field, tree, cfg, opt, gen, progress) -> int:
    """Regress the field onto the closing's signed distance for ``cfg.init_steps`` steps (L1)."""
    if cfg.init_steps == 0:
        return 0
    closing = closing_sdf(tree, cfg.coarse_resolution, cfg.closing_radius)
    values = closing.values.reshape(-1)
    samples = grid_points(cfg.coarse_resolution)
    band = np.flatnonzero(np.abs(values) <= closing.radius + 2.0 * closing.spacing)
    device = field.device
    x_all = torch.from_numpy(samples).to(device)
    v_all = torch.from_numpy(values).to(device)
    band_t = torch.from_numpy(band).to(device)
    # a grid point stands for its cell: jittered by up to half a spacing per axis, its target (a
    # distance, 1-Lipschitz) is off by at most that much times sqrt(3)
    half = 0.5 * closing.spacing
    n_band = cfg.batch_size // 2
    for step in range(1, cfg.init_steps + 1):
        pick = torch.cat(
            (
                band_t[torch.randint(0, band_t.numel(), (n_band,), generator=gen).to(device)],
                torch.randint(0, x_all.shape[0], (cfg.batch_size - n_band,), generator=gen).to(
                    device
                ),
            )
        )
        x = x_all[pick] + ((torch.rand(pick.numel(), 3, generator=gen) * 2 - 1) * half).to(device)
        loss = (field(x.clamp(-1.0, 1.0)) - v_all[pick]).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step, {"init": loss.item()})
    return cfg.init_steps


def _pull_loss(field: NeuralSDF, q, target, on, uniform, cfg: NeuralConfig):
    """One Neural-Pull step's loss: queries, surface points and uniform points in one forward pass."""
    nq, nu = q.shape[0], uniform.shape[0]
    x = torch.cat((q, uniform, on)).requires_grad_(True)
    f, g = field.gradient(x, create_graph=True)
    norm = g.norm(dim=1)
    fq, gq, gq_norm = f[:nq], g[:nq], norm[:nq].clamp_min(1e-8)
    pulled = q - (fq / gq_norm).unsqueeze(1) * gq
    pull = (pulled - target).square().sum(1).mean()
    surface = f[nq + nu :].abs().mean()
    eikonal = (norm - 1.0).square().mean()
    loss = cfg.w_pull * pull + cfg.w_surface * surface + cfg.w_eikonal * eikonal
    parts = {
        "pull": pull.item(),
        "surface": surface.item(),
        "eikonal": eikonal.item(),
        "loss": loss.item(),
    }
    return loss, parts
