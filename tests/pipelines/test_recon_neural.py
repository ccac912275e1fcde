"""fit_neural end to end on a sphere of 3,000 points, the eikonal term alone, the progress steps, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fields3d.errors import InputError
from fields3d.pipelines.recon.neural import NeuralConfig, fit_neural

RADIUS = 0.6
FAST = {
    "steps": 120,
    "init_steps": 40,
    "batch_size": 1500,
    "n_levels": 6,
    "log2_hashmap_size": 14,
    "base_resolution": 8,
    "finest_resolution": 96,
    "n_hidden": 32,
    "coarse_resolution": 32,
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch's OpenMP workers spin between ops and starve the core's own thread pool on a small,
    shared machine (a 2-core run: 45 s with torch's default threads, 3 s with one); the hash grid
    core keeps its threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sphere(n: int = 3000, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).standard_normal((n, 3))
    return RADIUS * d / np.linalg.norm(d, axis=1, keepdims=True)


def _directions(n: int = 26) -> torch.Tensor:
    """Unit directions spread over the sphere (a golden-angle spiral), float32 (n, 3)."""
    i = torch.arange(n, dtype=torch.float64) + 0.5
    z = 1 - 2 * i / n
    phi = i * np.pi * (3 - np.sqrt(5))
    r = (1 - z * z).sqrt()
    return torch.stack((r * phi.cos(), r * phi.sin(), z), 1).float()


def _zero_along(
    field, directions: torch.Tensor, lo: float = 0.0, hi: float = 1.0, iters: int = 30
) -> torch.Tensor:
    """The radius where the field changes sign along each ray from the origin (bisection)."""
    lo = torch.full((directions.shape[0],), lo)
    hi = torch.full((directions.shape[0],), hi)
    with torch.no_grad():
        for _ in range(iters):
            mid = (lo + hi) / 2
            negative = field(directions * mid.unsqueeze(1)) < 0
            lo, hi = torch.where(negative, mid, lo), torch.where(negative, hi, mid)
    return (lo + hi) / 2


@pytest.fixture(scope="module")
def fitted():
    calls = []
    points = _sphere()
    field = fit_neural(
        points, NeuralConfig(**FAST), progress=lambda step, parts: calls.append((step, parts))
    )
    return field, points, calls


def test_surface_sign_and_radius(fitted):
    field, points, _ = fitted
    with torch.no_grad():
        on = field(torch.from_numpy(points).float()).abs()
        centre, corners = (
            field(torch.zeros(1, 3)),
            field(
                torch.tensor(
                    [[s0, s1, s2] for s0 in (-1.0, 1.0) for s1 in (-1.0, 1.0) for s2 in (-1.0, 1.0)]
                )
            ),
        )
    assert on.mean() < 1e-3 and on.max() < 1e-2
    assert centre.item() < -0.4 and bool((corners > 0.8).all())
    radii = _zero_along(field, _directions())
    assert (radii - RADIUS).abs().max() < 5e-3


def test_field_is_a_distance_near_the_surface(fitted):
    # |grad f| ~ 1 in a band of +-0.1 around the sphere, and f ~ |x| - R there
    field, _, _ = fitted
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(2000, 3), dim=1)
    r = RADIUS + (torch.rand(2000, 1) * 2 - 1) * 0.1
    value, grad = field.gradient(d * r)
    assert (grad.norm(dim=1).mean() - 1).abs() < 0.02
    assert (value - (r.squeeze(1) - RADIUS)).abs().mean() < 5e-3


def test_progress_counts_both_phases(fitted):
    _, _, calls = fitted
    cfg = NeuralConfig(**FAST)
    assert [s for s, _ in calls] == list(range(1, cfg.total_steps + 1)) and cfg.total_steps == 160
    assert set(calls[0][1]) == {"init"} and set(calls[-1][1]) == {
        "pull",
        "surface",
        "eikonal",
        "loss",
    }


def test_eikonal_term_alone_makes_the_gradient_unit():
    # no init, no pulling, no surface term: only the eikonal loss (through the hash grid's double
    # backward) acts on the sphere initialisation, whose |grad f| is far from 1 in places
    cfg = NeuralConfig(
        **{**FAST, "init_steps": 0, "steps": 60, "w_pull": 0.0, "w_surface": 0.0, "w_eikonal": 1.0}
    )
    parts = []
    field = fit_neural(_sphere(), cfg, progress=lambda step, p: parts.append(p["eikonal"]))
    assert parts[-1] < parts[0] / 10
    torch.manual_seed(1)
    _, grad = field.gradient(torch.rand(4000, 3) * 2 - 1)
    assert (grad.norm(dim=1) - 1).abs().mean() < 0.05


def test_config_and_point_errors():
    with pytest.raises(InputError, match=r"^steps must be an integer >= 0, got -1$"):
        NeuralConfig(steps=-1)
    with pytest.raises(
        InputError, match=r"^batch_size must be an integer from 1 to 16777216, got 0$"
    ):
        NeuralConfig(batch_size=0)
    with pytest.raises(
        InputError,
        match=r"^seed must be an integer from 0 to 9223372036854775807, got 1180591620717411303424$",
    ):
        NeuralConfig(seed=2**70)
    with pytest.raises(InputError, match=r"^lr must be a number > 0, got 0$"):
        NeuralConfig(lr=0)
    with pytest.raises(InputError, match=r"^w_eikonal must be a number >= 0, got -1.0$"):
        NeuralConfig(w_eikonal=-1.0)
    with pytest.raises(InputError, match=r"^log2_hashmap_size must be an integer from 4 to 30"):
        NeuralConfig(log2_hashmap_size=40)
    cfg = NeuralConfig(**FAST)
    shape = r"^points must be a float numpy array of shape \(N, 3\), got float64 \(5, 2\)$"
    with pytest.raises(InputError, match=shape):
        fit_neural(np.zeros((5, 2)), cfg)
    with pytest.raises(
        InputError, match=r"^points must hold more than 20 points \(sigma_k=20\), got 20$"
    ):
        fit_neural(_sphere(20), cfg)
    with pytest.raises(
        InputError,
        match=r"^points must be finite and inside \[-1, 1\]\^3; normalise the cloud first$",
    ):
        fit_neural(_sphere() * 2, cfg)


def test_cam_fits_the_sphere():
    """field_modulation='cam': the eikonal and pulling terms train through the tri-plane's double
    backward; the fitted zero level is the sphere."""
    field = fit_neural(_sphere(), NeuralConfig(**FAST, field_modulation="cam"))
    assert field.cam is not None and field.config()["mlp"]["field_modulation"] == "cam"
    assert field.cam.grid.params.abs().max() > 1e-3  # trained away from its near-zero start
    # looser than the plain field's 5e-3 above: in these 160 steps CAM's zero level is still
    # uneven (mean error 0.013, up to 0.096 in one direction, against 0.0004 and 0.0013 without
    # CAM) and the centre less deep (-0.21 against -0.44); benchmarks/RESULTS.md
    error = (_zero_along(field, _directions()) - RADIUS).abs()
    assert error.mean() < 0.03 and error.max() < 0.15
    with torch.no_grad():
        assert field(torch.zeros(1, 3)).item() < -0.1


def test_recon_field_modulation_errors():
    from fields3d.pipelines.recon import ReconConfig

    with pytest.raises(InputError) as err:
        NeuralConfig(**FAST, field_modulation="film")
    assert str(err.value) == "field_modulation must be 'none' or 'cam', got 'film'"
    with pytest.raises(InputError) as err:
        ReconConfig("scan.ply", method="gridpull", field_modulation="cam")
    assert str(err.value) == (
        "field_modulation 'cam' modulates the neural SDF's MLP: use it with method 'neural', "
        "got method 'gridpull'"
    )
    assert (
        ReconConfig("scan.ply", method="neural", field_modulation="cam").field_modulation == "cam"
    )
