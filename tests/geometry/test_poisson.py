"""Screened Poisson baseline: accuracy and orientation on a sphere and a torus, and its errors."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import trimesh

from fields3d.errors import BackendUnavailable, InputError
from fields3d.geometry.poisson import _points_outward, poisson_reconstruct

try:
    import open3d  # noqa: F401

    OPEN3D_ERROR = None
except (ImportError, OSError) as exc:  # OSError: Open3D's wheel found no libusb-1.0
    OPEN3D_ERROR = str(exc)
needs_open3d = pytest.mark.skipif(
    OPEN3D_ERROR is not None,
    reason=f"Open3D cannot be imported ({OPEN3D_ERROR}); pip install 'fields3d[poisson]'",
)

SPHERE_VOLUME = 4.0 / 3.0 * math.pi
TIMINGS = {"normals_s", "orient_s", "poisson_s", "trim_s"}


def _sphere_points(n: int = 5000, seed: int = 0) -> np.ndarray:
    points, _ = trimesh.sample.sample_surface(
        trimesh.creation.icosphere(subdivisions=5), n, seed=seed
    )
    return points / np.linalg.norm(points, axis=1, keepdims=True)  # exactly on the unit sphere


def _volume(verts: np.ndarray, faces: np.ndarray) -> float:
    return trimesh.Trimesh(verts, faces, process=False).volume


@pytest.fixture(scope="module")
def sphere() -> np.ndarray:
    return _sphere_points()


@pytest.fixture(scope="module")
def estimated(sphere):
    return poisson_reconstruct(sphere, depth=6)


@needs_open3d
def test_sphere_without_normals_lies_on_the_sphere(estimated):
    verts, faces, info = estimated
    assert verts.dtype == np.float64 and verts.shape[1] == 3
    assert faces.dtype == np.int64 and faces.shape[1] == 3 and len(faces) > 10_000
    radial = np.abs(np.linalg.norm(verts, axis=1) - 1.0)
    # measured mean 0.00036 and max 0.0034 at depth 6; a wrong scale or offset lands far above
    assert radial.mean() < 0.002
    assert radial.max() < 0.01
    assert TIMINGS <= set(info) and all(info[key] >= 0 for key in TIMINGS)
    assert info["normals"] == "estimated" and info["n_points"] == 5000
    assert info["n_verts"] == len(verts) and info["n_faces"] == len(faces)
    assert faces.min() == 0 and faces.max() == len(verts) - 1  # no unreferenced vertices


@needs_open3d
def test_density_trimming_removes_the_requested_quantile(estimated):
    verts, faces, info = estimated
    assert info["n_trimmed_verts"] == pytest.approx(0.02 * info["n_verts_raw"], rel=0.05)
    assert info["n_verts"] <= info["n_verts_raw"] - info["n_trimmed_verts"]
    # trimmed, the surface has holes but still faces outward: the signed volume stays near the ball's
    assert 0.85 * SPHERE_VOLUME < _volume(verts, faces) < SPHERE_VOLUME


@needs_open3d
def test_untrimmed_sphere_is_closed_and_faces_outward(sphere):
    verts, faces, info = poisson_reconstruct(sphere, depth=6, density_quantile=0.0)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    assert mesh.is_watertight and info["n_trimmed_verts"] == 0
    assert mesh.volume == pytest.approx(SPHERE_VOLUME, rel=0.005)  # measured 1.00005 x


@needs_open3d
def test_given_normals(sphere):
    verts, faces, info = poisson_reconstruct(sphere, sphere.copy(), depth=6, density_quantile=0.0)
    assert info["normals"] == "given" and not info["normals_flipped"]
    assert np.abs(np.linalg.norm(verts, axis=1) - 1.0).mean() < 0.002
    assert _volume(verts, faces) == pytest.approx(SPHERE_VOLUME, rel=0.005)


@needs_open3d
def test_inward_normals_still_give_outward_faces(sphere):
    verts, faces, info = poisson_reconstruct(sphere, -sphere, depth=6, density_quantile=0.0)
    assert info["faces_flipped"]
    assert _volume(verts, faces) == pytest.approx(SPHERE_VOLUME, rel=0.005)


@needs_open3d
def test_non_convex_torus_without_normals():
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
    points, _ = trimesh.sample.sample_surface(torus, 5000, seed=1)
    verts, faces, _ = poisson_reconstruct(np.asarray(points), depth=6, density_quantile=0.0)
    mesh = trimesh.Trimesh(verts, faces, process=False)
    assert mesh.is_watertight and mesh.euler_number == 0  # one closed surface of genus 1
    assert mesh.volume == pytest.approx(torus.volume, rel=0.01)  # measured 0.999 x


def test_outward_test_follows_the_divergence_theorem():
    # a torus is not star-shaped about its centroid (the hole); the mean of n . (p - c) still decides
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
    points, face_index = trimesh.sample.sample_surface(torus, 4000, seed=2)
    normals = torus.face_normals[face_index]
    assert _points_outward(points, normals)
    assert not _points_outward(points, -normals)


def test_missing_open3d(monkeypatch, sphere):
    monkeypatch.setitem(sys.modules, "open3d", None)  # `import open3d` now raises ImportError
    with pytest.raises(BackendUnavailable) as info:
        poisson_reconstruct(sphere, depth=6)
    assert str(info.value) == (
        "the Poisson baseline needs Open3D, which could not be imported "
        "(import of open3d halted; None in sys.modules); install it with `pip install 'fields3d[poisson]'` "
        "(Open3D's wheel also needs the system library libusb-1.0: `sudo apt-get install libusb-1.0-0` "
        "on Debian/Ubuntu)"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 0}, "depth must be an integer from 1 to 12, got 0"),
        ({"depth": 8.0}, "depth must be an integer from 1 to 12, got 8.0"),
        ({"density_quantile": 1.0}, "density_quantile must be a number in [0, 1), got 1.0"),
        ({"density_quantile": -0.1}, "density_quantile must be a number in [0, 1), got -0.1"),
        ({"k": 2}, "k must be an integer >= 3, got 2"),
        ({"scale": 0.5}, "scale must be a number >= 1, got 0.5"),
        ({"threads": 0}, "threads must be an integer >= 1, got 0"),
        (
            {"normals": np.zeros((10, 3))},
            "normals must have the shape of points (100, 3), got (10, 3)",
        ),
        (
            {"k": 200},
            "points must hold at least k = 200 points for Poisson reconstruction, got 100",
        ),
    ],
)
def test_bad_arguments(sphere, kwargs, message):
    with pytest.raises(InputError) as info:
        poisson_reconstruct(sphere[:100], **kwargs)
    assert str(info.value) == message


@needs_open3d
def test_a_flat_cloud_is_an_input_error_not_a_qhull_dump():
    g = np.random.default_rng(0)
    flat = np.c_[g.random((200, 2)), np.zeros(200)]
    with pytest.raises(InputError) as err:
        poisson_reconstruct(flat, depth=5)
    message = str(err.value)
    assert message.startswith("Poisson cannot orient the normals of these 200 points (")
    assert (
        message.endswith("); they may lie on a plane or a line: try --method gridpull")
        and "\n" not in message
    )
