"""Text-to-3D by score distillation: ``generate(GenerateConfig(prompt=..., output=...))``."""

from .config import GenerateConfig, load_job
from .model import GenerativeModel, load_generative
from .pipeline import GenerateResult, generate

__all__ = [
    "GenerateConfig",
    "GenerateResult",
    "GenerativeModel",
    "generate",
    "load_generative",
    "load_job",
]
