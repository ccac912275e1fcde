"""The shared SDS mechanics: noise schedules (against diffusers' own), weighting at known values,
the annealed timestep range, the latent-target loss, the NaN guard, clipping, and the SDS gradient
of a prior against a direct autograd computation of the same loss."""

import json

import pytest
import torch

from fields3d.errors import CheckpointError, InputError
from fields3d.guidance import (
    Guidance,
    NoiseSchedule,
    ScoreDistillation,
    SphericalCameras,
    alphas_cumprod,
    guidance_loss,
    latent_target_loss,
    weighting,
)
from fields3d.guidance import sds as sds_module
from fields3d.guidance.sds import SD_SCHEDULE


def sd_schedule() -> NoiseSchedule:
    return NoiseSchedule.from_config(SD_SCHEDULE)


def cameras(n: int) -> SphericalCameras:
    return SphericalCameras(
        torch.linspace(0, 270, n),
        torch.full((n,), 15.0),
        torch.full((n,), 2.5),
        torch.full((n,), 40.0),
    )


# ---- noise schedules -------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["scaled_linear", "linear", "squaredcos_cap_v2"])
def test_alphas_cumprod_match_diffusers(schedule):
    diffusers = pytest.importorskip("diffusers", reason="needs pip install 'fields3d[generate]'")
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule=schedule
    ).alphas_cumprod
    ours = alphas_cumprod(1000, 0.00085, 0.012, schedule)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_alphas_cumprod_known_values():
    a = alphas_cumprod(1000, 0.00085, 0.012, "scaled_linear")
    assert a.shape == (1000,)
    assert float(a[0]) == pytest.approx(1 - 0.00085, abs=1e-7)
    assert float(a[1]) == pytest.approx(
        (1 - 0.00085) * (1 - (0.00085**0.5 + (0.012**0.5 - 0.00085**0.5) / 999) ** 2), abs=1e-7
    )
    assert bool((a[1:] < a[:-1]).all()) and 0 < float(a[-1]) < 0.005
    lin = alphas_cumprod(4, 0.1, 0.4, "linear")
    torch.testing.assert_close(
        lin, torch.tensor([0.9, 0.9 * 0.8, 0.9 * 0.8 * 0.7, 0.9 * 0.8 * 0.7 * 0.6])
    )
    trained = alphas_cumprod(trained_betas=[0.5, 0.5])
    torch.testing.assert_close(trained, torch.tensor([0.5, 0.25]))


def test_v_prediction_turns_into_the_noise():
    schedule = NoiseSchedule.from_config({**SD_SCHEDULE, "prediction_type": "v_prediction"})
    x, eps = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    t = torch.tensor([20, 500, 979])
    a = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * x + (1 - a).sqrt() * eps
    v = a.sqrt() * eps - (1 - a).sqrt() * x
    torch.testing.assert_close(schedule.to_noise(v, noisy, t), eps, atol=1e-5, rtol=0)
    assert sd_schedule().to_noise(eps, noisy, t) is eps


def test_schedule_errors(tmp_path):
    with pytest.raises(InputError) as e:
        alphas_cumprod(1000, 0.00085, 0.012, "cosine")
    assert str(e.value) == (
        "beta_schedule must be 'linear', 'scaled_linear' or 'squaredcos_cap_v2', got 'cosine'"
    )
    with pytest.raises(InputError) as e:
        NoiseSchedule.from_config({"prediction_type": "sample"})
    assert str(e.value) == "prediction_type must be 'epsilon' or 'v_prediction', got 'sample'"
    bad = tmp_path / "scheduler_config.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError) as e:
        NoiseSchedule.from_file(bad)
    assert str(e.value).startswith(f"cannot read the scheduler config {bad} (JSONDecodeError: ")
    bad.write_text(json.dumps({"beta_schedule": "cosine"}), encoding="utf-8")
    with pytest.raises(CheckpointError) as e:
        NoiseSchedule.from_file(bad)
    assert str(e.value) == (
        f"cannot read the scheduler config {bad} (beta_schedule must be 'linear', "
        "'scaled_linear' or 'squaredcos_cap_v2', got 'cosine')"
    )


# ---- weighting and timesteps -----------------------------------------------------------------


def test_weightings_at_known_values():
    a = torch.tensor([0.25, 0.81])
    torch.testing.assert_close(weighting("sds", a), torch.tensor([0.75, 0.19]))
    torch.testing.assert_close(weighting("uniform", a), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(weighting("fantasia3d", a), torch.tensor([0.5 * 0.75, 0.9 * 0.19]))
    with pytest.raises(InputError) as e:
        weighting("sjc", a)
    assert str(e.value) == "weighting must be 'sds', 'uniform' or 'fantasia3d', got 'sjc'"


def test_timestep_range_anneals_linearly():
    sds = ScoreDistillation(sd_schedule())
    assert sds.timestep_range(0, 100) == (20, 980)
    assert sds.timestep_range(10, 100) == (20, 932)  # 1000 * 0.932, not 931.99...
    assert sds.timestep_range(50, 100) == (20, 740)
    assert sds.timestep_range(100, 100) == (20, 500)
    fixed = ScoreDistillation(sd_schedule(), t_max_end=0.98)
    assert fixed.timestep_range(0, 10) == fixed.timestep_range(10, 10) == (20, 980)
    assert ScoreDistillation(sd_schedule(), t_min=0.5, t_max=0.5, t_max_end=0.5).timestep_range(
        3, 10
    ) == (500, 500)
    assert ScoreDistillation(sd_schedule(), t_max=1.0, t_max_end=1.0).timestep_range(0, 1) == (
        20,
        999,
    )


def test_timesteps_are_drawn_in_range_and_reproducibly():
    sds = ScoreDistillation(sd_schedule(), seed=7)
    early = torch.cat([sds.draw((64, 4, 2, 2), 0, 100)[0] for _ in range(20)])
    late = torch.cat([sds.draw((64, 4, 2, 2), 100, 100)[0] for _ in range(20)])
    assert int(early.min()) >= 20 and int(early.max()) <= 980 and int(early.max()) > 900
    assert int(late.min()) >= 20 and int(late.max()) <= 500
    # uniform over the range: the mean of 1280 draws from [20, 500] is 260 +- 4 (3 sigma)
    assert abs(float(late.float().mean()) - 260) < 12
    a, b = ScoreDistillation(sd_schedule(), seed=7), ScoreDistillation(sd_schedule(), seed=7)
    ta, na = a.draw((4, 4, 2, 2), 3, 10)
    tb, nb = b.draw((4, 4, 2, 2), 3, 10)
    assert torch.equal(ta, tb) and torch.equal(na, nb)
    other = ScoreDistillation(sd_schedule(), seed=8).draw((4, 4, 2, 2), 3, 10)[1]
    assert not torch.equal(na, other)
    # resuming from a saved state continues the same draws
    state = a.state_dict()
    after = a.draw((4, 4, 2, 2), 4, 10)
    c = ScoreDistillation(sd_schedule(), seed=0)
    c.load_state_dict(state)
    again = c.draw((4, 4, 2, 2), 4, 10)
    assert torch.equal(after[0], again[0]) and torch.equal(after[1], again[1])


def test_settings_errors():
    cases = [
        ({"weighting": "sjc"}, "weighting must be 'sds', 'uniform' or 'fantasia3d', got 'sjc'"),
        ({"t_min": -0.1}, "t_min must be a number in [0, 1], got -0.1"),
        ({"t_max": 1.5}, "t_max must be a number in [0, 1], got 1.5"),
        (
            {"t_min": 0.6},
            "t_min must not exceed t_max or t_max_end, got t_min 0.6, t_max 0.98, t_max_end 0.5",
        ),
        ({"grad_clip": 0}, "grad_clip must be None or a number > 0, got 0"),
        ({"seed": -1}, "seed must be an integer from 0 to 9223372036854775807, got -1"),
    ]
    for kw, text in cases:
        with pytest.raises(InputError) as e:
            ScoreDistillation(sd_schedule(), **kw)
        assert str(e.value) == text


# ---- the SDS step ----------------------------------------------------------------------------


def test_latent_target_loss_gradient_is_g_over_b():
    z = torch.randn(3, 4, 5, 5, requires_grad=True)
    g = torch.randn(3, 4, 5, 5)
    loss = latent_target_loss(z * 1.0, g)
    loss.backward()
    torch.testing.assert_close(z.grad, g / 3, rtol=1e-6, atol=0)
    assert float(loss.detach()) == pytest.approx(0.5 * float((g**2).sum()) / 3, rel=1e-6)
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    grad = 1e-4 * torch.randn(2, 3, 4, 4)
    guidance_loss(x, grad).backward()
    assert torch.equal(x.grad, grad)  # exactly, though grad is tiny beside x


def test_residual_weighting_and_diagnostics():
    sds = ScoreDistillation(sd_schedule(), seed=3)
    z = torch.randn(4, 4, 3, 3)
    seen = {}

    def predict(noisy, t):
        seen["noisy"], seen["t"] = noisy, t
        return torch.zeros_like(noisy)

    state = sds.state_dict()
    g, diag = sds(z, predict, 5, 10)
    replay = ScoreDistillation(sd_schedule())
    replay.load_state_dict(state)
    t, noise = replay.draw(tuple(z.shape), 5, 10)
    a = sd_schedule().alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(seen["noisy"], a.sqrt() * z + (1 - a).sqrt() * noise)
    torch.testing.assert_close(g, (1 - a) * (0 - noise))
    assert diag["t"] == t.tolist() and diag["t_range"] == [20, 740] and diag["nonfinite"] == 0
    assert diag["loss"] == pytest.approx(0.5 * float((g**2).sum()) / 4, rel=1e-6)
    assert diag["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-6)


def test_nan_guard_zeroes_and_counts_samples():
    sds = ScoreDistillation(sd_schedule())
    z = torch.randn(4, 4, 3, 3)

    def predict(noisy, t):
        out = torch.ones_like(noisy)
        out[1, 0, 0, 0] = float("nan")
        out[3, 2, 1, 1] = float("inf")
        return out

    g, diag = sds(z, predict, 0, 10)
    assert diag["nonfinite"] == 2 and diag["nonfinite_samples"] == [1, 3]
    assert sds.nonfinite_total == 2
    assert bool(torch.isfinite(g).all())
    assert bool((g[1] == 0).all()) and bool((g[3] == 0).all())
    assert bool((g[0] != 0).any()) and bool((g[2] != 0).any())
    sds(z, predict, 1, 10)
    assert sds.nonfinite_total == 4


def test_grad_clip_clamps_each_entry():
    sds = ScoreDistillation(sd_schedule(), weighting="uniform", grad_clip=0.5)
    g, _ = sds(torch.zeros(2, 4, 8, 8), lambda noisy, t: torch.full_like(noisy, 100.0), 0, 10)
    assert float(g.max()) == 0.5 and float(g.min()) >= -0.5


class ConvPrior(Guidance):
    """A prior with a differentiable encoder and a simple noise predictor, to check the pull-back
    against autograd."""

    name = "conv_test"

    def __init__(self, seed=0, **kw):
        torch.manual_seed(1)
        self.device = torch.device("cpu")
        self.encoder = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.encoder.requires_grad_(False)
        self.sds = ScoreDistillation(sd_schedule(), seed=seed, **kw)

    def latents(self, renders):
        return torch.tanh(self.encoder(renders * 2 - 1))

    def predict_noise(self, noisy, t, cameras, context):
        return 0.5 * noisy + torch.sin(t.float()).view(-1, 1, 1, 1)


def test_sds_gradient_matches_autograd_of_the_same_loss():
    prior = ConvPrior(seed=11)
    renders = torch.rand(3, 3, 8, 8)
    state = prior.sds.state_dict()
    out = prior(renders, cameras(3), 2, 10)

    # the same loss written out directly: z = E(x), g = w(t)(eps_hat(z_t) - eps), L = latent target
    replay = ScoreDistillation(sd_schedule())
    replay.load_state_dict(state)
    t, noise = replay.draw((3, 4, 4, 4), 2, 10)
    x = renders.clone().requires_grad_(True)
    z = torch.tanh(prior.encoder(x * 2 - 1))
    a = sd_schedule().alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        noisy = a.sqrt() * z + (1 - a).sqrt() * noise
        g = (1 - a) * (0.5 * noisy + torch.sin(t.float()).view(-1, 1, 1, 1) - noise)
    loss = 0.5 * ((z - (z - g).detach()) ** 2).sum() / 3
    loss.backward()
    torch.testing.assert_close(out.grad, x.grad, rtol=1e-5, atol=1e-7)
    assert out.diagnostics["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert out.diagnostics["render_grad_norm"] == pytest.approx(float(x.grad.norm()), rel=1e-5)


def test_a_nan_render_is_not_applied():
    prior = ConvPrior()
    renders = torch.rand(3, 3, 8, 8)
    renders[2, 1, 4, 4] = float("nan")
    out = prior(renders, cameras(3), 0, 10)
    assert out.diagnostics["nonfinite"] == 1 and out.diagnostics["nonfinite_samples"] == [2]
    assert prior.sds.nonfinite_total == 1
    assert bool(torch.isfinite(out.grad).all()) and bool((out.grad[2] == 0).all())
    assert bool((out.grad[0] != 0).any())


def test_the_shared_residual_is_what_the_prior_uses(monkeypatch):
    # the hook the broken-loop tests patch: dropping the subtraction changes the gradient
    prior = ConvPrior(seed=2)
    renders = torch.rand(2, 3, 8, 8)
    state = prior.sds.state_dict()
    good = prior(renders, cameras(2), 0, 10).grad
    monkeypatch.setattr(sds_module, "noise_residual", lambda predicted, noise: predicted)
    prior.sds.load_state_dict(state)
    assert not torch.allclose(prior(renders, cameras(2), 0, 10).grad, good)
