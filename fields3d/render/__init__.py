"""Rendering: cameras and posed-image datasets, ray marching through occupancy grids, and
volume-rendering compositing (forward and backward in the core)."""

from .composite import Composited, composite, composite_samples, render_samples
from .image_metrics import psnr, ssim
from .learned_occupancy import OccupancyNetwork
from .march import GridSpec, OccupancyTest, RaySamples, march_rays
from .occupancy import OccupancyGrid, pack_bits
from .sphere_trace import SDFRender, TraceResult, render_sdf, sphere_trace
from .volume import RenderSettings, render_image, render_rays

__all__ = [
    "Composited",
    "GridSpec",
    "OccupancyGrid",
    "OccupancyNetwork",
    "OccupancyTest",
    "RaySamples",
    "RenderSettings",
    "SDFRender",
    "TraceResult",
    "composite",
    "composite_samples",
    "march_rays",
    "pack_bits",
    "psnr",
    "render_image",
    "render_rays",
    "render_samples",
    "render_sdf",
    "sphere_trace",
    "ssim",
]
