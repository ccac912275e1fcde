"""Rendering: cameras and posed-image datasets, ray marching through occupancy grids, and
volume-rendering compositing (forward and backward in the core)."""

from .composite import Composited, composite, render_samples
from .march import GridSpec, RaySamples, march_rays
from .occupancy import OccupancyGrid, pack_bits

__all__ = [
    "Composited", "GridSpec", "OccupancyGrid", "RaySamples", "composite", "march_rays", "pack_bits",
    "render_samples",
]
