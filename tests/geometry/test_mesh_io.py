"""Mesh IO: round trips through every format, the shipped meshes, atomic writes and every error message."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError, ModelNotFound
from fields3d.geometry import mesh_io
from fields3d.geometry.mesh_io import load_mesh, save_mesh

MESHES = Path(__file__).resolve().parents[2] / "assets" / "meshes"
FORMATS = (".ply", ".obj", ".off", ".stl", ".glb")
# what each format keeps of float64 positions: PLY, STL and GLB float32, OBJ 8 decimals, OFF 10
POSITION_TOLERANCE = {".ply": 2e-7, ".obj": 1e-8, ".off": 1e-10, ".stl": 2e-7, ".glb": 2e-7}


@pytest.fixture
def sphere():
    mesh = trimesh.creation.icosphere(subdivisions=2)
    rng = np.random.default_rng(0)
    return mesh.vertices * rng.uniform(0.5, 2.0, size=3) + rng.normal(size=3), mesh.faces


@pytest.mark.parametrize("ext", FORMATS)
def test_round_trip(tmp_path, sphere, ext):
    verts, faces = sphere
    path = save_mesh(verts, faces, tmp_path / f"sphere{ext}")
    assert path == tmp_path / f"sphere{ext}" and path.is_file()
    mesh = load_mesh(path)
    assert mesh.vertices.dtype == np.float64 and mesh.faces.dtype == np.int64
    assert (
        mesh.vertices.shape == verts.shape and mesh.faces.shape == faces.shape
    )  # STL's copies merged again
    np.testing.assert_allclose(
        mesh.triangles, verts[faces], rtol=0, atol=POSITION_TOLERANCE[ext] * 4
    )
    assert mesh.is_watertight and mesh.metadata["file_name"] == f"sphere{ext}"
    assert [p.name for p in tmp_path.iterdir()] == [f"sphere{ext}"]  # no temporary file left


def test_ply_is_binary_and_obj_is_text(tmp_path, sphere):
    save_mesh(*sphere, tmp_path / "a.ply")
    save_mesh(*sphere, tmp_path / "a.obj")
    assert b"format binary_little_endian 1.0" in (tmp_path / "a.ply").read_bytes()[:200]
    assert (tmp_path / "a.obj").read_text().count("\nf ") == len(sphere[1])


def test_torch_arrays_and_uppercase_extension(tmp_path, sphere):
    verts, faces = sphere
    path = save_mesh(
        torch.from_numpy(verts).float(),
        torch.from_numpy(faces).int(),
        tmp_path / "deep" / "er" / "m.PLY",
    )
    mesh = load_mesh(path)
    np.testing.assert_allclose(mesh.vertices, verts.astype(np.float32), rtol=0, atol=0)
    np.testing.assert_array_equal(mesh.faces, faces)


def test_empty_mesh_is_written_but_not_read_back(tmp_path):
    path = save_mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), tmp_path / "empty.ply")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert (
        str(info.value)
        == f"mesh {path} holds no triangles; to reconstruct a point cloud use fields3d recon"
    )


def test_glb_scene_meshes_are_joined_with_their_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(
        trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([5, 0, 0])
    )
    scene.add_geometry(
        trimesh.creation.box(), transform=trimesh.transformations.translation_matrix([-5, 0, 0])
    )
    path = tmp_path / "two.glb"
    path.write_bytes(scene.export(file_type="glb"))
    mesh = load_mesh(path)
    assert len(mesh.faces) == 24
    np.testing.assert_allclose(mesh.bounds, [[-5.5, -0.5, -0.5], [5.5, 0.5, 0.5]])


def test_shipped_meshes():
    spot = load_mesh(MESHES / "spot.obj")
    # faces index the `v` lines: its texture seams do not split vertices, so spot is closed
    assert spot.vertices.shape == (2930, 3) and spot.faces.shape == (5856, 3) and spot.is_watertight
    bunny = load_mesh(MESHES / "stanford-bunny.obj")
    # 35,947 `v` lines of which 1,113 no face uses; the scan has holes at its base
    assert (
        bunny.vertices.shape == (34834, 3)
        and bunny.faces.shape == (69451, 3)
        and not bunny.is_watertight
    )
    for name in ("fandisk", "rocker-arm", "cow"):
        assert load_mesh(MESHES / f"{name}.obj").is_watertight


def test_missing_file(tmp_path):
    path = tmp_path / "missing.obj"
    with pytest.raises(ModelNotFound) as info:
        load_mesh(path)
    assert (
        str(info.value)
        == f"mesh not found: {path}; pass the path of a .ply, .obj, .off, .stl or .glb file"
    )


PLY_HEADER = (
    "ply\nformat ascii 1.0\ncomment made by hand\nelement vertex 4\nproperty float x\nproperty float y\n"
    "property float z\nelement face 2\nproperty list uchar int vertex_indices\nend_header\n"
)


@pytest.mark.parametrize(
    "body, lines",
    [
        (
            "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n3 1 2 0\n",
            5,
        ),  # a vertex short: trimesh read the face line as one
        (
            "0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 1 2 3\n3 0 2 3\n",
            7,
        ),  # a face too many: dropped silently
    ],
)
def test_ascii_ply_whose_lines_do_not_match_its_header(tmp_path, body, lines):
    path = tmp_path / "counts.ply"
    path.write_text(PLY_HEADER + body)
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert str(info.value) == (
        f"cannot read mesh {path}: its header declares 4 vertex, 2 face (6 data lines) but the "
        f"file holds {lines}; it is truncated or its header is wrong: re-export it"
    )
    path.write_text(PLY_HEADER + "0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 1 2 3\n")
    assert load_mesh(path).faces.tolist() == [[0, 1, 2], [1, 2, 3]]


def test_obj_face_index_zero(tmp_path):
    """OBJ numbers vertices from 1; trimesh took 0 as the last vertex and built a wrong triangle."""
    path = tmp_path / "zero.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 2/2/2 0/1/1 4\n")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert str(info.value) == (
        f"cannot read mesh {path}: line 6 ('f 2/2/2 0/1/1 4') uses vertex index 0, but OBJ "
        "numbers vertices from 1; re-export the file"
    )
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1/0 2 3\nf 2 3 -1\n")
    assert load_mesh(path).faces.tolist() == [
        [0, 1, 2],
        [1, 2, 3],
    ]  # texture index 0, negative indices: fine


@pytest.mark.parametrize(
    "name, shown", [("mesh.fbx", "unsupported extension '.fbx'"), ("mesh", "no extension")]
)
def test_unsupported_extension_on_load(tmp_path, name, shown):
    path = tmp_path / name
    path.write_text("whatever")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert (
        str(info.value)
        == f"cannot read mesh {path}: {shown}; use one of .ply, .obj, .off, .stl, .glb"
    )


@pytest.mark.parametrize(
    "name, content",
    [
        ("junk.ply", b"hello world" * 10),
        ("junk.obj", b"v 0 0 0\nf 1 2 3\n"),
        ("junk.off", b"OFF\n3 1 0\n1 2 3\n"),
        ("junk.glb", b"glTF garbage that is not a binary glTF"),
    ],
)
def test_corrupt_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        load_mesh(path)
    ext = path.suffix
    message = str(info.value)
    assert message.startswith(f"cannot read mesh {path}: ") and message.endswith(
        f"; check that it is a complete, valid {ext} file"
    )
    assert info.value.__cause__ is not None  # the parser's own exception is kept


def test_truncated_ply(tmp_path, sphere):
    path = save_mesh(*sphere, tmp_path / "whole.ply")
    cut = tmp_path / "cut.ply"
    cut.write_bytes(path.read_bytes()[:400])
    pattern = rf"^cannot read mesh {cut}: .+; check that it is a complete, valid \.ply file$"
    with pytest.raises(InputError, match=pattern):
        load_mesh(cut)


def test_no_triangles(tmp_path):
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert (
        str(info.value)
        == f"mesh {path} holds no triangles; to reconstruct a point cloud use fields3d recon"
    )


def test_nan_vertices(tmp_path):
    path = tmp_path / "nan.off"
    path.write_text("OFF\n4 2 0\n0 0 0\nnan 0 0\n0 1 0\n0 0 inf\n3 0 1 2\n3 0 2 3\n")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert str(info.value) == (
        f"mesh {path} has NaN or infinite coordinates in 2 of its 4 vertices; repair or re-export it"
    )


def test_face_index_out_of_range(tmp_path):
    path = tmp_path / "bad.ply"
    header = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    header += "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    path.write_text(header + "0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
    with pytest.raises(InputError) as info:
        load_mesh(path)
    assert str(info.value) == (
        f"mesh {path} has a face that refers to vertex 7 but its vertices are numbered 0 to 2; "
        "the file is corrupt, re-export it"
    )


@pytest.mark.parametrize(
    "name, shown", [("mesh.fbx", "unsupported extension '.fbx'"), ("mesh", "no extension")]
)
def test_unsupported_extension_on_save_writes_nothing(tmp_path, sphere, name, shown):
    path = tmp_path / "out" / name
    with pytest.raises(InputError) as info:
        save_mesh(*sphere, path)
    assert (
        str(info.value)
        == f"cannot write mesh {path}: {shown}; use one of .ply, .obj, .off, .stl, .glb"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("ext", [".ply", ".stl", ".glb"])
def test_coordinates_beyond_float32_are_refused_where_the_format_stores_float32(
    tmp_path, sphere, ext
):
    verts, faces = sphere
    path = tmp_path / f"huge{ext}"
    with pytest.raises(InputError) as info:
        save_mesh(verts * 1e300, faces, path)
    reach = np.abs(verts * 1e300).max()
    assert str(info.value) == (
        f"cannot write mesh {path}: its coordinates reach {reach:.3g}, beyond the float32 "
        f"range {ext} stores (3.4e+38); write .obj or .off, or scale the mesh down"
    )
    assert not path.exists()
    back = load_mesh(save_mesh(verts * 1e300, faces, tmp_path / "huge.obj"))
    assert np.isfinite(back.vertices).all() and np.allclose(back.vertices, verts * 1e300, rtol=1e-7)


@pytest.mark.parametrize(
    "verts, faces, message",
    [
        (
            np.zeros((4, 2)),
            np.zeros((1, 3), int),
            "verts must be a float array of shape (V, 3), got float64 (4, 2)",
        ),
        (
            np.zeros((4, 3), int),
            np.zeros((1, 3), int),
            "verts must be a float array of shape (V, 3), got int64 (4, 3)",
        ),
        (
            np.zeros((4, 3)),
            np.zeros((1, 3)),
            "faces must be an integer array of shape (F, 3), got float64 (1, 3)",
        ),
        (
            np.zeros((4, 3)),
            np.zeros((2, 4), int),
            "faces must be an integer array of shape (F, 3), got int64 (2, 4)",
        ),
        (
            np.zeros((4, 3)),
            np.array([[0, 1, 4]]),
            "faces must index verts (0 to 3), got indices from 0 to 4",
        ),
        (
            np.zeros((4, 3)),
            np.array([[0, -1, 2]]),
            "faces must index verts (0 to 3), got indices from -1 to 2",
        ),
        (
            np.array([[0, 0, 0], [np.nan, 0, 0], [0, 1, 0], [0, 0, np.inf]]),
            np.array([[0, 1, 2]]),
            "verts has NaN or infinite coordinates in 2 of its 4 rows (first at index 1); a mesh cannot hold them",
        ),
    ],
)
def test_bad_arrays_write_nothing(tmp_path, verts, faces, message):
    path = tmp_path / "mesh.ply"
    path.write_bytes(b"previous")
    with pytest.raises(InputError) as info:
        save_mesh(verts, faces, path)
    assert str(info.value) == message
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["mesh.ply"]


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_written_file_has_ordinary_permissions(tmp_path, sphere):
    mask = os.umask(0o022)
    os.umask(mask)
    path = save_mesh(*sphere, tmp_path / "mesh.ply")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_existing_file_is_replaced_on_success(tmp_path, sphere):
    path = tmp_path / "mesh.obj"
    path.write_text("previous")
    save_mesh(*sphere, path)
    assert len(load_mesh(path).faces) == len(sphere[1])
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.obj"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, sphere, monkeypatch):
    path = tmp_path / "mesh.ply"
    path.write_bytes(b"previous")

    def failing_replace(src, dst):
        assert (
            Path(src).parent == tmp_path and Path(src).stat().st_size > 1000
        )  # written in full beside it
        raise OSError("disk full")

    monkeypatch.setattr(mesh_io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="^disk full$"):
        save_mesh(*sphere, path)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["mesh.ply"]


def test_detail_survives_large_offsets_and_small_scales(tmp_path, sphere):
    verts, faces = sphere
    utm = verts * 5 + [5e5, 5e6, 300.0]  # a scan in UTM metres: float32 keeps 0.5 m steps at 5e6
    back = load_mesh(save_mesh(utm, faces, tmp_path / "utm.ply"))
    np.testing.assert_array_equal(back.vertices, utm)  # written as doubles
    small = load_mesh(save_mesh(verts, faces, tmp_path / "unit.ply"))
    np.testing.assert_array_equal(
        small.vertices, verts.astype(np.float32)
    )  # ordinary meshes stay float32
    assert (tmp_path / "unit.ply").stat().st_size < (tmp_path / "utm.ply").stat().st_size
    for ext in (".obj", ".off"):
        tiny = load_mesh(save_mesh(verts * 1e-7, faces, tmp_path / f"tiny{ext}"))
        np.testing.assert_allclose(tiny.vertices, verts * 1e-7, rtol=0, atol=1e-15)
        assert len(np.unique(tiny.vertices, axis=0)) == len(verts)
