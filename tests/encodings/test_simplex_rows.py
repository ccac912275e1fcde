"""The simplex grid's compact rows for direct levels: every vertex a point can reach has a row
inside its prefix's interval, rows are one-to-one, and they cover little more than the reachable
vertices (not the skewed lattice's bounding box)."""

import math

import pytest
import torch

from fields3d import _native
from fields3d.encodings import SimplexGridConfig, simplex_grid_encode
from fields3d.encodings._lattice import layout
from fields3d.encodings._simplex_rows import row_intervals, row_lookup, simplex_resolution
from fields3d.encodings.simplex import skew_factor


def _cube_points(d: int, n: int, dtype) -> torch.Tensor:
    """Random points, plus points on every face, edge and corner of the unit cube."""
    g = torch.Generator().manual_seed(d)
    x = torch.rand(n, d, generator=g, dtype=torch.float64)
    snap = torch.rand(n, d, generator=g) < 0.3
    x = torch.where(snap, (torch.rand(n, d, generator=g) < 0.5).double(), x)
    corners = torch.tensor(
        [[(c >> i) & 1 for i in range(d)] for c in range(2**d)], dtype=torch.float64
    )
    return torch.cat([x, corners]).to(dtype)


def _reached_vertices(x: torch.Tensor, scale: float, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The vertices of the simplices holding x, as the core finds them, ``(N * (d + 1), d)``, and
    their barycentric weights ``(N * (d + 1),)``."""
    k = skew_factor(d)
    p = x * x.new_tensor(scale)
    q = p + x.new_tensor(k) * p.sum(dim=1, keepdim=True)
    base = torch.floor(q)
    f, order = torch.sort(q - base, dim=1, descending=True, stable=True)
    ones, zeros = torch.ones_like(f[:, :1]), torch.zeros_like(f[:, :1])
    weights = torch.cat([ones, f], dim=1) - torch.cat([f, zeros], dim=1)
    vertex, eye, out = base.long(), torch.eye(d, dtype=torch.long), [base.long()]
    for m in range(d):
        vertex = vertex + eye[order[:, m]]
        out.append(vertex)
    return torch.cat(out), weights.T.reshape(-1)


@pytest.mark.parametrize("d", [2, 3, 4])
@pytest.mark.parametrize("scale", [1.3, 4.0, 11.9, 37.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_reached_vertex_has_a_row(d, scale, dtype):
    if d == 4 and scale > 20:
        pytest.skip("a 4D lookup at this scale takes seconds to build; the smaller scales cover 4D")
    resolution = simplex_resolution(scale, d)
    lo, hi = row_intervals(scale, resolution, d, skew_factor(d))
    v, _ = _reached_vertices(_cube_points(d, 20000, dtype), scale, d)
    assert v.min() >= 0 and v.max() < resolution
    prefix = sum(v[:, j] * resolution**j for j in range(d - 1))
    z = v[:, d - 1]
    outside = (z < lo[prefix]) | (z > hi[prefix])
    assert not outside.any(), f"{int(outside.sum())} reached vertices lie outside their rows"


@pytest.mark.parametrize("d,scale", [(2, 9.5), (3, 6.2), (4, 3.1)])
def test_rows_are_one_to_one_and_dense(d, scale):
    resolution = simplex_resolution(scale, d)
    base, rows = row_lookup(scale, resolution, d, skew_factor(d))
    lo, hi = row_intervals(scale, resolution, d, skew_factor(d))
    assert base.shape == (resolution ** (d - 1),)
    taken = torch.cat(
        [base[i] + torch.arange(lo[i], hi[i] + 1) for i in range(base.numel()) if lo[i] <= hi[i]]
    )
    assert torch.equal(torch.sort(taken).values, torch.arange(rows))


@pytest.mark.parametrize("d,bound", [(2, 1.06), (3, 1.1), (4, 1.2)])
def test_rows_stay_close_to_the_reachable_vertex_count(d, bound):
    scale = {2: 60.0, 3: 60.0, 4: 40.0}[d]
    resolution = simplex_resolution(scale, d)
    _, rows = row_lookup(scale, resolution, d, skew_factor(d))
    vertices = math.sqrt(d + 1) * scale**d  # lattice vertices per skewed cube: its volume
    assert vertices < rows < bound * vertices
    # the bounding box the level used to index: the skewed cube fills 58% / 25% / 9% of it
    assert rows < {2: 0.62, 3: 0.3, 4: 0.12}[d] * resolution**d


def test_direct_levels_follow_the_reachable_count():
    # 2D at 65k parameters: the bounding box would make the coarse levels 1.7x larger
    config = SimplexGridConfig(2, 12, 2, 12, 16, 1.38)
    direct = [v for v in config.levels if not v.hashed]
    assert len(direct) >= 5
    for v in direct:
        assert v.size <= 0.75 * v.resolution**2
    assert config.lut.shape == (sum(v.resolution for v in direct),)


def test_distinct_vertices_never_share_a_row_in_the_core():
    # one direct level: the table gradient of sum(y) is each row's total weight, so the rows with
    # a gradient are exactly the reached vertices (with some weight) unless two share a row
    config = SimplexGridConfig(3, 1, 1, 14, 9, 1.5)
    (level,) = config.levels
    assert not level.hashed
    x = torch.rand(4000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    table = torch.zeros(config.n_entries, 1, dtype=torch.float64, requires_grad=True)
    simplex_grid_encode(x, table, config).sum().backward()
    v, w = _reached_vertices(x, level.scale, 3)
    reached = torch.unique(v[w > 0], dim=0).shape[0]
    assert int((table.grad[:, 0] != 0).sum()) == reached
    assert table.grad.sum().item() == pytest.approx(4000.0)


def test_the_core_asks_for_the_lookup():
    config = SimplexGridConfig(2, 3, 2, 10, 4, 1.5)
    lay, c = layout(config), _native.capsule
    x, table, y = torch.rand(5, 2), torch.rand(config.n_entries, 2), torch.empty(5, 6)
    assert lay.n_lut == config.lut.numel() > 0
    with pytest.raises(ValueError) as err:
        _native.core().lattice_forward(lay, c(x), c(table), c(y))
    assert str(err.value) == f"this layout needs its row lookup: lut, int64 of shape ({lay.n_lut},)"
    with pytest.raises(ValueError) as err:
        _native.core().lattice_forward(lay, c(x), c(table), c(y), lut=c(config.lut[:-1]))
    assert str(err.value) == f"lut must have shape ({lay.n_lut},), got ({lay.n_lut - 1},)"
