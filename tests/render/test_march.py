"""Ray marching against the pure-torch references: plain boxes, occupancy cascades, fixed and cone
steps, the sample budget, and argument errors with their exact messages."""

import math

import pytest
import torch

from fields3d.errors import InputError
from fields3d.render import GridSpec, march_rays, pack_bits
from fields3d.render.reference import fixed_step_brute_force, march_reference

BOX = GridSpec.from_aabb([[-1, -1, -1], [1, 1, 1]])


def random_rays(n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    origins = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * 3
    targets = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * 0.8
    dirs = targets - origins
    return origins, dirs / dirs.norm(dim=1, keepdim=True)


def random_grid(levels, res, seed, fill=0.3):
    g = torch.Generator().manual_seed(seed)
    occupied = torch.rand(levels * res**3, generator=g) < fill
    return GridSpec(
        (0.1, -0.05, 0.0), (0.6, 0.5, 0.7), (res, res, res), levels, pack_bits(occupied)
    )


def assert_same_samples(samples, ref, atol=1e-9):
    t_starts, t_ends, ray_ids = ref
    assert samples.n_samples == len(ray_ids)
    assert torch.equal(samples.ray_ids, ray_ids)
    torch.testing.assert_close(samples.t_starts.double(), t_starts, atol=atol, rtol=0)
    torch.testing.assert_close(samples.t_ends.double(), t_ends, atol=atol, rtol=0)
    counts = torch.bincount(ray_ids, minlength=samples.n_rays)
    assert torch.equal(samples.counts, counts)


def test_box_fixed_steps_from_entry_to_exit():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.0, 0.0], [0.0, 5.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    s = march_rays(origins, dirs, BOX, step=0.25)
    # through the box: t in [2, 4] -> 8 steps; from the centre: [0, 1] -> 4; the third misses
    assert s.counts.tolist() == [8, 4, 0]
    assert s.offsets.tolist() == [0, 8, 12, 12]
    torch.testing.assert_close(s.t_starts[:8], 2 + 0.25 * torch.arange(8.0))
    torch.testing.assert_close(s.t_ends[:8] - s.t_starts[:8], torch.full((8,), 0.25))
    torch.testing.assert_close(s.t_starts[8:], 0.25 * torch.arange(4.0))
    assert s.ray_ids.tolist() == [0] * 8 + [1] * 4
    assert s.offsets.dtype == torch.int64 and s.ray_ids.dtype == torch.int64


def test_near_and_far_clip_each_ray():
    origins = torch.tensor([[0.0, 0.0, -3.0]] * 2)
    dirs = torch.tensor([[0.0, 0.0, 1.0]] * 2)
    s = march_rays(
        origins, dirs, BOX, step=0.5, near=torch.tensor([2.5, 0.0]), far=torch.tensor([10.0, 3.0])
    )
    assert s.t_starts[s.ray_ids == 0].tolist() == [2.5, 3.0, 3.5]
    assert s.t_starts[s.ray_ids == 1].tolist() == [2.0, 2.5]


@pytest.mark.parametrize("levels,res", [(1, 6), (2, 8), (3, 4)])
def test_fixed_steps_keep_exactly_the_occupied_midpoints(levels, res):
    # Skipping empty cells in one move must keep every grid step whose midpoint is occupied.
    origins, dirs = random_rays(300, seed=levels)
    spec = random_grid(levels, res, seed=res)
    s = march_rays(origins, dirs, spec, step=0.013)
    assert_same_samples(s, fixed_step_brute_force(origins, dirs, spec, step=0.013))
    assert s.n_samples > 1000


@pytest.mark.parametrize("levels", [1, 3])
def test_cone_steps_match_the_reference_loop(levels):
    origins, dirs = random_rays(200, seed=11)
    spec = random_grid(levels, 8, seed=levels)
    kw = dict(step=0.004, cone=1 / 64, max_step=0.05)
    s = march_rays(origins, dirs, spec, **kw)
    assert_same_samples(s, march_reference(origins, dirs, spec, **kw))
    widths = s.t_ends - s.t_starts
    assert (
        widths.min() >= 0.004 - 1e-12
        and widths.max() <= 0.05 + 1e-12
        and widths.max() > widths.min()
    )


def test_float32_matches_float64():
    origins, dirs = random_rays(200, seed=5)
    spec = random_grid(2, 8, seed=2)
    s64 = march_rays(origins, dirs, spec, step=0.01)
    s32 = march_rays(origins.float(), dirs.float(), spec, step=0.01)
    # a float32 midpoint can land in the neighbouring cell; allow a handful in 20k samples
    assert abs(s32.n_samples - s64.n_samples) <= 0.002 * s64.n_samples
    assert s32.t_starts.dtype == torch.float32


def test_the_budget_drops_whole_rays_from_the_end():
    origins, dirs = random_rays(100, seed=3)
    full = march_rays(origins, dirs, BOX, step=0.05)
    budget = full.n_samples // 2
    s = march_rays(origins, dirs, BOX, step=0.05, max_samples=budget)
    assert s.n_samples <= budget
    kept = s.n_rays - s.rays_dropped
    assert s.rays_dropped > 0 and torch.equal(s.counts[:kept], full.counts[:kept])
    assert (s.counts[kept:] == 0).all()
    assert s.n_samples == int(full.offsets[kept])
    torch.testing.assert_close(s.t_starts, full.t_starts[: s.n_samples])


def test_empty_batches_and_nan_rays_give_no_samples():
    s = march_rays(torch.zeros(0, 3), torch.zeros(0, 3), BOX, step=0.1)
    assert s.n_samples == 0 and s.offsets.tolist() == [0]
    origins = torch.tensor([[math.nan, 0.0, -3.0], [0.0, 0.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])  # a NaN origin; a zero direction
    assert march_rays(origins, dirs, BOX, step=0.1).counts.tolist() == [0, 0]


def test_per_ray_clips_past_the_float32_range_and_nan_clips_leave_rays_empty():
    origins = torch.tensor([[0.0, 0.0, -3.0]] * 2)
    dirs = torch.tensor([[0.0, 0.0, 1.0]] * 2)
    assert march_rays(origins, dirs, BOX, step=0.5, near=-1e300, far=2**1100).counts.tolist() == [
        4,
        4,
    ]
    assert march_rays(origins, dirs, BOX, step=0.5, near=1e300, far=1e301).counts.tolist() == [0, 0]
    nan = torch.tensor([math.nan, 0.0])
    assert march_rays(origins, dirs, BOX, step=0.5, near=nan).counts.tolist() == [0, 4]
    assert march_rays(origins, dirs, BOX, step=0.5, far=nan + 10).counts.tolist() == [0, 4]
    assert march_rays(
        origins, dirs, BOX, step=0.5, near=torch.tensor([3.0, 0.0]), far=torch.tensor([2.5, 9.0])
    ).counts.tolist() == [0, 4]


def test_select_and_midpoints_check_their_arguments():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    s = march_rays(origins, dirs, BOX, step=0.5)  # 4 samples a ray
    kept = s.select(s.t_starts > 2.9)
    assert kept.counts.tolist() == [2, 2] and kept.offsets.tolist() == [0, 2, 4]
    cases = [
        (
            lambda: s.select(torch.ones(9, dtype=torch.bool)),
            "keep must be a bool tensor of shape (8,), one flag per sample, got bool (9,)",
        ),
        (
            lambda: s.select(torch.ones(8, 1, dtype=torch.bool)),
            "keep must be a bool tensor of shape (8,), one flag per sample, got bool (8, 1)",
        ),
        (
            lambda: s.select(torch.ones(8, dtype=torch.int64)),
            "keep must be a bool tensor of shape (8,), one flag per sample, got int64 (8,)",
        ),
        (
            lambda: s.select(None),
            "keep must be a bool tensor of shape (8,), one flag per sample, got NoneType",
        ),
        (
            lambda: s.select(torch.ones(8, dtype=torch.bool, device="meta")),
            "keep must be on cpu like the samples, got meta; move it with .to(device)",
        ),
        (lambda: s.midpoints(origins[:1], dirs[:1]), "origins must have shape (2, 3), got (1, 3)"),
        (
            lambda: s.midpoints(origins, dirs.double()),
            "dirs must have the dtype of the rays (float32), got float64",
        ),
    ]
    for call, message in cases:
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == message


def test_midpoints():
    origins = torch.tensor([[0.0, 0.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0]])
    s = march_rays(origins, dirs, BOX, step=1.0)
    assert s.midpoints(origins, dirs)[:, 2].tolist() == [-0.5, 0.5]
    assert s.samples_per_ray() == 2.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (
            dict(origins=torch.zeros(2, 3, dtype=torch.int64)),
            "origins must be float32 or float64, got int64",
        ),
        (dict(origins=torch.zeros(2, 2)), "origins must have shape (N, 3), got (2, 2)"),
        (dict(dirs=torch.zeros(3, 3)), "dirs must have shape (2, 3), got (3, 3)"),
        (
            dict(dirs=torch.zeros(2, 3, dtype=torch.float64)),
            "dirs must have the dtype of the rays (float32), got float64",
        ),
        (
            dict(step=0.0),
            "step must be a finite number >= 1e-07 of the grid's extent (2e-07), got 0.0",
        ),
        (dict(cone=-1.0), "cone must be a finite number >= 0, got -1.0"),
        (dict(max_step=0.01), "max_step must be a finite number >= step (0.1), got 0.01"),
        (dict(max_samples=-1), "max_samples must be an integer >= 0, got -1"),
        (dict(near=torch.zeros(3)), "near must have shape (2,), got (3,)"),
        (
            dict(step=True),
            "step must be a finite number >= 1e-07 of the grid's extent (2e-07), got True",
        ),
        (
            dict(step=10.0),
            "step must be at most the grid's extent (2), got 10.0; a longer step leaves at most one "
            "sample per ray",
        ),
        (
            dict(step=2**1100),
            f"step must be a finite number >= 1e-07 of the grid's extent (2e-07), got {2**1100}",
        ),
        (dict(cone=math.nan), "cone must be a finite number >= 0, got nan"),
        (dict(cone=True), "cone must be a finite number >= 0, got True"),
        (dict(max_step=2**1100), f"max_step must be a finite number >= step (0.1), got {2**1100}"),
        (dict(max_samples=True), "max_samples must be an integer >= 0, got True"),
        (
            dict(max_samples=2**70),
            "max_samples must be an integer from 0 to 68719476736, got 1180591620717411303424",
        ),
        (dict(near=math.nan), "near must be a number or an (R,) float tensor, not NaN, got nan"),
        (dict(far=math.nan), "far must be a number or an (R,) float tensor, not NaN, got nan"),
        (
            dict(near=3.0, far=2.0),
            "far must be a number >= near (3.0) or an (R,) float tensor, got 2.0; rays are sampled from near to far",
        ),
        (dict(near=torch.zeros(2, 1)), "near must have shape (2,), got (2, 1)"),
        (dict(far=torch.zeros(2, dtype=torch.int64)), "far must be float32 or float64, got int64"),
    ],
)
def test_bad_arguments_say_what_to_do(kwargs, message):
    args = dict(origins=torch.zeros(2, 3), dirs=torch.ones(2, 3), step=0.1)
    args.update(kwargs)
    origins, dirs = args.pop("origins"), args.pop("dirs")
    with pytest.raises(InputError) as err:
        march_rays(origins, dirs, BOX, **args)
    assert str(err.value) == message


def test_bad_grids_are_refused():
    with pytest.raises(InputError) as err:
        GridSpec.from_aabb([[0, 0, 0], [1, -1, 1]])
    assert (
        str(err.value)
        == "aabb must be finite (2, 3) min and max corners with max > min, got [[0, 0, 0], [1, -1, 1]]"
    )
    odd = GridSpec((0, 0, 0), (1, 1, 1), (6, 8, 8), 2, None)
    with pytest.raises(InputError) as err:
        march_rays(torch.zeros(1, 3), torch.ones(1, 3), odd, step=0.1)
    assert str(err.value) == (
        "the grid's resolution must be multiples of 4 with more than one level (each box holds "
        "whole cells of the next), got (6, 8, 8) with 2 levels"
    )
    short = GridSpec((0, 0, 0), (1, 1, 1), (4, 4, 4), 1, torch.zeros(3, dtype=torch.uint8))
    with pytest.raises(InputError) as err:
        march_rays(torch.zeros(1, 3), torch.ones(1, 3), short, step=0.1)
    assert str(err.value) == (
        "the grid's bits must have shape (8,) (1 level(s) of 4x4x4 cells, 8 to a byte: "
        "pack_bits(occupied)), got (3,)"
    )
    wrong = GridSpec((0, 0, 0), (1, 1, 1), (4, 4, 4), 1, torch.zeros(8, dtype=torch.int64))
    with pytest.raises(
        InputError,
        match=r"^the grid's bits must be uint8 on cpu like the rays, got torch.int64 on cpu$",
    ):
        march_rays(torch.zeros(1, 3), torch.ones(1, 3), wrong, step=0.1)


def _grid(**edit):
    args = dict(
        center=(0.0, 0.0, 0.0), half=(1.0, 1.0, 1.0), resolution=(4, 4, 4), levels=1, bits=None
    )
    return GridSpec(**{**args, **edit})


@pytest.mark.parametrize(
    "spec,message",
    [
        (
            "box",
            "spec must be a GridSpec (GridSpec.from_aabb(aabb) or OccupancyGrid.spec()), got str",
        ),
        (_grid(levels=0), "the grid's levels must be an integer from 1 to 16, got 0"),
        (_grid(levels=100), "the grid's levels must be an integer from 1 to 16, got 100"),
        (_grid(levels=2.0), "the grid's levels must be an integer from 1 to 16, got 2.0"),
        (
            _grid(resolution=(4, 4)),
            "the grid's resolution must be 3 integers from 1 to 4096 (cells per axis), got (4, 4)",
        ),
        (
            _grid(resolution=(0, 4, 4)),
            "the grid's resolution must be 3 integers from 1 to 4096 (cells per axis), got (0, 4, 4)",
        ),
        (
            _grid(resolution=(4.0, 4, 4)),
            "the grid's resolution must be 3 integers from 1 to 4096 (cells per axis), got (4.0, 4, 4)",
        ),
        (
            _grid(resolution=(8192, 4, 4)),
            "the grid's resolution must be 3 integers from 1 to 4096 (cells per axis), got (8192, 4, 4)",
        ),
        (
            _grid(half=(0.0, 1.0, 1.0)),
            "the grid's half must be 3 finite numbers > 0 (half extents), got (0.0, 1.0, 1.0)",
        ),
        (
            _grid(half=(math.nan, 1.0, 1.0)),
            "the grid's half must be 3 finite numbers > 0 (half extents), got (nan, 1.0, 1.0)",
        ),
        (_grid(half=1.0), "the grid's half must be 3 finite numbers > 0 (half extents), got 1.0"),
        (
            _grid(center=(0.0, math.inf, 0.0)),
            "the grid's center must be 3 finite numbers, got (0.0, inf, 0.0)",
        ),
        (_grid(center=None), "the grid's center must be 3 finite numbers, got None"),
        (
            _grid(center=(1e39, 0.0, 0.0)),
            "the grid's outermost box (center +- half * 2**0) must lie within +-1.701e+38 for float32 rays, got center "
            "(1e+39, 0.0, 0.0) and half (1.0, 1.0, 1.0); use smaller units",
        ),
        (
            _grid(bits=[0] * 8),
            "the grid's bits must be None or a uint8 tensor (pack_bits(occupied)), got list",
        ),
    ],
)
def test_bad_grids_by_hand(spec, message):
    with pytest.raises(InputError) as err:
        march_rays(torch.zeros(2, 3), torch.ones(2, 3), spec, step=0.1)
    assert str(err.value) == message


def test_grids_by_hand_that_work():
    strided = _grid(
        bits=torch.full((16,), 255, dtype=torch.uint8)[::2]
    )  # made contiguous for the core
    assert (
        march_rays(
            torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]]), strided, step=0.5
        ).n_samples
        == 4
    )
    huge = _grid(half=(1e38, 1e38, 1e38), levels=8)  # past float32 range, within float64's
    s = march_rays(
        torch.zeros(1, 3, dtype=torch.float64),
        torch.ones(1, 3, dtype=torch.float64),
        huge,
        step=1e38,
    )
    assert torch.isfinite(s.t_ends).all() and s.n_samples > 0


@pytest.mark.parametrize(
    "aabb",
    [
        "box",
        [[0, 0], [1, 1, 1]],
        None,
        torch.zeros(2, 3, device="meta"),
        [[0, 0, math.nan], [1, 1, 1]],
    ],
)
def test_from_aabb_refuses_what_is_not_a_box(aabb):
    with pytest.raises(InputError) as err:
        GridSpec.from_aabb(aabb)
    assert (
        str(err.value)
        == f"aabb must be finite (2, 3) min and max corners with max > min, got {aabb!r}"
    )


def test_from_aabb_of_a_box_spanning_the_float64_range():
    spec = GridSpec.from_aabb([[-1.5e308, 0, 0], [1.5e308, 1, 1]])
    assert spec.half == (1.5e308, 0.5, 0.5) and spec.center == (0.0, 0.5, 0.5)


def test_core_rejects_inconsistent_offsets():
    from fields3d import _native

    c, core = _native.capsule, _native.core()
    o, d = torch.zeros(2, 3), torch.ones(2, 3)
    n = torch.zeros(2)
    offsets = torch.tensor([0, 5, 3])
    buf, ids = torch.zeros(4), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(
        ValueError,
        match=r"^offsets must start at 0, never decrease and end at most at the number of samples \(4\)$",
    ):
        core.march_emit(
            c(o),
            c(d),
            c(n),
            c(n + 1),
            None,
            1,
            [2, 2, 2],
            [0, 0, 0],
            [1, 1, 1],
            0.1,
            0.0,
            0.1,
            c(offsets),
            c(buf),
            c(buf.clone()),
            c(ids),
        )


@pytest.mark.parametrize("res", [4, 16, 64, 128])
def test_float32_rays_from_one_camera_finish_and_agree(res):
    # Rays from one eye through a sparse grid in float32: midpoints land on cell walls within
    # rounding, where the walk must still move on (a ray once looped forever here).
    g = torch.Generator().manual_seed(res)
    spec = GridSpec(
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        (res,) * 3,
        1,
        pack_bits(torch.rand(res**3, generator=g) < 0.1),
    )
    origins = torch.tensor([[1.8, 1.2, 2.1]]).expand(400, 3).contiguous()
    dirs = torch.nn.functional.normalize(torch.rand(400, 3, generator=g) - 0.5 - origins, dim=1)
    step = 3**0.5 * 2 / 1024
    s = march_rays(origins, dirs, spec, step=step)
    ref = fixed_step_brute_force(origins, dirs, spec, step=step)
    assert abs(s.n_samples - len(ref[2])) <= max(2, 0.002 * len(ref[2]))
    assert torch.equal(s.counts, march_rays(origins, dirs, spec, step=step).counts)  # deterministic
