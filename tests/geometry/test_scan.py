"""The virtual scanner: deterministic for a seed, points on the surface up to the noise it was
asked for, occlusion, grazing dropout, misregistration and outliers as set, clear errors."""

import numpy as np
import pytest
import trimesh

from fields3d.errors import BackendUnavailable, InputError
from fields3d.geometry.pointcloud import load_point_cloud
from fields3d.geometry.scan import ScanSettings, save_scan, sensor_directions, virtual_scan

pytest.importorskip(
    "open3d", reason="the scanner casts rays with Open3D: pip install 'fields3d[poisson]'"
)

BALL = trimesh.creation.icosphere(subdivisions=4)  # radius 1 about the origin
SMALL = dict(views=4, side=48)


def _radial_error(points: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.norm(points, axis=1) - 1)


def test_the_same_seed_gives_the_same_scan_and_another_seed_another():
    s = ScanSettings(**SMALL, noise=0.01, grazing=(40, 80), outliers=0.05, seed=3)
    a, b = virtual_scan(BALL, s), virtual_scan(BALL, s)
    assert np.array_equal(a.points, b.points) and np.array_equal(a.view_ids, b.view_ids)
    c = virtual_scan(BALL, ScanSettings(**SMALL, noise=0.01, grazing=(40, 80), seed=4))
    assert c.points.shape != a.points.shape or not np.array_equal(c.points, a.points)


def test_a_clean_scan_lies_on_the_surface_and_sees_only_the_near_side():
    scan = virtual_scan(BALL, ScanSettings(views=1, side=64))
    assert _radial_error(scan.points).max() < 5e-3  # the icosphere's facets, not noise
    towards = scan.origins[0] / np.linalg.norm(scan.origins[0])
    assert (scan.points @ towards > 0).all()  # the far side is occluded
    np.testing.assert_allclose(np.linalg.norm(scan.view_dirs, axis=1), 1.0, atol=1e-9)
    to_point = scan.points - scan.origins[scan.view_ids]
    cos = np.einsum(
        "ij,ij->i", to_point / np.linalg.norm(to_point, axis=1)[:, None], scan.view_dirs
    )
    assert cos.min() > 1 - 1e-9


def test_noise_grows_as_asked():
    quiet = _radial_error(virtual_scan(BALL, ScanSettings(**SMALL)).points)
    noisy = _radial_error(virtual_scan(BALL, ScanSettings(**SMALL, noise=0.02)).points)
    # at the sensors' distance the depth error has std 0.02; nearer points have less
    assert 0.006 < np.median(noisy) < 0.02 and np.median(quiet) < 0.002


def test_grazing_hits_are_dropped():
    full = virtual_scan(BALL, ScanSettings(views=1, side=64))
    cut = virtual_scan(BALL, ScanSettings(views=1, side=64, grazing=(45, 60)))
    normal_cos = lambda s: np.abs(np.einsum("ij,ij->i", s.points, s.view_dirs))  # noqa: E731
    assert len(cut.points) < 0.8 * len(full.points)
    assert normal_cos(cut).min() > np.cos(np.radians(60)) - 0.02
    assert normal_cos(full).min() < np.cos(np.radians(75))


def test_misregistration_moves_each_view_rigidly():
    scan = virtual_scan(BALL, ScanSettings(**SMALL, misregistration=(0.0, 0.05)))
    offsets = np.linalg.norm(scan.points, axis=1) - 1
    assert np.abs(offsets).max() > 0.01  # views no longer agree on the surface
    assert np.abs(offsets).max() <= 0.05 * np.sqrt(3) + 5e-3  # 0.05 bounding radii (sqrt 3)


def test_outliers_take_their_share_and_max_points_caps():
    scan = virtual_scan(BALL, ScanSettings(**SMALL, outliers=0.1, max_points=500))
    assert len(scan.points) == 500
    share = (_radial_error(scan.points) > 0.05).mean()
    assert 0.03 < share < 0.2  # about 10% (outliers landing near the sphere look like inliers)


def test_sensors_are_spread_over_the_sphere():
    d = sensor_directions(12)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    assert np.abs(d.mean(0)).max() < 0.1


def test_a_scan_round_trips_through_its_ply(tmp_path):
    scan = virtual_scan(BALL, ScanSettings(**SMALL))
    path = save_scan(tmp_path / "ball.ply", scan, "a test scan")
    cloud = load_point_cloud(path)
    np.testing.assert_allclose(cloud.points, scan.points, atol=1e-6)
    mesh = trimesh.load(path)
    np.testing.assert_allclose(
        np.stack([mesh.metadata["_ply_raw"]["vertex"]["data"][c] for c in ("vx", "vy", "vz")], 1),
        scan.view_dirs,
        atol=1e-6,
    )
    assert b"virtual_scan: views=4" in path.read_bytes()[:400]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"views": 0}, "views must be an integer from 1 to 1000, got 0"),
        ({"fov": 0}, "fov must be a number from 1 to 170, got 0"),
        ({"noise": -1}, "noise must be a number from 0 to 1, got -1"),
        ({"outliers": 1.0}, "outliers must be a number from 0 to 0.9, got 1.0"),
        (
            {"grazing": (80, 70)},
            "grazing must be two angles 0 <= start <= end <= 90 degrees, got (80, 70)",
        ),
        (
            {"misregistration": (-1, 0)},
            "misregistration must be (degrees, radii) >= 0: a rotation angle and a translation, got (-1, 0)",
        ),
        ({"max_points": 0}, "max_points must be an integer >= 1, got 0"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(InputError) as err:
        ScanSettings(**kwargs)
    assert str(err.value) == message


def test_bad_meshes_and_missing_hits():
    with pytest.raises(InputError, match=r"^the mesh to scan has no faces; pass a triangle mesh"):
        virtual_scan(trimesh.Trimesh())
    with pytest.raises(InputError, match=r"^no ray of the virtual scanner hit the mesh"):
        virtual_scan(BALL, ScanSettings(views=1, side=4, fov=1, distance=1000))


def test_without_open3d_the_error_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_open3d(name, *args, **kwargs):
        if name == "open3d":
            raise ImportError("No module named 'open3d'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_open3d)
    with pytest.raises(BackendUnavailable, match=r"pip install 'fields3d\[poisson\]'"):
        virtual_scan(BALL, ScanSettings(**SMALL))
