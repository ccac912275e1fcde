"""Compositing against the pure-torch reference: values, first derivatives (gradcheck in float64),
early stop, render_samples with a background, and argument errors with their exact messages."""

import pytest
import torch

from fields3d.errors import InputError
from fields3d.render import (
    GridSpec,
    RaySamples,
    composite,
    composite_samples,
    march_rays,
    render_samples,
)
from fields3d.render.reference import composite_reference


def packed(counts, channels=3, seed=0, dtype=torch.float64, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(counts)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    n = int(offsets[-1])
    widths = torch.rand(n, generator=g, dtype=dtype) * 0.2 + 0.01
    t_starts = torch.rand(n, generator=g, dtype=dtype)
    sigmas = torch.rand(n, generator=g, dtype=dtype) * scale
    values = torch.rand(n, channels, generator=g, dtype=dtype)
    return sigmas, values, t_starts, t_starts + widths, offsets


COUNTS = [5, 0, 1, 17, 3, 40, 0, 8]


@pytest.mark.parametrize("t_min", [0.0, 0.05])
def test_values_match_the_reference(t_min):
    sigmas, values, ts, te, offsets = packed(COUNTS, scale=8.0)
    res = composite(sigmas, values, ts, te, offsets, t_min=t_min)
    out, opacity, weights = composite_reference(sigmas, values, ts, te, offsets, t_min=t_min)
    torch.testing.assert_close(res.out, out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res.opacity, opacity, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res.weights, weights, rtol=1e-12, atol=1e-12)
    if t_min > 0:  # the dense rays really stopped early
        assert (res.weights == 0).sum() > 0 and (res.trans[res.weights == 0] == 0).all()


def test_single_sample_and_empty_rays_in_closed_form():
    sigmas = torch.tensor([2.0], dtype=torch.float64)
    values = torch.tensor([[0.5]], dtype=torch.float64)
    res = composite(
        sigmas,
        values,
        torch.tensor([1.0], dtype=torch.float64),
        torch.tensor([1.5], dtype=torch.float64),
        torch.tensor([0, 0, 1]),
        t_min=0.0,
    )
    alpha = 1 - torch.exp(torch.tensor(-1.0, dtype=torch.float64))
    assert res.opacity.tolist() == [0.0, pytest.approx(alpha.item(), abs=1e-15)]
    assert res.out[:, 0].tolist() == [0.0, pytest.approx(0.5 * alpha.item(), abs=1e-15)]
    assert res.trans.tolist() == [1.0]


@pytest.mark.parametrize("t_min", [0.0, 0.05])
def test_gradcheck_sigmas_values_and_weights(t_min):
    sigmas, values, ts, te, offsets = packed([3, 0, 1, 6, 2], channels=2, seed=1)
    sigmas.requires_grad_(True)
    values.requires_grad_(True)

    def fn(s, v):
        r = composite(s, v, ts, te, offsets, t_min=t_min)
        return r.out, r.opacity, r.weights

    assert torch.autograd.gradcheck(fn, (sigmas, values))


def test_gradients_match_the_reference_in_float32():
    sigmas, values, ts, te, offsets = packed(COUNTS, seed=2, dtype=torch.float32)
    g = torch.Generator().manual_seed(3)
    g_out, g_op = torch.randn(len(COUNTS), 3, generator=g), torch.randn(len(COUNTS), generator=g)
    g_w = torch.randn(len(sigmas), generator=g)
    grads = []
    for fn in (composite, composite_reference):
        s, v = sigmas.clone().requires_grad_(True), values.clone().requires_grad_(True)
        r = fn(s, v, ts, te, offsets, t_min=0.0)
        out, opacity, weights = (r.out, r.opacity, r.weights) if fn is composite else r
        ((out * g_out).sum() + (opacity * g_op).sum() + (weights * g_w).sum()).backward()
        grads.append((s.grad, v.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-5, atol=1e-6)


# Rays of 7, 8, 9 and 16 samples end just before, on and after the core's blocks of 8 samples.
@pytest.mark.parametrize("channels", [0, 1, 2, 3, 4, 5])
def test_every_channel_count_matches_the_reference(channels):
    counts = COUNTS + [7, 8, 9, 16]
    sigmas, values, ts, te, offsets = packed(counts, channels=channels, seed=4, scale=8.0)
    g = torch.Generator().manual_seed(5)
    g_out = torch.randn(len(counts), channels, generator=g, dtype=torch.float64)
    g_op = torch.randn(len(counts), generator=g, dtype=torch.float64)
    results = []
    for fn in (composite, composite_reference):
        s, v = sigmas.clone().requires_grad_(True), values.clone().requires_grad_(True)
        r = fn(s, v, ts, te, offsets, t_min=0.01)
        out, opacity, weights = (r.out, r.opacity, r.weights) if fn is composite else r
        ((out * g_out).sum() + (opacity * g_op).sum()).backward()
        results.append((out, opacity, weights, s.grad, v.grad))
    for ours, ref in zip(*results):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_float32_alpha_is_within_a_few_ulp_of_expm1_over_all_magnitudes():
    # one sample per ray, tau = sigma * 1 from 1e-30 to 80: its weight is alpha = -expm1(-tau),
    # where a plain 1 - exp loses every digit for small tau
    tau = torch.logspace(-30, 1.9, 20001, dtype=torch.float64)
    sigmas = tau.float()
    n = len(sigmas)
    res = composite(
        sigmas, torch.zeros(n, 0), torch.zeros(n), torch.ones(n), torch.arange(n + 1), t_min=0.0
    )
    truth = -torch.expm1(-sigmas.double())
    rel = ((res.weights.double() - truth).abs() / truth).max().item()
    assert rel < 3 * 2.0**-24, f"max relative error {rel:.3g} is over 3 ulp"


def test_float32_infinite_and_nan_densities():
    sigmas = torch.tensor([float("inf"), float("nan"), 0.0, 1e30])
    res = composite(
        sigmas, torch.ones(4, 1), torch.zeros(4), torch.ones(4), torch.arange(5), t_min=0.0
    )
    assert res.opacity[0].item() == 1.0 and res.opacity[1].isnan() and res.opacity[2].item() == 0.0
    assert res.opacity[3].item() == 1.0


def test_same_result_for_any_thread_count():
    """The CPU launcher cuts the rays into ranges of equal sample counts, more of them with more
    threads: every ray is still composited once, alone, so the results are bitwise equal."""
    from fields3d import _native

    counts = [0, 3, 200, 0, 0, 150, 1, 90] * 200  # 230k samples: 8 ranges on one thread, 14 on more
    sigmas, values, ts, te, offsets = packed(counts, seed=6, dtype=torch.float32, scale=2.0)
    g = torch.Generator().manual_seed(7)
    g_out, g_op = torch.randn(len(counts), 3, generator=g), torch.randn(len(counts), generator=g)
    core = _native.core()
    before, results = core.num_threads(), []
    try:
        for threads in (1, 2, 3, 5):
            core.set_num_threads(threads)
            s, v = sigmas.clone().requires_grad_(True), values.clone().requires_grad_(True)
            r = composite(s, v, ts, te, offsets, t_min=1e-3)
            ((r.out * g_out).sum() + (r.opacity * g_op).sum()).backward()
            results.append(
                [t.detach() for t in (r.out, r.opacity, r.weights, r.trans, s.grad, v.grad)]
            )
    finally:
        core.set_num_threads(before)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


def test_render_samples_composites_on_a_background():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 5.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    s = march_rays(origins, dirs, GridSpec.from_aabb([[-1, -1, -1], [1, 1, 1]]), step=0.1)
    sigmas = torch.full((s.n_samples,), 1.0)
    colors = torch.tensor([[1.0, 0.0, 0.0]]).expand(s.n_samples, 3)
    r = render_samples(s, sigmas, colors, background=torch.tensor([0.0, 0.0, 1.0]), t_min=0.0)
    opacity = 1 - torch.exp(torch.tensor(-2.0))  # density 1 over the box's 2 units
    torch.testing.assert_close(r["opacity"], torch.stack([opacity, torch.tensor(0.0)]))
    torch.testing.assert_close(
        r["color"][0], torch.stack([opacity, torch.tensor(0.0), 1 - opacity])
    )
    torch.testing.assert_close(
        r["color"][1], torch.tensor([0.0, 0.0, 1.0])
    )  # a miss shows the background
    # expected depth of a uniform medium on [2, 4] (midpoint rule), over its opacity
    w = r["weights"]
    mids = 0.5 * (s.t_starts + s.t_ends)
    torch.testing.assert_close(r["depth"][0], (w * mids).sum())
    assert 2.0 < r["depth"][0] / r["opacity"][0] < 3.0


@pytest.mark.parametrize(
    "change,message",
    [
        (
            dict(sigmas=torch.zeros(4, dtype=torch.int32)),
            "sigmas must be float32 or float64, got int32",
        ),
        (dict(values=torch.zeros(3, 2)), "values must have shape (4, N), got (3, 2)"),
        (
            dict(values=torch.zeros(4, 2, dtype=torch.float64)),
            "values must have the dtype of the rays (float32), got float64",
        ),
        (dict(t_ends=torch.zeros(5)), "t_ends must have shape (4,), got (5,)"),
        (
            dict(offsets=torch.tensor([0, 4], dtype=torch.int32)),
            "offsets must be an int64 tensor of shape (R + 1,) (as march_rays makes them), got int32 (2,)",
        ),
        (
            dict(offsets=[0, 4]),
            "offsets must be an int64 tensor of shape (R + 1,) (as march_rays makes them), got list",
        ),
        (
            dict(offsets=torch.tensor([[0, 4]])),
            "offsets must be an int64 tensor of shape (R + 1,) (as march_rays makes them), got int64 (1, 2)",
        ),
        (dict(t_min=1.0), "t_min must be a number in [0, 1), got 1.0"),
    ],
)
def test_bad_arguments_say_what_to_do(change, message):
    args = dict(
        sigmas=torch.zeros(4),
        values=torch.zeros(4, 2),
        t_starts=torch.zeros(4),
        t_ends=torch.ones(4),
        offsets=torch.tensor([0, 4]),
        t_min=0.0,
    )
    args.update(change)
    t_min = args.pop("t_min")
    with pytest.raises(InputError) as err:
        composite(**args, t_min=t_min)
    assert str(err.value) == message


OFFSETS_RULE = "offsets must start at 0, never decrease and end at the number of samples (4), got "
OFFSETS_FIX = "; build them as a cumulative sum of the rays' sample counts after a 0"


@pytest.mark.parametrize(
    "offsets,got",
    [
        ([1, 4], "offsets[0] = 1"),
        ([-1, 4], "offsets[0] = -1"),
        ([0, 3, 2, 4], "offsets[2] = 2 after offsets[1] = 3"),
        ([0, 6, 4], "offsets[2] = 4 after offsets[1] = 6"),  # a value past the samples
        ([0, 3], "offsets[-1] = 3"),
        ([0, 5], "offsets[-1] = 5"),
        ([0], "offsets[-1] = 0"),
    ],
)
def test_offsets_are_checked_against_the_samples_before_the_core(offsets, got):
    # checked in Python on every device: the core checks them only on the CPU, with no detail
    with pytest.raises(InputError) as err:
        composite(
            torch.zeros(4), torch.zeros(4, 1), torch.zeros(4), torch.ones(4), torch.tensor(offsets)
        )
    assert str(err.value) == OFFSETS_RULE + got + OFFSETS_FIX


def test_hand_built_samples_have_their_offsets_checked_and_marched_ones_skip_it():
    """render_samples checks the offsets of RaySamples built by hand; those march_rays and select
    built are trusted (the check costs a GPU sync per call)."""
    s, sigmas, colors = _four_rays()
    assert s.offsets_checked and s.select(torch.ones(s.n_samples, dtype=torch.bool)).offsets_checked
    torch.testing.assert_close(
        composite_samples(s, sigmas, colors).out,
        composite(sigmas, colors, s.t_starts, s.t_ends, s.offsets).out,
    )
    bad = RaySamples(s.t_starts, s.t_ends, s.ray_ids, s.offsets.flip(0))
    assert not bad.offsets_checked
    for call in (
        lambda: render_samples(bad, sigmas, colors),
        lambda: composite_samples(bad, sigmas, colors),
    ):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value).startswith(
            f"offsets must start at 0, never decrease and end at the number of "
            f"samples ({s.n_samples}), got offsets[0] = {s.n_samples}"
        )


def _four_rays():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 5.0, -3.0], [0.0, 0.0, -3.0], [0.5, 0.0, -3.0]])
    dirs = torch.tensor([[0.0, 0.0, 1.0]] * 4)
    s = march_rays(origins, dirs, GridSpec.from_aabb([[-1, -1, -1], [1, 1, 1]]), step=0.1)
    return (
        s,
        torch.ones(s.n_samples),
        torch.rand(s.n_samples, 3, generator=torch.Generator().manual_seed(0)),
    )


@pytest.mark.parametrize(
    "background",
    [
        0.5,
        torch.tensor(0.5),
        [0.2, 0.4, 0.6],
        torch.tensor([0.2, 0.4, 0.6]),
        torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64),
        torch.rand(4, 3),
    ],
)
def test_render_samples_takes_a_number_a_colour_or_one_per_ray(background):
    s, sigmas, colors = _four_rays()
    r = render_samples(s, sigmas, colors, background=background, t_min=0.0)
    bg = torch.as_tensor(background, dtype=torch.float32).expand(4, 3)
    plain = render_samples(s, sigmas, colors, t_min=0.0)
    torch.testing.assert_close(r["color"], plain["color"] + (1 - plain["opacity"])[:, None] * bg)


BG_RULE = "background must be a number, a (3,) colour or (4, 3) colours, one per ray (float, on cpu), got "


@pytest.mark.parametrize(
    "background,message",
    [
        (torch.zeros(2), BG_RULE + "float32 (2,)"),
        (torch.zeros(5, 3), BG_RULE + "float32 (5, 3)"),
        (torch.zeros(4, 2), BG_RULE + "float32 (4, 2)"),
        (torch.zeros(1, 3), BG_RULE + "float32 (1, 3)"),
        (torch.zeros(4), BG_RULE + "float32 (4,)"),
        (torch.tensor([0, 0, 255]), BG_RULE + "int64 (3,)"),
        ((1.0, 0.0), BG_RULE + "(1.0, 0.0)"),
        ("white", BG_RULE + "str"),
        (True, BG_RULE + "bool"),
        (
            torch.zeros(3, device="meta"),
            "background must be on cpu like the colors, got meta; move it with .to(device)",
        ),
    ],
)
def test_render_samples_refuses_a_background_of_another_shape(background, message):
    s, sigmas, colors = _four_rays()
    with pytest.raises(InputError) as err:
        render_samples(s, sigmas, colors, background=background)
    assert str(err.value) == message
