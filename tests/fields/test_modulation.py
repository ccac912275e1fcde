"""Coordinate-Aware Modulation: the module against plain torch, first and second derivatives."""

import pytest
import torch

from fields3d.encodings.dense_grid import dense_grid_encode
from fields3d.encodings.reference import dense_grid_reference, triplane_reference
from fields3d.encodings.triplane import triplane_encode
from fields3d.errors import InputError
from fields3d.fields.modulation import CoordinateModulation, cam_reference


def _reference_mods(cam: CoordinateModulation, u: torch.Tensor) -> torch.Tensor:
    ref = triplane_reference if cam.kind == "triplane" else dense_grid_reference
    return ref(u, cam.grid.params, cam.grid.spec)


@pytest.mark.parametrize("grid", ["triplane", "dense_grid"])
def test_matches_plain_torch(grid):
    torch.manual_seed(0)
    cam = CoordinateModulation(3, grid, resolution=8)
    with torch.no_grad():
        cam.grid.params.normal_(0, 0.3)
    u = torch.rand(64, 3)
    mods = cam(u)
    torch.testing.assert_close(mods, _reference_mods(cam, u), atol=1e-6, rtol=1e-5)
    h = torch.randn(64, 16)
    for layer in range(3):
        torch.testing.assert_close(
            cam.modulate(h, mods, layer), cam_reference(h, mods, layer), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("grid", ["triplane", "dense_grid"])
def test_first_and_second_derivatives_float64(grid):
    """gradcheck and gradgradcheck of h = modulate(W x, cam(x)) w.r.t. the positions and the grid's
    table together (the core's encoding, as the module calls it): an eikonal loss differentiates
    through both."""
    torch.manual_seed(0)
    cam = CoordinateModulation(2, grid, resolution=5).double()
    encode = triplane_encode if grid == "triplane" else dense_grid_encode
    w = torch.randn(3, 6, dtype=torch.float64)
    u = (torch.rand(6, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    table = torch.randn_like(cam.grid.params).mul(0.3).requires_grad_(True)

    def h(u, table):
        return cam.modulate(u @ w, encode(u, table, cam.grid.spec), 1)

    assert torch.autograd.gradcheck(h, (u, table))
    assert torch.autograd.gradgradcheck(h, (u, table))
    with torch.no_grad():
        cam.grid.params.copy_(table)
    torch.testing.assert_close(cam.modulate(u @ w, cam(u), 1), h(u, table))


def test_eikonal_gradient_reaches_the_grid_as_in_plain_torch():
    """grad of |d f / d x|^2 w.r.t. the table: the core's double backward against the reference."""
    torch.manual_seed(0)
    cam = CoordinateModulation(1, "triplane", resolution=6).double()
    with torch.no_grad():
        cam.grid.params.normal_(0, 0.3)
    w = torch.randn(3, 8, dtype=torch.float64)
    v = torch.randn(8, dtype=torch.float64)
    x = torch.rand(20, 3, dtype=torch.float64).requires_grad_(True)

    def loss(mods_of):
        f = torch.relu(cam.modulate(x @ w, mods_of(x), 0)) @ v
        (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
        return g.square().sum()

    (ours,) = torch.autograd.grad(loss(cam), cam.grid.params)
    p = cam.grid.params.detach().clone().requires_grad_(True)
    (theirs,) = torch.autograd.grad(loss(lambda x: triplane_reference(x, p, cam.grid.spec)), p)
    torch.testing.assert_close(ours, theirs, atol=1e-9, rtol=1e-7)
    assert ours.abs().max() > 0


def test_bad_settings():
    with pytest.raises(InputError) as err:
        CoordinateModulation(2, "hash_grid")
    assert str(err.value) == "the CAM grid must be 'triplane' or 'dense_grid', got 'hash_grid'"
    with pytest.raises(InputError) as err:
        CoordinateModulation(17)
    assert str(err.value) == "n_layers must be an integer from 1 to 16, got 17"
