"""Marching cubes against scikit-image, mesh topology and orientation, conventions, and mesh_field."""

import importlib
import math

import numpy as np
import pytest
import torch
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from fields3d import _native
from fields3d.geometry.marching_cubes import marching_cubes, mesh_field

mc = importlib.import_module(
    "fields3d.geometry.marching_cubes"
)  # the package attribute is the function


def centered(n, center):
    axes = [np.arange(n, dtype=np.float64) - c for c in center]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def sphere(n=40, radius=13.1):
    return np.linalg.norm(centered(n, (19.37, 19.61, 19.13)), axis=-1) - radius


def torus(n=40, major=11.2, minor=4.3):
    g = centered(n, (19.37, 19.61, 19.13))
    ring = np.linalg.norm(g[..., :2], axis=-1) - major
    return np.hypot(ring, g[..., 2]) - minor


def box(n=40, half=(12.3, 9.1, 6.7)):
    d = np.abs(centered(n, (19.37, 19.61, 19.13))) - np.array(half)
    return np.linalg.norm(np.maximum(d, 0), axis=-1) + np.minimum(d.max(axis=-1), 0)


def smooth_noise(n=40, seed=0):
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((n, n, n)), 3)
    return field / field.std()


FIELDS = {"sphere": sphere, "torus": torus, "box": box, "smooth": smooth_noise}


def run(volume, level=0.0, **kwargs):
    verts, faces = marching_cubes(torch.as_tensor(volume), level, **kwargs)
    return verts.numpy(), faces.numpy()


def assert_same_points(ours, theirs, tol):
    """Same number of points, and each set within tol of the other (both ways)."""
    assert len(ours) == len(theirs)
    assert cKDTree(theirs).query(ours)[0].max() < tol
    assert cKDTree(ours).query(theirs)[0].max() < tol


def as_mesh(verts, faces):
    return trimesh.Trimesh(np.asarray(verts, dtype=np.float64), np.asarray(faces), process=False)


# ---- against scikit-image -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FIELDS))
@pytest.mark.parametrize("method", ["lewiner", "lorensen"])
def test_vertices_match_scikit_image(name, method):
    volume = FIELDS[name]().astype(np.float32)
    level = 0.1
    verts, faces = run(volume, level)
    theirs, their_faces, _, _ = measure.marching_cubes(volume, level, method=method)
    assert_same_points(verts, theirs, 1e-4)  # one vertex per crossing edge in both
    if name != "smooth":  # no ambiguous cube faces: the triangulations must agree in size too
        assert len(faces) == len(their_faces)


def test_origin_and_spacing_match_scikit_image():
    volume = torus(36).astype(np.float32)
    spacing, origin = (0.5, 1.0, 2.0), (1.0, -2.0, 3.5)
    verts, _ = run(volume, origin=origin, spacing=spacing)
    theirs, _, _, _ = measure.marching_cubes(volume, 0.0, spacing=spacing)
    assert_same_points(verts, theirs + np.array(origin), 1e-4)
    plain, _ = run(volume)
    np.testing.assert_allclose(verts, np.array(origin) + plain * np.array(spacing), atol=1e-5)


# ---- topology and orientation -------------------------------------------------------------------


@pytest.mark.parametrize("name,euler", [("sphere", 2), ("torus", 0), ("box", 2)])
def test_closed_surfaces_are_watertight_and_outward(name, euler):
    mesh = as_mesh(*run(FIELDS[name]().astype(np.float32)))
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.euler_number == euler
    assert mesh.volume > 0  # counter-clockwise seen from outside (increasing values)


def test_sphere_volume_and_normals():
    radius = 13.1
    mesh = as_mesh(*run(sphere(radius=radius).astype(np.float32)))
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * radius**3, rel=0.01)
    radial = mesh.triangles_center - np.array((19.37, 19.61, 19.13))
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    assert (mesh.face_normals * radial).sum(axis=1).mean() > 0.99


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("quantized", [False, True])
def test_noise_with_positive_border_is_watertight(seed, quantized):
    # Every component of the level set is closed; any table or welding inconsistency between
    # neighbouring cubes shows up as an open or over-shared edge. Quantised values put many grid
    # points exactly at the level (they count as below).
    g = torch.Generator().manual_seed(seed)
    inner = torch.rand(14, 13, 12, generator=g) * 2 - 1
    if quantized:
        inner = torch.round(inner * 2) / 2
    volume = torch.nn.functional.pad(inner, (1, 1, 1, 1, 1, 1), value=1.0)
    verts, faces = marching_cubes(volume, 0.0)
    mesh = as_mesh(verts, faces)
    assert len(faces) > 100
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert np.unique(faces, axis=0).shape == faces.shape  # no duplicated triangles


def test_level_set_through_grid_points():
    # values -5 .. 4 along x: the level 0 is exactly at i = 5, which counts as below, so every
    # crossing edge runs from i = 5 to 6 and its vertex sits on the grid point (t = 0).
    volume = (torch.arange(10.0) - 5).view(10, 1, 1).expand(10, 4, 3)
    verts, faces = marching_cubes(volume)
    assert verts.shape == (12, 3) and faces.shape == (12, 3)
    assert torch.all(verts[:, 0] == 5.0)
    normals = torch.cross(
        verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]], dim=1
    )
    assert torch.all(normals[:, 0] > 0) and torch.all(
        normals[:, 1:] == 0
    )  # toward increasing values


def test_no_crossing_gives_empty_mesh():
    for volume in (
        torch.ones(5, 6, 7),
        torch.full((3, 3, 3), -1.0, dtype=torch.float64),
        torch.zeros(2, 2, 2),
    ):
        verts, faces = marching_cubes(volume)
        assert verts.shape == (0, 3) and verts.dtype == volume.dtype
        assert faces.shape == (0, 3) and faces.dtype == torch.int64


def test_smallest_volume():
    volume = torch.ones(2, 2, 2)
    volume[0, 0, 0] = -1
    verts, faces = marching_cubes(volume)
    np.testing.assert_allclose(verts.numpy(), [[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    assert faces.tolist() == [[0, 1, 2]]  # normal (1, 1, 1) / sqrt 3: away from the low corner


def test_float64_matches_float32():
    volume = torch.from_numpy(smooth_noise(24, seed=3))
    v64, f64 = marching_cubes(volume, 0.2)
    v32, f32 = marching_cubes(volume.float(), 0.2)
    assert v64.dtype == torch.float64 and v32.dtype == torch.float32
    assert torch.equal(f64, f32)
    torch.testing.assert_close(v64.float(), v32, atol=1e-5, rtol=0)


def test_non_contiguous_input():
    volume = torch.from_numpy(torus(30)).float()
    base = marching_cubes(volume.contiguous())
    for view in (
        volume.permute(2, 0, 1).contiguous().permute(1, 2, 0),
        torch.stack([volume, -volume], dim=-1)[..., 0],
    ):
        assert not view.is_contiguous()
        out = marching_cubes(view)
        assert torch.equal(out[0], base[0]) and torch.equal(out[1], base[1])


def test_same_output_for_any_thread_count():
    core = _native.core()
    volume = torch.from_numpy(smooth_noise(48, seed=5)).float()
    before = core.num_threads()
    outputs = []
    try:
        for threads in (1, 2, 3):
            core.set_num_threads(threads)
            outputs.append(marching_cubes(volume, 0.3))
            outputs.append(mesh_field(torus_sdf, BOUNDS, 40))  # the narrow band's sparse kernels
    finally:
        core.set_num_threads(before)
    for verts, faces in outputs[2::2]:
        assert torch.equal(verts, outputs[0][0]) and torch.equal(faces, outputs[0][1])
    for verts, faces in outputs[3::2]:
        assert torch.equal(verts, outputs[1][0]) and torch.equal(faces, outputs[1][1])


@pytest.mark.parametrize("quantized", [False, True])
def test_sparse_cells_give_the_dense_mesh(quantized):
    # The narrow band's entry point on every cut cell of a noise volume (arbitrary topology, and
    # values exactly at the level): same faces as the dense kernels, vertices welded the same way.
    g = torch.Generator().manual_seed(7)
    volume = torch.rand(11, 9, 13, generator=g, dtype=torch.float64) * 2 - 1
    if quantized:
        volume = torch.round(volume * 2) / 2
    corners = torch.tensor(mc._CUBE_CORNERS)
    cells = torch.stack(
        torch.meshgrid(*(torch.arange(n - 1) for n in volume.shape), indexing="ij"), -1
    )
    cells = cells.reshape(-1, 3)
    ijk = cells[:, None, :] + corners
    values = volume[ijk[..., 0], ijk[..., 1], ijk[..., 2]]
    below = values <= 0
    cut = below.any(dim=1) & ~below.all(dim=1)
    keys = (cells[:, 0] * 8 + cells[:, 1]) * 12 + cells[:, 2]
    frame = ((0.5, -1.0, 2.0), (0.25, 0.5, 1.5))
    sparse = mc._cells_mesh(volume.shape, keys[cut], values[cut].contiguous(), 0.0, *frame)
    dense = marching_cubes(volume, origin=frame[0], spacing=frame[1])
    assert sparse[0].shape == dense[0].shape and sparse[1].shape == dense[1].shape
    assert canonical_faces(*sparse) == canonical_faces(*dense)
    assert as_mesh(*sparse).is_winding_consistent


# ---- mesh_field ----------------------------------------------------------------------------------


class Counted:
    """A field that counts the points it is asked for."""

    def __init__(self, fn):
        self.fn, self.points = fn, 0

    def __call__(self, x):
        self.points += x.shape[0]
        return self.fn(x)


def sphere_sdf(x):
    return (x - torch.tensor([0.05, -0.03, 0.02])).norm(dim=-1) - 0.61


def torus_sdf(x):
    ring = x[:, :2].norm(dim=-1) - 0.55
    return torch.stack((ring, x[:, 2]), dim=-1).norm(dim=-1) - 0.2


def canonical_faces(verts, faces):
    """Faces as a set of vertex-position triples, each rotated to start at its smallest vertex
    (orientation kept): comparable across vertex orders."""
    tri = [tuple(map(tuple, t)) for t in verts[faces].tolist()]
    out = set()
    for t in tri:
        i = min(range(3), key=lambda q: t[q])
        out.add((t[i], t[(i + 1) % 3], t[(i + 2) % 3]))
    return out


BOUNDS = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))


@pytest.mark.parametrize(
    "fn,resolution", [(sphere_sdf, 64), (torus_sdf, 50), (sphere_sdf, (37, 45, 70))]
)
def test_narrow_band_equals_dense(fn, resolution):
    band = mesh_field(fn, BOUNDS, resolution)
    dense = mesh_field(fn, BOUNDS, resolution, narrow_band=False)
    assert band[0].shape == dense[0].shape and band[1].shape == dense[1].shape
    assert_same_points(band[0].numpy(), dense[0].numpy(), 1e-7)  # same values, same arithmetic
    assert canonical_faces(*band) == canonical_faces(*dense)


def test_dense_mesh_field_is_marching_cubes_of_the_samples():
    res = 33
    verts, faces = mesh_field(torus_sdf, BOUNDS, res, narrow_band=False)
    axis = torch.linspace(-1, 1, res, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).float()
    volume = torus_sdf(points.reshape(-1, 3)).reshape(res, res, res)
    v2, f2 = marching_cubes(volume, origin=BOUNDS[0], spacing=2 / (res - 1))
    assert torch.equal(faces, f2)
    torch.testing.assert_close(verts, v2, atol=1e-6, rtol=0)


def test_narrow_band_evaluates_a_small_part_of_the_grid():
    fn = Counted(sphere_sdf)
    verts, faces = mesh_field(fn, BOUNDS, 128)
    assert fn.points < 0.15 * 128**3
    mesh = as_mesh(verts, faces)
    assert mesh.is_watertight and mesh.euler_number == 2
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.61**3, rel=0.01)


def test_mesh_field_batches_and_progress():
    fn, seen = Counted(sphere_sdf), []
    calls = []

    def batched(x):
        calls.append(x.shape[0])
        assert x.dtype == torch.float32 and not torch.is_grad_enabled()
        return fn(x).unsqueeze(1)  # (N, 1) is accepted too

    mesh_field(batched, BOUNDS, 40, batch_size=1000, progress=seen.append)
    assert max(calls) <= 1000
    assert seen == sorted(seen) and seen[-1] == 1.0
    mesh_field(batched, BOUNDS, 20, narrow_band=False, batch_size=1000, progress=seen.append)
    assert seen[-1] == 1.0


def test_mesh_field_float64_values_and_level():
    verts, faces = mesh_field(lambda x: sphere_sdf(x).double(), BOUNDS, 30, level=0.1)
    assert verts.dtype == torch.float64 and faces.dtype == torch.int64
    dist = (verts - torch.tensor([0.05, -0.03, 0.02], dtype=torch.float64)).norm(dim=-1)
    assert (dist - 0.71).abs().max() < 0.01
