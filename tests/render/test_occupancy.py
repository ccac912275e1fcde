"""The occupancy grid marks a known sphere correctly, and marching through it keeps only samples
near the sphere; bit packing, cascades and argument errors."""

import math

import pytest
import torch

from fields3d.errors import InputError
from fields3d.render import GridSpec, OccupancyGrid, march_rays, pack_bits

RADIUS = 0.5


def sphere_density(points):
    return (points.norm(dim=1) < RADIUS).float() * 10.0


def sphere_sdf(points):
    return points.norm(dim=1) - RADIUS


def cell_centres_and_reach(grid):
    idx = torch.arange(grid.values.numel())
    centres = grid.cell_points(idx, jitter=False)
    level = (idx // grid.resolution**3).float()
    reach = (
        torch.tensor(grid.half).norm() * 2 / grid.resolution * 2.0**level
    )  # a cell's full diagonal
    return centres, reach


def test_pack_bits_is_little_endian_per_byte():
    occupied = torch.zeros(16, dtype=torch.bool)
    occupied[[0, 3, 9, 15]] = True
    assert pack_bits(occupied).tolist() == [0b00001001, 0b10000010]
    assert pack_bits(torch.ones(5, dtype=torch.bool)).tolist() == [0b00011111]


@pytest.mark.parametrize("levels", [1, 2])
def test_warm_up_marks_the_cells_of_a_sphere(levels):
    grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=16, levels=levels)
    grid.update(sphere_density, warmup=True, generator=torch.Generator().manual_seed(0))
    centres, reach = cell_centres_and_reach(grid)
    r = centres.norm(dim=1)
    occupied = grid.occupied.reshape(-1)
    live = grid.live.reshape(-1)
    assert occupied[live & (r < RADIUS - reach / 2)].all()  # wholly inside: always hit
    assert not occupied[r > RADIUS + reach / 2].any()  # wholly outside: never
    assert not occupied[~live].any()
    live_cells = 16**3 * (1 + (levels - 1) * 7 / 8)
    expected = (
        (4 / 3 * torch.pi * RADIUS**3) / 8 * 16**3 / live_cells
    )  # the sphere's share of the finest box
    assert abs(grid.occupancy_fraction() - expected) < 0.5 * expected


def test_cells_empty_out_when_the_density_moves():
    grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=8)
    grid.update(sphere_density, warmup=True)
    before = grid.occupied.clone()
    shift = torch.tensor([0.0, 0.0, 0.45])

    def moved(points):
        return ((points - shift).norm(dim=1) < 0.3).float() * 10.0

    for _ in range(4):
        grid.update(moved, warmup=True, decay=0.1)
    centres, _ = cell_centres_and_reach(grid)
    now = grid.occupied.reshape(-1)
    assert now.any() and not now[(centres - shift).norm(dim=1) > 0.3 + 0.25].any()
    assert (
        before.reshape(-1) & ~now
    ).sum() > 10  # the old sphere's cells decayed below the threshold
    assert torch.equal(grid.bits, pack_bits(grid.occupied))


def test_sdf_band_and_marching_stay_near_the_surface():
    grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=32)
    grid.mark_sdf(sphere_sdf)
    centres, reach = cell_centres_and_reach(grid)
    dist = sphere_sdf(centres).abs()
    occupied = grid.occupied.reshape(-1)
    assert occupied[dist < reach / 4].all() and not occupied[dist > reach].any()
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 0.9, -3.0], [0.3, 0.1, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0]] * 3)
    s = march_rays(origins, dirs, grid.spec(), step=0.01)
    assert s.counts[1] == 0 and s.counts[0] > 0 and s.counts[2] > 0
    d = sphere_sdf(s.midpoints(origins, dirs)).abs()
    assert d.max() < 2 * float(reach[0])  # only samples in the band around the sphere
    full = march_rays(origins, dirs, GridSpec((0, 0, 0), (1, 1, 1)), step=0.01)
    assert s.n_samples < full.n_samples / 3


def test_bad_arguments():
    with pytest.raises(InputError) as err:
        OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=6, levels=2)
    assert str(err.value) == "resolution must be a multiple of 4 with more than one level, got 6"
    with pytest.raises(InputError) as err:
        OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=8, levels=0)
    assert str(err.value) == "levels must be an integer from 1 to 16, got 0"
    grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=8)
    with pytest.raises(InputError) as err:
        grid.update(lambda p: torch.zeros(3), warmup=True)
    assert str(err.value) == "the occupancy function must return one value per point (512), got 3"


BOX = [[-1, -1, -1], [1, 1, 1]]
AABB_RULE = "aabb must be finite (2, 3) min and max corners with max > min, got "


@pytest.mark.parametrize(
    "aabb,kwargs,message",
    [
        (BOX, dict(resolution=100000), "resolution must be an integer from 2 to 2048, got 100000"),
        (BOX, dict(resolution=True), "resolution must be an integer from 2 to 2048, got True"),
        (BOX, dict(resolution=8, levels=17), "levels must be an integer from 1 to 16, got 17"),
        (BOX, dict(resolution=8, levels=2.0), "levels must be an integer from 1 to 16, got 2.0"),
        (
            BOX,
            dict(resolution=1024),
            "levels * resolution**3 must be at most 268435456 cells (a grid keeps ~8 bytes a cell and an update needs "
            "~50), got 1 * 1024**3 = 1073741824; lower resolution or levels",
        ),
        (
            BOX,
            dict(resolution=512, levels=3),
            "levels * resolution**3 must be at most 268435456 cells (a grid keeps ~8 bytes a cell and an update needs "
            "~50), got 3 * 512**3 = 402653184; lower resolution or levels",
        ),
        ([[0, 0, 0], [0, 1, 1]], {}, AABB_RULE + "[[0, 0, 0], [0, 1, 1]]"),
        ([[0, 0, 0], [math.nan, 1, 1]], {}, AABB_RULE + "[[0, 0, 0], [nan, 1, 1]]"),
        ([[0, 0, 0], [1, 1]], {}, AABB_RULE + "[[0, 0, 0], [1, 1]]"),
        ("box", {}, AABB_RULE + "'box'"),
        (
            [[0, 0, 0], [1e308, 1, 1]],
            dict(resolution=8, levels=4),
            "aabb is too large for 4 levels: the outermost box, 2**3 times its size, must be finite, got "
            "[[0, 0, 0], [1e+308, 1, 1]]; use fewer levels or smaller units",
        ),
    ],
)
def test_sizes_and_boxes_that_cannot_be_built_are_refused(aabb, kwargs, message):
    # resolution=100000 asked for 4e15 bytes; levels past the marcher's 16 built a grid it refuses
    with pytest.raises(InputError) as err:
        OccupancyGrid(aabb, **kwargs)
    assert str(err.value) == message


def test_the_most_levels_the_marcher_takes():
    grid = OccupancyGrid(BOX, resolution=4, levels=16)
    origins, dirs = torch.tensor([[0.0, 0.0, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    s = march_rays(origins, dirs, grid.spec(), step=0.1, far=6.0)
    assert s.n_samples == 60  # every cell occupied: steps of 0.1 over [0, 6]


def _cells_of(points: torch.Tensor, resolution: int) -> set[tuple[int, ...]]:
    """Cells of the [-1, 1]^3 grid holding each point."""
    ijk = ((points + 1) / 2 * resolution).floor().long().clamp(0, resolution - 1)
    return {tuple(c) for c in ijk.tolist()}


@pytest.mark.parametrize("levels", [1, 2])
def test_the_occupied_spec_marches_the_same_cells_of_the_finest_level(levels):
    grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=16, levels=levels)
    grid.mark_sdf(lambda x: x.norm(dim=1) - 0.4)
    spec = grid.occupied_spec()
    assert spec.levels == 1 and max(spec.resolution) < 16
    torch.manual_seed(0)
    origins = torch.randn(300, 3) * 0.3 + torch.tensor([0.0, 0.0, -3.0])
    dirs = torch.nn.functional.normalize(
        torch.randn(300, 3) * 0.15 + torch.tensor([0, 0, 1.0]), dim=1
    )
    full = march_rays(origins, dirs, grid.spec(), step=0.01)
    cropped = march_rays(origins, dirs, spec, step=0.01)
    a = _cells_of(full.midpoints(origins, dirs), 16)
    b = _cells_of(cropped.midpoints(origins, dirs), 16)
    # the same cells, up to the phase of the steps (a step across a cell face)
    assert len(b) > 50 and len(b - a) <= len(a) // 50 and len(a - b) <= len(a) // 50
    assert (cropped.counts - full.counts).abs().max() <= 4  # steps start where each box begins


def test_the_occupied_spec_of_an_empty_grid_gives_no_samples():
    grid = OccupancyGrid([[-1, -1, -1], [1, 1, 1]], resolution=8)
    grid.occupied.zero_()
    grid.bits.copy_(pack_bits(grid.occupied))
    spec = grid.occupied_spec()
    assert spec.resolution == (1, 1, 1)
    samples = march_rays(
        torch.tensor([[-0.9, -0.9, -3.0]]), torch.tensor([[0.0, 0.0, 1.0]]), spec, step=0.01
    )
    assert samples.n_samples == 0
