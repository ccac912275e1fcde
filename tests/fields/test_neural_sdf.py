"""NeuralSDF: shapes, the sphere initialisation, config round trip, derivatives, grid values, errors."""

from __future__ import annotations

import json

import pytest
import torch

from fields3d.errors import InputError
from fields3d.fields.neural_sdf import NeuralSDF
from fields3d.geometry.closing import grid_points

SMALL = {
    "n_levels": 4,
    "log2_hashmap_size": 12,
    "base_resolution": 4,
    "per_level_scale": 2.0,
    "n_hidden": 16,
}


def _field(**kw) -> NeuralSDF:
    torch.manual_seed(0)
    return NeuralSDF(**{**SMALL, **kw})


def _trained(**kw) -> NeuralSDF:
    """A field with trained-looking weights: the initialisation silences the grid (zero input weights)."""
    field = _field(**kw)
    with torch.no_grad():
        for p in field.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return field


def test_shapes_and_dtype():
    field = _field()
    for n in (0, 1, 7):
        y = field(torch.rand(n, 3) * 2 - 1)
        assert y.shape == (n,) and y.dtype == torch.float32
    y = field(torch.full((2, 3), 5.0))  # outside the cube: the grid clamps, the raw input does not
    assert y.shape == (2,) and bool(torch.isfinite(y).all())


def test_sphere_initialisation_has_the_right_sign():
    field = _field(sphere_radius=0.5)
    direction = torch.nn.functional.normalize(torch.randn(500, 3), dim=1)
    with torch.no_grad():
        inside = field(direction * 0.2)
        outside = field(direction * 1.2)
    assert bool((inside < 0).all()) and bool((outside > 0).all())
    # the grid's features start silent: the MLP alone draws the sphere
    first = field.mlp[0].weight
    assert first.shape == (16, 3 + 8) and bool((first[:, 3:] == 0).all())


def test_config_round_trip_rebuilds_the_same_function():
    field = _trained(interpolation="smoothstep", beta=50.0, sphere_radius=0.4, n_hidden_layers=3)
    config = field.config()
    assert json.loads(json.dumps(config)) == config
    assert config == {
        "hash_grid": {
            "n_levels": 4,
            "n_features_per_level": 2,
            "log2_hashmap_size": 12,
            "base_resolution": 4,
            "per_level_scale": 2.0,
            "interpolation": "smoothstep",
        },
        "mlp": {"n_hidden": 16, "n_hidden_layers": 3, "beta": 50.0, "sphere_radius": 0.4},
    }
    torch.manual_seed(1)
    rebuilt = NeuralSDF.from_config(json.loads(json.dumps(config)))
    x = torch.rand(64, 3) * 2 - 1
    assert not torch.equal(rebuilt(x), field(x))
    rebuilt.load_state_dict(field.state_dict())
    assert torch.equal(rebuilt(x), field(x))


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_gradient_matches_finite_differences(interpolation):
    field = _trained(interpolation=interpolation).double()
    torch.manual_seed(2)
    x = torch.rand(32, 3, dtype=torch.float64) * 1.8 - 0.9
    value, grad = field.gradient(x)
    assert not value.requires_grad and not grad.requires_grad and grad.shape == (32, 3)
    h = 1e-6
    with torch.no_grad():
        fd = torch.stack(
            [(field(x + h * e) - field(x - h * e)) / (2 * h) for e in torch.eye(3, dtype=x.dtype)],
            1,
        )
        torch.testing.assert_close(value, field(x), rtol=0, atol=0)
    torch.testing.assert_close(grad, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("interpolation", ["linear", "smoothstep"])
def test_gradient_is_twice_differentiable(interpolation):
    # d grad / d x (through the grid's double backward) against finite differences of the gradient
    field = _trained(interpolation=interpolation).double()
    x = (torch.rand(6, 3, dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: field.gradient(p, create_graph=True)[1], (x,))
    # and an eikonal loss reaches the hash table
    _, grad = field.gradient(x.detach(), create_graph=True)
    (grad.norm(dim=1) - 1).square().mean().backward()
    assert field.encoding.params.grad is not None and field.encoding.params.grad.abs().sum() > 0


def _cam(**kw) -> NeuralSDF:
    """A CAM field with trained-looking weights and tri-plane (its planes start near zero)."""
    field = _trained(field_modulation="cam", cam_resolution=5, **kw)
    with torch.no_grad():
        field.cam.grid.params.normal_(0, 0.3)
    return field


def test_cam_is_twice_differentiable_float64():
    """gradcheck of grad f and gradgradcheck of f through the hash grid, the tri-plane and the
    normalisation: the eikonal term's derivatives."""
    field = _cam().double()
    torch.manual_seed(3)
    x = (torch.rand(6, 3, dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)
    assert torch.autograd.gradcheck(field, (x,))
    assert torch.autograd.gradgradcheck(field, (x,))
    assert torch.autograd.gradcheck(lambda p: field.gradient(p, create_graph=True)[1], (x,))
    _, grad = field.gradient(x.detach(), create_graph=True)
    (grad.norm(dim=1) - 1).square().mean().backward()
    assert field.cam.grid.params.grad.abs().sum() > 0
    assert field.encoding.params.grad.abs().sum() > 0


def test_cam_matches_plain_torch():
    """The CAM field against the same arithmetic written out with the pure-torch encodings."""
    from fields3d.encodings.reference import hash_grid_reference, triplane_reference
    from fields3d.fields.modulation import cam_reference

    field = _cam(n_hidden_layers=2)
    x = torch.rand(40, 3) * 2 - 1
    u = ((x + 1) * 0.5).clamp(0, 1)
    grid = field.encoding
    h = torch.cat((x, hash_grid_reference(u, grid.params, grid.spec)), 1)
    mods = triplane_reference(u, field.cam.grid.params, field.cam.grid.spec)
    for i in range(2):
        linear, act = field.mlp[2 * i], field.mlp[2 * i + 1]
        h = act(cam_reference(linear(h), mods, i))
    torch.testing.assert_close(field(x), field.mlp[-1](h).squeeze(1), atol=1e-5, rtol=1e-5)


def test_cam_config_round_trip_and_older_configs():
    field = _cam()
    config = field.config()
    assert config["mlp"]["field_modulation"] == "cam" and config["mlp"]["cam_resolution"] == 5
    rebuilt = NeuralSDF.from_config(json.loads(json.dumps(config)))
    rebuilt.load_state_dict(field.state_dict())
    x = torch.rand(16, 3) * 2 - 1
    assert torch.equal(rebuilt(x), field(x))
    assert "field_modulation" not in _field().config()["mlp"]  # as saved before CAM


def test_grid_values_match_forward_in_chunks():
    field = _trained()
    values = field.grid_values(5, chunk=7)
    assert values.shape == (5, 5, 5) and not values.requires_grad
    with torch.no_grad():
        expect = field(torch.from_numpy(grid_points(5)))
    torch.testing.assert_close(
        values.reshape(-1), expect, rtol=0, atol=1e-6
    )  # chunking changes matmul blocking


def test_errors():
    field = _field()
    with pytest.raises(
        InputError, match=r"^x must be float32 of shape \(N, 3\), got float64 \(4, 3\)$"
    ):
        field(torch.rand(4, 3, dtype=torch.float64))
    with pytest.raises(
        InputError, match=r"^x must be float32 of shape \(N, 3\), got float32 \(4, 2\)$"
    ):
        field(torch.rand(4, 2))
    with pytest.raises(InputError, match=r"^sphere_radius must be a number in \(0, 1\], got 0$"):
        NeuralSDF(sphere_radius=0)
    with pytest.raises(InputError, match=r"^n_hidden_layers must be an integer >= 1, got 0$"):
        NeuralSDF(n_hidden_layers=0)
    with pytest.raises(
        InputError,
        match=r"^a NeuralSDF config must be a dict with keys 'hash_grid' and 'mlp', "
        r"got \['hash_grid'\]$",
    ):
        NeuralSDF.from_config({"hash_grid": {}})
    with pytest.raises(InputError, match=r"^a NeuralSDF config has unknown settings \['width'\]"):
        NeuralSDF.from_config({"hash_grid": {}, "mlp": {"width": 3}})


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(n_hidden=10**9), "n_hidden must be an integer from 1 to 4096, got 1000000000"),
        (
            dict(n_hidden_layers=10**6),
            "n_hidden_layers must be an integer from 1 to 16, got 1000000",
        ),
        (
            dict(field_modulation="film"),
            "field_modulation must be 'none' or 'cam', got 'film'",
        ),
        (
            dict(field_modulation="cam", n_hidden=1),
            "field_modulation 'cam' normalises each layer's units and needs n_hidden >= 2, got 1",
        ),
        (
            dict(beta=float("inf")),
            "beta must be finite, got inf; use a large number such as 1000 for a sharp bend",
        ),
        (
            dict(device="gpu0"),
            "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device, got 'gpu0'",
        ),
    ],
)
def test_bad_settings(kw, message):
    with pytest.raises(InputError) as info:
        _field(**kw)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {"hash_grid": [1, 2], "mlp": {}},
            "a NeuralSDF config's 'hash_grid' must be a dict of settings, got list",
        ),
        (
            {"hash_grid": {}, "mlp": None},
            "a NeuralSDF config's 'mlp' must be a dict of settings, got NoneType",
        ),
        (
            {1: {}, "mlp": {}},
            "a NeuralSDF config must be a dict with keys 'hash_grid' and 'mlp', got [1, 'mlp']",
        ),
        (
            {"hash_grid": {1: 2, "x": 3}, "mlp": {}},
            "a NeuralSDF config has unknown settings [1, 'x']; known: "
            "['n_levels', 'n_features_per_level', 'log2_hashmap_size', 'base_resolution', 'per_level_scale', "
            "'interpolation', 'n_hidden', 'n_hidden_layers', 'beta', 'sphere_radius', "
            "'field_modulation', 'cam_resolution']",
        ),
        (
            {"hash_grid": {}, "mlp": {"n_hidden": 10**9}},
            "n_hidden must be an integer from 1 to 4096, got 1000000000",
        ),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(InputError) as info:
        NeuralSDF.from_config(config)
    assert str(info.value) == message


def test_bad_points_and_grid_sizes():
    field = _field()
    for call in (field, field.gradient):
        for x, message in [
            ([[0.0, 0.0, 0.0]], "x must be float32 of shape (N, 3), got list"),
            (
                torch.ones(4, 3, dtype=torch.int64),
                "x must be float32 of shape (N, 3), got int64 (4, 3)",
            ),
            (
                torch.rand(4, 3).to_sparse(),
                "x must be a dense (strided) tensor, got a sparse_coo tensor; convert it with .to_dense()",
            ),
            (
                torch.rand(4, 3, device="meta"),
                "x must be on cpu like the field's parameters, got meta; move one of them with .to(device)",
            ),
        ]:
            with pytest.raises(InputError) as info:
                call(x)
            assert str(info.value) == message
    with pytest.raises(InputError) as info:
        field.grid_values(10**5)  # 10^15 values
    assert str(info.value) == "resolution must be an integer from 2 to 2048, got 100000"
    with pytest.raises(InputError) as info:
        field.grid_values(4, chunk=10**12)
    assert str(info.value) == "chunk must be an integer from 1 to 16777216, got 1000000000000"
