"""Encodings: map positions to features, with derivatives through second order in the core.

Every encoding implements :class:`Encoding` (``n_input_dims``, ``n_output_dims``, ``forward``,
``config()``) and is built from a plain dict by :func:`create`, e.g.
``create({"type": "hash_grid", "n_levels": 8})``; :func:`available` lists the types.
"""

from .base import Encoding
from .compose import Concat
from .factory import available, create, register
from .dense_grid import DenseGrid, DenseGridConfig, dense_grid_encode
from .hash_grid import HashGrid, HashGridConfig, hash_grid_encode
from .rbf import RBFConfig, RBFEncoding, rbf_encode
from .rbf_knn import KnnResult, rbf_knn
from .simplex import SimplexGrid, SimplexGridConfig, simplex_grid_encode
from .triplane import TriPlane, TriPlaneConfig, triplane_encode

__all__ = [
    "Concat", "DenseGrid", "DenseGridConfig", "Encoding", "HashGrid", "HashGridConfig", "KnnResult", "RBFConfig",
    "RBFEncoding", "SimplexGrid", "SimplexGridConfig", "TriPlane", "TriPlaneConfig", "available", "create",
    "dense_grid_encode", "hash_grid_encode", "rbf_encode", "rbf_knn", "register", "simplex_grid_encode",
    "triplane_encode",
]
