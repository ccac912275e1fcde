"""The CPU emit pass can take each row's below-level bits from the count pass (``below``) instead of
comparing the volume's rows again: the mesh must be exactly the one the volume's rows give, for
rows shorter and longer than a 64-bit word, rows without crossings and both dtypes."""

import pytest
import torch

from fields3d import _native


def capsule(t):
    return _native.capsule(t)


def mesh(volume, level, below):
    core = _native.core()
    x, y, _ = volume.shape
    counts = torch.empty(x * y, 4, dtype=torch.int64)
    assert core.marching_cubes_count(capsule(volume), level, capsule(counts), 0, capsule(below))
    n_verts, n_faces = core.marching_cubes_scan(capsule(counts), 3)
    verts = volume.new_empty(n_verts, 3)
    faces = torch.empty(n_faces, 3, dtype=torch.int64)
    core.marching_cubes_emit(
        capsule(volume),
        level,
        (0.5, -1, 2),
        (0.25, 1, 2),
        capsule(counts),
        capsule(verts),
        capsule(faces),
        0,
        capsule(below),
    )
    return verts, faces


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 6, 7), (4, 3, 64), (3, 5, 65), (6, 4, 130)])
def test_mesh_from_the_count_pass_bits_is_the_volumes_mesh(shape, dtype):
    gen = torch.Generator().manual_seed(sum(shape))
    volume = torch.randn(shape, generator=gen, dtype=dtype)
    volume[0] = 1.0  # a slab of rows without crossings
    x, y, z = shape
    below = torch.full((x * y, (z + 63) // 64), -1, dtype=torch.int64)  # all bits set: stale
    want = mesh(volume, 0.1, None)
    got = mesh(volume, 0.1, below)
    assert want[1].shape[0] > 0
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_below_of_the_wrong_shape_is_refused():
    volume = torch.zeros(3, 4, 70)
    counts = torch.zeros(12, 4, dtype=torch.int64)
    below = torch.zeros(12, 1, dtype=torch.int64)  # 70 values a row need 2 words
    with pytest.raises(ValueError) as err:
        _native.core().marching_cubes_count(
            capsule(volume), 0.0, capsule(counts), 0, capsule(below)
        )
    assert str(err.value) == "below must have shape (12, 2), got (12, 1)"
