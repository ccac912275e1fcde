"""ImageField and MLP: shapes, pixel-centre layout, rendering in chunks, argument errors."""

from __future__ import annotations

import pytest
import torch

from fields3d.encodings import HashGridConfig
from fields3d.errors import InputError
from fields3d.fields import MLP, ImageField, pixel_centres

SMALL = HashGridConfig(n_input_dims=2, n_levels=4, log2_hashmap_size=10, base_resolution=4, per_level_scale=2.0)


def test_mlp_layers_and_output_range():
    mlp = MLP(5, 3, n_hidden=8, n_hidden_layers=2, output_activation="sigmoid")
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.modules()) == 3
    y = mlp(torch.randn(7, 5) * 100)
    assert y.shape == (7, 3) and bool(((y >= 0) & (y <= 1)).all())
    assert sum(isinstance(m, torch.nn.Linear) for m in MLP(5, 3, n_hidden_layers=0).modules()) == 1


def test_mlp_errors():
    with pytest.raises(InputError, match=r"^n_hidden must be an integer >= 1, got 0$"):
        MLP(2, 3, n_hidden=0)
    with pytest.raises(InputError, match=r"^activation must be 'relu', 'silu' or 'softplus', got 'gelu'$"):
        MLP(2, 3, activation="gelu")
    with pytest.raises(InputError, match=r"^output_activation must be None or 'sigmoid', got 'tanh'$"):
        MLP(2, 3, output_activation="tanh")


def test_pixel_centres_row_major():
    uv = pixel_centres(2, 4)
    assert uv.shape == (8, 2) and uv.dtype == torch.float32
    assert uv[0].tolist() == [0.125, 0.25] and uv[3].tolist() == [0.875, 0.25] and uv[4].tolist() == [0.125, 0.75]
    assert torch.equal(pixel_centres(2, 4, 3, 6), uv[3:6])


def test_forward_and_chunked_render_agree():
    torch.manual_seed(0)
    field = ImageField(SMALL, n_channels=3, n_hidden=16)
    y = field(torch.rand(10, 2))
    assert y.shape == (10, 3) and y.requires_grad
    image = field.render(5, 7, chunk=4)
    assert image.shape == (5, 7, 3) and not image.requires_grad
    torch.testing.assert_close(image, field(pixel_centres(5, 7)).detach().view(5, 7, 3))


def test_image_field_errors():
    with pytest.raises(InputError, match=r"^an ImageField's encoding_config must have n_input_dims=2, got 3$"):
        ImageField(HashGridConfig(n_input_dims=3, log2_hashmap_size=10))
    field = ImageField(SMALL)
    with pytest.raises(InputError, match=r"^uv must be float32 of shape \(N, 2\), got float64 \(4, 2\)$"):
        field(torch.rand(4, 2, dtype=torch.float64))
    with pytest.raises(InputError, match=r"^height must be an integer >= 1, got 0$"):
        field.render(0, 4)
