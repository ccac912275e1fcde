"""Point clouds: every format, mesh sampling, outlier removal, k-NN distances, normalisation and every error."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError, ModelNotFound
from fields3d.geometry.outliers import remove_outliers
from fields3d.geometry.pointcloud import (
    Normalization,
    PointCloud,
    check_not_a_line,
    knn_distance,
    load_point_cloud,
    sample_mesh,
    validate_point_cloud,
)

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SUPPORTED = ".ply, .xyz, .pts, .txt, .npy, .obj, .off, .stl, .glb"
LAYOUT = "each line needs 3 (x y z) or 6 (x y z nx ny nz) numbers separated by spaces"
NPY_LAYOUT = "a .npy point cloud must have shape (N, 3) for points or (N, 6) for points and normals"


@pytest.fixture
def cloud():
    """40 points on the unit sphere, their outward normals."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(40, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points, points.copy()


def _ascii_ply(path: Path, points: np.ndarray, normals: np.ndarray | None = None) -> Path:
    names = ["x", "y", "z"] + ([] if normals is None else ["nx", "ny", "nz"])
    header = ["ply", "format ascii 1.0", f"element vertex {len(points)}"]
    header += [f"property double {name}" for name in names] + ["end_header"]
    rows = points if normals is None else np.hstack([points, normals])
    path.write_text(
        "\n".join(header + [" ".join(repr(float(v)) for v in row) for row in rows]) + "\n"
    )
    return path


def _on_unit_box(points: np.ndarray, normals: np.ndarray) -> None:
    """Every point lies on a face of the box [-0.5, 0.5]^3 and carries that face's outward normal."""
    np.testing.assert_allclose(np.abs(points).max(axis=1), 0.5, atol=1e-12)
    axis = np.abs(points).argmax(axis=1)
    expected = np.zeros_like(points)
    expected[np.arange(len(points)), axis] = np.sign(points[np.arange(len(points)), axis])
    np.testing.assert_allclose(normals, expected, atol=1e-12)


# --- formats ---------------------------------------------------------------------------------------


def test_binary_ply_cloud(tmp_path, cloud):
    points, _ = cloud
    path = tmp_path / "cloud.ply"
    path.write_bytes(trimesh.PointCloud(points).export(file_type="ply"))  # float32, no normals
    loaded = load_point_cloud(path)
    assert (
        loaded.points.dtype == np.float64 and loaded.normals is None and loaded.source == str(path)
    )
    np.testing.assert_array_equal(loaded.points, points.astype(np.float32))


def test_ascii_ply_cloud_with_normals(tmp_path, cloud):
    points, normals = cloud
    loaded = load_point_cloud(_ascii_ply(tmp_path / "cloud.ply", points, 3 * normals))
    np.testing.assert_array_equal(loaded.points, points)
    np.testing.assert_allclose(loaded.normals, normals, rtol=0, atol=1e-15)  # scaled to unit length


def test_binary_ply_cloud_with_normals(tmp_path, cloud):
    points, normals = cloud
    fields = [(name, "<f8") for name in "xyz"] + [(name, "<f4") for name in ("nx", "ny", "nz")]
    rows = np.zeros(len(points), dtype=fields)
    for i, name in enumerate("xyz"):
        rows[name], rows[f"n{name}"] = points[:, i], normals[:, i]
    header = "ply\nformat binary_little_endian 1.0\nelement vertex 40\n"
    header += (
        "".join(f"property {'double' if t == '<f8' else 'float'} {n}\n" for n, t in fields)
        + "end_header\n"
    )
    path = tmp_path / "cloud.ply"
    path.write_bytes(header.encode() + rows.tobytes())
    loaded = load_point_cloud(path)
    np.testing.assert_array_equal(loaded.points, points)
    np.testing.assert_allclose(loaded.normals, normals, rtol=0, atol=1e-7)


def test_ply_mesh_is_sampled(tmp_path):
    path = tmp_path / "box.ply"
    trimesh.creation.box().export(path)
    loaded = load_point_cloud(path, n_samples=500)
    assert loaded.points.shape == (500, 3) and loaded.normals.shape == (500, 3)
    _on_unit_box(loaded.points, loaded.normals)


@pytest.mark.parametrize("ext", [".obj", ".off", ".stl", ".glb"])
def test_meshes_are_sampled(tmp_path, ext):
    path = tmp_path / f"box{ext}"
    trimesh.creation.box().export(path)
    loaded = load_point_cloud(path, n_samples=300, seed=3)
    assert loaded.points.shape == (300, 3) and loaded.source == str(path)
    _on_unit_box(loaded.points, loaded.normals)
    np.testing.assert_array_equal(
        load_point_cloud(path, n_samples=300, seed=3).points, loaded.points
    )
    assert not np.array_equal(load_point_cloud(path, n_samples=300, seed=4).points, loaded.points)


def test_obj_without_faces_is_read_as_points(tmp_path, cloud):
    points, _ = cloud
    path = tmp_path / "points.obj"
    path.write_text("".join(f"v {x:.17g} {y:.17g} {z:.17g}\n" for x, y, z in points))
    loaded = load_point_cloud(path)
    np.testing.assert_array_equal(loaded.points, points)
    assert loaded.normals is None


def test_xyz_points(tmp_path, cloud):
    points, _ = cloud
    path = tmp_path / "cloud.xyz"
    rows = "".join(f"{x:.17g}\t{y:.17g}  {z:.17g}  # trailing\n" for x, y, z in points)
    path.write_text("# a comment line\n\n" + rows)
    loaded = load_point_cloud(path)
    np.testing.assert_array_equal(loaded.points, points)
    assert loaded.normals is None


def test_txt_points_and_normals(tmp_path, cloud):
    points, normals = cloud
    path = tmp_path / "cloud.txt"
    np.savetxt(path, np.hstack([points, 2 * normals]), fmt="%.17g")
    loaded = load_point_cloud(path)
    np.testing.assert_array_equal(loaded.points, points)
    np.testing.assert_allclose(loaded.normals, normals, rtol=0, atol=1e-15)


def test_pts_with_a_count_line(tmp_path, cloud):
    points, _ = cloud
    path = tmp_path / "cloud.pts"
    path.write_text("40\n" + "".join(f"{x:.17g} {y:.17g} {z:.17g}\n" for x, y, z in points))
    np.testing.assert_array_equal(load_point_cloud(path).points, points)
    path.write_text(
        "".join(f"{x:.17g} {y:.17g} {z:.17g}\n" for x, y, z in points)
    )  # the count line is optional
    np.testing.assert_array_equal(load_point_cloud(path).points, points)


@pytest.mark.parametrize("columns", [3, 6])
def test_npy(tmp_path, cloud, columns):
    points, normals = cloud
    path = tmp_path / "cloud.npy"
    np.save(path, np.hstack([points, normals])[:, :columns].astype(np.float32))
    loaded = load_point_cloud(path)
    np.testing.assert_array_equal(loaded.points, points.astype(np.float32))
    assert (loaded.normals is None) == (columns == 3)


def test_npy_of_integers(tmp_path):
    path = tmp_path / "grid.npy"
    np.save(path, np.indices((3, 3, 3)).reshape(3, -1).T)
    assert load_point_cloud(path).points.dtype == np.float64


def test_shipped_scan():
    scan = load_point_cloud(ASSETS / "scans" / "bunny.ply")
    assert scan.points.shape == (50_000, 3) and scan.normals is None
    bunny = trimesh.load_mesh(ASSETS / "meshes" / "stanford-bunny.obj")
    np.testing.assert_allclose(scan.points.min(axis=0), bunny.bounds[0], atol=2e-3)
    np.testing.assert_allclose(scan.points.max(axis=0), bunny.bounds[1], atol=2e-3)


# --- sampling --------------------------------------------------------------------------------------


def test_sample_mesh_is_area_weighted():
    box = trimesh.creation.box(extents=(1.0, 2.0, 4.0))
    samples = sample_mesh(box, 60_000, seed=1)
    axis = np.abs(samples.normals).argmax(axis=1)
    share = np.bincount(axis, minlength=3) / 60_000
    expected = np.array([2 * 8, 2 * 4, 2 * 2]) / box.area  # faces normal to x are 2 x 4, ...
    np.testing.assert_allclose(share, expected, atol=0.01)  # binomial sd <= 0.002
    np.testing.assert_allclose(
        np.abs(samples.points / [0.5, 1.0, 2.0]).max(axis=1), 1.0, atol=1e-12
    )
    assert samples.source == "60000 samples of mesh"


def test_sample_mesh_noise():
    box = trimesh.creation.box()
    clean = sample_mesh(box, 20_000, seed=2)
    noisy = sample_mesh(box, 20_000, seed=2, noise=0.01)
    offset = noisy.points - clean.points  # the noise does not move the samples themselves
    assert (
        abs(offset.std() - 0.01) < 0.0003 and abs(offset.mean()) < 0.0003
    )  # sd of the estimates ~ 6e-5
    np.testing.assert_array_equal(noisy.normals, clean.normals)


def test_zero_area_faces_are_never_sampled():
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 2]], dtype=float)
    mesh = trimesh.Trimesh(verts, [[0, 1, 2], [3, 3, 3], [0, 1, 1]], process=False)
    samples = sample_mesh(mesh, 1000)
    assert np.all(samples.points[:, 2] == 0) and np.all(samples.normals == [0, 0, 1])


@pytest.mark.parametrize(
    "verts, faces, message",
    [
        (np.zeros((3, 3)), np.zeros((0, 3), int), "cannot sample mesh: it holds no triangles"),
        (np.zeros((3, 3)), [[0, 1, 2]], "cannot sample mesh: it has zero surface area"),
        (
            [[0, 0, 0], [1, 0, 0], [0, np.nan, 0]],
            [[0, 1, 2]],
            "cannot sample mesh: it has NaN or infinite vertices",
        ),
    ],
)
def test_sample_mesh_errors(verts, faces, message):
    mesh = trimesh.Trimesh(
        np.asarray(verts, float), np.asarray(faces, int).reshape(-1, 3), process=False
    )
    with pytest.raises(InputError) as info:
        sample_mesh(mesh, 10)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": 0}, "n must be an integer >= 1, got 0"),
        ({"n": 10, "noise": -0.1}, "noise must be a number >= 0, got -0.1"),
        ({"n": 10, "noise": math.nan}, "noise must be a number >= 0, got nan"),
        ({"n": 10, "seed": -1}, "seed must be an integer from 0 to 9223372036854775807, got -1"),
    ],
)
def test_sample_mesh_arguments(kwargs, message):
    with pytest.raises(InputError) as info:
        sample_mesh(trimesh.creation.box(), **kwargs)
    assert str(info.value) == message


# --- outliers and neighbours ---------------------------------------------------------------------


def test_remove_outliers_drops_the_injected_far_points():
    surface = sample_mesh(trimesh.creation.icosphere(subdivisions=3), 3000, seed=0)
    far = np.random.default_rng(1).uniform(-3, 3, size=(30, 3))
    far = far[np.linalg.norm(far, axis=1) > 1.5][:20]  # clearly off the unit sphere
    normals = np.vstack([surface.normals, np.tile([0.0, 0.0, 1.0], (20, 1))])
    noisy = PointCloud(np.vstack([surface.points, far]), normals, "noisy sphere")
    kept, removed = remove_outliers(noisy, k=20, std_ratio=2.0)
    assert removed == 20
    np.testing.assert_array_equal(kept.points, surface.points)  # order kept, no surface point lost
    np.testing.assert_array_equal(kept.normals, surface.normals)
    assert kept.source == "noisy sphere"


def test_remove_outliers_survives_a_point_at_1e300():
    surface = sample_mesh(trimesh.creation.icosphere(subdivisions=3), 500, seed=0)
    alone, _ = remove_outliers(surface, std_ratio=3.0)
    assert len(alone) == 500
    for far in (1e300, 1e154):  # an infinite neighbour distance; one whose square overflows
        cloud = PointCloud(
            np.vstack([surface.points, [[far, 0.0, 0.0]]]), None, "sphere and a far point"
        )
        with np.errstate(all="raise"):  # no overflow warning printed before the result either
            kept, removed = remove_outliers(cloud, std_ratio=3.0)
        assert removed == 1
        np.testing.assert_array_equal(kept.points, surface.points)


def test_remove_outliers_small_clouds():
    points = np.arange(15.0).reshape(5, 3)
    kept, removed = remove_outliers(PointCloud(points, None, "line"), k=20)  # k capped at N - 1
    assert removed == 0 and len(kept) == 5
    single = PointCloud(points[:1], None, "one")
    assert remove_outliers(single) == (single, 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must be an integer >= 1, got 0"),
        ({"std_ratio": 0}, "std_ratio must be a number > 0, got 0"),
        ({"std_ratio": "2"}, "std_ratio must be a number > 0, got '2'"),
    ],
)
def test_remove_outliers_arguments(kwargs, message):
    with pytest.raises(InputError) as info:
        remove_outliers(PointCloud(np.zeros((10, 3)), None, "x"), **kwargs)
    assert str(info.value) == message


def test_remove_outliers_inputs():
    """An array for a PointCloud said "'numpy.ndarray' object has no attribute 'points'", a NaN point
    "data must be finite" (cKDTree's), and (N, 2) points were taken."""
    points = np.random.default_rng(0).random((30, 3))
    cases = [
        (
            points,
            "cloud must be a PointCloud (load_point_cloud returns one; or PointCloud(points, normals, source)), "
            "got ndarray",
        ),
        (
            PointCloud(np.r_[points, [[np.nan, 0, 0]]], None, "scan.xyz"),
            "point cloud scan.xyz has NaN or infinite coordinates in 1 of its 31 rows (first at index 30); remove those rows",
        ),
        (
            PointCloud(points[:, :2], None, "flat.xyz"),
            "point cloud flat.xyz: points must have shape (N, 3), got (30, 2)",
        ),
        (
            PointCloud(points.astype(str), None, "text"),
            "point cloud text: points must be numbers, got dtype <U32",
        ),
    ]
    for cloud, message in cases:
        with pytest.raises(InputError) as info:
            remove_outliers(cloud)
        assert str(info.value) == message


def test_knn_distance():
    points = np.array([[0, 0, 0], [1, 0, 0], [3, 0, 0], [3, 0, 0], [10, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(knn_distance(points, 1), [1, 1, 0, 0, 7])
    np.testing.assert_array_equal(knn_distance(points, 2), [3, 2, 2, 2, 7])
    np.testing.assert_array_equal(knn_distance(points, 4), [10, 9, 7, 7, 10])
    assert knn_distance(points, 1).dtype == np.float64


@pytest.mark.parametrize(
    "points, k, message",
    [
        (np.zeros((5, 2)), 1, "points must be numbers of shape (N, 3), got float64 (5, 2)"),
        (np.zeros((1, 3)), 1, "knn_distance needs at least 2 points, got 1"),
        (
            np.zeros((5, 3)),
            5,
            "k must be an integer from 1 to 4 (the number of other points), got 5",
        ),
        (
            np.zeros((5, 3)),
            0,
            "k must be an integer from 1 to 4 (the number of other points), got 0",
        ),
    ],
)
def test_knn_distance_errors(points, k, message):
    with pytest.raises(InputError) as info:
        knn_distance(points, k)
    assert str(info.value) == message


# --- normalisation ---------------------------------------------------------------------------------


def test_normalization_maps_the_longest_side_to_the_extent():
    points = np.array([[1.0, -2.0, 3.0], [5.0, 0.0, 4.0], [3.0, 6.0, 3.5]])  # extents 4, 8, 1
    norm = Normalization.fit(points, extent=0.9)
    np.testing.assert_array_equal(norm.center, [3.0, 2.0, 3.5])
    assert norm.scale == pytest.approx(4.0 / 0.9)
    unit = norm.to_unit(points)
    np.testing.assert_allclose(unit.min(axis=0), [-0.45, -0.9, -0.1125])
    np.testing.assert_allclose(unit.max(axis=0), [0.45, 0.9, 0.1125])
    np.testing.assert_allclose(norm.to_world(unit), points, rtol=0, atol=1e-14)


def test_normalization_torch_and_dict_round_trip():
    points = torch.tensor([[0.0, 0.0, 0.0], [2.0, 1.0, 1.0]], dtype=torch.float32)
    norm = Normalization.fit(points)
    unit = norm.to_unit(points)
    assert unit.dtype == torch.float32 and isinstance(unit, torch.Tensor)
    torch.testing.assert_close(norm.to_world(unit), points)
    again = Normalization.from_dict(norm.to_dict())
    assert norm.to_dict() == {"center": [1.0, 0.5, 0.5], "scale": 1.0 / 0.9}
    np.testing.assert_array_equal(again.center, norm.center)
    assert again.scale == norm.scale


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: Normalization.fit(np.ones((4, 3))),
            "cannot fit a normalization: all 4 points are identical (zero extent)",
        ),
        (lambda: Normalization.fit(np.zeros((0, 3))), "cannot fit a normalization to 0 points"),
        (
            lambda: Normalization.fit(np.zeros((4, 2))),
            "points must be numbers of shape (N, 3), got float64 (4, 2)",
        ),
        (
            lambda: Normalization.fit([[0, 0, 0], [1, 1, np.nan]]),
            "cannot fit a normalization to points with NaN or infinite coordinates",
        ),
        (lambda: Normalization.fit(np.eye(3), extent=0), "extent must be a number > 0, got 0"),
        (
            lambda: Normalization(center=[0, 0], scale=1.0),
            "center must be 3 finite numbers, got [0, 0]",
        ),
        (
            lambda: Normalization(center=[0, 0, 0], scale=-1.0),
            "scale must be a finite number > 0, got -1.0",
        ),
        # past these a field's float32 world coordinates turn into zeros or infinities (a checkpoint
        # with scale 1e38 rendered as an IndexError, 1e-300 as "eye and target must differ")
        (
            lambda: Normalization(center=[0, 0, 0], scale=1e38),
            "scale must be from 1e-12 to 1e+12, got 1e+38",
        ),
        (
            lambda: Normalization(center=[0, 0, 0], scale=1e-300),
            "scale must be from 1e-12 to 1e+12, got 1e-300",
        ),
        (
            lambda: Normalization(center=[0, 2e12, 0], scale=1.0),
            "center must lie within 1e+12 of the origin, got [0, 2000000000000.0, 0]",
        ),
        (
            lambda: Normalization.fit([[0, 0, 0], [1e300, 1, 1]]),
            "cannot fit a normalization: the points' bounding box is 1e+300 across around (5e+299, 0.5, 0.5); "
            "fields3d works with sizes from 2e-12 to 2e+12 within 1e+12 of the origin: rescale or translate the points",
        ),
        (
            lambda: Normalization.from_dict({"center": [0, 0, 0]}),
            "a normalization must be a dict with keys 'center' and 'scale', got {'center': [0, 0, 0]}",
        ),
    ],
)
def test_normalization_errors(call, message):
    with pytest.raises(InputError) as info:
        call()
    assert str(info.value) == message


# --- errors: files -------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "missing.ply"
    with pytest.raises(ModelNotFound) as info:
        load_point_cloud(path)
    assert str(info.value) == (
        f"point cloud not found: {path}; pass the path of a .ply, .xyz, .pts, .txt, .npy, .obj, .off, .stl or .glb file"
    )


@pytest.mark.parametrize(
    "name, shown", [("scan.las", "unsupported extension '.las'"), ("scan", "no extension")]
)
def test_unsupported_extension(tmp_path, name, shown):
    path = tmp_path / name
    path.write_text("1 2 3\n")
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert (
        str(info.value)
        == f"cannot read point cloud {path}: {shown}; use one of {SUPPORTED} (meshes are sampled)"
    )


@pytest.mark.parametrize(
    "name, content",
    [
        ("junk.ply", b"hello world" * 10),
        ("junk.npy", b"\x93NUMPY garbage"),
        ("junk.off", b"OFF\n3 1 0\n1 2 3\n"),
    ],
)
def test_corrupt_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    message = str(info.value)
    assert message.startswith(f"cannot read point cloud {path}: ")
    assert message.endswith(f"; check that it is a complete, valid {path.suffix} file")
    assert info.value.__cause__ is not None


def test_truncated_ply(tmp_path, cloud):
    path = tmp_path / "cut.ply"
    path.write_bytes(trimesh.PointCloud(cloud[0]).export(file_type="ply")[:300])
    pattern = (
        rf"^cannot read point cloud {path}: .+; check that it is a complete, valid \.ply file$"
    )
    with pytest.raises(InputError, match=pattern):
        load_point_cloud(path)


def test_an_npz_archive_named_npy_is_refused(tmp_path):
    np.savez(tmp_path / "cloud.npz", points=np.zeros((20, 3)))
    path = (tmp_path / "cloud.npz").rename(tmp_path / "cloud.npy")
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == (
        f"cannot read point cloud {path}: it is an .npz archive, not an .npy array; save "
        "the points with numpy.save"
    )


def test_pickled_npy_is_refused(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(
        InputError, match=rf"^cannot read point cloud {path}: ValueError: .*allow_pickle"
    ):
        load_point_cloud(path)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((5, 4)), f"it holds an array of shape (5, 4); {NPY_LAYOUT}"),
        (np.zeros(12), f"it holds an array of shape (12,); {NPY_LAYOUT}"),
        (
            np.array([["a", "b", "c"]]),
            "it holds an array of dtype <U1; a .npy point cloud must hold numbers",
        ),
    ],
)
def test_npy_layout(tmp_path, array, message):
    path = tmp_path / "cloud.npy"
    np.save(path, array)
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == f"cannot read point cloud {path}: {message}"


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.xyz", "0 0 0\n1 2\n", f"line 2 has 2 values; {LAYOUT}"),
        ("a.xyz", "0,0,0\n", f"line 1 has 1 value; {LAYOUT}"),
        (
            "a.txt",
            "# header\n0 0 0\n1 1 1 0 0 1\n",
            "line 3 has 6 values but line 2 has 3; every line needs the same count, 3 (x y z) or 6 (x y z nx ny nz)",
        ),
        ("a.xyz", "0 0 0\n1 1 one\n", f"line 2 holds 'one', which is not a number; {LAYOUT}"),
        (
            "a.pts",
            "5\n0 0 0\n1 1 1\n",
            "its first line declares 5 points but 2 follow; the file may be truncated",
        ),
    ],
)
def test_text_layout(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == f"cannot read point cloud {path}: {message}"


def test_binary_text_file(tmp_path):
    path = tmp_path / "a.xyz"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == f"cannot read point cloud {path}: it is not a text file; {LAYOUT}"


def test_n_samples_is_checked_first(tmp_path):
    with pytest.raises(InputError) as info:
        load_point_cloud(tmp_path / "missing.obj", n_samples=5)
    assert str(info.value) == "n_samples must be an integer from 10 to 100000000, got 5"


# --- errors: content -----------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.xyz"
    path.write_text("# nothing here\n")
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert (
        str(info.value)
        == f"point cloud {path} holds no points; pass a file with at least 10 points"
    )


def test_too_few_points(tmp_path, cloud):
    path = tmp_path / "few.npy"
    np.save(path, cloud[0][:9])
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert (
        str(info.value)
        == f"point cloud {path} holds only 9 points; at least 10 are needed to fit a surface"
    )


def test_nan_and_inf_rows(tmp_path, cloud):
    points = cloud[0].copy()
    points[[3, 7, 8], [0, 2, 1]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "nan.txt"
    np.savetxt(path, points)
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == (
        f"point cloud {path} has NaN or infinite coordinates in 3 of its 40 rows (first at index 3); remove those rows"
    )


def test_identical_points(tmp_path):
    path = tmp_path / "same.ply"
    _ascii_ply(path, np.tile([1.0, 2.0, 3.0], (12, 1)))
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == (
        f"point cloud {path}: all 12 points are identical, so it has zero extent; "
        "a surface needs points spread out in space"
    )


@pytest.mark.parametrize("offset", [0.0, 5e6])
def test_points_on_one_line(offset):
    """Reconstructed, a line of points became a thin tube with exit 0."""
    t = np.linspace(0.0, 1.0, 50)[:, None]
    with pytest.raises(InputError) as info:
        check_not_a_line(offset + t * np.array([1.0, 2.0, 0.5]), "line.ply")
    assert str(info.value).startswith(
        "point cloud line.ply: all 50 points lie on one line (their spread across it is "
    )
    assert str(info.value).endswith(
        " of their spread along it); a surface needs points spread out in two directions at least"
    )
    check_not_a_line(
        offset + np.c_[t, 2 * t, 0.5 * t + 1e-3 * np.sin(9 * t)], "bent.ply"
    )  # a millimetre's bend


def test_bad_normals_in_a_file(tmp_path, cloud):
    points, normals = cloud
    normals = normals.copy()
    normals[[5, 9]] = 0.0
    path = _ascii_ply(tmp_path / "zero.ply", points, normals)
    with pytest.raises(InputError) as info:
        load_point_cloud(path)
    assert str(info.value) == (
        f"point cloud {path} has zero-length normals at 2 of its 40 points (first at index 5); "
        "fix them or leave the normals out"
    )


@pytest.mark.parametrize(
    "normals, message",
    [
        (np.ones((39, 3)), "float64 (39, 3)"),
        (np.ones((40, 2)), "float64 (40, 2)"),
        (np.full((40, 3), "x"), "<U1 (40, 3)"),
    ],
)
def test_normals_of_the_wrong_shape(cloud, normals, message):
    with pytest.raises(InputError) as info:
        validate_point_cloud(PointCloud(cloud[0], normals, "scan.ply"))
    assert str(info.value) == (
        f"point cloud scan.ply: normals must be numbers of shape (40, 3), one per point, got {message}; "
        "pass matching normals or none"
    )


def test_nan_normals(cloud):
    normals = cloud[1].copy()
    normals[11, 1] = np.nan
    with pytest.raises(InputError) as info:
        validate_point_cloud(PointCloud(cloud[0], normals, "scan.ply"))
    assert str(info.value) == (
        "point cloud scan.ply has NaN or infinite normals at 1 of its 40 points (first at index 11); "
        "fix them or leave the normals out"
    )


@pytest.mark.parametrize(
    "points, message",
    [
        (np.zeros((40, 2)), "point cloud scan.ply: points must have shape (N, 3), got (40, 2)"),
        (np.full((40, 3), "1"), "point cloud scan.ply: points must be numbers, got dtype <U1"),
    ],
)
def test_points_of_the_wrong_shape(points, message):
    with pytest.raises(InputError) as info:
        validate_point_cloud(PointCloud(points, None, "scan.ply"))
    assert str(info.value) == message


def test_validate_returns_a_clean_copy(cloud):
    points = cloud[0].astype(np.float32)
    checked = validate_point_cloud(PointCloud(points, 5 * cloud[1], "scan.ply"))
    assert checked.points.dtype == np.float64 and checked.points.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(checked.normals, axis=1), 1.0, rtol=0, atol=1e-15)
    assert checked.source == "scan.ply"
