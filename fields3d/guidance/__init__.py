"""Guidance for text-to-3D: priors that turn renders into score-distillation (SDS) gradients.

Every prior implements one interface (:class:`Guidance`): renders ``(B, 3, H, W)`` in ``[0, 1]``,
the :class:`SphericalCameras` they were rendered from and the step in, the SDS gradient on the
renders and diagnostics out (:class:`GuidanceOutput`); :func:`guidance_loss` turns the gradient
into a loss to ``backward()``. Priors register a name and :func:`create` builds one from a spec::

    from fields3d.guidance import SphericalCameras, create, guidance_loss

    prior = create("target:assets/meshes/spot.obj")        # no model needed
    prior = create("stable_diffusion", prompt="a ceramic mug", model="/models/sd21")
    cams = SphericalCameras(azimuth, elevation, radius, fov)  # (B,) tensors, degrees
    out = prior(renders, cams, step, total_steps)
    guidance_loss(renders, out.grad).backward()

Registered: ``stable_diffusion`` (needs ``pip install 'fields3d[generate]'`` and a local model
folder) and ``target`` (the exact denoiser of a given mesh's or checkpoint's renders). The shared
SDS mechanics are in :mod:`fields3d.guidance.sds`. Importing this package never imports
diffusers or transformers.
"""

from .base import Guidance, GuidanceOutput, SphericalCameras, guidance_loss
from .factory import available, create, parse_spec, register
from .sds import NoiseSchedule, ScoreDistillation, alphas_cumprod, latent_target_loss, weighting
from .stable_diffusion import StableDiffusionGuidance, view_directions
from .target import TargetGuidance

__all__ = [
    "Guidance",
    "GuidanceOutput",
    "NoiseSchedule",
    "ScoreDistillation",
    "SphericalCameras",
    "StableDiffusionGuidance",
    "TargetGuidance",
    "alphas_cumprod",
    "available",
    "create",
    "guidance_loss",
    "latent_target_loss",
    "parse_spec",
    "register",
    "view_directions",
    "weighting",
]
