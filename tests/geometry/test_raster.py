"""Perspective rasteriser: coverage by hand, depth, perspective-correct barycentrics, occlusion, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from fields3d.errors import InputError
from fields3d.geometry.raster import interpolate, project, rasterize_perspective
from fields3d.render.cameras import Cameras, image_rays

EYE = np.eye(4)
SQUARE = np.array([[-1.0, -1.0, -2.0], [1.0, -1.0, -2.0], [1.0, 1.0, -2.0], [-1.0, 1.0, -2.0]])
SQUARE_FACES = np.array([[0, 1, 2], [0, 2, 3]])


def test_square_facing_the_camera_covers_the_pixels_by_hand():
    # f = 10 at depth 2: the square spans x, y in 10 +- 5, so pixel centres 5.5 ... 14.5
    face_id, depth, bary = rasterize_perspective(SQUARE, SQUARE_FACES, EYE, 10, 10, 10, 10, 20, 20)
    assert (
        face_id.shape == depth.shape == (20, 20)
        and bary.shape == (20, 20, 3)
        and face_id.dtype == np.int64
    )
    covered = face_id >= 0
    expect = np.zeros((20, 20), dtype=bool)
    expect[5:15, 5:15] = True
    np.testing.assert_array_equal(covered, expect)
    np.testing.assert_allclose(depth[covered], 2.0)
    assert np.isinf(depth[~covered]).all() and (bary[~covered] == 0).all()
    np.testing.assert_allclose(bary[covered].sum(axis=1), 1.0)


def test_picture_rows_go_down_and_up_is_plus_y():
    top = np.array([[-1.0, 0.2, -2.0], [1.0, 0.2, -2.0], [0.0, 1.0, -2.0]])  # above the axis
    face_id, _, _ = rasterize_perspective(top, [[0, 1, 2]], EYE, 10, 10, 10, 10, 20, 20)
    rows = np.nonzero(face_id >= 0)[0]
    assert rows.max() < 10  # drawn in the top half of the picture


def test_barycentrics_are_perspective_correct_and_match_the_camera_rays():
    tri = np.array([[-1.5, -1.0, -1.5], [1.5, -0.5, -5.0], [0.0, 1.5, -3.0]])  # steeply tilted
    face_id, depth, bary = rasterize_perspective(tri, [[0, 1, 2]], EYE, 12, 12, 16, 12, 32, 24)
    points = interpolate(tri, [[0, 1, 2]], face_id, bary)[face_id >= 0]
    cams = Cameras(
        torch.eye(4, dtype=torch.float64)[None],
        *(torch.tensor([v], dtype=torch.float64) for v in (12.0, 12.0, 16.0, 12.0)),
        width=32,
        height=24,
    )
    _, dirs = image_rays(cams, 0)
    dirs = dirs.numpy().reshape(24, 32, 3)[face_id >= 0]
    # each interpolated point lies on its pixel's ray at the rasterised depth
    np.testing.assert_allclose(
        points, dirs * (depth[face_id >= 0] / -dirs[:, 2])[:, None], atol=1e-12
    )
    normal = np.cross(tri[1] - tri[0], tri[2] - tri[0])
    np.testing.assert_allclose(
        (points - tri[0]) @ normal, 0.0, atol=1e-12
    )  # on the triangle's plane


def test_nearest_face_wins_whatever_the_order():
    near = SQUARE * [1, 1, 0.5]  # z = -1, in front
    verts = np.concatenate([SQUARE, near])
    faces = np.concatenate([SQUARE_FACES, SQUARE_FACES + 4])
    a, da, _ = rasterize_perspective(verts, faces, EYE, 5, 5, 10, 10, 20, 20)
    b, db, _ = rasterize_perspective(verts, faces[::-1], EYE, 5, 5, 10, 10, 20, 20)
    hit = a >= 0
    assert set(np.unique(a[hit])) == {2, 3} and set(np.unique(b[hit])) == {
        0,
        1,
    }  # faces of the near square
    np.testing.assert_allclose(da[hit], 1.0)
    np.testing.assert_array_equal(da, db)


def test_faces_behind_or_through_the_camera_plane_are_dropped():
    behind = SQUARE * [1, 1, -1]  # z = +2
    face_id, _, _ = rasterize_perspective(behind, SQUARE_FACES, EYE, 10, 10, 10, 10, 20, 20)
    assert (face_id == -1).all()
    through = SQUARE.copy()
    through[1, 2] = 1.0  # vertex 1 is only in face 0
    face_id, _, _ = rasterize_perspective(through, SQUARE_FACES, EYE, 10, 10, 10, 10, 20, 20)
    assert set(np.unique(face_id)) == {-1, 1}


def test_sphere_silhouette_seen_from_a_posed_camera():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    c2w = np.eye(4)
    c2w[:3, 3] = [0.0, 0.0, 4.0]
    face_id, depth, _ = rasterize_perspective(
        sphere.vertices, sphere.faces, c2w, 40, 40, 32, 32, 64, 64
    )
    # a unit sphere at distance 4 subtends a disc of angular radius asin(1/4)
    radius = 40 * np.tan(np.arcsin(0.25))
    assert (face_id >= 0).sum() == pytest.approx(np.pi * radius**2, rel=0.03)
    assert depth.min() == pytest.approx(3.0, abs=0.01)


def test_project_round_trip_and_torch_input():
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 2.0, 3.0]
    xy, depth = project(
        torch.tensor([[1.0, 2.0, 1.0], [2.0, 2.0, 1.0]]), torch.from_numpy(c2w), 10, 20, 5, 6
    )
    np.testing.assert_allclose(depth, [2.0, 2.0])
    np.testing.assert_allclose(xy, [[5.0, 6.0], [10.0, 6.0]])


def test_empty_mesh_and_interpolate_background():
    no_faces = np.zeros((0, 3), dtype=np.int64)
    face_id, depth, bary = rasterize_perspective(np.zeros((0, 3)), no_faces, EYE, 1, 1, 1, 1, 3, 2)
    assert (face_id == -1).all() and np.isinf(depth).all() and face_id.shape == (2, 3)
    out = interpolate(np.zeros((0, 2)), no_faces, face_id, bary)
    assert out.shape == (2, 3, 2) and (out == 0).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            (SQUARE, SQUARE_FACES, np.eye(3), 1, 1, 0, 0, 4, 4),
            "c2w must be a finite 4x4 camera-to-world matrix, got shape (3, 3)",
        ),
        (
            (SQUARE, SQUARE_FACES, EYE, 0, 1, 0, 0, 4, 4),
            "fx must be a focal length > 0 pixels, got 0.0",
        ),
        (
            (SQUARE, SQUARE_FACES, EYE, 1, 1, np.nan, 0, 4, 4),
            "cx must be a finite number of pixels, got nan",
        ),
        ((SQUARE, SQUARE_FACES, EYE, 1, 1, 0, 0, 0, 4), "width must be an integer >= 1, got 0"),
        (
            (SQUARE[:, :2], SQUARE_FACES, EYE, 1, 1, 0, 0, 4, 4),
            "verts must be a float array of shape (V, 3), got float64 (4, 2)",
        ),
    ],
)
def test_errors(args, message):
    with pytest.raises(InputError) as info:
        rasterize_perspective(*args)
    assert str(info.value) == message
