"""Fields: encodings composed with small MLPs into functions of position (images, SDFs, radiance)."""

from .encoded import EncodedField, has_double_backward
from .generative import BackgroundField, GenerativeField
from .image import ImageField, pixel_centres
from .mlp import MLP
from .neural_sdf import NeuralSDF
from .radiance import RadianceField
from .sdf_grid import BandSDFGrid

__all__ = [
    "MLP",
    "BackgroundField",
    "BandSDFGrid",
    "EncodedField",
    "GenerativeField",
    "ImageField",
    "NeuralSDF",
    "RadianceField",
    "has_double_backward",
    "pixel_centres",
]
