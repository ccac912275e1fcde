"""Concat: features side by side, first and second derivatives reaching every part."""

import pytest
import torch

from fields3d.encodings import Concat, HashGrid, create
from fields3d.encodings.reference import hash_grid_reference
from fields3d.errors import InputError


def two_grids(dtype=torch.float32, n_input_dims=3):
    torch.manual_seed(0)
    a = HashGrid(
        n_input_dims, n_levels=3, log2_hashmap_size=10, base_resolution=4, per_level_scale=2.0
    )
    b = HashGrid(
        n_input_dims,
        n_levels=2,
        n_features_per_level=4,
        log2_hashmap_size=11,
        base_resolution=8,
        interpolation="smoothstep",
    )
    for g in (a, b):
        with torch.no_grad():
            g.params.normal_()
    return a.to(dtype), b.to(dtype)


def test_output_is_the_parts_side_by_side():
    a, b = two_grids()
    enc = Concat([a, b])
    assert (enc.n_input_dims, enc.n_output_dims) == (3, 6 + 8)
    assert enc.n_params == a.n_params + b.n_params
    x = torch.rand(200, 3)
    assert torch.equal(enc(x), torch.cat([a(x), b(x)], dim=1))
    assert enc(torch.rand(0, 3)).shape == (0, 14)


def test_config_nests_the_parts():
    a, b = two_grids()
    enc = Concat([a, Concat([b])])
    assert enc.config() == {
        "type": "concat",
        "encodings": [a.config(), {"type": "concat", "encodings": [b.config()]}],
    }
    again = create(enc.config())
    again.load_state_dict(enc.state_dict())
    x = torch.rand(20, 3)
    assert torch.equal(again(x), enc(x))


def test_backward_reaches_both_tables():
    a, b = two_grids()
    enc = Concat([a, b])
    w = torch.randn(enc.n_output_dims)
    (enc(torch.rand(300, 3)) @ w).sum().backward()
    assert a.params.grad.abs().sum() > 0 and b.params.grad.abs().sum() > 0


def test_double_backward_matches_the_reference():
    """Eikonal-style: d/d(x, tables) of |d f / d x|, through Concat, equals the pure-torch reference's."""
    a, b = two_grids(torch.float64)
    enc = Concat([a, b])
    w = torch.randn(enc.n_output_dims, dtype=torch.float64)
    x = (torch.rand(64, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)

    def derivatives(features):
        f = features(x) @ w
        (g,) = torch.autograd.grad(f.sum(), x, create_graph=True)
        loss = ((g.norm(dim=1) - 1.0) ** 2).sum()
        return torch.autograd.grad(loss, (x, a.params, b.params))

    got = derivatives(enc)
    want = derivatives(
        lambda p: torch.cat([hash_grid_reference(p, g.params, g.spec) for g in (a, b)], dim=1)
    )
    for name, u, v in zip(("x", "a.params", "b.params"), got, want):
        assert u.abs().sum() > 0, name
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10, msg=name)


def test_gradgradcheck_wrt_positions():
    a, b = two_grids(torch.float64, n_input_dims=2)
    enc = Concat([a, b])
    x = (torch.rand(6, 2, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradgradcheck(enc, (x,))


def test_mismatched_input_dims():
    a, _ = two_grids()
    _, b = two_grids(n_input_dims=2)
    with pytest.raises(InputError) as err:
        Concat([a, b])
    assert str(err.value) == (
        "the encodings of a Concat must all take the same n_input_dims, got [3, 2]; give every part the same n_input_dims"
    )
    with pytest.raises(InputError) as err:
        create({"type": "concat", "encodings": [a.config(), b.config()]})
    assert str(err.value) == (
        "the encodings of a Concat must all take the same n_input_dims, got [3, 2]; give every part the same n_input_dims"
    )


@pytest.mark.parametrize(
    "parts,message",
    [
        ([], "encodings must be a non-empty list of Encoding modules, got an empty list"),
        (None, "encodings must be a non-empty list of Encoding modules, got NoneType"),
        ("hash_grid", "encodings must be a non-empty list of Encoding modules, got str"),
    ],
)
def test_bad_parts(parts, message):
    with pytest.raises(InputError) as err:
        Concat(parts)
    assert str(err.value) == message


def test_part_that_is_not_an_encoding():
    a, _ = two_grids()
    with pytest.raises(InputError) as err:
        Concat([a, torch.nn.Linear(3, 4)])
    assert str(err.value) == "encodings[1] must be an Encoding, got Linear"


@pytest.mark.parametrize(
    "encodings,message",
    [
        (
            [],
            'a "concat" config\'s "encodings" must be a non-empty list of encoding configs, got an empty list',
        ),
        (
            {"type": "hash_grid"},
            'a "concat" config\'s "encodings" must be a non-empty list of encoding configs, got dict',
        ),
        (
            [{"type": "hash_grid", "n_levels": 1, "log2_hashmap_size": 8}, {"type": "hashgrid"}],
            "encodings[1]: unknown encoding type 'hashgrid'; known types: {known}",
        ),
        (
            [{"type": "hash_grid", "n_levels": 0}],
            "encodings[0]: n_levels must be an integer from 1 to 32, got 0",
        ),
        (
            [
                {
                    "type": "concat",
                    "encodings": [
                        {"type": "hash_grid", "n_levels": 1, "log2_hashmap_size": 8},
                        "x",
                    ],
                }
            ],
            'encodings[0]: encodings[1]: an encoding config must be a dict with a "type" key, got str',
        ),
    ],
)
def test_bad_concat_configs(encodings, message):
    from fields3d.encodings import available

    with pytest.raises(InputError) as err:
        create({"type": "concat", "encodings": encodings})
    assert str(err.value) == message.format(known=", ".join(available()))


def test_nesting_is_bounded():
    enc, _ = two_grids()
    for _ in range(15):
        enc = Concat([enc])
    assert enc.nesting_depth == 16
    with pytest.raises(InputError) as err:
        Concat([two_grids()[1], enc])
    assert str(err.value) == (
        "a Concat nests at most 16 encodings deep, itself included, got 17; "
        "list the parts in one Concat instead of nesting them"
    )
