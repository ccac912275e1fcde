"""Bad input to marching_cubes / mesh_field raises InputError / BackendUnavailable with these exact
messages; the core's bindings refuse what slips past (ValueError)."""

import pytest
import torch

from fields3d import _native
from fields3d.errors import BackendUnavailable, InputError
from fields3d.geometry.marching_cubes import marching_cubes, mesh_field

WANT = "volume must be a float32 or float64 tensor of shape (X, Y, Z)"
OUT_OF_RANGE = (
    "origin and spacing put vertices out of float32 range: |origin|, (size - 1) * spacing and "
    "|origin + (size - 1) * spacing| must be at most 3.403e+38 on every axis, got {got} for a volume of "
    "shape (3, 3, 3), origin {origin}, spacing {spacing}; scale the coordinates down"
)
WIDER = " or pass a float64 volume"


@pytest.mark.parametrize(
    "volume,message",
    [
        ([[[0.0]]], f"{WANT}, got list"),
        (torch.zeros(4, 4), f"{WANT}, got float32 (4, 4)"),
        (torch.zeros(2, 3, 4, 5), f"{WANT}, got float32 (2, 3, 4, 5)"),
        (torch.zeros(4, 4, 4, dtype=torch.int64), f"{WANT}, got int64 (4, 4, 4)"),
        (torch.zeros(4, 4, 4, dtype=torch.float16), f"{WANT}, got float16 (4, 4, 4)"),
        (torch.zeros(1, 4, 4), "volume must have at least 2 points along each axis, got (1, 4, 4)"),
        (torch.zeros(4, 4, 0), "volume must have at least 2 points along each axis, got (4, 4, 0)"),
    ],
)
def test_bad_volume(volume, message):
    with pytest.raises(InputError) as err:
        marching_cubes(volume)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "value,shown", [(float("nan"), "nan"), (float("inf"), "inf"), (-float("inf"), "-inf")]
)
def test_non_finite_volume(value, shown):
    volume = torch.zeros(3, 4, 5, dtype=torch.float64)
    volume[1, 2, 3] = value
    volume[2, 0, 0] = value
    with pytest.raises(InputError) as err:
        marching_cubes(volume)
    assert str(err.value) == (
        f"volume must be finite, got {shown} at (1, 2, 3); replace missing values first (e.g. torch.nan_to_num)"
    )


def test_finite_values_whose_sum_overflows_are_fine():
    volume = torch.full((3, 3, 3), 3e38)
    volume[1, 1, 1] = -1.0
    verts, _faces = marching_cubes(volume)
    assert verts.shape[0] == 6 and torch.isfinite(verts).all()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"level": float("nan")}, "level must be a finite number, got nan"),
        ({"level": "0"}, "level must be a finite number, got '0'"),
        ({"level": True}, "level must be a finite number, got True"),
        (
            {"spacing": (1.0, 0.0, 1.0)},
            "spacing must be a positive finite number or 3 of them, got (1.0, 0.0, 1.0)",
        ),
        ({"spacing": -1}, "spacing must be a positive finite number or 3 of them, got -1"),
        ({"spacing": (1, 1)}, "spacing must be a positive finite number or 3 of them, got (1, 1)"),
        ({"origin": (0, 0)}, "origin must be 3 finite numbers, got (0, 0)"),
        ({"origin": 1.0}, "origin must be 3 finite numbers, got 1.0"),
        ({"origin": (0, float("inf"), 0)}, "origin must be 3 finite numbers, got (0, inf, 0)"),
        (
            {"spacing": 1e308},
            f"{OUT_OF_RANGE.format(got='inf', origin=(0.0,) * 3, spacing=(1e308,) * 3)}{WIDER}",
        ),
        (
            {"spacing": (1.0, 2e38, 1.0)},  # 2 * 2e38: the last vertex along y overflows float32
            f"{OUT_OF_RANGE.format(got='4e+38', origin=(0.0,) * 3, spacing=(1.0, 2e38, 1.0))}{WIDER}",
        ),
        (
            {"origin": (0, 0, -1e39)},
            f"{OUT_OF_RANGE.format(got='1e+39', origin=(0.0, 0.0, -1e39), spacing=(1.0,) * 3)}{WIDER}",
        ),
        (
            {"origin": (3e38, 0, 0), "spacing": 3e37},  # origin + 2 * spacing = 3.6e38
            f"{OUT_OF_RANGE.format(got='3.6e+38', origin=(3e38, 0.0, 0.0), spacing=(3e37,) * 3)}{WIDER}",
        ),
        (
            {"spacing": 1e-50},
            "spacing must be at least 1.175e-38 on every axis for float32 vertices (less loses "
            f"precision or rounds to zero), got (1e-50, 1e-50, 1e-50); scale the coordinates up{WIDER}",
        ),
    ],
)
def test_bad_level_and_frame(kwargs, message):
    level = kwargs.pop("level", 0.0)
    with pytest.raises(InputError) as err:
        marching_cubes(torch.zeros(3, 3, 3), level, **kwargs)
    assert str(err.value) == message


def test_frame_range_follows_the_volume_dtype():
    volume = torch.ones(4, 4, 4, dtype=torch.float64)
    volume[1:3, 1:3, 1:3] = -1
    verts, _ = marching_cubes(
        volume, spacing=1e300, origin=(1e300, 0, 0)
    )  # fine in float64, not in float32
    assert torch.isfinite(verts).all() and float(verts.abs().max()) == 1e300 + 2.5e300
    with pytest.raises(InputError) as err:
        marching_cubes(volume, spacing=1e308)
    assert str(err.value) == (
        "origin and spacing put vertices out of float64 range: |origin|, (size - 1) * spacing and "
        "|origin + (size - 1) * spacing| must be at most 1.798e+308 on every axis, got inf for a volume of "
        "shape (4, 4, 4), origin (0.0, 0.0, 0.0), spacing (1e+308, 1e+308, 1e+308); scale the coordinates down"
    )
    verts, _ = marching_cubes(volume.float(), spacing=1e38)  # 3e38 at the far corner: still float32
    assert torch.isfinite(verts).all()


def sdf(x):
    return x.norm(dim=-1) - 0.5


BOUNDS = ((-1, -1, -1), (1, 1, 1))


@pytest.mark.parametrize(
    "args,kwargs,message",
    [
        (
            (sdf, ((1, -1, -1), (1, 1, 1)), 8),
            {},
            "bounds must be ((xmin, ymin, zmin), (xmax, ymax, zmax)) with min < max on every axis, "
            "got ((1, -1, -1), (1, 1, 1))",
        ),
        (
            (sdf, (0, 1), 8),
            {},
            "bounds must be ((xmin, ymin, zmin), (xmax, ymax, zmax)) with min < max on every axis, got (0, 1)",
        ),
        (
            (sdf, ((-1e308, 0, 0), (1e308, 1, 1)), 8),  # max - min overflows even float64
            {},
            "bounds must keep the grid within float32 range (fn gets float32 points): |min|, |max| and max - min "
            "must be at most 3.403e+38 on every axis, got ((-1e+308, 0.0, 0.0), (1e+308, 1.0, 1.0)); "
            "scale the coordinates down",
        ),
        (
            (sdf, ((0, 0, 0), (1, 1e39, 1)), 8),
            {},
            "bounds must keep the grid within float32 range (fn gets float32 points): |min|, |max| and max - min "
            "must be at most 3.403e+38 on every axis, got ((0.0, 0.0, 0.0), (1.0, 1e+39, 1.0)); "
            "scale the coordinates down",
        ),
        (
            (sdf, BOUNDS, 1),
            {},
            "resolution must be an integer from 2 to 2048 or 3 such integers, got 1",
        ),
        (
            (sdf, BOUNDS, 8.0),
            {},
            "resolution must be an integer from 2 to 2048 or 3 such integers, got 8.0",
        ),
        (
            (sdf, BOUNDS, (8, 8)),
            {},
            "resolution must be an integer from 2 to 2048 or 3 such integers, got (8, 8)",
        ),
        (
            (sdf, BOUNDS, (8, 8, 20000)),
            {},
            "resolution must be an integer from 2 to 2048 or 3 such integers, got (8, 8, 20000)",
        ),
        ((sdf, BOUNDS, 8, float("inf")), {}, "level must be a finite number, got inf"),
        ((3, BOUNDS, 8), {}, "fn must be callable, got int"),
        ((sdf, BOUNDS, 8), {"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        (
            (sdf, BOUNDS, 8),
            {"lipschitz": 0.0},
            "lipschitz must be a positive finite number, got 0.0",
        ),
        ((sdf, BOUNDS, 8), {"progress": 1}, "progress must be callable or None, got int"),
        (
            (sdf, BOUNDS, 8),
            {"device": "gpu"},
            "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device, got 'gpu'",
        ),
        (
            (lambda x: x, BOUNDS, 8),
            {},
            "fn must return one value per point, shape (N,) or (N, 1), for N = 512 points, got (512, 3)",
        ),
        (
            (lambda x: [0.0] * len(x), BOUNDS, 8),
            {},
            "fn must return one value per point, shape (N,) or (N, 1), for N = 512 points, got list",
        ),
        (
            (lambda x: torch.where(x[:, 0] > 0.9, float("nan"), 1.0), BOUNDS, 8),
            {"narrow_band": False},
            "fn must return finite values, got nan at (1.0, -1.0, -1.0)",
        ),
    ],
)
def test_bad_mesh_field_arguments(args, kwargs, message):
    with pytest.raises(InputError) as err:
        mesh_field(*args, **kwargs)
    assert str(err.value) == message


def test_cuda_path_without_cuda_raises_backend_unavailable():
    if torch.cuda.is_available() and _native.core().build_info()["cuda"]:
        pytest.skip("this machine can run CUDA kernels; the unavailable path cannot be reached")
    with pytest.raises(BackendUnavailable) as err:
        mesh_field(sdf, BOUNDS, 8, device="cuda")
    if _native.core().build_info()["cuda"]:
        expected = "fields3d was built with CUDA but sees no CUDA device for cuda; check the driver (nvidia-smi)"
    else:
        expected = (
            f"fields3d was built without CUDA, so it cannot run on cuda; {_native.REBUILD_CUDA}"
        )
    assert str(err.value) == expected


def capsule(t):
    return _native.capsule(t)


def test_binding_rechecks_shapes_dtypes_and_devices():
    core = _native.core()
    volume = torch.zeros(3, 4, 5)
    counts = torch.zeros(12, 4, dtype=torch.int64)
    strided = torch.zeros(12, 8, dtype=torch.int64)[:, ::2]
    cases = [
        (
            lambda: core.marching_cubes_count(capsule(torch.zeros(3, 4)), 0.0, capsule(counts)),
            "volume must have shape (X, Y, Z) with X, Y, Z >= 2, got (3, 4)",
        ),
        (
            lambda: core.marching_cubes_count(
                capsule(volume), 0.0, capsule(torch.zeros(11, 4, dtype=torch.int64))
            ),
            "counts must have shape (12, 4), got (11, 4)",
        ),
        (
            lambda: core.marching_cubes_count(capsule(volume), 0.0, capsule(counts.float())),
            "counts must be int64, got DLPack dtype code 2 with 32 bits",
        ),
        (
            lambda: core.marching_cubes_count(capsule(volume), 0.0, capsule(strided)),
            "counts must be contiguous (call .contiguous() first)",
        ),
        (lambda: core.marching_cubes_scan(capsule(counts), 2), "n_vert_cols must be 1 or 3, got 2"),
        (
            lambda: core.marching_cubes_emit(
                capsule(volume),
                0.0,
                (0, 0, 0),
                (1, 1, 1),
                capsule(counts),
                capsule(torch.zeros(0, 3, dtype=torch.float64)),
                capsule(torch.zeros(0, 3, dtype=torch.int64)),
            ),
            "verts must have the dtype of volume (float32), got float64",
        ),
        (
            lambda: core.marching_cubes_sparse_count(
                [3, 4, 5],
                capsule(torch.tensor([2, 1])),
                capsule(torch.zeros(2, 8)),
                0.0,
                capsule(torch.zeros(2, 4, dtype=torch.int64)),
            ),
            "cells must be strictly increasing linear cell indices in [0, 24)",
        ),
        (
            lambda: core.marching_cubes_sparse_count(
                [3, 4, 5],
                capsule(torch.tensor([1, 24])),
                capsule(torch.zeros(2, 8)),
                0.0,
                capsule(torch.zeros(2, 4, dtype=torch.int64)),
            ),
            "cells must be strictly increasing linear cell indices in [0, 24)",
        ),
        (
            lambda: core.marching_cubes_sparse_count(
                [3, 4],
                capsule(torch.tensor([1])),
                capsule(torch.zeros(1, 8)),
                0.0,
                capsule(torch.zeros(1, 4, dtype=torch.int64)),
            ),
            "shape must be 3 grid sizes >= 2, got (3, 4)",
        ),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == message


def test_binding_never_writes_past_the_outputs():
    # Outputs smaller than the scan's totals: the core skips what does not fit.
    core = _native.core()
    volume = torch.ones(4, 4, 4)
    volume[1:3, 1:3, 1:3] = -1
    counts = torch.empty(16, 4, dtype=torch.int64)
    core.marching_cubes_count(capsule(volume), 0.0, capsule(counts))
    n_verts, n_faces = core.marching_cubes_scan(capsule(counts), 3)
    assert (n_verts, n_faces) > (2, 2)
    verts = torch.full((2 + 1, 3), 7.0)
    faces = torch.full((2 + 1, 3), 7, dtype=torch.int64)
    core.marching_cubes_emit(
        capsule(volume),
        0.0,
        (0, 0, 0),
        (1, 1, 1),
        capsule(counts),
        capsule(verts[:2]),
        capsule(faces[:2]),
    )
    assert torch.all(verts[2] == 7.0) and torch.all(faces[2] == 7)
