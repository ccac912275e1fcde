"""NeRF from posed pictures: ``train_nerf(NerfConfig(...))`` or ``fields3d nerf``; ``load_nerf`` renders a trained one."""

from .config import NerfConfig, load_job
from .model import NerfModel, load_nerf
from .pipeline import NerfResult, train_nerf

__all__ = ["NerfConfig", "NerfModel", "NerfResult", "load_job", "load_nerf", "train_nerf"]
