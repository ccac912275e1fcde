"""RadianceField: shapes, the three colour networks, view dependence, spherical harmonics, errors."""

import math

import pytest
import torch

from fields3d.errors import BackendUnavailable, InputError
from fields3d.fields import RadianceField
from fields3d.fields.radiance import sh_encode

AABB = [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]
SMALL = dict(n_levels=4, log2_hashmap_size=12, max_resolution=64)


def test_spherical_harmonics_are_orthonormal():
    # Monte Carlo over the sphere: E[Y_i Y_j] * 4 pi = identity.
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(
        torch.randn(400_000, 3, generator=g, dtype=torch.float64), dim=1
    )
    y = sh_encode(d)
    gram = y.t() @ y / len(d) * 4 * math.pi
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), atol=0.02, rtol=0)


OPTIONS = [
    dict(),
    dict(field_modulation="cam"),
    dict(field_modulation="cam-hash"),
    dict(mlp="mi"),
    dict(mlp="mi", density_layers=3, color_layers=2),
    dict(field_modulation="cam", mlp="mi", density_layers=2),
]


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_outputs_and_gradients(options):
    torch.manual_seed(0)
    field = RadianceField(AABB, **SMALL, **options)
    x = torch.rand(100, 3) * 3 - 1.5
    d = torch.nn.functional.normalize(torch.randn(100, 3), dim=1)
    sigma, rgb = field(x, d)
    assert sigma.shape == (100,) and rgb.shape == (100, 3)
    assert (sigma >= 0).all() and ((rgb > 0) & (rgb < 1)).all()
    torch.testing.assert_close(field.density(x), sigma)
    (sigma.sum() + rgb.sum()).backward()
    assert field.encoding.params.grad.abs().sum() > 0
    assert all(p.grad is not None for p in field.parameters() if p.requires_grad)


def test_view_dependence_can_be_switched_off():
    torch.manual_seed(0)
    x = torch.zeros(2, 3)
    d = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    with_sh = RadianceField(AABB, **SMALL)(x, d)[1]
    none = RadianceField(AABB, **SMALL, view="none")(x, d)[1]
    assert not torch.allclose(with_sh[0], with_sh[1]) and torch.equal(none[0], none[1])


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_config_round_trip(options):
    field = RadianceField(AABB, **SMALL, **options)
    again = RadianceField.from_config(field.config())
    assert again.config() == field.config()
    again.load_state_dict(field.state_dict())
    x = torch.rand(7, 3)
    d = torch.nn.functional.normalize(torch.randn(7, 3), dim=1)
    torch.testing.assert_close(again(x, d), field(x, d), rtol=0, atol=0)


@pytest.mark.parametrize(
    "color_net, options",
    [
        ("plain", dict(field_modulation="none", mlp="plain")),
        ("cam", dict(field_modulation="cam-hash", mlp="plain")),
        ("mi", dict(field_modulation="none", mlp="mi")),
    ],
)
def test_older_color_net_configs_load(color_net, options):
    """A config written with color_net builds the field its weights fit (same state dict keys)."""
    old = {**RadianceField(AABB, **SMALL).config(), "color_net": color_net}
    for key in ("field_modulation", "mlp", "density_layers"):
        old.pop(key)
    field = RadianceField.from_config(old)
    assert {k: field.config()[k] for k in options} == options
    assert field.state_dict().keys() == RadianceField(AABB, **SMALL, **options).state_dict().keys()


def test_cam_modulates_both_mlps_from_its_own_grid():
    torch.manual_seed(0)
    field = RadianceField(AABB, **SMALL, field_modulation="cam", density_layers=2, color_layers=1)
    assert field.cam.n_layers == 2 + 2 and field.color.modulation is None
    x = torch.rand(50, 3) * 3 - 1.5
    d = torch.nn.functional.normalize(torch.randn(50, 3), dim=1)
    before = field(x, d)
    with torch.no_grad():
        field.cam.grid.params.normal_()
    after = field(x, d)
    assert (before[0] - after[0]).abs().max() > 1e-3 and (before[1] - after[1]).abs().max() > 1e-3


def test_bad_settings():
    with pytest.raises(InputError) as err:
        RadianceField([[0, 0, 0], [0, 1, 1]])
    assert (
        str(err.value)
        == "aabb must be finite (2, 3) min and max corners with max > min, got [[0, 0, 0], [0, 1, 1]]"
    )
    with pytest.raises(InputError) as err:
        RadianceField(AABB, color_net="wide")
    assert str(err.value) == "color_net must be 'plain', 'cam' or 'mi', got 'wide'"
    with pytest.raises(InputError) as err:
        RadianceField(AABB, field_modulation="film")
    assert str(err.value) == "field_modulation must be 'none', 'cam' or 'cam-hash', got 'film'"
    with pytest.raises(InputError) as err:
        RadianceField(AABB, mlp="wide")
    assert str(err.value) == "mlp must be 'plain' or 'mi', got 'wide'"
    with pytest.raises(InputError) as err:
        RadianceField(AABB, mlp="mi", color_net="mi")
    assert str(err.value) == (
        "give field_modulation and mlp, or the older color_net, not both; got color_net='mi' "
        "with field_modulation='none', mlp='mi'"
    )
    with pytest.raises(InputError) as err:
        RadianceField(AABB, field_modulation="cam", density_layers=8, color_layers=8)
    assert str(err.value) == (
        "field_modulation 'cam' modulates at most 16 hidden layers, got density_layers + "
        "color_layers + 1 = 17; use fewer layers"
    )
    with pytest.raises(InputError) as err:
        RadianceField(AABB, view="rgb")
    assert str(err.value) == "view must be 'sh' or 'none', got 'rgb'"


AABB_MESSAGE = "aabb must be finite (2, 3) min and max corners with max > min, got "
GROWTH = (
    "max_resolution / base_resolution must be at most 16^(n_levels - 1) (each level at most 16 times finer than "
    "the last), got 2048 / 16 with n_levels=2; use more levels or a smaller max_resolution"
)


@pytest.mark.parametrize(
    "args, kw, message",
    [
        (("box",), {}, AABB_MESSAGE + "'box'"),
        ((None,), {}, AABB_MESSAGE + "None"),
        (([[0, 0, 0], [1, 1]],), {}, AABB_MESSAGE + "[[0, 0, 0], [1, 1]]"),
        (
            ([[-3e38] * 3, [3e38] * 3],),
            {},
            "aabb's extent max - min must be finite in float32 (at most 3.4e38 on each "
            "axis), got [[-3e+38, -3e+38, -3e+38], [3e+38, 3e+38, 3e+38]]; "
            "scale the scene down",
        ),
        ((AABB,), dict(n_levels="16"), "n_levels must be an integer from 1 to 32, got '16'"),
        ((AABB,), dict(base_resolution=0), "base_resolution must be an integer >= 2, got 0"),
        (
            (AABB,),
            dict(max_resolution=2**40),
            "max_resolution must be an integer from 16 to 1073741824, got 1099511627776",
        ),
        ((AABB,), dict(n_levels=2, max_resolution=2048), GROWTH),
        (
            (AABB,),
            dict(n_geo_features=10**9),
            "n_geo_features must be an integer from 1 to 4096, got 1000000000",
        ),
        ((AABB,), dict(n_hidden=0), "n_hidden must be an integer >= 1, got 0"),
        ((AABB,), dict(n_hidden=64.0), "n_hidden must be an integer >= 1, got 64.0"),
        (
            (AABB,),
            dict(n_hidden=10**9),
            "n_hidden must be an integer from 1 to 4096, got 1000000000",
        ),
        ((AABB,), dict(color_layers=-1), "color_layers must be an integer >= 0, got -1"),
        ((AABB,), dict(color_layers="2"), "color_layers must be an integer >= 0, got '2'"),
        (
            (AABB,),
            dict(color_layers=10**6),
            "color_layers must be an integer from 0 to 16, got 1000000",
        ),
        (
            (AABB,),
            dict(device="gpu0"),
            "device must be 'cpu', 'cuda', 'cuda:<n>' or a torch.device, got 'gpu0'",
        ),
    ],
)
def test_bad_constructor_arguments(args, kw, message):
    with pytest.raises(InputError) as err:
        RadianceField(*args, **{**SMALL, **kw})
    assert str(err.value) == message


def test_one_level_grid_and_zero_colour_layers_are_valid():
    # one level has no growth to check (it used to fail with a per_level_scale the caller never gave)
    field = RadianceField(
        AABB, n_levels=1, log2_hashmap_size=10, max_resolution=2048, color_layers=0
    )
    sigma, rgb = field(torch.rand(4, 3), torch.nn.functional.normalize(torch.randn(4, 3), dim=1))
    assert sigma.shape == (4,) and rgb.shape == (4, 3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a torch without CUDA")
def test_cuda_device_without_cuda():
    with pytest.raises(BackendUnavailable) as err:
        RadianceField(AABB, **SMALL, device="cuda")
    assert str(err.value) == (
        f"device 'cuda' was requested but torch {torch.__version__} sees no CUDA device; "
        "install a CUDA build of torch on a machine with a GPU, or use device 'cpu'"
    )


def test_bad_configs():
    config = RadianceField(AABB, **SMALL).config()
    known = (
        "['aabb', 'n_levels', 'n_features_per_level', 'log2_hashmap_size', 'base_resolution', 'max_resolution', "
        "'n_geo_features', 'n_hidden', 'color_layers', 'view', 'field_modulation', 'mlp', "
        "'density_layers', 'color_net']"
    )
    for bad, message in [
        ([1, 2], "a RadianceField config must be a dict with an 'aabb' key, got list"),
        (
            {**config, "width": 3},
            f"a RadianceField config has unknown settings ['width']; known: {known}",
        ),
        (
            {**config, "device": "cpu"},
            f"a RadianceField config has unknown settings ['device']; known: {known}",
        ),
        (
            {"n_levels": 4},
            "a RadianceField config needs 'aabb' (the scene box), got keys ['n_levels']",
        ),
    ]:
        with pytest.raises(InputError) as err:
            RadianceField.from_config(bad)
        assert str(err.value) == message


X_WANT = "x must be a floating-point tensor of shape (N, 3), got "
DIRS_WANT = "dirs must be a floating-point tensor of shape (5, 3) like x (a unit direction per position), got "


@pytest.mark.parametrize(
    "x, dirs, message",
    [
        ([[0.0, 0.0, 0.0]], None, X_WANT + "list"),
        (torch.rand(5, 2), None, X_WANT + "float32 (5, 2)"),
        (torch.ones(5, 3, dtype=torch.int64), None, X_WANT + "int64 (5, 3)"),
        (
            torch.rand(5, 3).to_sparse(),
            None,
            "x must be a dense (strided) tensor, got a sparse_coo tensor; convert it "
            "with .to_dense()",
        ),
        (
            torch.rand(5, 3, device="meta"),
            None,
            "x must be on cpu like the field's parameters, got meta; move one of them "
            "with .to(device)",
        ),
        (torch.rand(5, 3), torch.rand(3, 3), DIRS_WANT + "float32 (3, 3)"),
        (torch.rand(5, 3), torch.rand(5, 2), DIRS_WANT + "float32 (5, 2)"),
        (torch.rand(5, 3), None, DIRS_WANT + "NoneType"),
    ],
)
def test_bad_forward_inputs(x, dirs, message):
    field = RadianceField(AABB, **SMALL)
    with pytest.raises(InputError) as err:
        field(x, dirs)
    assert str(err.value) == message
    if dirs is None and not message.startswith("dirs"):
        with pytest.raises(InputError) as err:
            field.density(x)
        assert str(err.value) == message


def test_forward_edge_cases_that_work():
    field = RadianceField(AABB, **SMALL)
    sigma, rgb = field(torch.rand(0, 3), torch.rand(0, 3))
    assert sigma.shape == (0,) and rgb.shape == (0, 3)
    sigma, rgb = RadianceField(AABB, **SMALL, view="none")(
        torch.rand(3, 3), None
    )  # no view: dirs unread
    assert sigma.shape == (3,) and rgb.shape == (3, 3)
    assert field.density(torch.rand(2, 3, dtype=torch.float64)).dtype == torch.float32
