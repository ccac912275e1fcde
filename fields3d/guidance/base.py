"""The interface every prior implements: renders and their cameras in, the SDS gradient out.

A prior (a :class:`Guidance`) is called once per training step with a batch of renders and the
cameras they were rendered from::

    out = guidance(renders, cameras, step, total_steps)   # renders (B, 3, H, W) in [0, 1]
    guidance_loss(renders, out.grad).backward()            # d loss / d renders == out.grad
    out.diagnostics["loss"], out.diagnostics["t"]          # for the progress bar and metrics

``out.grad`` is the gradient, with respect to the renders, of the score-distillation loss in its
latent-target form (:func:`fields3d.guidance.sds.latent_target_loss`):

    L = 1/B * sum_b 1/2 ||z_b - sg(z_b - g_b)||^2,    g_b = w(t_b) (eps_hat(z_t, t_b) - eps_b),

where ``z_b = latents(render_b)`` (the VAE encoding of a picture, or the picture itself),
``z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps`` and ``sg`` stops the gradient; so
``dL/dz_b = g_b / B``, pulled back to the renders through ``latents`` by autograd. Applying it
(``renders.backward(out.grad)`` or :func:`guidance_loss`) trains what made the renders exactly as
``L.backward()`` would, without keeping the prior's graph alive in the caller's.

Cameras are given in spherical coordinates around a centre (:class:`SphericalCameras`); the
pipeline renders its field from ``cameras.to_cameras(size)`` and a prior that renders something
itself (target guidance) builds the very same :class:`~fields3d.render.cameras.Cameras`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._checks import check_int, is_int, is_number, parse_device, require_torch_cuda
from ..errors import InputError
from ..render.cameras import Cameras, focal_from_fov
from .sds import ScoreDistillation, guard_nonfinite, latent_target_loss

UP_AXES = ("y", "z")


def _got(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"{str(value.dtype).removeprefix('torch.')} {tuple(value.shape)}"
    return type(value).__name__


@dataclass(frozen=True, eq=False)
class SphericalCameras:
    """``B`` cameras on spheres around ``center``, each looking at it, with square pictures.

    Camera ``b`` sits at ``center + radius[b] * (cos(el) * flat(az) + sin(el) * up)`` with ``el``
    and ``az`` its elevation and azimuth, ``flat(az) = (sin az, 0, cos az)`` for ``up="y"``
    (azimuth 0 looks at the ``+z`` side, positive angles turn towards ``+x``) and
    ``(cos az, sin az, 0)`` for ``up="z"`` (azimuth 0 on ``+x``), exactly as
    :func:`fields3d.render.cameras.ring_cameras` places its frames. "Front" (view-dependent
    prompts) is azimuth 0.

    Attributes:
        azimuth: ``(B,)`` float degrees (any value; 360 apart is the same view).
        elevation: ``(B,)`` float degrees in ``(-90, 90)`` above the plane normal to ``up``.
        radius: ``(B,)`` float distance from ``center`` in the scene's units (> 0).
        fov: ``(B,)`` float field of view of the square picture in degrees, in ``(0, 180)``.
        center: the point every camera looks at (3 numbers, default the origin).
        up: ``"y"`` (default) or ``"z"``: the world axis that points up in the pictures.
        light: ``(B, 3)`` float positions of a point light per view (DreamFusion's shading), or
            None for a headlight (the light at the camera). Only priors that shade something
            themselves read it (target guidance of a mesh).

    Raises:
        InputError: a wrong type, shape or value (non-finite, out of range) of an attribute, or
            tensors on different devices.

    Example:
        >>> import torch
        >>> from fields3d.guidance import SphericalCameras
        >>> views = SphericalCameras(
        ...     azimuth=torch.tensor([0.0, 90.0]),  # (B,) degrees
        ...     elevation=torch.tensor([0.0, 0.0]),
        ...     radius=torch.tensor([2.0, 2.0]),  # scene units
        ...     fov=torch.tensor([40.0, 40.0]),  # degrees
        ... )
        >>> views.positions().tolist()  # azimuth 0 on +z, 90 on +x (up="y")
        [[0.0, 0.0, 2.0], [2.0, 0.0, 1.2246467991473532e-16]]
        >>> cams = views.to_cameras(64)  # fields3d.render.cameras.Cameras, 64 x 64 pixels
        >>> cams.c2w.shape, cams.width
        (torch.Size([2, 4, 4]), 64)
    """

    azimuth: torch.Tensor
    elevation: torch.Tensor
    radius: torch.Tensor
    fov: torch.Tensor
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    up: str = "y"
    light: torch.Tensor | None = None

    def __post_init__(self) -> None:
        az = self.azimuth
        if not (isinstance(az, torch.Tensor) and az.is_floating_point() and az.dim() == 1):
            raise InputError(f"azimuth must be a float tensor of shape (B,), got {_got(az)}")
        n = az.shape[0]
        for name in ("elevation", "radius", "fov"):
            value = getattr(self, name)
            if not (
                isinstance(value, torch.Tensor)
                and value.is_floating_point()
                and tuple(value.shape) == (n,)
            ):
                raise InputError(
                    f"{name} must be a float tensor of shape ({n},) like azimuth, got {_got(value)}"
                )
        if self.light is not None and not (
            isinstance(self.light, torch.Tensor)
            and self.light.is_floating_point()
            and tuple(self.light.shape) == (n, 3)
        ):
            raise InputError(
                f"light must be None or a float tensor of shape ({n}, 3) of light positions, "
                f"got {_got(self.light)}"
            )
        tensors = {"elevation": self.elevation, "radius": self.radius, "fov": self.fov}
        if self.light is not None:
            tensors["light"] = self.light
        for name, value in tensors.items():
            if value.device != az.device:
                raise InputError(f"{name} must be on {az.device} like azimuth, got {value.device}")
        if self.up not in UP_AXES:
            raise InputError(f"up must be 'y' or 'z', got {self.up!r}")
        center = self.center
        if not (
            isinstance(center, (tuple, list))
            and len(center) == 3
            and all(is_number(c) and math.isfinite(c) for c in center)
        ):
            raise InputError(f"center must be 3 finite numbers, got {center!r}")
        object.__setattr__(self, "center", tuple(float(c) for c in center))
        if not n:
            return
        checks = (
            ("azimuth", az, lambda v: torch.isfinite(v), "finite degrees"),
            (
                "elevation",
                self.elevation,
                lambda v: (v > -90) & (v < 90),
                "degrees in (-90, 90)",
            ),
            ("radius", self.radius, lambda v: torch.isfinite(v) & (v > 0), "finite and > 0"),
            ("fov", self.fov, lambda v: (v > 0) & (v < 180), "degrees in (0, 180)"),
        )
        for name, value, ok, want in checks:
            good = ok(value)
            if not bool(good.all()):
                i = int(torch.nonzero(~good)[0, 0])
                raise InputError(f"{name}[{i}] must be {want}, got {float(value[i])}")
        if self.light is not None and not bool(torch.isfinite(self.light).all()):
            i = int(torch.nonzero(~torch.isfinite(self.light).all(dim=1))[0, 0])
            raise InputError(f"light[{i}] must be 3 finite numbers, got {self.light[i].tolist()}")

    def __len__(self) -> int:
        return self.azimuth.shape[0]

    @property
    def device(self) -> torch.device:
        return self.azimuth.device

    def positions(self) -> torch.Tensor:
        """``(B, 3)`` float64 camera positions in world coordinates."""
        az = torch.deg2rad(self.azimuth.double())
        el = torch.deg2rad(self.elevation.double())
        zero = torch.zeros_like(az)
        if self.up == "y":
            flat, axis = torch.stack([az.sin(), zero, az.cos()], dim=1), (0.0, 1.0, 0.0)
        else:
            flat, axis = torch.stack([az.cos(), az.sin(), zero], dim=1), (0.0, 0.0, 1.0)
        up = torch.tensor(axis, dtype=torch.float64, device=az.device)
        offset = el.cos()[:, None] * flat + el.sin()[:, None] * up
        centre = torch.tensor(self.center, dtype=torch.float64, device=az.device)
        return centre + self.radius.double()[:, None] * offset

    def to_cameras(self, size: int, dtype: torch.dtype = torch.float32) -> Cameras:
        """The pinhole :class:`~fields3d.render.cameras.Cameras` of these views, ``size x size``
        pixels, in ``dtype`` (float32 or float64) on this batch's device.

        Each camera-to-world matrix is :func:`~fields3d.render.cameras.look_at` from the camera's
        position to ``center`` with ``up`` (computed in float64 for the whole batch); the focal
        length is ``size / 2 / tan(fov / 2)`` pixels and the principal point the picture's middle.
        """
        check_int("size", size, 1)
        if dtype not in (torch.float32, torch.float64):
            raise InputError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        n, device = len(self), self.device
        eye = self.positions()
        centre = torch.tensor(self.center, dtype=torch.float64, device=device)
        axis = (0.0, 1.0, 0.0) if self.up == "y" else (0.0, 0.0, 1.0)
        up = torch.tensor(axis, dtype=torch.float64, device=device).expand(n, 3)
        back = eye - centre
        back = back / back.norm(dim=1, keepdim=True)
        right = torch.linalg.cross(up, back, dim=1)
        right = right / right.norm(dim=1, keepdim=True)
        c2w = torch.eye(4, dtype=torch.float64, device=device).repeat(n, 1, 1)
        c2w[:, :3, 0], c2w[:, :3, 1] = right, torch.linalg.cross(back, right, dim=1)
        c2w[:, :3, 2], c2w[:, :3, 3] = back, eye
        focal = torch.tensor(
            [focal_from_fov(math.radians(f), size) for f in self.fov.tolist()],
            dtype=dtype,
            device=device,
        )
        c = torch.full((n,), size / 2, dtype=dtype, device=device)
        return Cameras(c2w.to(dtype), focal, focal.clone(), c, c.clone(), size, size)

    def light_positions(self) -> torch.Tensor:
        """``(B, 3)`` float64 light positions: ``light``, or the cameras' own (a headlight)."""
        return self.positions() if self.light is None else self.light.double()


@dataclass
class GuidanceOutput:
    """What a prior returns for one batch of renders.

    Attributes:
        grad: ``(B, C, H, W)`` the gradient of the SDS loss with respect to the renders, in their
            dtype and on their device (zero for a sample whose gradient was not finite).
        diagnostics: plain numbers for progress bars and metrics: ``loss`` (the latent-target
            loss's value), ``grad_norm`` (of the applied latent gradient ``g``), ``render_grad_norm``
            (of ``grad``), ``t`` (the timestep of each sample), ``t_range`` (the bounds sampled
            from this step), ``nonfinite`` and ``nonfinite_samples`` (how many samples had their
            gradient zeroed by the NaN guard, and which) and, for some
            priors, more (``prompts``: the view-dependent prompt of each sample).

    Example:
        >>> import torch
        >>> from fields3d.guidance import GuidanceOutput, guidance_loss
        >>> renders = torch.rand(2, 3, 8, 8, requires_grad=True)  # (B, C, H, W)
        >>> out = GuidanceOutput(torch.full((2, 3, 8, 8), 0.1), {"loss": 0.5, "t": [120, 640]})
        >>> out.grad.shape, out.diagnostics["t"]  # what a prior's call returns
        (torch.Size([2, 3, 8, 8]), [120, 640])
        >>> guidance_loss(renders, out.grad).backward()  # apply it to whatever made the renders
        >>> torch.allclose(renders.grad, out.grad)
        True
    """

    grad: torch.Tensor
    diagnostics: dict = field(default_factory=dict)


def guidance_loss(renders: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """A scalar whose autograd gradient with respect to ``renders`` is ``grad``.

    The latent-target form ``1/2 ||x - sg(x - grad)||^2`` (``sg``: stop gradient), so
    ``guidance_loss(renders, out.grad).backward()`` applies a prior's gradient to whatever made
    the renders. Its value is ``1/2 ||grad||^2``, not the SDS objective (which has no closed
    form); report ``out.diagnostics["loss"]`` instead.

    Args:
        renders: ``(B, C, H, W)`` float, part of the graph to train.
        grad: the same shape: a :class:`GuidanceOutput`'s ``grad``.

    Raises:
        InputError: the shapes differ.

    Example:
        >>> import torch
        >>> from fields3d.guidance import guidance_loss
        >>> renders = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)  # (B, C, H, W)
        >>> grad = torch.full((1, 3, 2, 2), 0.25)
        >>> guidance_loss(renders, grad).backward()
        >>> torch.equal(renders.grad, grad)
        True
    """
    if not (isinstance(renders, torch.Tensor) and isinstance(grad, torch.Tensor)):
        raise InputError(
            f"renders and grad must be tensors, got {type(renders).__name__} and {type(grad).__name__}"
        )
    if renders.shape != grad.shape:
        raise InputError(
            f"grad must have the renders' shape {tuple(renders.shape)}, got {tuple(grad.shape)}"
        )
    residual = renders - renders.detach() + grad.detach().to(renders.dtype)  # exactly grad
    return 0.5 * (residual**2).sum()


def resolve_device(device) -> torch.device:
    """``"auto"`` (a GPU when torch sees one, else the CPU), ``"cpu"``, ``"cuda"``,
    ``"cuda:<n>"`` or a ``torch.device``; BackendUnavailable for CUDA without a GPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = parse_device(device, cpu_or_cuda=True)
    if dev.type == "cuda":
        require_torch_cuda(device)
    return dev


class Guidance:
    """Base class of the priors: it checks the call, runs the shared SDS step and pulls the
    latent gradient back to the renders. A prior sets :attr:`name` (by
    :func:`~fields3d.guidance.register`) and implements :meth:`latents` and
    :meth:`predict_noise` (and, where it needs one, :meth:`prepare`).

    Args (common to every prior, keywords):
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:<n>"`` or a torch.device.
        seed: seeds the timesteps and noise (a CPU ``torch.Generator``: the same on any device).
        weighting, t_min, t_max, t_max_end, grad_clip: the SDS settings of
            :class:`~fields3d.guidance.sds.ScoreDistillation`.

    A call, ``prior(renders, cameras, step, total_steps)``, takes ``(B, 3, H, W)`` float renders
    in ``[0, 1]`` and their B :class:`SphericalCameras` and returns a :class:`GuidanceOutput`
    whose ``grad`` has the renders' shape, dtype and device (:meth:`__call__`).

    Example:
        A prior that pulls every render toward mid-grey: latents are the renders themselves
        and its noise prediction is the exact denoiser of an all-grey picture (unregistered, so
        :func:`~fields3d.guidance.create` does not know it; a real prior adds ``@register``).

        >>> import torch
        >>> from fields3d.guidance import Guidance, NoiseSchedule, ScoreDistillation
        >>> from fields3d.guidance import SphericalCameras, alphas_cumprod
        >>> class Grey(Guidance):
        ...     def __init__(self):
        ...         self.device = torch.device("cpu")
        ...         self.sds = ScoreDistillation(NoiseSchedule(alphas_cumprod()), seed=0)
        ...     def latents(self, renders):  # (B, 3, H, W) -> (B, C', h, w)
        ...         return renders
        ...     def predict_noise(self, noisy, t, cameras, context):  # eps_hat(z_t, t)
        ...         a = self.sds.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        ...         return (noisy - a.sqrt() * 0.5) / (1 - a).sqrt()
        >>> two = torch.ones(2)
        >>> cams = SphericalCameras(0 * two, 0 * two, 2 * two, 40 * two)  # (B,) each
        >>> renders = torch.ones(2, 3, 8, 8)  # white
        >>> out = Grey()(renders, cams, step=0, total_steps=100)
        >>> out.grad.shape, bool((out.grad > 0).all())  # descending it darkens white toward grey
        (torch.Size([2, 3, 8, 8]), True)
        >>> out.diagnostics["t_range"], len(out.diagnostics["t"]), out.diagnostics["nonfinite"]
        ([20, 980], 2, 0)
    """

    name: str = ""  # set by register()
    #: The constructor argument the part after ``name:`` in a spec fills (None: takes none).
    spec_argument: str | None = None
    #: How a spec names this prior, for messages (``target:MESH_OR_CHECKPOINT``).
    spec_usage: str = ""

    sds: ScoreDistillation
    device: torch.device

    def latents(self, renders: torch.Tensor) -> torch.Tensor:
        """``(B, C', h, w)`` float latents of ``renders``, differentiable with respect to them."""
        raise NotImplementedError

    def prepare(self, renders: torch.Tensor, cameras: SphericalCameras):
        """What :meth:`predict_noise` needs for this batch besides the noisy latents (the views'
        text embeddings, the target's pictures), computed once per call; None by default."""
        return None

    def predict_noise(
        self, noisy: torch.Tensor, t: torch.Tensor, cameras: SphericalCameras, context
    ) -> torch.Tensor:
        """The prior's noise prediction ``eps_hat(z_t, t)`` ``(B, C', h, w)`` for the noisy latents
        ``noisy`` at integer timesteps ``t`` ``(B,)``, given :meth:`prepare`'s ``context`` (called
        without gradient)."""
        raise NotImplementedError

    def config(self) -> dict:
        """The settings this prior was built with (plain values, for a run's config.json)."""
        return {"guidance": self.name, **self.sds.config()}

    def extra_diagnostics(self, cameras: SphericalCameras) -> dict:
        """Per-call diagnostics beyond the shared ones (view prompts, ...)."""
        return {}

    def state_dict(self) -> dict:
        """The random state (for ``--resume``: the same draws as an uninterrupted run)."""
        return self.sds.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sds.load_state_dict(state)

    def __call__(
        self,
        renders: torch.Tensor,
        cameras: SphericalCameras,
        step: int,
        total_steps: int,
    ) -> GuidanceOutput:
        """The SDS gradient on ``renders`` (see the module docstring).

        Args:
            renders: ``(B, C, H, W)`` float, pictures in ``[0, 1]`` (C = 3) rendered from
                ``cameras``; their graph is not used (the gradient is returned, not applied).
            cameras: the B views. step: this step (0-based). total_steps: the run's length
                (the timestep range anneals over it).

        Returns:
            A :class:`GuidanceOutput`.

        Raises:
            InputError: wrong shapes, dtypes or devices, or a step out of range.
        """
        self._check_call(renders, cameras, step, total_steps)
        x = renders.detach().to(self.device).requires_grad_(True)
        with torch.enable_grad():
            z = self.latents(x)
        with torch.no_grad():
            context = self.prepare(x.detach(), cameras)

        def predict(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.predict_noise(noisy, t, cameras, context)

        g, diagnostics = self.sds(z.detach(), predict, step, total_steps)
        return self._pull_back(renders, x, z, g, diagnostics, cameras)

    def _pull_back(self, renders, x, z, g, diagnostics, cameras) -> GuidanceOutput:
        with torch.enable_grad():
            loss = latent_target_loss(z.float(), g)
            (grad,) = torch.autograd.grad(loss, x)
        # the pull-back can overflow where g did not (a sample zeroed in g counts once)
        grad, bad = guard_nonfinite(grad.float())
        new = sorted(set(bad) - set(diagnostics["nonfinite_samples"]))
        diagnostics["nonfinite_samples"] = sorted(set(bad) | set(diagnostics["nonfinite_samples"]))
        diagnostics["nonfinite"] = len(diagnostics["nonfinite_samples"])
        self.sds.nonfinite_total += len(new)
        diagnostics["render_grad_norm"] = float(grad.norm())
        diagnostics.update(self.extra_diagnostics(cameras))
        return GuidanceOutput(grad.to(device=renders.device, dtype=renders.dtype), diagnostics)

    def _check_call(self, renders, cameras, step, total_steps) -> None:
        if not (
            isinstance(renders, torch.Tensor) and renders.is_floating_point() and renders.dim() == 4
        ):
            raise InputError(
                f"renders must be a float tensor of shape (B, C, H, W), got {_got(renders)}"
            )
        if not isinstance(cameras, SphericalCameras):
            raise InputError(
                f"cameras must be SphericalCameras (azimuth, elevation, radius, fov), got {type(cameras).__name__}"
            )
        if len(cameras) != renders.shape[0] or renders.shape[0] == 0:
            raise InputError(
                f"renders and cameras must hold the same number of views (>= 1), got "
                f"{renders.shape[0]} renders and {len(cameras)} cameras"
            )
        check_int("total_steps", total_steps, 1)
        if not is_int(step) or not 0 <= step <= total_steps:
            raise InputError(f"step must be an integer from 0 to {total_steps}, got {step!r}")
