"""RadianceField: shapes, the three colour networks, view dependence, spherical harmonics, errors."""

import math

import pytest
import torch

from fields3d.errors import InputError
from fields3d.fields import RadianceField
from fields3d.fields.radiance import sh_encode

AABB = [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]
SMALL = dict(n_levels=4, log2_hashmap_size=12, max_resolution=64)


def test_spherical_harmonics_are_orthonormal():
    # Monte Carlo over the sphere: E[Y_i Y_j] * 4 pi = identity.
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=g, dtype=torch.float64), dim=1)
    y = sh_encode(d)
    gram = y.t() @ y / len(d) * 4 * math.pi
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=0.02, rtol=0)


@pytest.mark.parametrize("color_net", ["plain", "cam", "mi"])
def test_outputs_and_gradients(color_net):
    torch.manual_seed(0)
    field = RadianceField(AABB, **SMALL, color_net=color_net)
    x = torch.rand(100, 3) * 3 - 1.5
    d = torch.nn.functional.normalize(torch.randn(100, 3), dim=1)
    sigma, rgb = field(x, d)
    assert sigma.shape == (100,) and rgb.shape == (100, 3)
    assert (sigma >= 0).all() and ((rgb > 0) & (rgb < 1)).all()
    torch.testing.assert_close(field.density(x), sigma)
    (sigma.sum() + rgb.sum()).backward()
    assert field.encoding.params.grad.abs().sum() > 0
    assert all(p.grad is not None for p in field.color.parameters() if p.requires_grad)


def test_view_dependence_can_be_switched_off():
    torch.manual_seed(0)
    x = torch.zeros(2, 3)
    d = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    with_sh = RadianceField(AABB, **SMALL)(x, d)[1]
    none = RadianceField(AABB, **SMALL, view="none")(x, d)[1]
    assert not torch.allclose(with_sh[0], with_sh[1]) and torch.equal(none[0], none[1])


def test_config_round_trip():
    field = RadianceField(AABB, **SMALL, color_net="mi", color_layers=1)
    again = RadianceField.from_config(field.config())
    assert again.config() == field.config()
    again.load_state_dict(field.state_dict())


def test_bad_settings():
    with pytest.raises(InputError) as err:
        RadianceField([[0, 0, 0], [0, 1, 1]])
    assert str(err.value) == "aabb must be finite (2, 3) min and max corners with max > min, got [[0, 0, 0], [0, 1, 1]]"
    with pytest.raises(InputError) as err:
        RadianceField(AABB, color_net="wide")
    assert str(err.value) == "color_net must be one of 'plain', 'cam', 'mi', got 'wide'"
    with pytest.raises(InputError) as err:
        RadianceField(AABB, view="rgb")
    assert str(err.value) == "view must be 'sh' or 'none', got 'rgb'"
