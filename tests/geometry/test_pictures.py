"""Headless mesh pictures: coverage, shading, z-buffer occlusion, empty meshes, PNG output, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from fields3d.errors import InputError
from fields3d.geometry import pictures
from fields3d.geometry.pictures import rasterize, render_mesh, render_views, save_mesh_png

GREY = np.array([0.75, 0.78, 0.85])
WHITE = np.array([255, 255, 255], dtype=np.uint8)


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4)  # unit radius, 5120 faces


def _background(image: np.ndarray, rgb=WHITE) -> np.ndarray:
    return (image == rgb).all(axis=-1)


def test_shape_and_dtype(sphere):
    image = render_mesh(sphere.vertices, sphere.faces, size=48)
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    face_id, depth, bary = rasterize(sphere.vertices, sphere.faces, size=48)
    assert face_id.shape == (48, 48) and face_id.dtype == np.int64
    assert depth.shape == (48, 48) and bary.shape == (48, 48, 3)
    hit = face_id >= 0
    np.testing.assert_allclose(bary[hit].sum(axis=1), 1.0, atol=1e-12)
    assert (bary[hit] >= 0).all() and np.isneginf(depth[~hit]).all()


def test_torch_input_matches_numpy(sphere):
    verts, faces = torch.from_numpy(sphere.vertices).float(), torch.from_numpy(sphere.faces)
    expected = render_mesh(sphere.vertices.astype(np.float32), sphere.faces, size=40)
    np.testing.assert_array_equal(render_mesh(verts, faces, size=40), expected)


def test_sphere_is_a_filled_disc(sphere):
    size = 128
    image = render_mesh(sphere.vertices, sphere.faces, size=size, azimuth=0.0, elevation=0.0)
    covered = ~_background(image)
    # the bounding sphere's radius spans FILL of the half-width: a disc of area pi (FILL / 2)^2
    expected = math.pi * (pictures.FILL / 2) ** 2
    assert covered.mean() == pytest.approx(expected, rel=0.02)  # measured 0.9989 x
    assert not covered[:8, :8].any() and not covered[-8:, -8:].any()  # corners stay background
    assert (image[0, 0] == WHITE).all() and (image[-1, :] == WHITE).all()
    rows, cols = np.nonzero(covered)  # a disc centred in the picture, no holes inside it
    assert rows.mean() == pytest.approx((size - 1) / 2, abs=0.5)
    assert cols.mean() == pytest.approx((size - 1) / 2, abs=0.5)
    r = np.hypot(*np.meshgrid(np.arange(size) + 0.5 - size / 2, np.arange(size) + 0.5 - size / 2))
    assert covered[r < 0.95 * pictures.FILL * size / 2].all()


def test_sphere_shading(sphere):
    size = 128
    image = render_mesh(
        sphere.vertices, sphere.faces, size=size, azimuth=0.0, elevation=0.0
    ).astype(float)
    # the centre faces the camera: ambient + full headlight + the key light's share along the view
    key = pictures.KEY_CAMERA / np.linalg.norm(pictures.KEY_CAMERA)
    centre = GREY * (pictures.AMBIENT + pictures.HEADLIGHT + pictures.KEY * key[2]) * 255
    np.testing.assert_allclose(image[size // 2, size // 2], centre, atol=2.0)
    brightness = image.sum(axis=-1)
    brightness[_background(image.astype(np.uint8))] = -1
    row, col = np.unravel_index(np.argmax(brightness), brightness.shape)
    assert row < size / 2 and col < size / 2  # the key light comes from the upper left
    rim = brightness[
        size // 2, size // 2 + int(0.9 * pictures.FILL * size / 2)
    ]  # 90% out, to the right
    assert 0 < rim < brightness[size // 2, size // 2] - 60  # grazing at the rim: darker


def test_flat_and_smooth_normals():
    box = trimesh.creation.box()
    flat = render_mesh(box.vertices, box.faces, size=96, azimuth=45.0, elevation=35.0, smooth=False)
    colours = np.unique(flat[~_background(flat)], axis=0)
    assert len(colours) == 3  # three faces of the cube, one colour each
    smooth = render_mesh(box.vertices, box.faces, size=96, azimuth=45.0, elevation=35.0)
    assert len(np.unique(smooth[~_background(smooth)], axis=0)) > 20  # corner normals averaged


def test_open_mesh_is_shaded_on_both_sides():
    quad = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    front = render_mesh(quad, faces, size=64, azimuth=0.0, elevation=0.0)
    back = render_mesh(quad, faces, size=64, azimuth=180.0, elevation=0.0)
    assert (~_background(front)).mean() > 0.4
    np.testing.assert_array_equal(front, back)


def _two_spheres():
    """A red sphere and a blue one, 1.6 apart along z and overlapping in x when seen along z."""
    a = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    verts = np.concatenate([a.vertices + [-0.3, 0.0, 0.8], a.vertices + [0.3, 0.0, -0.8]])
    n_verts, n_faces = len(a.vertices), len(a.faces)
    faces = np.concatenate([a.faces, a.faces + n_verts])
    # the same framing with one sphere: its partner's vertices kept by zero-area faces
    only_a = np.concatenate(
        [a.faces, np.repeat(np.arange(n_verts, 2 * n_verts)[:, None], 3, axis=1)]
    )
    only_b = np.concatenate([np.repeat(np.arange(n_verts)[:, None], 3, axis=1), a.faces + n_verts])
    return verts, faces, only_a, only_b, n_faces


@pytest.mark.parametrize("azimuth, near", [(0.0, "a"), (180.0, "b")])
def test_nearer_surface_occludes(azimuth, near):
    verts, faces, only_a, only_b, n = _two_spheres()
    kw = {"size": 96, "azimuth": azimuth, "elevation": 0.0}
    face_id, depth, _ = rasterize(verts, faces, **kw)
    id_a, depth_a, _ = rasterize(verts, only_a, **kw)
    id_b, depth_b, _ = rasterize(verts, only_b, **kw)
    overlap = (id_a >= 0) & (id_b >= 0)
    assert overlap.sum() > 150
    if near == "a":
        assert (face_id[overlap] < n).all() and (depth_a[overlap] > depth_b[overlap]).all()
        np.testing.assert_array_equal(depth[overlap], depth_a[overlap])
    else:
        assert (face_id[overlap] >= n).all() and (depth_b[overlap] > depth_a[overlap]).all()
        np.testing.assert_array_equal(depth[overlap], depth_b[overlap])
    np.testing.assert_array_equal(face_id >= 0, (id_a >= 0) | (id_b >= 0))

    colours = np.zeros((len(faces), 3))
    colours[:n, 0] = 1.0  # a: red
    colours[n:, 2] = 1.0  # b: blue
    image = render_mesh(verts, faces, color=colours, **kw).astype(int)
    red = image[..., 0] > image[..., 2]
    assert red[overlap].all() if near == "a" else not red[overlap].any()
    # a z-buffer, not a painter: the order of the faces does not matter
    flipped = render_mesh(verts, faces[::-1], color=colours[::-1], **kw)
    np.testing.assert_array_equal(flipped, image)


@pytest.mark.parametrize(
    "verts, faces",
    [
        (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)),
        (np.random.default_rng(0).normal(size=(10, 3)), np.zeros((0, 3), dtype=np.int64)),
        (np.eye(3), np.array([[0, 0, 1], [2, 2, 2]])),  # zero-area faces only
    ],
)
def test_empty_mesh_is_background(verts, faces):
    image = render_mesh(verts, faces, size=16, background=(0.0, 0.5, 1.0))
    assert (image == np.array([0, 128, 255], dtype=np.uint8)).all()
    face_id, depth, _ = rasterize(verts, faces, size=16)
    assert (face_id == -1).all() and np.isneginf(depth).all()
    grid = render_views(verts, faces, size=16)
    assert grid.shape == (32, 32, 3) and (grid == 255).all()


def test_views_grid(sphere):
    box = trimesh.creation.box()
    grid = render_views(box.vertices, box.faces, size=32)
    assert grid.shape == (64, 64, 3) and grid.dtype == np.uint8
    for i, (azimuth, elevation) in enumerate(pictures.DEFAULT_VIEWS):
        r, c = divmod(i, 2)
        cell = grid[32 * r : 32 * (r + 1), 32 * c : 32 * (c + 1)]
        single = render_mesh(box.vertices, box.faces, size=32, azimuth=azimuth, elevation=elevation)
        np.testing.assert_array_equal(cell, single)
    views = [(0, 0), (90, 0), (45, 30)]
    three = render_views(box.vertices, box.faces, size=32, views=views, background=(0, 0, 0))
    assert three.shape == (64, 64, 3) and (three[32:, 32:] == 0).all() and three[32:, :32].any()
    assert render_views(box.vertices, box.faces, size=32, views=[(0, 90)]).shape == (32, 32, 3)


def test_save_png_atomically(tmp_path, sphere):
    path = save_mesh_png(
        sphere.vertices, sphere.faces, tmp_path / "pictures" / "sphere.png", size=40
    )
    assert path == tmp_path / "pictures" / "sphere.png"
    assert [p.name for p in path.parent.iterdir()] == [
        "sphere.png"
    ]  # no temporary file left behind
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels, render_views(sphere.vertices, sphere.faces, size=40))


def test_failed_write_leaves_nothing(tmp_path, sphere, monkeypatch):
    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(pictures.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_mesh_png(sphere.vertices, sphere.faces, tmp_path / "sphere.png", size=16)
    assert list(tmp_path.iterdir()) == []


VERTS_MUST = "verts must be a float array of shape (V, 3), got"
FACES_MUST = "faces must be an integer array of shape (F, 3), got"
COLOR_MUST = "color must be three numbers in [0, 1] or an (F, 3) array of per-face colours, got"
VIEWS_MUST = "views must be a non-empty sequence of (azimuth, elevation) pairs in degrees, got"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda v, f: render_mesh(v.astype(np.int64), f), f"{VERTS_MUST} int64 (8, 3)"),
        (lambda v, f: render_mesh(v[:, :2], f), f"{VERTS_MUST} float64 (8, 2)"),
        (lambda v, f: render_mesh(v, f.astype(float)), f"{FACES_MUST} float64 (12, 3)"),
        (
            lambda v, f: render_mesh(v, f + 1),
            "faces must index verts (0 to 7), got indices from 1 to 8",
        ),
        (lambda v, f: render_mesh(v * np.nan, f), "verts must be finite, got 8 non-finite rows"),
        (lambda v, f: render_mesh(v, f, size=0), "size must be an integer >= 1, got 0"),
        (
            lambda v, f: render_mesh(v, f, azimuth=math.nan),
            "azimuth must be a finite number of degrees, got nan",
        ),
        (
            lambda v, f: render_mesh(v, f, elevation="up"),
            "elevation must be a finite number of degrees, got 'up'",
        ),
        (lambda v, f: render_mesh(v, f, color=(1.0, 2.0, 0.0)), f"{COLOR_MUST} (1.0, 2.0, 0.0)"),
        (
            lambda v, f: render_mesh(v, f, color=np.ones((5, 3))),
            f"{COLOR_MUST} an array of shape (5, 3)",
        ),
        (
            lambda v, f: render_mesh(v, f, background="white"),
            "background must be three numbers in [0, 1], got 'white'",
        ),
        (lambda v, f: render_views(v, f, views=[]), f"{VIEWS_MUST} []"),
        (lambda v, f: render_views(v, f, views=[30]), f"{VIEWS_MUST} [30]"),
    ],
)
def test_bad_arguments(call, message):
    box = trimesh.creation.box()
    with pytest.raises(InputError) as info:
        call(np.asarray(box.vertices), np.asarray(box.faces))
    assert str(info.value) == message
