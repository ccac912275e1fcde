"""Sphere tracing: hits against analytic ray-sphere and ray-box intersections, misses, both normal
modes, rays starting inside, relaxed steps and non-exact fields, the aabb clip and compaction,
camera pictures, real field modules, and every error message."""

from __future__ import annotations

import math

import pytest
import torch

from fields3d.errors import InputError
from fields3d.fields.neural_sdf import NeuralSDF
from fields3d.fields.sdf_grid import BandSDFGrid
from fields3d.render.cameras import Cameras, focal_from_fov, image_rays
from fields3d.render.sphere_trace import render_sdf, sphere_trace

F64 = torch.float64
CENTRE = torch.tensor([0.1, -0.2, 0.05], dtype=F64)
RADIUS = 0.7
BOX = [[-1.5] * 3, [1.5] * 3]
HALF = torch.tensor([0.5, 0.3, 0.4], dtype=F64)  # the box SDF's half extents
EPS = 1e-4


def sphere(p):
    return (p - CENTRE.to(p)).norm(dim=1) - RADIUS


def box(p):
    q = p.abs() - HALF.to(p)
    return q.clamp(min=0).norm(dim=1) + q.amax(dim=1).clamp(max=0)


def unit(v):
    return v / v.norm(dim=1, keepdim=True)


def sphere_t(o, d, first=True):
    """Analytic t where unit rays meet the sphere (first or second root), nan for a miss."""
    oc = o - CENTRE
    b = (oc * d).sum(1)
    disc = b * b - (oc * oc).sum(1) + RADIUS**2
    return -b - disc.sqrt() if first else -b + disc.sqrt()


def rays_at_sphere(n, seed, distance=3.0, spread=0.5):
    """Unit rays from ``distance`` around the centre aimed within ``spread * RADIUS`` of it
    (incidence cosine >= sqrt(1 - spread^2))."""
    g = torch.Generator().manual_seed(seed)
    o = CENTRE + unit(torch.randn(n, 3, generator=g, dtype=F64)) * distance
    target = CENTRE + unit(torch.randn(n, 3, generator=g, dtype=F64)) * torch.rand(
        n, 1, generator=g, dtype=F64
    ) * (spread * RADIUS / math.sqrt(3))
    return o, unit(target - o)


def test_hits_match_the_analytic_sphere_intersection():
    o, d = rays_at_sphere(300, 0)
    res = sphere_trace(sphere, o, d, aabb=BOX, eps=EPS)
    truth = sphere_t(o, d)
    assert bool(res.hit.all())
    # approaching from outside, an exact SDF never passes the surface: t is short by < eps / cos
    assert bool((res.t <= truth + 1e-12).all())
    assert float((truth - res.t).max()) < EPS / math.sqrt(1 - 0.5**2)
    torch.testing.assert_close(res.positions, o + res.t[:, None] * d)
    assert float(sphere(res.positions).abs().max()) < EPS
    assert res.steps.dtype == torch.int64 and bool((res.steps >= 1).all()) and res.normals is None


def test_misses_are_misses():
    g = torch.Generator().manual_seed(1)
    o = CENTRE + unit(torch.randn(100, 3, generator=g, dtype=F64)) * 3.0
    towards = unit(CENTRE - o)
    side = unit(torch.linalg.cross(towards, torch.randn(100, 3, generator=g, dtype=F64)))
    d = unit(
        CENTRE + side * 1.3 * RADIUS - o
    )  # passes 1.3 * 3 / sqrt(9 + 1.3^2 r^2) ~ 1.24 radii from the centre
    assert bool(sphere_t(o, d).isnan().all())
    for kw in ({"aabb": BOX}, {"far": 10.0}):
        res = sphere_trace(sphere, o, d, **kw, normals="finite")
        assert not bool(res.hit.any())
        assert (
            bool(torch.isinf(res.t).all())
            and bool((res.positions == 0).all())
            and bool((res.normals == 0).all())
        )
    # a far closer than the surface: a miss too
    o, d = rays_at_sphere(20, 2)
    res = sphere_trace(sphere, o, d, far=float(sphere_t(o, d).min()) - 0.01)
    assert not bool(res.hit.any())


@pytest.mark.parametrize("mode, atol", [("autograd", 1e-9), ("finite", 1e-5)])
def test_normals_match_analytic_sphere_normals(mode, atol):
    o, d = rays_at_sphere(200, 3)
    res = sphere_trace(sphere, o, d, aabb=BOX, normals=mode)
    torch.testing.assert_close(res.normals, unit(res.positions - CENTRE), rtol=0, atol=atol)


@pytest.mark.parametrize("mode", ["autograd", "finite"])
def test_box_hits_and_face_normals(mode):
    # rays towards the -z face (z = -0.4) and the +x face (x = 0.5), tilted, landing well inside the faces
    g = torch.Generator().manual_seed(4)
    n = 100
    spot = (torch.rand(n, 2, generator=g, dtype=F64) * 2 - 1) * 0.6
    on_z = torch.stack(
        [spot[:, 0] * HALF[0], spot[:, 1] * HALF[1], torch.full((n,), -0.4, dtype=F64)], 1
    )
    on_x = torch.stack(
        [torch.full((n,), 0.5, dtype=F64), spot[:, 0] * HALF[1], spot[:, 1] * HALF[2]], 1
    )
    tilt = (torch.rand(2 * n, 3, generator=g, dtype=F64) * 2 - 1) * 0.3
    axes = torch.cat(
        [
            torch.tensor([[0.0, 0.0, -1.0]]).expand(n, 3),
            torch.tensor([[1.0, 0.0, 0.0]]).expand(n, 3),
        ]
    )
    targets = torch.cat([on_z, on_x])
    o = targets + 2.0 * unit(axes.to(F64) + tilt)
    d = unit(targets - o)
    truth = (targets - o).norm(dim=1)
    res = sphere_trace(box, o, d, aabb=BOX, normals=mode)
    assert bool(res.hit.all())
    assert float((truth - res.t).abs().max()) < 2 * EPS
    torch.testing.assert_close(
        res.normals, axes.to(F64), rtol=0, atol=1e-9 if mode == "autograd" else 1e-6
    )


def test_rays_starting_inside_the_surface_hit_where_they_leave_it():
    g = torch.Generator().manual_seed(5)
    o = (
        CENTRE
        + unit(torch.randn(100, 3, generator=g, dtype=F64))
        * torch.rand(100, 1, generator=g, dtype=F64)
        * 0.5
    )
    d = unit(torch.randn(100, 3, generator=g, dtype=F64))
    res = sphere_trace(sphere, o, d, aabb=BOX, normals="autograd")
    assert bool(res.hit.all())
    torch.testing.assert_close(
        res.t, sphere_t(o, d, first=False), rtol=0, atol=2 * EPS
    )  # cos >= 0.7
    torch.testing.assert_close(
        res.normals, unit(res.positions - CENTRE), rtol=0, atol=1e-9
    )  # still outward


def test_rays_starting_inside_the_box_but_outside_the_surface():
    o, d = rays_at_sphere(100, 6, distance=1.2)  # within BOX, outside the sphere
    assert bool((o.abs() < 1.5).all())
    res = sphere_trace(sphere, o, d, aabb=BOX)
    assert bool(res.hit.all())
    torch.testing.assert_close(res.t, sphere_t(o, d), rtol=0, atol=2 * EPS)


def test_the_aabb_clip_makes_empty_space_free():
    def bounded(p):  # a valid but weak bound: never steps more than 0.05
        return sphere(p).clamp(max=0.05)

    o, d = rays_at_sphere(50, 7, distance=10.0)
    far = sphere_trace(
        bounded, o, d, far=20.0
    )  # ~180 steps of 0.05 to cross 9 units: gives up at 128
    assert not bool(far.hit.any()) and bool((far.steps == 128).all())
    tight = torch.stack(
        [CENTRE - 0.75, CENTRE + 0.75]
    )  # enters at most 0.75 (sqrt(3) - 1) from the surface
    clipped = sphere_trace(bounded, o, d, far=20.0, aabb=tight)
    assert (
        bool(clipped.hit.all()) and int(clipped.steps.max()) <= 0.75 * (math.sqrt(3) - 1) / 0.05 + 5
    )
    torch.testing.assert_close(clipped.t, sphere_t(o, d), rtol=0, atol=2 * EPS)
    # rays that miss the box are never evaluated
    calls = []
    away = sphere_trace(lambda p: calls.append(p.shape[0]) or sphere(p), o, -d, aabb=BOX)
    assert not bool(away.hit.any()) and bool((away.steps == 0).all()) and calls == []


def test_non_unit_directions_measure_t_in_units_of_the_direction():
    o, d = rays_at_sphere(50, 8)
    scale = torch.linspace(0.5, 3.0, 50, dtype=F64)[:, None]
    res = sphere_trace(sphere, o, d * scale, aabb=BOX)
    assert bool(res.hit.all())
    torch.testing.assert_close(res.t * scale[:, 0], sphere_t(o, d), rtol=0, atol=2 * EPS)


def test_relaxed_steps_still_converge():
    o, d = rays_at_sphere(200, 9)
    full = sphere_trace(sphere, o, d, aabb=BOX)
    half = sphere_trace(sphere, o, d, aabb=BOX, step_scale=0.5)
    assert bool(half.hit.all())
    assert float((sphere_t(o, d) - half.t).abs().max()) < 2 * EPS
    assert float(half.steps.float().mean()) > float(full.steps.float().mean())


@pytest.mark.parametrize("factor, step_scale", [(2.0, 0.5), (0.5, 1.0), (1.3, 1.0)])
def test_non_exact_fields(factor, step_scale):
    # 2x overestimates (needs step_scale 0.5), 0.5x underestimates (slow but safe), 1.3x with full
    # steps passes the surface and is caught by the sign change and refined
    o, d = rays_at_sphere(200, 10)
    res = sphere_trace(
        lambda p: factor * sphere(p), o, d, aabb=BOX, step_scale=step_scale, max_steps=256
    )
    assert bool(res.hit.all())
    torch.testing.assert_close(res.t, sphere_t(o, d), rtol=0, atol=2 * EPS / min(factor, 1.0))


def test_refinement_lands_on_the_surface_after_an_overshoot():
    o = torch.tensor([[0.1, -0.2, -3.0]], dtype=F64)
    d = torch.tensor([[0.0, 0.0, 1.0]], dtype=F64)
    # 1.5x the SDF with full steps: the first step goes from 3.05 out to 0.775 inside the surface
    res = sphere_trace(lambda p: 1.5 * sphere(p), o, d, aabb=BOX, eps=1e-10)
    assert bool(res.hit.all())
    torch.testing.assert_close(res.t, sphere_t(o, d), rtol=0, atol=1e-10)


def test_compaction_chunks_give_identical_results_and_evaluate_only_active_rays():
    o, d = rays_at_sphere(60, 11)
    o[::3] += 4.0  # a third of the rays start away from the sphere and mostly miss
    calls = []

    def counted(p):
        calls.append(p.shape[0])
        return 1.2 * sphere(p)  # overestimates: some rays are refined

    whole = sphere_trace(counted, o, d, far=12.0)
    assert calls[0] == 60 and sum(calls) == int(whole.steps.sum())
    calls.clear()
    chunked = sphere_trace(counted, o, d, far=12.0, chunk=7)
    assert max(calls) <= 7 and sum(calls) == int(chunked.steps.sum())
    for name in ("t", "hit", "positions", "steps"):
        assert torch.equal(getattr(whole, name), getattr(chunked, name)), name
    assert bool(whole.hit.any()) and not bool(whole.hit.all())


def test_float32_rays_and_column_values():
    o, d = rays_at_sphere(100, 12)
    res = sphere_trace(
        lambda p: sphere(p)[:, None], o.float(), d.float(), aabb=BOX, normals="autograd"
    )
    assert res.t.dtype == torch.float32 and res.positions.dtype == torch.float32
    assert bool(res.hit.all())
    torch.testing.assert_close(res.t, sphere_t(o, d).float(), rtol=0, atol=3e-4)


def camera(distance=3.0, width=64, height=48, dtype=F64) -> Cameras:
    c2w = torch.eye(4, dtype=dtype)
    c2w[:3, 3] = CENTRE.to(dtype) + torch.tensor(
        [0.0, 0.0, distance], dtype=dtype
    )  # looking down -z at CENTRE
    f = torch.tensor([focal_from_fov(0.8, width)], dtype=dtype)
    return Cameras(
        c2w[None],
        f,
        f,
        torch.tensor([width / 2], dtype=dtype),
        torch.tensor([height / 2], dtype=dtype),
        width,
        height,
    )


def test_render_sdf_of_a_sphere_covers_its_projected_disk():
    cams = camera()
    pic = render_sdf(sphere, cams, 0, aabb=BOX)
    o, d = image_rays(cams, 0)
    miss_distance = torch.linalg.cross(CENTRE - o, d).norm(
        dim=1
    )  # distance of each ray from the centre
    disk = (miss_distance < RADIUS).view(48, 64)
    iou = float((pic.mask & disk).sum()) / float((pic.mask | disk).sum())
    assert iou > 0.98 and int(disk.sum()) > 300
    assert (
        pic.image.shape == (48, 64, 3)
        and pic.depth.shape == (48, 64)
        and pic.steps.shape == (48, 64)
    )
    assert bool((pic.image[~pic.mask] == 1).all()) and bool((pic.depth[~pic.mask] == 0).all())
    assert bool((pic.image[pic.mask] < 1).all()) and bool((pic.image[pic.mask] > 0).all())
    truth = sphere_t(o, d).view(48, 64)
    facing = pic.mask & (miss_distance.view(48, 64) < 0.85 * RADIUS)  # incidence cosine > 0.5
    assert float((pic.depth - truth)[facing].abs().max()) < 2 * EPS
    # the middle pixel faces the camera: ambient + full headlight + the key light's share
    key = torch.tensor([-0.45, 0.55, 0.70], dtype=F64)
    light = 0.22 + 0.48 + 0.38 * float(key[2] / key.norm())
    torch.testing.assert_close(
        pic.image[24, 32], torch.tensor([0.75, 0.78, 0.85], dtype=F64) * light, rtol=0, atol=0.01
    )
    # the rim is darker than the middle
    rim = pic.mask & (miss_distance.view(48, 64) > 0.9 * RADIUS)
    assert float(pic.image[rim].mean()) < float(pic.image[24, 32].mean())


def test_band_sdf_grid_of_a_sphere_hits_within_a_voxel():
    res_ = 33
    axis = torch.linspace(-1.0, 1.0, res_)
    points = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    values = points.norm(dim=-1) - 0.6
    spacing = 2.0 / (res_ - 1)
    grid = BandSDFGrid(values, values.abs() < 3 * spacing)
    g = torch.Generator().manual_seed(13)
    o = unit(torch.randn(200, 3, generator=g)) * 2.5
    d = unit(unit(torch.randn(200, 3, generator=g)) * torch.rand(200, 1, generator=g) * 0.4 - o)
    res = sphere_trace(grid, o, d, aabb=[[-1.0] * 3, [1.0] * 3], step_scale=0.8, normals="autograd")
    assert bool(res.hit.all())
    assert float((res.positions.norm(dim=1) - 0.6).abs().max()) < spacing
    with torch.no_grad():
        assert float(grid(res.positions).abs().max()) < EPS
    assert float((res.normals * unit(res.positions)).sum(1).min()) > 0.98


def test_neural_sdf_hits_the_first_zero_crossing():
    small = {
        "hash_grid": {
            "n_levels": 4,
            "n_features_per_level": 2,
            "log2_hashmap_size": 12,
            "base_resolution": 4,
            "per_level_scale": 2.0,
            "interpolation": "linear",
        },
        "mlp": {"n_hidden": 16, "n_hidden_layers": 2, "beta": 100.0, "sphere_radius": 0.5},
    }
    torch.manual_seed(0)
    field = NeuralSDF.from_config(small)
    g = torch.Generator().manual_seed(14)
    o = unit(torch.randn(64, 3, generator=g)) * 2.5
    d = unit(torch.randn(64, 3, generator=g) * 0.1 - o)
    res = sphere_trace(
        field, o, d, aabb=[[-1.0] * 3, [1.0] * 3], step_scale=0.5, normals="autograd"
    )
    assert bool(res.hit.all())
    with torch.no_grad():
        assert float(field(res.positions).abs().max()) < EPS
        # a dense scan along each ray finds its first sign change where the trace stopped
        ts = torch.linspace(1.0, 2.5, 1501)
        values = field((o[:, None] + ts[None, :, None] * d[:, None]).reshape(-1, 3)).view(64, -1)
    first = (values < 0).float().argmax(dim=1)  # the root lies between samples first - 1 and first
    assert bool((values < 0).any(dim=1).all()) and bool((first > 0).all())
    # the trace stops where |f| < eps, up to eps / |df/dt| (slopes here >= 0.5) before the root
    assert bool(
        (ts[first - 1] - 2 * EPS / 0.5 <= res.t).all() and (res.t <= ts[first] + 1e-5).all()
    )
    _, grad = field.gradient(res.positions)
    assert bool(((grad * d).sum(1).abs() >= 0.5).all())
    assert bool((res.normals.norm(dim=1) - 1).abs().max() < 1e-5)


def test_cuda_rays_match_the_analytic_sphere_and_trace_a_neural_sdf(twin):
    """On a GPU, and on the CPU with the core's CUDA launchers emulated (the neural SDF's hash grid)."""
    o, d = rays_at_sphere(300, 15)
    with twin.active():
        res = sphere_trace(sphere, twin.put(o), twin.put(d), aabb=BOX, normals="autograd")
    assert res.t.device.type == twin.device and bool(res.hit.all())
    assert float((sphere_t(o, d) - res.t.cpu()).abs().max()) < 2 * EPS
    torch.testing.assert_close(
        res.normals.cpu(), unit(res.positions.cpu() - CENTRE), rtol=0, atol=1e-9
    )
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(16)
    o = unit(torch.randn(256, 3, generator=g)) * 2.5
    d = unit(torch.randn(256, 3, generator=g) * 0.1 - o)
    with twin.active():
        field = NeuralSDF(
            n_levels=4,
            log2_hashmap_size=12,
            base_resolution=4,
            per_level_scale=2.0,
            n_hidden=16,
            device=twin.device,
        )
        res = sphere_trace(
            field, twin.put(o), twin.put(d), aabb=BOX, step_scale=0.5, normals="finite"
        )
        assert bool(res.hit.all())
        with torch.no_grad():
            assert float(field(res.positions).abs().max()) < EPS


def test_near_and_far_bound_the_march():
    o, d = _rays(2)
    res = sphere_trace(sphere, o, d, near=1.0, far=1.0)  # an empty interval but for its one point
    assert not bool(res.hit.any()) and res.steps.tolist() == [1, 1]
    res = sphere_trace(
        sphere, o, d, near=torch.tensor([0.0, 2.5], dtype=F64), far=5.0
    )  # ray 1 starts inside
    expected = torch.stack([sphere_t(o, d)[0], sphere_t(o, d, first=False)[1]])
    torch.testing.assert_close(res.t, expected, atol=1e-3, rtol=0)


def _rays(n=4):
    return torch.zeros(n, 3, dtype=F64) + torch.tensor([0.0, 0.0, -3.0], dtype=F64), torch.tensor(
        [[0.0, 0.0, 1.0]], dtype=F64
    ).repeat(n, 1)


def _with(tensor, index, row):
    tensor = tensor.clone()
    tensor[index] = torch.tensor(row, dtype=tensor.dtype)
    return tensor


ORIGINS, D = _rays()
ERRORS = [
    ((3, ORIGINS, D), {}, "sdf must be a callable from (N, 3) points to (N,) values, got int"),
    ((sphere, ORIGINS.half(), D), {}, "origins must be float32 or float64, got float16"),
    ((sphere, ORIGINS[:, :2], D), {}, "origins must have shape (N, 3), got (4, 2)"),
    ((sphere, ORIGINS, D[:3]), {}, "dirs must have shape (4, 3), got (3, 3)"),
    (
        (sphere, ORIGINS, D.float()),
        {},
        "dirs must have the dtype of the rays (float64), got float32",
    ),
    (
        (sphere, ORIGINS, D.to("meta")),
        {},
        "dirs must be on cpu like the rays, got meta; move it with .to(device)",
    ),
    (
        (sphere, _with(ORIGINS, 1, [math.nan, 0.0, 0.0]), D),
        {},
        "origins[1] must be finite, got [nan, 0.0, 0.0]",
    ),
    (
        (sphere, ORIGINS, _with(D, 2, [0.0, 0.0, 0.0])),
        {},
        "dirs[2] must be a finite non-zero direction, got [0.0, 0.0, 0.0]",
    ),
    (
        (sphere, ORIGINS, _with(D, 3, [math.inf, 0.0, 0.0])),
        {},
        "dirs[3] must be a finite non-zero direction, got [inf, 0.0, 0.0]",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "max_steps": 0},
        "max_steps must be an integer >= 1, got 0",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "max_steps": 2.5},
        "max_steps must be an integer >= 1, got 2.5",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "eps": 0.0},
        "eps must be a finite number > 0 (an absolute distance), got 0.0",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "eps": -1e-3},
        "eps must be a finite number > 0 (an absolute distance), got -0.001",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "step_scale": 1.5},
        "step_scale must be a number in (0, 1], got 1.5",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "step_scale": 0},
        "step_scale must be a number in (0, 1], got 0",
    ),
    ((sphere, ORIGINS, D), {"far": 5.0, "chunk": 0}, "chunk must be an integer >= 1, got 0"),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "normals": "analytic"},
        "normals must be 'autograd', 'finite' or None, got 'analytic'",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "normal_step": 0.0},
        "normal_step must be a finite number > 0, got 0.0",
    ),
    ((sphere, ORIGINS, D), {"far": 5.0, "refine": 1}, "refine must be True or False, got 1"),
    (
        (sphere, ORIGINS, D),
        {},
        "far must be finite, got inf; bound the rays with a finite far or an aabb",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": torch.tensor([5.0, 5.0, math.inf, 5.0], dtype=F64)},
        "far[2] must be finite, got inf; bound the rays with a finite far or an aabb",
    ),
    ((sphere, ORIGINS, D), {"aabb": BOX, "far": math.nan}, "far must be a number or inf, got nan"),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "near": torch.tensor([0.0, math.nan, 0.0, 0.0], dtype=F64)},
        "near[1] must be finite and >= 0 (t runs forward from the origin), got nan",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "near": -1.0},
        "near must be finite and >= 0 (t runs forward from the origin), got -1.0",
    ),
    (
        (sphere, ORIGINS, D),
        {"aabb": BOX, "near": math.inf},
        "near must be finite and >= 0 (t runs forward from the origin), got inf",
    ),
    (
        (sphere, ORIGINS, D),
        {"near": 3.0, "far": 2.0},
        "near must be <= far, got 3.0 and 2.0; t runs from near to far along each ray",
    ),
    (
        (sphere, ORIGINS, D),
        {"aabb": BOX, "near": 3.0, "far": 2.0},
        "near must be <= far, got 3.0 and 2.0; t runs from near to far along each ray",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 2.0, "near": torch.tensor([0.0, 0.0, 3.0, 0.0], dtype=F64)},
        "near[2] must be <= far, got 3.0 and 2.0; t runs from near to far along each ray",
    ),
    (
        (sphere, ORIGINS, D),
        {"aabb": BOX, "far": torch.tensor([5.0, 5.0, 5.0, -math.inf], dtype=F64)},
        "near must be <= far[3], got 0.0 and -inf; t runs from near to far along each ray",
    ),
    (
        (sphere, ORIGINS, D),
        {"far": 5.0, "near": torch.zeros(3, dtype=F64)},
        "near must have shape (4,), got (3,)",
    ),
    (
        (sphere, ORIGINS, D),
        {"aabb": [[0, 0, 0], [1, 1, -1]]},
        "aabb must be finite (2, 3) min and max corners with max > min, got [[0, 0, 0], [1, 1, -1]]",
    ),
    (
        (sphere, ORIGINS, D),
        {"aabb": [0, 1]},
        "aabb must be finite (2, 3) min and max corners with max > min, got [0, 1]",
    ),
    (
        (lambda p: p, ORIGINS, D),
        {"far": 5.0},
        "sdf must return float values of shape (4,) or (4, 1) for (4, 3) points, got float64 (4, 3)",
    ),
    (
        (lambda p: 1.0, ORIGINS, D),
        {"far": 5.0},
        "sdf must return float values of shape (4,) or (4, 1) for (4, 3) points, got float",
    ),
    (
        (lambda p: sphere(p).detach(), ORIGINS, D),
        {"far": 5.0, "normals": "autograd"},
        "normals='autograd' needs an sdf differentiable in its input points (its values have no gradient); "
        "pass normals='finite'",
    ),
]


@pytest.mark.parametrize("args, kwargs, message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_sphere_trace_errors(args, kwargs, message):
    with pytest.raises(InputError) as info:
        sphere_trace(*args, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"normals": None}, "normals must be 'autograd' or 'finite', got None"),
        (
            {"color": (1.0, 0.5)},
            "color must be a number or three numbers in [0, 1] (a list or a (3,) tensor), got (1.0, 0.5)",
        ),
        (
            {"background": (1.0, 2.0, 0.0)},
            "background must be a number or three numbers in [0, 1] (a list or a (3,) tensor), got (1.0, 2.0, 0.0)",
        ),
        (
            {"dtype": torch.float16},
            "dtype must be torch.float32, torch.float64 or None, got torch.float16",
        ),
        (
            {"near": 2.0, "far": 1.0},
            "near must be <= far, got 2.0 and 1.0; t runs from near to far along each ray",
        ),
    ],
)
def test_render_sdf_errors(kwargs, message):
    with pytest.raises(InputError) as info:
        render_sdf(sphere, camera(), 0, aabb=BOX, **kwargs)
    assert str(info.value) == message
    with pytest.raises(InputError, match=r"^index must be an integer in \[0, 0\], got 1$"):
        render_sdf(sphere, camera(), 1, aabb=BOX)
