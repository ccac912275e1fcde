"""The baked preview field: the field's own values at the vertices, a colour linear in the view
direction reproduced exactly, trilinear in between, empty where the occupancy grid is."""

import pytest
import torch
from torch import nn

from fields3d.errors import InputError
from fields3d.fields.baked import bake_radiance
from fields3d.render import OccupancyGrid, pack_bits

BOX = [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]


class LinearField(nn.Module):
    """Density 7 + x + 2y + 3z (linear: trilinear interpolation is exact); colour linear in the
    position and the direction."""

    def density(self, x):
        return 7 + x[:, 0] + 2 * x[:, 1] + 3 * x[:, 2]

    def forward(self, x, dirs):
        rgb = 0.5 + 0.1 * x + 0.2 * dirs[:, [1, 2, 0]]
        return self.density(x), rgb


def _grid(resolution=8, occupied=None) -> OccupancyGrid:
    grid = OccupancyGrid(BOX, resolution)
    if occupied is not None:
        grid.occupied.copy_(occupied)
        grid.bits.copy_(pack_bits(grid.occupied))
    return grid


def test_a_linear_field_is_reproduced_exactly():
    baked = bake_radiance(LinearField(), _grid(), factor=2)
    assert baked.resolution == 17 and baked.table.shape == (17**3, 13)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 3, generator=g) * 2 - 1
    dirs = nn.functional.normalize(torch.randn(200, 3, generator=g), dim=1)
    sigma, rgb = baked(x, dirs)
    want_sigma, want_rgb = LinearField()(x, dirs)
    torch.testing.assert_close(sigma, want_sigma, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rgb, want_rgb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(baked.density(x), want_sigma, atol=1e-5, rtol=1e-5)


def test_without_the_view_term_the_colour_is_the_mean_over_directions():
    baked = bake_radiance(LinearField(), _grid(), factor=2, view_dependent=False)
    assert baked.table.shape == (17**3, 4)
    x = torch.rand(100, 3) * 2 - 1
    dirs = nn.functional.normalize(torch.randn(100, 3), dim=1)
    sigma, rgb = baked(x, dirs)
    torch.testing.assert_close(rgb, 0.5 + 0.1 * x, atol=1e-5, rtol=1e-5)  # the +-d terms cancel
    torch.testing.assert_close(sigma, LinearField().density(x), atol=1e-5, rtol=1e-5)


def test_only_occupied_cells_are_baked_and_outside_is_empty():
    occupied = torch.zeros(1, 8, 8, 8, dtype=torch.bool)
    occupied[0, 4, 4, 4] = True  # the cell [0, 0.25]^3
    baked = bake_radiance(LinearField(), _grid(occupied=occupied), factor=2)
    inside = torch.tensor([[0.1, 0.2, 0.15]])
    far = torch.tensor([[-0.8, -0.8, -0.8], [0.7, 0.7, 0.7]])
    outside = torch.tensor([[1.5, 0.0, 0.0], [0.0, -3.0, 0.0]])
    torch.testing.assert_close(baked.density(inside), LinearField().density(inside))
    assert baked.density(far).eq(0).all() and baked.density(outside).eq(0).all()
    needed = baked.table[:, 0].ne(0).sum().item()
    assert needed == 3**3  # the 2 x 2 x 2 baked cells of one occupancy cell have 27 corners


def test_factor_is_capped_to_the_largest_table_and_checked():
    one = torch.zeros(1, 200, 200, 200, dtype=torch.bool)
    one[0, 0, 0, 0] = True  # one cell: the cap, not the field's cost, is what is tested
    assert bake_radiance(LinearField(), _grid(200, one), factor=2).resolution == 201
    with pytest.raises(InputError, match=r"^factor must be an integer >= 1, got 0$"):
        bake_radiance(LinearField(), _grid(), factor=0)


def test_a_trained_looking_field_is_close_to_its_bake():
    from fields3d.fields import RadianceField

    torch.manual_seed(0)
    field = RadianceField(
        BOX, n_levels=2, log2_hashmap_size=10, base_resolution=4, max_resolution=8, n_hidden=16
    )
    baked = bake_radiance(field, _grid(8), factor=4)  # 33^3 vertices: finer than the field
    x = torch.rand(500, 3) * 2 - 1
    dirs = nn.functional.normalize(torch.randn(500, 3), dim=1)
    with torch.no_grad():
        sigma, rgb = field(x, dirs)
    got_sigma, got_rgb = baked(x, dirs)
    assert (got_sigma - sigma).abs().max() < 0.05 * sigma.abs().max()
    assert (got_rgb - rgb).abs().max() < 0.05
