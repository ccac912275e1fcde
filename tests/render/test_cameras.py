"""Pinhole cameras: hand-computed rays, field of view, unit length, downscaling and every error message."""

from __future__ import annotations

import math

import pytest
import torch

from fields3d.errors import BackendUnavailable, InputError
from fields3d.render import cameras as cameras_module
from fields3d.render.cameras import Cameras, focal_from_fov, generate_rays, image_rays, ring_cameras


def make_cameras(c2w, f=10.0, w=5, h=5, cx=None, cy=None, dtype=torch.float64) -> Cameras:
    c2w = torch.as_tensor(c2w, dtype=dtype).reshape(-1, 4, 4)
    n = c2w.shape[0]

    def full(v):
        return torch.full((n,), float(v), dtype=dtype)

    return Cameras(
        c2w,
        full(f),
        full(f),
        full(w / 2 if cx is None else cx),
        full(h / 2 if cy is None else cy),
        w,
        h,
    )


def look_at(eye, up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """Camera at ``eye`` looking at the origin (the way scripts/make-nerf-scene.py builds poses)."""
    return cameras_module.look_at(eye, (0.0, 0.0, 0.0), up)


def rays(cameras, ids, pixels, centre=True):
    return generate_rays(
        cameras, torch.tensor(ids), torch.tensor(pixels, dtype=torch.float64), centre=centre
    )


def test_centre_pixel_of_identity_camera_looks_down_minus_z():
    cams = make_cameras(torch.eye(4))  # 5x5, principal point (2.5, 2.5): pixel (2, 2)'s centre
    origins, dirs = rays(cams, [0], [[2.0, 2.0]])
    assert origins.tolist() == [[0.0, 0.0, 0.0]]
    assert dirs.tolist() == [[0.0, 0.0, -1.0]]


def test_pixel_offsets_by_hand():
    cams = make_cameras(torch.eye(4), f=2.0)
    _, dirs = rays(cams, [0, 0], [[4.0, 2.0], [2.0, 0.0]])  # centres (4.5, 2.5) and (2.5, 0.5)
    # x: (4.5 - 2.5) / 2 = 1 -> (1, 0, -1); y: -(0.5 - 2.5) / 2 = 1 -> (0, 1, -1): up is +y, rows go down
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(
        dirs, torch.tensor([[s, 0.0, -s], [0.0, s, -s]], dtype=torch.float64)
    )


def test_picture_edges_match_the_field_of_view():
    fov_x, w, h = 0.6911112070083618, 200, 100
    f = focal_from_fov(fov_x, w)
    cams = make_cameras(torch.eye(4), f=f, w=w, h=h)
    edges = [
        [0.0, h / 2],
        [w, h / 2],
        [w / 2, 0.0],
        [w / 2, h],
    ]  # left, right, top, bottom edge midpoints
    _, dirs = rays(cams, [0] * 4, edges, centre=False)
    half_x, half_y = 0.5 * fov_x, math.atan(0.5 * h / f)
    angles = torch.atan2(dirs[:, :2].norm(dim=1), -dirs[:, 2])
    torch.testing.assert_close(
        angles, torch.tensor([half_x, half_x, half_y, half_y], dtype=torch.float64)
    )
    assert dirs[0, 0] < 0 < dirs[1, 0] and dirs[3, 1] < 0 < dirs[2, 1]  # left is -x, top is +y


def test_corner_rays_of_image_rays():
    cams = make_cameras(torch.eye(4), f=4.0, w=8, h=6)
    _, dirs = image_rays(cams, 0)
    grid = dirs.view(6, 8, 3)
    expect = torch.tensor(
        [-3.5 / 4, 2.5 / 4, -1.0], dtype=torch.float64
    )  # pixel (0, 0) centre (0.5, 0.5)
    torch.testing.assert_close(grid[0, 0], expect / expect.norm())
    expect = torch.tensor([3.5 / 4, -2.5 / 4, -1.0], dtype=torch.float64)  # pixel (7, 5)
    torch.testing.assert_close(grid[5, 7], expect / expect.norm())


def test_look_at_pose_sees_the_origin():
    cams = make_cameras(look_at([4.0, 0.0, 0.0]), f=10.0, w=5, h=5)
    origins, dirs = rays(cams, [0, 0, 0], [[2.0, 2.0], [2.0, 0.0], [4.0, 2.0]])
    torch.testing.assert_close(origins, torch.tensor([[4.0, 0.0, 0.0]] * 3, dtype=torch.float64))
    torch.testing.assert_close(dirs[0], torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    assert dirs[1, 2] > 0 and abs(float(dirs[1, 1])) < 1e-12  # the top row looks up (+z)
    assert (
        dirs[2, 1] > 0 and abs(float(dirs[2, 2])) < 1e-12
    )  # from +x the right of the picture is +y


def test_directions_are_unit_and_rotate_with_the_pose():
    g = torch.Generator().manual_seed(0)
    c2w = torch.eye(4, dtype=torch.float64).repeat(6, 1, 1)
    c2w[:, :3, :3] = torch.linalg.qr(torch.randn(6, 3, 3, generator=g, dtype=torch.float64))[0]
    c2w[:, :3, 3] = torch.randn(6, 3, generator=g, dtype=torch.float64)
    cams = make_cameras(c2w, f=30.0, w=64, h=48)
    ids = torch.randint(0, 6, (500,), generator=g)
    pixels = torch.rand(500, 2, generator=g, dtype=torch.float64) * torch.tensor([64.0, 48.0])
    origins, dirs = generate_rays(cams, ids, pixels, centre=False)
    torch.testing.assert_close(dirs.norm(dim=1), torch.ones(500, dtype=torch.float64))
    torch.testing.assert_close(origins, c2w[ids, :3, 3])
    local = torch.einsum("mji,mj->mi", c2w[ids, :3, :3], dirs)  # back into the camera frame
    x = 32 + 30 * local[:, 0] / -local[:, 2]
    y = 24 - 30 * local[:, 1] / -local[:, 2]
    torch.testing.assert_close(torch.stack([x, y], dim=1), pixels)


def test_image_rays_are_row_major():
    cams = make_cameras(look_at([1.0, 2.0, 3.0]).repeat(2, 1, 1), f=7.0, w=4, h=3)
    origins, dirs = image_rays(cams, 1)
    assert origins.shape == (12, 3) and dirs.shape == (12, 3)
    pixels = torch.tensor([[i, j] for j in range(3) for i in range(4)], dtype=torch.float64)
    _, expect = generate_rays(cams, torch.ones(12, dtype=torch.int64), pixels)
    torch.testing.assert_close(dirs, expect)


def test_dtype_follows_the_cameras_and_empty_batches_work():
    cams = make_cameras(torch.eye(4), dtype=torch.float32)
    origins, dirs = generate_rays(
        cams, torch.zeros(3, dtype=torch.int32), torch.zeros(3, 2, dtype=torch.float64)
    )
    assert origins.dtype == dirs.dtype == torch.float32
    origins, dirs = generate_rays(cams, torch.zeros(0, dtype=torch.int64), torch.zeros(0, 2))
    assert origins.shape == dirs.shape == (0, 3)


def test_downscale_keeps_block_centres_on_the_same_rays():
    cams = make_cameras(look_at([0.5, -3.0, 1.0]), f=50.0, w=64, h=48, cx=30.0, cy=25.0)
    small = cams.scaled(2)
    assert (small.width, small.height) == (32, 24)
    assert small.fx.item() == 25.0 and small.cx.item() == 15.0 and small.cy.item() == 12.5
    _, coarse = image_rays(small, 0)
    ij = torch.tensor([[i, j] for j in range(24) for i in range(32)], dtype=torch.float64)
    _, fine = generate_rays(
        cams, torch.zeros(len(ij), dtype=torch.int64), 2 * ij + 1.0, centre=False
    )
    torch.testing.assert_close(coarse, fine)  # the centre of each 2x2 block
    same = cams.scaled(1)
    assert (same.width, same.height) == (64, 48)
    for name in ("c2w", "fx", "fy", "cx", "cy"):
        assert torch.equal(getattr(same, name), getattr(cams, name))


def test_downscale_of_a_size_that_does_not_divide_maps_edges_to_edges():
    cams = make_cameras(torch.eye(4), f=10.0, w=5, h=7)
    small = cams.scaled(2)
    assert (small.width, small.height) == (2, 3)
    torch.testing.assert_close(small.fx, cams.fx * 2 / 5)
    torch.testing.assert_close(small.fy, cams.fy * 3 / 7)
    _, a = rays(small, [0], [[2.0, 3.0]], centre=False)  # the bottom-right corners agree
    _, b = rays(cams, [0], [[5.0, 7.0]], centre=False)
    torch.testing.assert_close(a, b)


def test_resize_to_any_size_maps_edges_to_edges():
    cams = make_cameras(look_at([0.5, -3.0, 1.0]), f=50.0, w=64, h=48, cx=30.0, cy=25.0)
    big = cams.resized(160, 96)
    assert (big.width, big.height) == (160, 96)
    assert (
        big.fx.item() == 125.0
        and big.fy.item() == 100.0
        and big.cx.item() == 75.0
        and big.cy.item() == 50.0
    )
    for corner, scaled in (
        ([0.0, 0.0], [0.0, 0.0]),
        ([64.0, 48.0], [160.0, 96.0]),
        ([30.0, 25.0], [75.0, 50.0]),
    ):
        _, a = rays(cams, [0], [corner], centre=False)
        _, b = rays(big, [0], [scaled], centre=False)
        torch.testing.assert_close(a, b)
    with pytest.raises(InputError) as info:
        cams.resized(0, 10)
    assert str(info.value) == "width must be an integer >= 1, got 0"


def test_to_device_keeps_the_cameras():
    cams = make_cameras(look_at([1.0, 1.0, 1.0]))
    moved = cams.to("cpu")
    assert (
        moved.device == torch.device("cpu") and torch.equal(moved.c2w, cams.c2w) and len(moved) == 1
    )
    assert cams.to(torch.device("cpu")).device == torch.device("cpu") and cams.to(None) is cams


def test_to_a_missing_cuda_device_says_so():
    cams = make_cameras(torch.eye(4))
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        with pytest.raises(InputError) as info:
            cams.to(f"cuda:{n}")
        assert (
            str(info.value)
            == f"device 'cuda:{n}' does not exist: torch sees {n} CUDA device(s), cuda:0 to cuda:{n - 1}"
        )
        return
    with pytest.raises(BackendUnavailable) as info:
        cams.to("cuda")
    assert str(info.value) == (
        f"device 'cuda' was requested but torch {torch.__version__} sees no CUDA device; "
        "install a CUDA build of torch on a machine with a GPU, or use device 'cpu'"
    )


def test_mirrored_and_scaled_axes_are_not_singular():
    for diag in ([-1.0, 1.0, 1.0, 1.0], [1e-3, 1e-3, 1e-3, 1.0]):
        cams = make_cameras(torch.diag(torch.tensor(diag, dtype=torch.float64)))
        assert torch.isfinite(image_rays(cams, 0)[1]).all()


def test_look_at_far_apart_or_close_together_points():
    # |eye - target|^2 overflows or underflows float64 here; the pose must still be a rotation
    for eye, target, up in (
        ([1e300, 2.0, 3.0], [-1e300, 0.0, 0.0], [0.0, 1.0, 0.0]),
        ([1e-300, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
        ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [0.0, 1e-300, 0.0]),
    ):
        c2w = cameras_module.look_at(eye, target, up)
        rot = c2w[:3, :3]
        torch.testing.assert_close(rot @ rot.T, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(
        cameras_module.look_at([1e300, 0, 0], [-1e300, 0, 0], [0, 1, 0])[:3, 2],
        torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
    )


def _pose(**edit) -> torch.Tensor:
    c2w = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    for (i, r, c), v in edit.get("set", {}).items():
        c2w[i, r, c] = v
    return c2w


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"c2w": _pose(set={(1, 0, 3): math.nan})},
            "c2w[1] (camera 1 of 3) has non-finite entries; fix or drop that camera's pose",
        ),
        (
            {"c2w": _pose(set={(2, 2, 1): math.inf})},
            "c2w[2] (camera 2 of 3) has non-finite entries; fix or drop that camera's pose",
        ),
        (
            {"c2w": _pose(set={(2, 3, 0): 0.5})},
            "c2w[2] must have bottom row [0, 0, 0, 1], got [0.5, 0.0, 0.0, 1.0]; "
            "camera-to-world matrices are affine 4x4 transforms",
        ),
        (
            {"c2w": torch.eye(4, dtype=torch.float64)[:3].repeat(3, 1, 1)},
            "c2w must be a float32 or float64 tensor of shape (N, 4, 4), got float64 (3, 3, 4)",
        ),
        ({"c2w": [[1.0]]}, "c2w must be a float32 or float64 tensor of shape (N, 4, 4), got list"),
        (
            {"c2w": torch.eye(4, dtype=torch.int64).repeat(3, 1, 1)},
            "c2w must be a float32 or float64 tensor of shape (N, 4, 4), got int64 (3, 4, 4)",
        ),
        (
            {"fx": torch.ones(2, dtype=torch.float64)},
            "fx must be a float64 tensor of shape (3,) like c2w, got float64 (2,)",
        ),
        (
            {"cy": torch.ones(3)},
            "cy must be a float64 tensor of shape (3,) like c2w, got float32 (3,)",
        ),
        ({"cx": 2.0}, "cx must be a float64 tensor of shape (3,) like c2w, got float"),
        (
            {"fy": torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)},
            "fy[1] must be a focal length > 0 pixels, got 0.0",
        ),
        (
            {"cx": torch.tensor([1.0, 1.0, math.nan], dtype=torch.float64)},
            "cx[2] must be finite, got nan",
        ),
        ({"width": 0}, "width must be an integer >= 1, got 0"),
        ({"height": 2.0}, "height must be an integer >= 1, got 2.0"),
        ({"width": 2**21}, "width must be an integer from 1 to 1048576, got 2097152"),
        (
            {"c2w": _pose(set={(1, 0, 0): 0.0})},
            "c2w[1] must have independent axes (its rotation columns), got determinant 0; fix or drop that camera's pose",
        ),
        (
            {
                "c2w": _pose(set={(0, 0, 1): 1.0, (0, 1, 1): 0.0})
            },  # the second axis copies the first
            "c2w[0] must have independent axes (its rotation columns), got determinant 0; fix or drop that camera's pose",
        ),
        (
            {"c2w": _pose().to("meta")},
            "c2w must hold numbers (a cpu or cuda tensor), got a meta tensor",
        ),
    ],
)
def test_camera_errors(kwargs, message):
    ones = torch.ones(3, dtype=torch.float64)
    args = {
        "c2w": _pose(),
        "fx": ones,
        "fy": ones,
        "cx": ones,
        "cy": ones,
        "width": 4,
        "height": 4,
        **kwargs,
    }
    with pytest.raises(InputError) as info:
        Cameras(**args)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "ids, pixels, message",
    [
        (
            torch.zeros(2),
            torch.zeros(2, 2),
            "camera_ids must be an int64 or int32 tensor of shape (M,), got float32 (2,)",
        ),
        (
            [0, 1],
            torch.zeros(2, 2),
            "camera_ids must be an int64 or int32 tensor of shape (M,), got list",
        ),
        (
            torch.zeros(2, dtype=torch.int64),
            torch.zeros(2, 3),
            "pixels must be a float tensor of shape (2, 2) of (x, y) coordinates, got float32 (2, 3)",
        ),
        (
            torch.zeros(2, dtype=torch.int64),
            torch.zeros(2, 2, dtype=torch.int64),
            "pixels must be a float tensor of shape (2, 2) of (x, y) coordinates, got int64 (2, 2)",
        ),
        (
            torch.tensor([0, 3]),
            torch.zeros(2, 2),
            "camera_ids must lie in [0, 1] for 2 cameras, got values from 0 to 3",
        ),
        (
            torch.tensor([-1, 0]),
            torch.zeros(2, 2),
            "camera_ids must lie in [0, 1] for 2 cameras, got values from -1 to 0",
        ),
        (
            torch.zeros(2, dtype=torch.int64),
            torch.zeros(2, 2, device="meta"),
            "pixels must be on cpu like the cameras, got meta; move it with .to(device)",
        ),
        (
            torch.zeros(2, dtype=torch.int64),
            torch.tensor([[1.0, 2.0], [3.0, math.nan]]),
            "pixels must be finite (x, y) coordinates, got pixels[1] = [3.0, nan]; drop or fix that pixel",
        ),
        (
            torch.zeros(2, dtype=torch.int32),
            torch.tensor([[math.inf, 2.0], [3.0, 4.0]], dtype=torch.float64),
            "pixels must be finite (x, y) coordinates, got pixels[0] = [inf, 2.0]; drop or fix that pixel",
        ),
    ],
)
def test_ray_errors(ids, pixels, message):
    cams = make_cameras(torch.eye(4).repeat(2, 1, 1))
    with pytest.raises(InputError) as info:
        generate_rays(cams, ids, pixels)
    assert str(info.value) == message


def test_other_errors():
    cams = make_cameras(torch.eye(4).repeat(2, 1, 1), w=5, h=3)
    cases = [
        (lambda: image_rays(cams, 2), "index must be an integer in [0, 1], got 2"),
        (lambda: image_rays(cams, True), "index must be an integer in [0, 1], got True"),
        (lambda: image_rays("cams", 0), "cameras must be a Cameras, got str"),
        (
            lambda: generate_rays(None, torch.zeros(1), torch.zeros(1, 2)),
            "cameras must be a Cameras, got NoneType",
        ),
        (lambda: cams.scaled(0), "factor must be an integer >= 1, got 0"),
        (lambda: cams.scaled(1.5), "factor must be an integer >= 1, got 1.5"),
        (lambda: cams.scaled(4), "factor 4 leaves no pixels of a 5x3 picture; use a factor <= 3"),
        (
            lambda: focal_from_fov(math.pi, 100),
            f"fov must be a field of view in radians between 0 and pi (exclusive), got {math.pi!r}",
        ),
        (
            lambda: focal_from_fov(0.0, 100),
            "fov must be a field of view in radians between 0 and pi (exclusive), got 0.0",
        ),
        (
            lambda: focal_from_fov(float("nan"), 100),
            "fov must be a field of view in radians between 0 and pi (exclusive), got nan",
        ),
        (
            lambda: focal_from_fov("wide", 100),
            "fov must be a field of view in radians between 0 and pi (exclusive), got 'wide'",
        ),
        (
            lambda: focal_from_fov(True, 100),
            "fov must be a field of view in radians between 0 and pi (exclusive), got True",
        ),
        (lambda: focal_from_fov(1.0, 0), "size must be an integer >= 1, got 0"),
        (lambda: focal_from_fov(1.0, None), "size must be an integer >= 1, got None"),
        (
            lambda: focal_from_fov(1e-320, 100),
            "fov 1e-320 is too narrow: the focal length of 100 pixels overflows; use a wider field of view",
        ),
        (
            lambda: image_rays(make_cameras(torch.eye(4).repeat(0, 1, 1)), 0),
            "cameras must hold at least one camera for image_rays, got none (index 0)",
        ),
        (
            lambda: image_rays(make_cameras(torch.eye(4), w=30000, h=30000), 0),
            "cameras' pictures must have at most 100000000 pixels for image_rays (a ray each), got 30000x30000 = 900000000; "
            "use cameras.resized(width, height) for smaller pictures",
        ),
        (
            lambda: cams.resized(2**1100, 3),
            f"width must be an integer from 1 to 1048576, got {2**1100}",
        ),
        (
            lambda: cams.to("nonsense"),
            "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device of either, got 'nonsense'",
        ),
        (
            lambda: cams.to("meta"),
            "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device of either, got 'meta'",
        ),
        (
            lambda: cams.to(torch.float32),
            "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device of either, got torch.float32",
        ),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as info:
            call()
        assert str(info.value) == message


def test_look_at_places_and_turns_the_camera():
    look_at_ = cameras_module.look_at

    c2w = look_at_([0.0, 0.0, 3.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    expected = torch.eye(4, dtype=torch.float64)
    expected[2, 3] = 3.0
    torch.testing.assert_close(c2w, expected)
    tilted = look_at_([1.0, 2.0, 3.0], [0.5, -1.0, 0.0], [0.0, 0.0, 1.0])
    torch.testing.assert_close(tilted[:3, :3] @ tilted[:3, :3].T, torch.eye(3, dtype=torch.float64))
    back = torch.tensor([0.5, 3.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(tilted[:3, 2], back / back.norm())
    assert tilted[2, 1] > 0  # the picture's up leans to +z


@pytest.mark.parametrize("up", ["y", "z"])
def test_ring_cameras_circle_the_centre_and_look_at_it(up):
    centre = torch.tensor([10.0, -2.0, 3.0], dtype=torch.float64)
    cams = ring_cameras(centre, 4.0, 6, size=32, fov_deg=40.0, elevation_deg=30.0, up=up)
    assert len(cams) == 6 and (cams.width, cams.height) == (32, 32)
    assert cams.fx[0].item() == pytest.approx(16 / math.tan(math.radians(20)))
    axis = 1 if up == "y" else 2
    for k in range(6):
        eye = cams.c2w[k, :3, 3].double()
        assert float((eye - centre).norm()) == pytest.approx(4.0, rel=1e-6)
        assert float(eye[axis] - centre[axis]) == pytest.approx(
            4.0 * math.sin(math.radians(30)), rel=1e-5
        )
        o, d = generate_rays(cams, torch.tensor([k]), torch.tensor([[16.0, 16.0]]), centre=False)
        miss = torch.linalg.cross(
            centre - o[0].double(), d[0].double()
        )  # the middle ray passes the centre
        assert float(miss.norm()) < 1e-5
        assert float(cams.c2w[k, axis, 1]) > 0  # the pictures' up is the ring's up
    first = cams.c2w[0, :3, 3].double() - centre
    assert float(first[2 if up == "y" else 0]) > 0  # frame 0 sits on +z (y up) or +x (z up)


def test_look_at_and_ring_errors():
    look_at_ = cameras_module.look_at

    cases = [
        (
            lambda: look_at_([0, 0, 1], [0, 0, 1], [0, 1, 0]),
            "eye and target must differ, both are [0.0, 0.0, 1.0]",
        ),
        (
            lambda: look_at_([0, 0, 1], [0, 0, 0], [0, 0, 2]),
            "up [0.0, 0.0, 2.0] must not point along the view from [0.0, 0.0, 1.0] to [0.0, 0.0, 0.0]",
        ),
        (lambda: look_at_("abc", [0, 0, 0], [0, 1, 0]), "eye must be 3 finite numbers, got 'abc'"),
        (lambda: ring_cameras([0, 0, 0], 2.0, 0), "frames must be an integer >= 1, got 0"),
        (lambda: ring_cameras([0, 0, 0], 2.0, 4, up="x"), "up must be 'y' or 'z', got 'x'"),
        (lambda: ring_cameras([0, 0, 0], -1.0, 4), "distance must be a number > 0, got -1.0"),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 4, fov_deg=180),
            "fov_deg must be a number of degrees in (0, 180), got 180",
        ),
        (
            lambda: ring_cameras([0, float("nan"), 0], 2.0, 4),
            "center must be 3 finite numbers, got [0, nan, 0]",
        ),
        (
            lambda: look_at_([1, 2, 3], [0, 0, 0], [0, 0, 0]),
            "up must be a non-zero vector, got [0.0, 0.0, 0.0]",
        ),
        (
            lambda: look_at_(torch.tensor([1, 2j, 3]), [0, 0, 0], [0, 1, 0]),
            "eye must be 3 finite numbers, got tensor([1.+0.j, 0.+2.j, 3.+0.j])",
        ),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 2**40),
            "frames must be an integer from 1 to 3600, got 1099511627776",
        ),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 4, size=2**70),
            "size must be an integer from 1 to 1048576, got 1180591620717411303424",
        ),
        (lambda: ring_cameras([0, 0, 0], True, 4), "distance must be a number > 0, got True"),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 4, fov_deg=1e-300),
            "fov_deg 1e-300 is too narrow: the focal length of 400 pixels overflows float32; use a wider field of view",
        ),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 4, elevation_deg=float("inf")),
            "elevation_deg must be a number of degrees in (-90, 90), got inf",
        ),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 4, elevation_deg=90),
            "elevation_deg must be a number of degrees in (-90, 90), got 90",
        ),
        (
            lambda: ring_cameras([0, 0, 0], 2.0, 4, elevation_deg="20"),
            "elevation_deg must be a number of degrees in (-90, 90), got '20'",
        ),
        (
            lambda: ring_cameras([1e39, 0, 0], 2.0, 4),
            "center and distance must keep the float32 cameras within +-1.701e+38, got |center| + distance = 1e+39; "
            "use smaller units",
        ),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as info:
            call()
        assert str(info.value) == message
