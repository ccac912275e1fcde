"""ImageField and MLP: shapes, pixel-centre layout, rendering in chunks, argument errors."""

from __future__ import annotations

import pytest
import torch

from fields3d.encodings import HashGridConfig
from fields3d.errors import InputError
from fields3d.fields import MLP, ImageField, pixel_centres

SMALL = HashGridConfig(
    n_input_dims=2, n_levels=4, log2_hashmap_size=10, base_resolution=4, per_level_scale=2.0
)


def test_mlp_layers_and_output_range():
    mlp = MLP(5, 3, n_hidden=8, n_hidden_layers=2, output_activation="sigmoid")
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.modules()) == 3
    y = mlp(torch.randn(7, 5) * 100)
    assert y.shape == (7, 3) and bool(((y >= 0) & (y <= 1)).all())
    assert sum(isinstance(m, torch.nn.Linear) for m in MLP(5, 3, n_hidden_layers=0).modules()) == 1


def test_mlp_errors():
    with pytest.raises(InputError, match=r"^n_hidden must be an integer >= 1, got 0$"):
        MLP(2, 3, n_hidden=0)
    with pytest.raises(
        InputError, match=r"^activation must be 'relu', 'silu' or 'softplus', got 'gelu'$"
    ):
        MLP(2, 3, activation="gelu")
    with pytest.raises(
        InputError, match=r"^output_activation must be None or 'sigmoid', got 'tanh'$"
    ):
        MLP(2, 3, output_activation="tanh")


def test_pixel_centres_row_major():
    uv = pixel_centres(2, 4)
    assert uv.shape == (8, 2) and uv.dtype == torch.float32
    assert (
        uv[0].tolist() == [0.125, 0.25]
        and uv[3].tolist() == [0.875, 0.25]
        and uv[4].tolist() == [0.125, 0.75]
    )
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
    with pytest.raises(
        InputError, match=r"^an ImageField's encoding_config must have n_input_dims=2, got 3$"
    ):
        ImageField(HashGridConfig(n_input_dims=3, log2_hashmap_size=10))
    field = ImageField(SMALL)
    with pytest.raises(
        InputError, match=r"^uv must be float32 of shape \(N, 2\), got float64 \(4, 2\)$"
    ):
        field(torch.rand(4, 2, dtype=torch.float64))
    with pytest.raises(InputError, match=r"^height must be an integer >= 1, got 0$"):
        field.render(0, 4)


def test_mlp_sizes_have_an_upper_bound():
    # the bounds leave room: 16 hidden layers, and 4096 wide
    assert (
        sum(
            isinstance(m, torch.nn.Linear)
            for m in MLP(3, 1, n_hidden=8, n_hidden_layers=16).modules()
        )
        == 17
    )
    assert MLP(3, 1, n_hidden=4096, n_hidden_layers=1)(torch.rand(2, 3)).shape == (2, 1)
    for kw, message in [
        (dict(n_input=10**9), "n_input must be an integer from 1 to 65536, got 1000000000"),
        (dict(n_output=10**9), "n_output must be an integer from 1 to 65536, got 1000000000"),
        (dict(n_hidden=10**9), "n_hidden must be an integer from 1 to 4096, got 1000000000"),
        (
            dict(n_hidden_layers=10**6),
            "n_hidden_layers must be an integer from 0 to 16, got 1000000",
        ),
        (
            dict(activation=["relu"]),
            "activation must be 'relu', 'silu' or 'softplus', got ['relu']",
        ),
        (dict(output_activation={}), "output_activation must be None or 'sigmoid', got {}"),
    ]:
        with pytest.raises(InputError) as info:
            MLP(**{"n_input": 3, "n_output": 1, **kw})
        assert str(info.value) == message


def test_mlp_input_dtype_and_device():
    mlp = MLP(3, 1)
    with pytest.raises(InputError) as info:
        mlp(torch.rand(4, 3, dtype=torch.float64))
    assert str(info.value) == (
        "MLP input must be float32 like its weights, got float64; "
        "convert it with .to(torch.float32)"
    )
    with pytest.raises(InputError) as info:
        mlp(torch.ones(4, 3, device="meta"))
    assert (
        str(info.value)
        == "MLP input must be on cpu like its weights, got meta; move one of them with .to(device)"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ((0, 4), "height must be an integer >= 1, got 0"),
        ((4, 4.0), "width must be an integer >= 1, got 4.0"),
        ((2, 2, 0, 10), "stop must be an integer from 0 to 4, got 10"),
        ((2, 2, -1, 2), "start must be an integer from 0 to 4, got -1"),
        ((4, 4, 10, 5), "stop must be an integer from 10 to 16, got 5"),
        (
            (10**6, 10**6),
            "height * width must be at most 100000000 pixels, got 1000000 * 1000000 = 1000000000000; "
            "use a smaller image",
        ),
    ],
)
def test_pixel_centres_errors(args, message):
    with pytest.raises(InputError) as info:
        pixel_centres(*args)
    assert str(info.value) == message


def test_image_field_size_and_device_errors():
    with pytest.raises(InputError) as info:
        ImageField(SMALL, n_channels=10**9)
    assert str(info.value) == "n_channels must be an integer from 1 to 65536, got 1000000000"
    with pytest.raises(InputError) as info:
        ImageField(SMALL, device="gpu0")
    assert (
        str(info.value) == "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device, got 'gpu0'"
    )
    field = ImageField(SMALL)
    with pytest.raises(InputError) as info:
        field.render(10**5, 10**5)  # would allocate 120 GB
    assert str(info.value) == (
        "height * width must be at most 100000000 pixels, got 100000 * 100000 = 10000000000; "
        "use a smaller image"
    )
    with pytest.raises(InputError) as info:
        field.render(4, 4, chunk=10**12)
    assert str(info.value) == "chunk must be an integer from 1 to 16777216, got 1000000000000"
