"""View directions of scans: reading them from PLY, their checks (exact messages), facing away."""

import numpy as np
import pytest
import trimesh

from fields3d.errors import InputError
from fields3d.geometry.scan import Scan, ScanSettings, save_scan, virtual_scan
from fields3d.geometry.views import check_view_dirs, facing_away, read_view_dirs

pytest.importorskip("open3d", reason="the virtual scanner casts rays with Open3D")


@pytest.fixture(scope="module")
def scan():
    return virtual_scan(trimesh.creation.icosphere(3), ScanSettings(views=3, side=24, seed=0))


def test_a_scan_ply_gives_back_its_view_directions(scan, tmp_path):
    dirs = read_view_dirs(save_scan(tmp_path / "scan.ply", scan))
    assert dirs.shape == scan.points.shape and dirs.dtype == np.float64
    np.testing.assert_allclose(dirs, scan.view_dirs, atol=1e-6)  # float32 in the file


def test_files_without_view_directions_give_none(scan, tmp_path):
    np.savetxt(tmp_path / "scan.xyz", scan.points)
    trimesh.PointCloud(scan.points).export(tmp_path / "plain.ply")
    trimesh.creation.box().export(tmp_path / "box.ply")  # a mesh: recon samples it
    for name in ("scan.xyz", "plain.ply", "box.ply"):
        assert read_view_dirs(tmp_path / name) is None, name


def test_view_directions_of_the_wrong_shape_are_named():
    with pytest.raises(InputError) as info:
        check_view_dirs(np.zeros((4, 2)), 5, "scan.ply")
    assert str(info.value) == (
        "view directions of scan.ply must be numbers of shape (5, 3), one unit vector a point, "
        "got float64 (4, 2); write vx vy vz for every point or none"
    )


@pytest.mark.parametrize(
    "row, first, length", [([0.0, 0.0, 0.5], 1, "0.5"), ([np.nan, 0.0, 1.0], 1, "nan")]
)
def test_view_directions_that_are_not_unit_are_named(row, first, length):
    dirs = np.array([[0.0, 0.0, 1.0], row, [0.0, 1.0, 0.0]])
    with pytest.raises(InputError) as info:
        check_view_dirs(dirs, 3, "scan.ply")
    assert str(info.value) == (
        "view directions of scan.ply must be unit vectors from the sensor to each point: 1 of 3 "
        f"are not (first at index {first}, length {length}); normalise them or leave vx vy vz out"
    )


def test_view_directions_are_renormalised_within_the_tolerance():
    dirs = check_view_dirs([[0.0, 0.0, 1.0005]], 1, "scan.ply")
    assert dirs.tolist() == [[0.0, 0.0, 1.0]]


def test_reconstruct_names_bad_view_directions_before_writing(scan, tmp_path):
    from fields3d.pipelines.recon import ReconConfig, reconstruct

    bad = Scan(scan.points, scan.view_dirs * 2, scan.view_ids, scan.origins, scan.settings)
    path = save_scan(tmp_path / "bad.ply", bad)
    with pytest.raises(InputError) as info:
        reconstruct(ReconConfig(path, tmp_path / "m.ply", device="cpu"), progress=False)
    n = len(scan.points)
    assert str(info.value) == (
        f"view directions of {path} must be unit vectors from the sensor to each point: {n} of "
        f"{n} are not (first at index 0, length 2); normalise them or leave vx vy vz out"
    )
    assert not (tmp_path / "m.ply").exists()


def test_points_seen_from_behind_face_away(scan):
    outward = scan.points / np.linalg.norm(scan.points, axis=1, keepdims=True)  # the ball's normals
    assert not facing_away(outward, scan.view_dirs).any()  # a scanner sees the outside
    # flipped, all but those seen more than 60 degrees off the normal face away (0.77 here)
    assert facing_away(-outward, scan.view_dirs).mean() > 0.7
