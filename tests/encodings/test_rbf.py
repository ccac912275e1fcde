"""The RBF encoding: values and derivatives (first and second order) against the brute-force
pure-torch reference, edge cases, config round trip, the hybrid with a hash grid, and the
k-means initialisation from data."""

import pytest
import torch

from fields3d.encodings import Concat, HashGrid, RBFConfig, RBFEncoding, create, rbf_encode
from fields3d.encodings.reference import hash_grid_reference, rbf_reference

# shape x kernel x composition, 2D and 3D
CASES = [
    RBFConfig(3, 40, 4, 5, "diagonal", "inverse_quadratic", (1.0, 3.0)),
    RBFConfig(3, 40, 3, 8, "isotropic", "gaussian", ()),
    RBFConfig(3, 30, 5, 4, "full", "inverse_quadratic", (2.0,)),
    RBFConfig(2, 25, 4, 6, "full", "gaussian", (1.0, 2.0, 4.0, 8.0)),
    RBFConfig(2, 25, 2, 3, "diagonal", "gaussian", ()),
    RBFConfig(2, 12, 3, 12, "isotropic", "inverse_quadratic", (1.5,)),  # k = M: every basis
]
IDS = [f"{c.n_input_dims}d-{c.shape}-{c.kernel}-{len(c.frequencies)}freq" for c in CASES]


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def random_params(config, dtype=torch.float64, seed=0):
    """Centers in [0, 1]^D, shapes around a basis' spacing (full: random triangle), weights N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    m, d = config.n_bases, config.n_input_dims
    centers = torch.rand(m, d, generator=g, dtype=dtype)
    shapes = (torch.rand(config.shapes_shape, generator=g, dtype=dtype) + 0.5) * m ** (1 / d)
    if config.shape == "full":
        shapes = shapes * (
            torch.eye(d, dtype=dtype) + 0.3 * torch.randn(m, d, d, generator=g, dtype=dtype)
        )
    weights = torch.randn(m, config.n_features, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (centers, shapes, weights)]


def random_points(config, n, dtype=torch.float64, seed=1):
    return torch.rand(n, config.n_input_dims, dtype=dtype, generator=seeded(seed)) * 1.2 - 0.1


@pytest.mark.parametrize("config", CASES, ids=IDS)
def test_values_and_first_derivatives_match_reference(config):
    params = random_params(config)
    x = random_points(config, 120).requires_grad_()
    y = rbf_encode(x, *params, config)
    y_ref = rbf_reference(x, *params, config)
    assert y.shape == (120, config.n_features)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    dy = torch.randn(y.shape, dtype=y.dtype, generator=seeded(2))
    got = torch.autograd.grad((y * dy).sum(), (x, *params))
    want = torch.autograd.grad((y_ref * dy).sum(), (x, *params))
    for name, u, v in zip(("x", "centers", "shapes", "weights"), got, want):
        assert u.abs().sum() > 0, name
        torch.testing.assert_close(u, v, rtol=1e-11, atol=1e-11, msg=name)


@pytest.mark.parametrize("config", CASES, ids=IDS)
def test_eikonal_second_order_path_matches_reference(config):
    params = random_params(config, seed=3)
    x = random_points(config, 50, seed=4).requires_grad_()
    head = torch.randn(config.n_features, dtype=torch.float64, generator=seeded(5))

    def second_order(encode):
        (g,) = torch.autograd.grad((encode(x, *params, config) @ head).sum(), x, create_graph=True)
        return torch.autograd.grad(((g.norm(dim=1) - 1) ** 2).sum(), (x, *params))

    for name, u, v in zip(
        ("x", "centers", "shapes", "weights"), second_order(rbf_encode), second_order(rbf_reference)
    ):
        assert u.abs().sum() > 0, name
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
def test_gradcheck_and_gradgradcheck_float64(shape):
    kernel = "gaussian" if shape == "isotropic" else "inverse_quadratic"
    config = RBFConfig(3, 6, 2, 3, shape, kernel, (1.0, 2.0) if shape != "diagonal" else ())
    params = random_params(config, seed=6)
    x = random_points(config, 4, seed=7).requires_grad_()

    def fn(x, centers, shapes, weights):
        return rbf_encode(x, centers, shapes, weights, config)

    assert torch.autograd.gradcheck(fn, (x, *params))
    assert torch.autograd.gradgradcheck(fn, (x, *params))


def test_inverse_quadratic_basis_at_its_center():
    """One basis, plain features: phi = 1 / (1 + |s (x - c)|^2) times its weight."""
    config = RBFConfig(2, 1, 1, 1, "isotropic", "inverse_quadratic", ())
    centers, shapes, weights = (
        torch.tensor([[0.5, 0.5]]),
        torch.tensor([2.0]),
        torch.tensor([[3.0]]),
    )
    x = torch.tensor([[0.5, 0.5], [1.0, 0.5], [0.5, 0.0]])
    torch.testing.assert_close(
        rbf_encode(x, centers, shapes, weights, config), torch.tensor([[3.0], [1.5], [1.5]])
    )


def test_frequencies_cycle_over_the_channels():
    config = RBFConfig(2, 1, 4, 1, "isotropic", "gaussian", (1.0, 3.0))
    f64 = {"dtype": torch.float64}
    centers, shapes, weights = (
        torch.zeros(1, 2, **f64),
        torch.ones(1, **f64),
        torch.ones(1, 4, **f64),
    )
    x = torch.tensor([[0.3, 0.4]], dtype=torch.float64)  # r2 = 0.25
    phi = torch.exp(torch.tensor(-0.25, dtype=torch.float64))
    want = torch.stack([torch.sin(phi), torch.sin(3 * phi), torch.sin(phi), torch.sin(3 * phi)])[
        None
    ]
    torch.testing.assert_close(rbf_encode(x, centers, shapes, weights, config), want)


def test_neighbours_follow_the_current_centers():
    """The search runs at every forward: moved centers are read, not a stale neighbour list."""
    enc = RBFEncoding(3, 50, 4, 4, device="cpu").double()
    with torch.no_grad():
        enc.weights.normal_()
    x = torch.rand(80, 3, dtype=torch.float64)
    before = enc(x)
    with torch.no_grad():
        enc.centers.copy_(enc.centers.flip(0) * 0.5 + 0.25)
    after = enc(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(
        after, rbf_reference(x, enc.centers, enc.shapes, enc.weights, enc.spec)
    )


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_points(n):
    enc = RBFEncoding(3, 20, 3, 4, frequencies=[1.0])
    x = torch.rand(n, 3, requires_grad=True)
    y = enc(x)
    assert y.shape == (n, 3)
    y.sum().backward()
    assert x.grad.shape == (n, 3)
    assert (enc.weights.grad.abs().sum() > 0) == (n == 1)


def test_nan_rows_encode_to_nan_and_add_no_gradient():
    config = CASES[0]
    params = random_params(config, seed=8)
    x = random_points(config, 30, seed=9)
    x[[3, 17], 1] = float("nan")
    y = rbf_encode(x, *params, config)
    assert torch.isnan(y[[3, 17]]).all() and not torch.isnan(y[~torch.isnan(x).any(1)]).any()
    keep = ~torch.isnan(x).any(1)
    got = torch.autograd.grad(y[keep].sum() + torch.nan_to_num(y).sum() * 0, params)
    want = torch.autograd.grad(rbf_encode(x[keep], *params, config).sum(), params)
    for u, v in zip(got, want):
        torch.testing.assert_close(u, v)


def test_float32_module_matches_float64_reference():
    enc = RBFEncoding(3, 300, 8, 8, shape="full")
    with torch.no_grad():
        enc.weights.normal_()
    x = torch.rand(500, 3)
    ref = rbf_reference(
        x.double(), *(p.double() for p in (enc.centers, enc.shapes, enc.weights)), enc.spec
    )
    torch.testing.assert_close(enc(x).double(), ref, rtol=1e-5, atol=1e-5)


def test_config_round_trip_and_state_dict():
    enc = RBFEncoding(2, 64, 6, 5, "full", "gaussian", [1.0, 2.5])
    with torch.no_grad():
        enc.weights.normal_()
    cfg = enc.config()
    assert cfg == {
        "type": "rbf",
        "n_input_dims": 2,
        "n_bases": 64,
        "n_features": 6,
        "k": 5,
        "shape": "full",
        "kernel": "gaussian",
        "frequencies": [1.0, 2.5],
    }
    again = create(cfg)
    assert again.config() == cfg and isinstance(again, RBFEncoding)
    again.load_state_dict(enc.state_dict())
    assert sorted(enc.state_dict()) == ["centers", "shapes", "weights"]
    x = torch.rand(40, 2)
    assert torch.equal(again(x), enc(x))
    assert enc.n_params == cfg["n_bases"] * (2 + 4 + 6) == enc.spec.n_params


def test_default_settings_and_init():
    enc = RBFEncoding()
    assert (enc.n_input_dims, enc.n_output_dims, enc.spec.k, enc.spec.shape) == (
        3,
        16,
        8,
        "diagonal",
    )
    assert enc.shapes.shape == (4096, 3) and torch.allclose(enc.shapes, torch.tensor(16.0))
    assert enc.centers.min() >= 0 and enc.centers.max() <= 1


def test_hybrid_with_a_hash_grid_through_concat():
    torch.manual_seed(0)
    cfg = {
        "type": "concat",
        "encodings": [
            {"type": "rbf", "n_bases": 32, "n_features": 4, "k": 4, "frequencies": [1.0, 2.0]},
            {"type": "hash_grid", "n_levels": 2, "log2_hashmap_size": 8, "base_resolution": 4},
        ],
    }
    enc = create(cfg).double()
    rbf, grid = enc.encodings
    assert isinstance(enc, Concat) and isinstance(rbf, RBFEncoding) and isinstance(grid, HashGrid)
    assert enc.n_output_dims == 4 + 4
    with torch.no_grad():
        rbf.weights.normal_()
        grid.params.normal_()
    x = (torch.rand(60, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    w = torch.randn(enc.n_output_dims, dtype=torch.float64)

    def eikonal(features):
        (g,) = torch.autograd.grad((features(x) @ w).sum(), x, create_graph=True)
        return torch.autograd.grad(
            ((g.norm(dim=1) - 1) ** 2).sum(), (x, rbf.centers, rbf.shapes, rbf.weights, grid.params)
        )

    got = eikonal(enc)
    want = eikonal(
        lambda p: torch.cat(
            [
                rbf_reference(p, rbf.centers, rbf.shapes, rbf.weights, rbf.spec),
                hash_grid_reference(p, grid.params, grid.spec),
            ],
            dim=1,
        )
    )
    for u, v in zip(got, want):
        assert u.abs().sum() > 0
        torch.testing.assert_close(u, v, rtol=1e-10, atol=1e-10)
    again = create(enc.config()).double()
    again.load_state_dict(enc.state_dict())
    assert again.config() == enc.config() and torch.equal(again(x), enc(x))


# ---- initialisation from data ------------------------------------------------------------------


def quantisation_error(points, weights, centers):
    """Weighted mean squared distance from each point to its nearest center (brute force)."""
    return float(
        (weights * torch.cdist(points, centers).min(dim=1).values ** 2).sum() / weights.sum()
    )


def test_kmeans_lowers_the_weighted_quantisation_error():
    g = torch.Generator().manual_seed(0)
    points = torch.cat(
        [torch.randn(3000, 3, generator=g) * 0.05 + torch.rand(1, 3, generator=g) for _ in range(6)]
    )
    weights = torch.rand(len(points), generator=g) + 0.1
    errors = []
    for iters in (0, 1, 3, 10):
        enc = RBFEncoding(3, 64, 4, 8, frequencies=[]).init_from_points(
            points, weights, iters=iters, generator=seeded(1)
        )
        errors.append(quantisation_error(points, weights, enc.centers.detach()))
    assert all(b <= a * (1 + 1e-5) for a, b in zip(errors, errors[1:])), (
        errors
    )  # Lloyd never increases it
    assert errors[-1] < 0.8 * errors[0], (
        errors
    )  # seeds drawn by weight are already fair; Lloyd improves them
    uniform = quantisation_error(points, weights, torch.rand(64, 3, generator=g))
    assert errors[-1] < 0.2 * uniform


def test_weights_pull_centers_toward_the_heavy_region():
    points = torch.rand(20000, 3, generator=seeded(2))
    heavy = points[:, 0] < 0.25
    weights = torch.where(heavy, 100.0, 1.0)
    plain = RBFEncoding(3, 200, 2, 8, frequencies=[]).init_from_points(points, generator=seeded(3))
    pulled = RBFEncoding(3, 200, 2, 8, frequencies=[]).init_from_points(
        points, weights, generator=seeded(3)
    )
    frac_plain = float((plain.centers[:, 0] < 0.25).float().mean())
    frac_pulled = float((pulled.centers[:, 0] < 0.25).float().mean())
    assert 0.15 < frac_plain < 0.35
    assert frac_pulled > 0.6


@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
def test_init_shapes_are_inverse_mean_spacings(shape):
    points = torch.rand(5000, 3, dtype=torch.float64, generator=seeded(4))
    enc = (
        RBFEncoding(3, 100, 2, 6, shape, frequencies=[])
        .double()
        .init_from_points(points, iters=3, generator=seeded(5))
    )
    c = enc.centers.detach()
    d = torch.cdist(c, c).sort(dim=1).values[:, 1:7]  # six nearest others
    s = 1.0 / d.mean(dim=1)
    want = {
        "isotropic": s,
        "diagonal": s[:, None].expand(-1, 3),
        "full": s[:, None, None] * torch.eye(3, dtype=torch.float64),
    }
    torch.testing.assert_close(enc.shapes.detach(), want[shape])
    # centers lie on the data: each is the mean of its points, inside their box
    assert c.min() >= 0 and c.max() <= 1


def test_init_with_fewer_points_than_bases_and_one_basis():
    enc = RBFEncoding(2, 16, 2, 4, frequencies=[]).init_from_points(
        torch.rand(5, 2), iters=4, generator=seeded(6)
    )
    assert torch.isfinite(enc.shapes).all() and (enc.shapes > 0).all()
    one = RBFEncoding(2, 1, 2, 1, frequencies=[]).init_from_points(
        torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    )
    torch.testing.assert_close(one.centers.detach(), torch.tensor([[1.5, 2.0]]))
    torch.testing.assert_close(one.shapes.detach(), torch.full((1, 2), 1 / 5.0))
