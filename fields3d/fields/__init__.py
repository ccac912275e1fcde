"""Fields: encodings composed with small MLPs into functions of position (images, SDFs, radiance)."""

from .image import ImageField, pixel_centres
from .mlp import MLP

__all__ = ["MLP", "ImageField", "pixel_centres"]
