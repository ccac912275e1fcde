"""Score distillation sampling (SDS): the mechanics every prior shares (DreamFusion, threestudio).

One SDS step on latents ``z`` ``(B, C, h, w)`` (:class:`ScoreDistillation`):

1. **Timesteps.** ``t_b`` is drawn uniformly from the integers ``[lo, hi]`` with
   ``lo = floor(T * t_min)`` and ``hi = floor(T * t_max(s))``, ``T`` the scheduler's
   ``num_train_timesteps``. ``t_min`` stays fixed (0.02); the upper bound anneals linearly over the
   run, ``t_max(s) = t_max + (t_max_end - t_max) * min(1, s / S)`` at step ``s`` of ``S`` (0.98 to
   0.5 by default: large noise early shapes the object, smaller noise late refines it).
2. **Noise.** ``z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps``, ``eps ~ N(0, I)``; ``abar`` is the
   DDPM ``alphas_cumprod`` of the scheduler config (:class:`NoiseSchedule`).
3. **Residual.** ``g = w(t) (eps_hat(z_t, t) - eps)`` with the prior's noise prediction
   ``eps_hat`` and the weighting ``w`` (:func:`weighting`): ``"sds"`` ``1 - abar_t``
   (DreamFusion's, the default), ``"uniform"`` ``1``, ``"fantasia3d"``
   ``sqrt(abar_t) (1 - abar_t)``.
4. **Guards.** A sample whose ``g`` has a NaN or infinite entry is zeroed entirely (never
   applied) and counted; then, with ``grad_clip = c``, every entry is clamped to ``[-c, c]``
   (threestudio's ``grad_clip``).
5. **Loss.** The latent-target form ``1/B sum_b 1/2 ||z_b - sg(z_b - g_b)||^2``
   (:func:`latent_target_loss`), whose gradient with respect to ``z_b`` is ``g_b / B``.

Timesteps and noise come from one CPU ``torch.Generator`` seeded at construction, so a seed gives
the same draws on any device, and :meth:`ScoreDistillation.state_dict` lets a resumed run continue
them. The noise schedule needs no diffusers: :func:`alphas_cumprod` computes it from the
scheduler config's ``beta_schedule``, ``beta_start``, ``beta_end`` and ``num_train_timesteps``
exactly as diffusers' DDPM/DDIM schedulers do (in float32).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .._checks import MAX_SEED, check_choice, check_int, is_number
from ..errors import CheckpointError, InputError

T_MIN, T_MAX, T_MAX_END = 0.02, 0.98, 0.5
WEIGHTINGS = ("sds", "uniform", "fantasia3d")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "v_prediction")
#: Stable Diffusion 1.x / 2.x's training schedule (their scheduler configs' values).
SD_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
}
MAX_TIMESTEPS = 100_000  # num_train_timesteps past this is a corrupt config


def alphas_cumprod(
    num_train_timesteps: int = 1000,
    beta_start: float = 0.00085,
    beta_end: float = 0.012,
    beta_schedule: str = "scaled_linear",
    trained_betas=None,
) -> torch.Tensor:
    """``(T,)`` float32 ``abar_t = prod_{s <= t} (1 - beta_s)`` of a DDPM noise schedule.

    ``beta`` is ``linspace(beta_start, beta_end, T)`` for ``"linear"``,
    ``linspace(sqrt(beta_start), sqrt(beta_end), T) ** 2`` for ``"scaled_linear"`` (Stable
    Diffusion's), and for ``"squaredcos_cap_v2"`` (the cosine schedule)
    ``beta_i = min(1 - f((i + 1) / T) / f(i / T), 0.999)`` with
    ``f(u) = cos((u + 0.008) / 1.008 * pi / 2) ** 2``; ``trained_betas`` (a list), when given,
    replaces them all. Computed in float32 as diffusers does, so values match its schedulers'.

    Raises:
        InputError: an unknown schedule, ``num_train_timesteps`` not an integer from 1 to
            100000, or betas outside ``(0, 1)``.

    Example:
        >>> from fields3d.guidance import alphas_cumprod
        >>> abar = alphas_cumprod(1000, 0.00085, 0.012, "scaled_linear")  # Stable Diffusion's
        >>> abar.shape, abar.dtype, round(float(abar[0]), 5), round(float(abar[-1]), 4)
        (torch.Size([1000]), torch.float32, 0.99915, 0.0047)
    """
    if trained_betas is not None:
        try:
            betas = torch.tensor(trained_betas, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            betas = None
        if betas is None or betas.dim() != 1 or not len(betas):
            raise InputError(f"trained_betas must be a list of numbers, got {trained_betas!r}")
    else:
        check_int("num_train_timesteps", num_train_timesteps, 1, MAX_TIMESTEPS)
        check_choice("beta_schedule", beta_schedule, BETA_SCHEDULES)
        t = num_train_timesteps
        if beta_schedule == "squaredcos_cap_v2":

            def f(u: float) -> float:
                return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = torch.tensor(
                [min(1 - f((i + 1) / t) / f(i / t), 0.999) for i in range(t)], dtype=torch.float32
            )
        else:
            for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
                if not (is_number(value) and 0 < value < 1):
                    raise InputError(f"{name} must be a number in (0, 1), got {value!r}")
            if beta_schedule == "linear":
                betas = torch.linspace(beta_start, beta_end, t, dtype=torch.float32)
            else:
                betas = torch.linspace(beta_start**0.5, beta_end**0.5, t, dtype=torch.float32) ** 2
    if not bool(((betas > 0) & (betas < 1)).all()):
        raise InputError("the noise schedule's betas must all lie in (0, 1)")
    return torch.cumprod(1.0 - betas, dim=0)


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A diffusion model's training noise schedule: ``alphas_cumprod`` and what its network
    predicts (``"epsilon"``, or ``"v_prediction"``: ``v = sqrt(abar) eps - sqrt(1 - abar) x``).

    Attributes:
        alphas_cumprod: ``(T,)`` float32 ``abar_t`` (:func:`alphas_cumprod`).
        prediction_type: ``"epsilon"`` (default) or ``"v_prediction"``.

    Example:
        >>> import torch
        >>> from fields3d.guidance import NoiseSchedule
        >>> config = {"prediction_type": "v_prediction", "clip_sample": False}  # sampling: ignored
        >>> schedule = NoiseSchedule.from_config(config)  # the rest: Stable Diffusion's
        >>> schedule.num_train_timesteps, schedule.alphas_cumprod.shape, schedule.prediction_type
        (1000, torch.Size([1000]), 'v_prediction')
        >>> gen = torch.Generator().manual_seed(0)
        >>> x, eps = torch.rand(2, 4, 8, 8, generator=gen), torch.randn(2, 4, 8, 8, generator=gen)
        >>> t = torch.tensor([100, 900])  # (B,) int64 timesteps
        >>> a = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        >>> noisy = a.sqrt() * x + (1 - a).sqrt() * eps  # z_t
        >>> v = a.sqrt() * eps - (1 - a).sqrt() * x  # what a v-prediction network predicts
        >>> torch.allclose(schedule.to_noise(v, noisy, t), eps, atol=1e-5)  # back to the noise
        True
    """

    alphas_cumprod: torch.Tensor  # (T,) float32
    prediction_type: str = "epsilon"

    @property
    def num_train_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        """From a diffusers scheduler config (``scheduler_config.json``'s dict; DDPM, DDIM, PNDM,
        Euler, ... share these keys): ``num_train_timesteps``, ``beta_start``, ``beta_end``,
        ``beta_schedule``, ``trained_betas`` and ``prediction_type``, each defaulting to Stable
        Diffusion's. Other keys (sampling settings) are ignored.

        Raises:
            InputError: a value :func:`alphas_cumprod` rejects, or an unknown prediction type.
        """
        if not isinstance(config, dict):
            raise InputError(f"a scheduler config must be a dict, got {type(config).__name__}")
        settings = {k: config.get(k, v) for k, v in SD_SCHEDULE.items()}
        prediction = config.get("prediction_type", "epsilon")
        check_choice("prediction_type", prediction, PREDICTION_TYPES)
        return cls(
            alphas_cumprod(**settings, trained_betas=config.get("trained_betas")), prediction
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> NoiseSchedule:
        """From a ``scheduler_config.json``.

        Raises:
            CheckpointError: the file cannot be read, is not a JSON object, or holds values
                :meth:`from_config` rejects (the message names the file and the reason).
        """
        path = Path(path)
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
            return cls.from_config(config)
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            raise CheckpointError(f"cannot read the scheduler config {path} ({reason})") from exc

    def to_noise(self, output: torch.Tensor, noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise prediction ``eps_hat`` from a network's ``output`` at ``noisy`` latents ``z_t``
        and timesteps ``t`` ``(B,)``: the output itself for ``"epsilon"``, and
        ``sqrt(abar) v + sqrt(1 - abar) z_t`` for ``"v_prediction"``."""
        if self.prediction_type == "epsilon":
            return output
        a = self.alphas_cumprod.to(noisy.device)[t].view(-1, *[1] * (noisy.dim() - 1))
        return a.sqrt() * output + (1 - a).sqrt() * noisy


def weighting(name: str, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The SDS weight ``w(t)`` for ``abar_t`` (any shape): ``"sds"`` ``1 - abar``, ``"uniform"``
    ``1``, ``"fantasia3d"`` ``sqrt(abar) (1 - abar)``.

    Example:
        >>> import torch
        >>> from fields3d.guidance import weighting
        >>> abar = torch.tensor([0.25, 0.64])
        >>> [[round(w, 4) for w in weighting(name, abar).tolist()] for name in ("sds", "fantasia3d")]
        [[0.75, 0.36], [0.375, 0.288]]
    """
    check_choice("weighting", name, WEIGHTINGS)
    if name == "sds":
        return 1.0 - alpha_bar
    if name == "uniform":
        return torch.ones_like(alpha_bar)
    return alpha_bar.sqrt() * (1.0 - alpha_bar)


def noise_residual(predicted: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``eps_hat - eps``: the SDS residual before weighting (the noise that was added cancels the
    prediction's own, leaving the prior's pull)."""
    return predicted - noise


def latent_target_loss(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``1/B sum_b 1/2 ||z_b - sg(z_b - g_b)||^2``: a loss whose gradient with respect to ``z``
    ``(B, ...)`` is ``g / B`` (``sg``: stop gradient; threestudio's reparameterisation).

    Written ``z - sg(z) + g`` inside the square (the same value), so the gradient is ``g / B``
    to float precision of ``g`` rather than ``z - (z - g)``, rounded at ``z``'s magnitude.

    Example:
        >>> import torch
        >>> from fields3d.guidance import latent_target_loss
        >>> z = torch.zeros(2, 4, 8, 8, requires_grad=True)  # (B, C, h, w) latents
        >>> g = torch.ones(2, 4, 8, 8)  # the SDS residual w(t) (eps_hat - eps)
        >>> latent_target_loss(z, g).backward()
        >>> z.grad.unique().tolist()  # g / B
        [0.5]
    """
    residual = z - z.detach() + g.detach().to(z.dtype)
    return 0.5 * (residual**2).sum() / z.shape[0]


def guard_nonfinite(g: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """``g`` ``(B, ...)`` with every sample that holds a NaN or infinite entry set to zero, and
    the indices of those samples."""
    bad = ~torch.isfinite(g).flatten(1).all(dim=1)
    samples = torch.nonzero(bad).flatten().tolist()
    if samples:
        g = torch.where(bad.view(-1, *[1] * (g.dim() - 1)), torch.zeros_like(g), g)
    return g, samples


def _floor(x: float) -> int:
    """``floor(x)``, forgiving float rounding just below an integer (1000 * 0.932 is 931.99...)."""
    return math.floor(x + 1e-9)


def _check_fraction(name: str, value) -> float:
    if not (is_number(value) and 0 <= value <= 1):
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class ScoreDistillation:
    """The SDS step of the module docstring, for one prior's noise schedule.

    Args:
        schedule: the prior's :class:`NoiseSchedule`.
        weighting: ``"sds"`` (default), ``"uniform"`` or ``"fantasia3d"``.
        t_min, t_max, t_max_end: timestep fractions, ``0 <= t_min <= t_max, t_max_end <= 1``
            (defaults 0.02, 0.98, 0.5).
        grad_clip: clamp each entry of ``g`` to ``[-grad_clip, grad_clip]`` (a number > 0), or
            None (default) for no clamp.
        seed: the generator's seed, an integer from 0 to 2^63 - 1.

    ``sds(z, predict_noise, step, total_steps)`` returns ``(g, diagnostics)``: the residual ``g``
    as ``(B, ...)`` float32 on ``z``'s device for latents ``z`` ``(B, ...)``, with
    ``predict_noise(z_t, t)`` mapping the noisy latents and ``(B,)`` int64 timesteps to a noise
    prediction of ``z``'s shape.

    Raises:
        InputError: a setting out of range.

    Example:
        >>> import torch
        >>> from fields3d.guidance import NoiseSchedule, ScoreDistillation, alphas_cumprod
        >>> schedule = NoiseSchedule(alphas_cumprod())  # Stable Diffusion's, T = 1000
        >>> sds = ScoreDistillation(schedule, seed=0)
        >>> [sds.timestep_range(s, 100) for s in (0, 50, 100)]  # t_max anneals 0.98 -> 0.5
        [(20, 980), (20, 740), (20, 500)]
        >>> z = torch.rand(2, 4, 8, 8)  # (B, C, h, w) latents
        >>> def exact(noisy, t):  # the exact denoiser of z itself: nothing to pull
        ...     a = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        ...     return (noisy - a.sqrt() * z) / (1 - a).sqrt()
        >>> g, info = sds(z, exact, step=0, total_steps=100)
        >>> g.shape, g.dtype, bool(g.abs().max() < 1e-3), info["t_range"]
        (torch.Size([2, 4, 8, 8]), torch.float32, True, [20, 980])
        >>> g, info = sds(z, lambda noisy, t: noisy * float("nan"), step=1, total_steps=100)
        >>> bool((g == 0).all()), info["nonfinite_samples"]  # the NaN guard zeroes and counts
        (True, [0, 1])
    """

    def __init__(
        self,
        schedule: NoiseSchedule,
        *,
        weighting: str = "sds",
        t_min: float = T_MIN,
        t_max: float = T_MAX,
        t_max_end: float = T_MAX_END,
        grad_clip: float | None = None,
        seed: int = 0,
    ) -> None:
        check_choice("weighting", weighting, WEIGHTINGS)
        t_min, t_max, t_max_end = (
            _check_fraction(n, v)
            for n, v in (("t_min", t_min), ("t_max", t_max), ("t_max_end", t_max_end))
        )
        if t_min > min(t_max, t_max_end):
            raise InputError(
                f"t_min must not exceed t_max or t_max_end, got t_min {t_min}, t_max {t_max}, "
                f"t_max_end {t_max_end}"
            )
        if grad_clip is not None and not (
            is_number(grad_clip) and math.isfinite(grad_clip) and grad_clip > 0
        ):
            raise InputError(f"grad_clip must be None or a number > 0, got {grad_clip!r}")
        check_int("seed", seed, 0, MAX_SEED)
        self.schedule = schedule
        self.weighting, self.t_min, self.t_max, self.t_max_end = weighting, t_min, t_max, t_max_end
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.seed = seed
        self.generator = torch.Generator("cpu").manual_seed(seed)
        self.nonfinite_total = 0  # samples zeroed by the NaN guard since construction

    def config(self) -> dict:
        return {
            "weighting": self.weighting,
            "t_min": self.t_min,
            "t_max": self.t_max,
            "t_max_end": self.t_max_end,
            "grad_clip": self.grad_clip,
            "seed": self.seed,
        }

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "nonfinite_total": self.nonfinite_total}

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.set_state(state["generator"])
            self.nonfinite_total = int(state["nonfinite_total"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InputError(
                f"not a guidance state (a dict from state_dict()): {type(exc).__name__}: {exc}"
            ) from None

    def timestep_range(self, step: int, total_steps: int) -> tuple[int, int]:
        """``(lo, hi)``: the integer timesteps step ``step`` of ``total_steps`` draws from
        (inclusive; module docstring)."""
        t = self.schedule.num_train_timesteps
        progress = min(1.0, step / total_steps)
        upper = self.t_max + (self.t_max_end - self.t_max) * progress
        lo = min(_floor(t * self.t_min), t - 1)
        hi = min(max(_floor(t * upper), lo), t - 1)
        return lo, hi

    def draw(
        self, shape: tuple[int, ...], step: int, total_steps: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, eps)``: ``(B,)`` int64 timesteps and ``shape`` float32 noise, on the CPU."""
        lo, hi = self.timestep_range(step, total_steps)
        t = torch.randint(lo, hi + 1, (shape[0],), generator=self.generator)
        noise = torch.randn(shape, generator=self.generator, dtype=torch.float32)
        return t, noise

    def __call__(
        self,
        z: torch.Tensor,
        predict_noise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        step: int,
        total_steps: int,
    ) -> tuple[torch.Tensor, dict]:
        """The guarded, clipped SDS residual ``g`` ``(B, ...)`` float32 for latents ``z`` (no
        gradient), and the step's diagnostics.

        Args:
            z: ``(B, ...)`` float latents. predict_noise: ``(z_t, t) -> eps_hat`` of ``z``'s shape.
            step, total_steps: where the run is (the timestep range anneals).
        """
        z = z.detach().float()
        t_cpu, noise = self.draw(tuple(z.shape), step, total_steps)
        t, noise = t_cpu.to(z.device), noise.to(z.device)
        view = (-1, *[1] * (z.dim() - 1))
        a = self.schedule.alphas_cumprod.to(z.device)[t].view(view)
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        predicted = predict_noise(noisy, t).float()
        g = weighting(self.weighting, a) * noise_residual(predicted, noise)
        g, bad = guard_nonfinite(g)
        if self.grad_clip is not None:
            g = g.clamp(-self.grad_clip, self.grad_clip)
        self.nonfinite_total += len(bad)
        b = z.shape[0]
        norms = torch.stack([(g**2).sum() / (2 * b), g.norm()]).tolist()
        lo, hi = self.timestep_range(step, total_steps)
        diagnostics = {
            "loss": norms[0],
            "grad_norm": norms[1],
            "t": t_cpu.tolist(),
            "t_range": [lo, hi],
            "nonfinite": len(bad),
            "nonfinite_samples": bad,
        }
        return g, diagnostics
