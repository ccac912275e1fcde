"""The lattice encodings under test: (name, config, encode, reference) for small configs."""

import torch

from fields3d.encodings import (
    DenseGridConfig,
    SimplexGridConfig,
    TriPlaneConfig,
    dense_grid_encode,
    simplex_grid_encode,
    triplane_encode,
)
from fields3d.encodings.reference import (
    dense_grid_reference,
    simplex_grid_reference,
    triplane_reference,
)

DENSE = (dense_grid_encode, dense_grid_reference)
TRI = (triplane_encode, triplane_reference)
SIMPLEX = (simplex_grid_encode, simplex_grid_reference)

# Every kind x dimension x feature path (compile-time F 1/2/4/8 and the run-time path) x
# interpolation; simplex tables tiny (all hashed), medium and large (coarse levels direct).
CASES = [
    ("dense2-f1", DenseGridConfig(2, 9, 1), *DENSE),
    ("dense2-f8-smooth", DenseGridConfig(2, 5, 8, "smoothstep"), *DENSE),
    ("dense3-f2", DenseGridConfig(3, 6, 2), *DENSE),
    ("dense3-f4-smooth", DenseGridConfig(3, 4, 4, "smoothstep"), *DENSE),
    ("dense3-f3-runtime", DenseGridConfig(3, 7, 3), *DENSE),
    ("dense2-f32-runtime", DenseGridConfig(2, 6, 32), *DENSE),
    ("tri-sum-f2", TriPlaneConfig(8, 2, "sum"), *TRI),
    ("tri-product-multires", TriPlaneConfig([4, 9], 4, "product"), *TRI),
    ("tri-concat-smooth", TriPlaneConfig(5, 8, "concat", "smoothstep"), *TRI),
    ("tri-sum-f5-runtime", TriPlaneConfig([3, 6, 11], 5, "sum"), *TRI),
    ("simplex2-f1", SimplexGridConfig(2, 5, 1, 4, 3, 1.7), *SIMPLEX),
    ("simplex2-f8", SimplexGridConfig(2, 5, 8, 14, 3, 1.7), *SIMPLEX),
    ("simplex3-f2", SimplexGridConfig(3, 5, 2, 9, 3, 1.7), *SIMPLEX),
    ("simplex3-f4", SimplexGridConfig(3, 5, 4, 14, 3, 1.7), *SIMPLEX),
    ("simplex4-f2", SimplexGridConfig(4, 4, 2, 9, 2, 1.7), *SIMPLEX),
]
IDS = [c[0] for c in CASES]


def random_table(config, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(config.n_entries, config.n_features, generator=g, dtype=dtype) * 2 - 1


def random_points(config, n, dtype=torch.float32, seed=0):
    return torch.rand(
        n, config.n_input_dims, generator=torch.Generator().manual_seed(seed), dtype=dtype
    )


# Small tables for gradcheck/gradgradcheck, whose numerical Jacobians grow with the square of
# the parameter count (every kind and feature path; simplex levels both direct and hashed).
SMALL = [
    ("dense2-f2", DenseGridConfig(2, 4, 2, "smoothstep"), *DENSE),
    ("dense3-f3-runtime", DenseGridConfig(3, 3, 3), *DENSE),
    ("tri-product", TriPlaneConfig([2, 3], 2, "product", "smoothstep"), *TRI),
    ("tri-concat-f3", TriPlaneConfig(3, 3, "concat"), *TRI),
    ("simplex2-f2", SimplexGridConfig(2, 3, 2, 5, 2, 1.5), *SIMPLEX),
    ("simplex3-f1", SimplexGridConfig(3, 3, 1, 6, 2, 1.5), *SIMPLEX),
    ("simplex4-f1", SimplexGridConfig(4, 2, 1, 6, 2, 1.5), *SIMPLEX),
]
SMALL_IDS = [c[0] for c in SMALL]
