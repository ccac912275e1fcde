"""Encodings: map positions to features, with derivatives through second order in the core."""

from .base import Encoding
from .hash_grid import HashGrid, HashGridConfig, hash_grid_encode

__all__ = ["Encoding", "HashGrid", "HashGridConfig", "hash_grid_encode"]
