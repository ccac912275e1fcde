"""NeRF from posed pictures: ``train_nerf(NerfConfig(...))`` or ``fields3d nerf``."""

from .config import NerfConfig, load_job
from .pipeline import NerfResult, train_nerf

__all__ = ["NerfConfig", "NerfResult", "load_job", "train_nerf"]
