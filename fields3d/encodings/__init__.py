"""Encodings: map positions to features, differentiable twice (eikonal losses train them).

Types: ``hash_grid`` (instant-NGP), ``simplex_grid`` (hash encoding on a simplicial lattice),
``triplane`` (EG3D / K-Planes), ``dense_grid`` (2D/3D voxels) — each a core kernel with forward,
backward and double backward on CPU and CUDA — and ``rbf`` (NeuRBF: the neighbour search of
:mod:`fields3d.geometry.knn` and a fused evaluation with its backward and double backward in the
core; a second derivative through
the shapes' gradient alone falls back to torch); ``concat`` composes them (e.g. NeuRBF's RBF +
grid hybrid).

Every encoding implements :class:`Encoding` (``n_input_dims``, ``n_output_dims``, ``forward``,
``config()``) and is built from a plain dict by :func:`create`, e.g.
``create({"type": "hash_grid", "n_levels": 8})``; :func:`available` lists the types.
"""

from .base import Encoding
from .compose import Concat
from .dense_grid import DenseGrid, DenseGridConfig, dense_grid_encode
from .factory import available, create, register
from .hash_grid import HashGrid, HashGridConfig, hash_grid_encode
from .rbf import RBFConfig, RBFEncoding, rbf_encode
from .simplex import SimplexGrid, SimplexGridConfig, simplex_grid_encode
from .triplane import TriPlane, TriPlaneConfig, triplane_encode

__all__ = [
    "Concat",
    "DenseGrid",
    "DenseGridConfig",
    "Encoding",
    "HashGrid",
    "HashGridConfig",
    "RBFConfig",
    "RBFEncoding",
    "SimplexGrid",
    "SimplexGridConfig",
    "TriPlane",
    "TriPlaneConfig",
    "available",
    "create",
    "dense_grid_encode",
    "hash_grid_encode",
    "rbf_encode",
    "register",
    "simplex_grid_encode",
    "triplane_encode",
]
