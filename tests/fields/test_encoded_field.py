"""EncodedField (any encoding + MLP) and the double-backward probe."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.function import once_differentiable

from fields3d.encodings import Encoding, create
from fields3d.errors import InputError
from fields3d.fields import EncodedField, ImageField, has_double_backward

GRID_2D = {
    "type": "hash_grid",
    "n_input_dims": 2,
    "n_levels": 3,
    "log2_hashmap_size": 8,
    "base_resolution": 4,
}


def test_from_a_dict_or_a_module():
    torch.manual_seed(0)
    field = EncodedField(GRID_2D, 4, n_hidden=8, n_hidden_layers=1)
    y = field(torch.rand(5, 2))
    assert y.shape == (5, 4) and field.n_input_dims == 2
    assert field.n_params == field.encoding.n_params + (6 * 8 + 8) + (8 * 4 + 4)
    grid = create(GRID_2D)
    assert EncodedField(grid, 1).encoding is grid


def test_image_field_takes_dicts_and_modules():
    assert ImageField(GRID_2D).encoding.config()["n_levels"] == 3
    grid = create(GRID_2D)
    assert ImageField(grid).encoding is grid
    with pytest.raises(InputError) as info:
        ImageField(dict(GRID_2D, n_input_dims=3))
    assert str(info.value) == "an ImageField's encoding_config must have n_input_dims=2, got 3"
    with pytest.raises(InputError) as info:
        ImageField("hash_grid")
    assert str(info.value) == (
        "encoding_config must be a HashGridConfig, an encoding config dict or an Encoding, got str"
    )


def test_errors():
    with pytest.raises(InputError) as info:
        EncodedField([GRID_2D], 1)
    assert str(info.value) == "encoding must be an encoding config dict or an Encoding, got list"
    field = EncodedField(GRID_2D, 1)
    with pytest.raises(InputError) as info:
        field(torch.rand(4, 3))
    assert str(info.value) == "positions must be float32 of shape (N, 2), got float32 (4, 3)"
    with pytest.raises(InputError) as info:
        field([[0.5, 0.5]])
    assert str(info.value) == "positions must be float32 of shape (N, 2), got list"


class _Square(torch.autograd.Function):
    """w * x^2 whose backward is not differentiable."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return w * x * x

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        return dy * 2 * w * x, (dy * x * x).sum(0)


class _OnceDifferentiable(Encoding):
    def __init__(self):
        super().__init__()
        self.n_input_dims, self.n_output_dims = 3, 3
        self.w = torch.nn.Parameter(torch.ones(3))

    def forward(self, x):
        return _Square.apply(x, self.w)


def test_double_backward_probe():
    assert has_double_backward(create({"type": "hash_grid", "n_levels": 2, "log2_hashmap_size": 8}))
    assert not has_double_backward(_OnceDifferentiable())


def test_sizes_device_and_probe_argument():
    with pytest.raises(InputError) as info:
        EncodedField(GRID_2D, 10**9)  # a 10**9-wide output layer: 256 GB of weights
    assert str(info.value) == "n_output must be an integer from 1 to 65536, got 1000000000"
    with pytest.raises(InputError) as info:
        EncodedField(GRID_2D, 1, n_hidden_layers=10**6)
    assert str(info.value) == "n_hidden_layers must be an integer from 0 to 16, got 1000000"
    with pytest.raises(InputError) as info:
        EncodedField(GRID_2D, 1, device="gpu0")
    assert (
        str(info.value) == "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device, got 'gpu0'"
    )
    with pytest.raises(InputError) as info:
        has_double_backward("hash_grid")
    assert str(info.value) == "encoding must be an Encoding module, got str"
