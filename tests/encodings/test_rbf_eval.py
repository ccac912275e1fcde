"""The fused RBF evaluation (core op) against the torch evaluation over the same neighbours:
values, first and second derivatives for every shape x kernel x composition in 2D and 3D;
gradcheck of the fused backward and of the core's double backward, gradgradcheck (which also
reaches the torch fallback for a gradient on dshapes); the same result for any thread count; and
the bindings' exact error messages."""

import itertools
import re

import pytest
import torch
from test_rbf import random_params

from fields3d import _core_ops, _native
from fields3d.encodings import RBFConfig, rbf_encode, rbf_eval
from fields3d.encodings.rbf_eval import rbf_evaluate, rbf_evaluate_fused

core = _native.core()
NAMES = ("x", "centers", "shapes", "weights")

GRID = list(
    itertools.product(
        (2, 3),
        ("isotropic", "diagonal", "full"),
        ("inverse_quadratic", "gaussian"),
        ((1.0, 3.0), ()),
    )
)
GRID_IDS = [f"{d}d-{s}-{k}-{'sin' if f else 'plain'}" for d, s, k, f in GRID]


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def setup_case(config, n, dtype, seed=0):
    """Parameters, points around the bases and random neighbour indices (repeats included, so
    several points and several slots of one point scatter into the same basis)."""
    params = [p.detach().to(dtype) for p in random_params(config, seed=seed)]
    x = (
        torch.rand(n, config.n_input_dims, dtype=torch.float64, generator=seeded(seed + 1)).to(
            dtype
        )
        * 1.2
        - 0.1
    )
    idx = torch.randint(0, config.n_bases, (n, config.k), generator=seeded(seed + 2))
    return x, idx, params


def grads(evaluate, x, idx, params, config, dy, wanted=NAMES):
    inputs = [
        t.detach().clone().requires_grad_(name in wanted) for name, t in zip(NAMES, (x, *params))
    ]
    y = evaluate(inputs[0], idx, *inputs[1:], config)
    chosen = [t for t in inputs if t.requires_grad]
    return y, torch.autograd.grad((y * dy).sum(), chosen)


TOL = {torch.float64: {"rtol": 1e-12, "atol": 1e-12}, torch.float32: {"rtol": 2e-5, "atol": 2e-5}}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("dims,shape,kernel,freqs", GRID, ids=GRID_IDS)
def test_fused_matches_torch_evaluation(dims, shape, kernel, freqs, dtype):
    config = RBFConfig(dims, 30, 5, 6, shape, kernel, freqs)
    x, idx, params = setup_case(config, 70, dtype)
    dy = torch.randn(70, 5, dtype=torch.float64, generator=seeded(9)).to(dtype)
    y, got = grads(rbf_evaluate_fused, x, idx, params, config, dy)
    y_ref, want = grads(rbf_evaluate, x, idx, params, config, dy)
    torch.testing.assert_close(y, y_ref, **TOL[dtype])
    for name, u, v in zip(NAMES, got, want):
        assert u.abs().sum() > 0, name
        torch.testing.assert_close(u, v, **TOL[dtype], msg=lambda m: f"d/d{name}: {m}")
    if shape == "full":  # tril: the upper triangle takes no gradient at all
        upper = torch.ones(dims, dims, dtype=torch.bool).triu(1)
        assert torch.equal(got[2][:, upper], torch.zeros_like(got[2][:, upper]))


@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
@pytest.mark.parametrize("wanted", NAMES)
def test_each_derivative_alone(shape, wanted):
    """Only one input requires grad: the core writes that gradient alone (dx only: no scatter)."""
    config = RBFConfig(3, 25, 4, 5, shape, "gaussian", (2.0,))
    x, idx, params = setup_case(config, 40, torch.float64, seed=3)
    dy = torch.randn(40, 4, dtype=torch.float64, generator=seeded(4))
    _, (got,) = grads(rbf_evaluate_fused, x, idx, params, config, dy, wanted=(wanted,))
    _, (want,) = grads(rbf_evaluate, x, idx, params, config, dy, wanted=(wanted,))
    assert got.abs().sum() > 0
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
def test_gradcheck_and_gradgradcheck_fused(shape):
    config = RBFConfig(3, 6, 3, 3, shape, "inverse_quadratic", (1.0, 2.0))
    x, idx, params = setup_case(config, 5, torch.float64, seed=6)
    inputs = [t.clone().requires_grad_() for t in (x, *params)]

    def fn(x, centers, shapes, weights):
        return rbf_evaluate_fused(x, idx, centers, shapes, weights, config)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("kernel,freqs", [("inverse_quadratic", (1.0, 2.0)), ("gaussian", ())])
@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
def test_gradcheck_of_the_core_double_backward(shape, kernel, freqs):
    """gradcheck of the first backward as a function of (dy, x, centers, shapes, weights),
    returning the gradients the core's double backward covers (dx, dcenters, dweights): the
    Jacobian w.r.t. every input, the shapes' included, comes from the core alone."""
    config = RBFConfig(2, 6, 3, 3, shape, kernel, freqs)
    x, idx, params = setup_case(config, 5, torch.float64, seed=15)
    dy = torch.randn(5, 3, dtype=torch.float64, generator=seeded(16))
    inputs = [t.clone().requires_grad_() for t in (dy, x, *params)]

    def first_backward(dy, x, centers, shapes, weights):
        y = rbf_evaluate_fused(x, idx, centers, shapes, weights, config)
        return torch.autograd.grad(y, (x, centers, weights), dy, create_graph=True)

    assert torch.autograd.gradcheck(first_backward, inputs)


def test_backward_never_recomputes_through_torch_unless_dshapes_is_differentiated(monkeypatch):
    """A plain backward and a double backward through dx, dcenters, dweights stay in the core;
    only a gradient flowing into dshapes recomputes through the torch evaluation."""
    config = RBFConfig(2, 10, 3, 4, "diagonal", "gaussian", (1.0,))
    x, idx, params = setup_case(config, 12, torch.float64, seed=7)
    inputs = [t.clone().requires_grad_() for t in (x, *params)]
    calls = []
    monkeypatch.setattr(rbf_eval, "rbf_evaluate", lambda *a: calls.append(1) or rbf_evaluate(*a))
    (g,) = torch.autograd.grad(
        rbf_evaluate_fused(inputs[0], idx, *inputs[1:], config).sum(), inputs[0]
    )
    firsts = torch.autograd.grad(
        rbf_evaluate_fused(inputs[0], idx, *inputs[1:], config).sum(), inputs, create_graph=True
    )
    assert all(t.requires_grad for t in firsts)
    torch.testing.assert_close(firsts[0], g, rtol=1e-13, atol=1e-13)
    torch.autograd.grad(
        firsts[0].square().sum() + firsts[1].sum() + firsts[3].sum(), inputs, retain_graph=True
    )
    assert calls == []
    torch.autograd.grad(firsts[2].sum(), inputs, allow_unused=True)
    assert calls == [1]


def test_fused_backward_skips_gradients_the_pass_does_not_use(monkeypatch):
    """grad(y, x) with parameters that require grad asks the core for dx alone."""
    config = RBFConfig(3, 10, 3, 4, "diagonal", "gaussian", ())
    x, idx, params = setup_case(config, 12, torch.float64, seed=14)
    xs = x.clone().requires_grad_() * 1.0  # not a leaf: the engine can say whether it runs
    params = [p.requires_grad_() for p in params]
    asked = []
    real = rbf_eval._core_grads
    monkeypatch.setattr(
        rbf_eval,
        "_core_grads",
        lambda dy, inputs, needs, *a: asked.append(needs) or real(dy, inputs, needs, *a),
    )
    torch.autograd.grad(rbf_evaluate_fused(xs, idx, *params, config).sum(), xs)
    rbf_evaluate_fused(xs, idx, *params, config).sum().backward()
    assert asked == [[True, False, False, False], [True, True, True, True]]


def test_double_backward_differentiates_only_what_the_pass_uses(monkeypatch):
    """grad(y, x, create_graph=True) with parameters that require grad builds no graph for their
    unused gradients; asking for all four differentiates all four."""
    config = RBFConfig(3, 10, 3, 4, "full", "inverse_quadratic", (1.0, 2.0))
    x, idx, params = setup_case(config, 12, torch.float64, seed=13)
    x.requires_grad_()
    params = [p.requires_grad_() for p in params]
    seen = []
    real = rbf_eval._engine_uses
    monkeypatch.setattr(rbf_eval, "_engine_uses", lambda *a: seen.append(real(*a)) or seen[-1])
    (g,) = torch.autograd.grad(
        rbf_evaluate_fused(x, idx, *params, config).sum(), x, create_graph=True
    )
    (g_ref,) = torch.autograd.grad(
        rbf_evaluate(x, idx, *params, config).sum(), x, create_graph=True
    )
    torch.testing.assert_close(g, g_ref, rtol=1e-13, atol=1e-13)
    every = torch.autograd.grad(
        rbf_evaluate_fused(x, idx, *params, config).sum(), (x, *params), create_graph=True
    )
    assert seen == [[True, False, False, False], [True, True, True, True]]
    assert all(t.requires_grad for t in every)


def test_same_result_for_any_thread_count():
    """Parameter gradients are summed over a fixed set of point chunks, in chunk order: bitwise
    the same for 1, 2 or 3 threads (20000 points: several chunks)."""
    config = RBFConfig(3, 200, 8, 8, "full", "inverse_quadratic", (1.0, 2.0, 4.0))
    x, idx, params = setup_case(config, 20000, torch.float32, seed=8)
    dy = torch.randn(20000, 8, generator=seeded(9))
    before = core.num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            core.set_num_threads(threads)
            y, g = grads(rbf_evaluate_fused, x, idx, params, config, dy)
            results.append((y, *g))
    finally:
        core.set_num_threads(before)
    for other in results[1:]:
        for name, a, b in zip(("y", *NAMES), results[0], other):
            assert torch.equal(a, b), name
    ref = grads(rbf_evaluate, x.double(), idx, [p.double() for p in params], config, dy.double())
    for a, b in zip(results[0], (ref[0], *ref[1])):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n", [0, 1])
def test_zero_and_one_points(n):
    config = RBFConfig(2, 8, 3, 4, "isotropic", "gaussian", ())
    x, idx, params = setup_case(config, n, torch.float64, seed=10)
    dy = torch.ones(n, 3, dtype=torch.float64)
    y, got = grads(rbf_evaluate_fused, x, idx, params, config, dy)
    _, want = grads(rbf_evaluate, x, idx, params, config, dy)
    assert y.shape == (n, 3)
    for u, v in zip(got, want):
        torch.testing.assert_close(u, v, rtol=1e-13, atol=1e-13)


def test_encoding_runs_the_fused_op(monkeypatch):
    """rbf_encode's first-order path is the fused op, not the torch evaluation."""
    config = RBFConfig(3, 20, 4, 4, "diagonal", "inverse_quadratic", (1.0, 2.0))
    params = random_params(config, seed=11)
    x = torch.rand(30, 3, dtype=torch.float64, generator=seeded(12))
    monkeypatch.setattr(rbf_eval, "rbf_evaluate", None)  # any call to it would fail
    rbf_encode(x, *params, config).sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in params)


class RecordingCore:
    """The core module, recording each rbf_eval_* call's check_idx argument."""

    def __init__(self):
        self.checks = []

    def __getattr__(self, name):
        op = getattr(core, name)
        if not name.startswith("rbf_eval_"):
            return op

        def call(*args):
            self.checks.append((name, args[-2]))  # (..., check_idx, stream)
            return op(*args)

        return call


@pytest.mark.parametrize("trusted", [False, True])
def test_indices_are_range_checked_once_by_the_forward_and_not_for_the_core_search(
    monkeypatch, trusted
):
    """The range check reads idx (on CUDA: a stream sync): the forward does it unless told the
    indices are the core's own, and the backward passes never repeat it."""
    config = RBFConfig(3, 20, 4, 4, "diagonal", "inverse_quadratic", (1.0, 2.0))
    x, idx, params = setup_case(config, 30, torch.float64, seed=13)
    recorder = RecordingCore()
    monkeypatch.setattr(_core_ops, "core", lambda: recorder)
    x.requires_grad_(True)
    params = [p.requires_grad_(True) for p in params]
    if trusted:
        y = rbf_encode(x, *params, config)
    else:
        y = rbf_evaluate_fused(x, idx, *params, config)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    g.square().sum().backward()
    names = [name for name, _ in recorder.checks]
    assert names == ["rbf_eval_forward", "rbf_eval_backward", "rbf_eval_backward_backward"]
    assert [check for _, check in recorder.checks] == [not trusted, False, False]


def test_the_forward_still_refuses_out_of_range_indices():
    config = RBFConfig(3, 20, 4, 4, "diagonal", "inverse_quadratic", (1.0, 2.0))
    x, idx, params = setup_case(config, 30, torch.float64, seed=14)
    idx[3, 1] = 20
    with pytest.raises(
        ValueError, match=re.escape("idx must hold values in [0, M) = [0, 20), got 1 out of range")
    ):
        rbf_evaluate_fused(x, idx, *params, config)


# ---- the double backward --------------------------------------------------------------------

INCOMING = ("x", "centers", "weights", "all")


def double_grads(evaluate, x, idx, params, config, dy, dd):
    """Gradients w.r.t. (dy, x, centers, shapes, weights) of sum_i <dd_i, d(y . dy)/d input_i>
    over the inputs named in ``dd`` (a dict name -> incoming gradient)."""
    leaves = [t.detach().clone().requires_grad_() for t in (dy, x, *params)]
    y = evaluate(leaves[1], idx, *leaves[2:], config)
    firsts = torch.autograd.grad(y, leaves[1:], leaves[0], create_graph=True)
    loss = sum((firsts[NAMES.index(name)] * t).sum() for name, t in dd.items())
    return torch.autograd.grad(loss, leaves, allow_unused=True)


def incoming(config, n, which, seed):
    m, d, f = config.n_bases, config.n_input_dims, config.n_features
    shapes = {"x": (n, d), "centers": (m, d), "weights": (m, f)}
    names = shapes if which == "all" else (which,)
    return {
        name: torch.randn(shapes[name], dtype=torch.float64, generator=seeded(seed + i))
        for i, name in enumerate(names)
    }


@pytest.mark.parametrize("which", INCOMING)
@pytest.mark.parametrize("dims,shape,kernel,freqs", GRID, ids=GRID_IDS)
def test_double_backward_matches_torch(dims, shape, kernel, freqs, which):
    """Incoming gradients of dx, dcenters, dweights (alone and together), float64: the core's
    gradients w.r.t. dy and every input against torch's double backward of the torch evaluation."""
    config = RBFConfig(dims, 30, 5, 6, shape, kernel, freqs)
    x, idx, params = setup_case(config, 70, torch.float64, seed=17)
    dy = torch.randn(70, 5, dtype=torch.float64, generator=seeded(18))
    dd = incoming(config, 70, which, seed=19)
    got = double_grads(rbf_evaluate_fused, x, idx, params, config, dy, dd)
    want = double_grads(rbf_evaluate, x, idx, params, config, dy, dd)
    for name, u, v in zip(("dy", *NAMES), got, want):
        if which == "weights" and name == "weights":  # dweights is linear in the weights
            assert u is None and (v is None or torch.equal(v, torch.zeros_like(v)))
            continue
        assert u.abs().sum() > 0, name
        torch.testing.assert_close(u, v, rtol=1e-11, atol=1e-11, msg=lambda m: f"d/d{name}: {m}")


@pytest.mark.parametrize("shape", ["isotropic", "diagonal", "full"])
def test_double_backward_through_dshapes_falls_back_to_torch(shape):
    """An incoming gradient of dshapes (with the others) is differentiated by torch, exactly."""
    config = RBFConfig(3, 20, 4, 5, shape, "inverse_quadratic", (1.0, 3.0))
    x, idx, params = setup_case(config, 40, torch.float64, seed=20)
    dy = torch.randn(40, 4, dtype=torch.float64, generator=seeded(21))
    dd = {
        **incoming(config, 40, "all", seed=22),
        "shapes": torch.randn(config.shapes_shape, dtype=torch.float64, generator=seeded(25)),
    }
    got = double_grads(rbf_evaluate_fused, x, idx, params, config, dy, dd)
    want = double_grads(rbf_evaluate, x, idx, params, config, dy, dd)
    for name, u, v in zip(("dy", *NAMES), got, want):
        torch.testing.assert_close(u, v, rtol=1e-11, atol=1e-11, msg=lambda m: f"d/d{name}: {m}")


def test_eikonal_loss_matches_torch():
    """The eikonal pattern: grad(y @ head, x, create_graph=True) while the parameters require grad,
    then a loss on |g| back into x and the parameters."""
    config = RBFConfig(3, 40, 8, 8, "full", "gaussian", (1.0, 2.0, 4.0))
    x, idx, params = setup_case(config, 200, torch.float64, seed=26)
    head = torch.cos(torch.arange(8, dtype=torch.float64))

    def eikonal(evaluate):
        leaves = [t.detach().clone().requires_grad_() for t in (x, *params)]
        (g,) = torch.autograd.grad(
            (evaluate(leaves[0], idx, *leaves[1:], config) @ head).sum(),
            leaves[0],
            create_graph=True,
        )
        return torch.autograd.grad(((g.norm(dim=-1) - 1) ** 2).mean(), leaves)

    for name, u, v in zip(NAMES, eikonal(rbf_evaluate_fused), eikonal(rbf_evaluate)):
        assert u.abs().sum() > 0, name
        torch.testing.assert_close(u, v, rtol=1e-11, atol=1e-12, msg=lambda m: f"d/d{name}: {m}")


def test_double_backward_same_result_for_any_thread_count():
    """The double backward's parameter gradients use the same point chunks: bitwise the same for
    1, 2 or 3 threads (20000 points: several chunks)."""
    config = RBFConfig(3, 200, 8, 8, "full", "inverse_quadratic", (1.0, 2.0, 4.0))
    x, idx, params = setup_case(config, 20000, torch.float32, seed=27)
    dy = torch.randn(20000, 8, generator=seeded(28))
    dd = {name: t.float() for name, t in incoming(config, 20000, "all", seed=29).items()}
    before = core.num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            core.set_num_threads(threads)
            results.append(double_grads(rbf_evaluate_fused, x, idx, params, config, dy, dd))
    finally:
        core.set_num_threads(before)
    for other in results[1:]:
        for name, a, b in zip(("dy", *NAMES), results[0], other):
            assert torch.equal(a, b), name
    ref = double_grads(
        rbf_evaluate,
        x.double(),
        idx,
        [p.double() for p in params],
        config,
        dy.double(),
        {name: t.double() for name, t in dd.items()},
    )
    for name, a, b in zip(("dy", *NAMES), results[0], ref):
        torch.testing.assert_close(
            a.double(), b, rtol=1e-3, atol=1e-3, msg=lambda m: f"d/d{name}: {m}"
        )


@pytest.mark.parametrize("n", [0, 1])
def test_double_backward_zero_and_one_points(n):
    config = RBFConfig(2, 8, 3, 4, "isotropic", "gaussian", (2.0,))
    x, idx, params = setup_case(config, n, torch.float64, seed=30)
    dy = torch.ones(n, 3, dtype=torch.float64)
    dd = incoming(config, n, "all", seed=31)
    got = double_grads(rbf_evaluate_fused, x, idx, params, config, dy, dd)
    want = double_grads(rbf_evaluate, x, idx, params, config, dy, dd)
    for u, v in zip(got, want):
        torch.testing.assert_close(u, v, rtol=1e-13, atol=1e-13)


# ---- the bindings' checks ----------------------------------------------------------------------


def cap(t):
    return torch.utils.dlpack.to_dlpack(t)


def valid(**change):
    """Arguments of rbf_eval_forward for N = 5, D = 3, M = 10, F = 2, K = 3 (diagonal, two
    frequencies), with some replaced."""
    args = {
        "x": torch.rand(5, 3),
        "idx": torch.randint(0, 10, (5, 3)),
        "centers": torch.rand(10, 3),
        "shapes": torch.rand(10, 3),
        "weights": torch.rand(10, 2),
        "freqs": torch.tensor([1.0, 2.0]),
        "shape": "diagonal",
        "kernel": "gaussian",
        "y": torch.empty(5, 2),
    }
    args.update(change)
    return {k: cap(v) if isinstance(v, torch.Tensor) else v for k, v in args.items()}


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"x": torch.zeros(5, 3, dtype=torch.int64)},
            "x must be float32 or float64, got DLPack dtype code 0 with 64 bits",
        ),
        (
            {"weights": torch.rand(10, 2, dtype=torch.float64)},
            "weights must have the dtype of x (float32), got float64",
        ),
        ({"x": torch.rand(5, 4)}, "x must have shape (N, 2) or (N, 3), got (5, 4)"),
        ({"centers": torch.rand(0, 3)}, "centers must have shape (M, 3) with M >= 1, got (0, 3)"),
        ({"centers": torch.rand(10, 2)}, "centers must have shape (M, 3) with M >= 1, got (10, 2)"),
        ({"shapes": torch.rand(10)}, "shapes must have shape (10, 3), got (10,)"),
        ({"shape": "full"}, "shapes must have shape (10, 3, 3), got (10, 3)"),
        ({"weights": torch.rand(9, 2)}, "weights must have shape (10, F) with F >= 1, got (9, 2)"),
        ({"freqs": torch.ones(3)}, "freqs must have shape (L,) with 1 <= L <= F = 2, got (3,)"),
        (
            {"idx": torch.zeros(5, 3, dtype=torch.int32)},
            "idx must be int64, got DLPack dtype code 0 with 32 bits",
        ),
        ({"idx": torch.zeros(4, 3, dtype=torch.int64)}, "idx must have shape (5, K), got (4, 3)"),
        (
            {"idx": torch.tensor([[0, 1, 2]] * 4 + [[-1, 10, 9]])},
            "idx must hold values in [0, M) = [0, 10), got 2 out of range",
        ),
        ({"y": torch.empty(5, 3)}, "y must have shape (5, 2), got (5, 3)"),
        ({"x": torch.rand(3, 5).t()}, "x must be contiguous (call .contiguous() first)"),
        ({"shape": "round"}, "shape must be 'isotropic', 'diagonal' or 'full', got 'round'"),
        ({"kernel": "cauchy"}, "kernel must be 'inverse_quadratic' or 'gaussian', got 'cauchy'"),
    ],
)
def test_forward_binding_errors(change, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        core.rbf_eval_forward(**valid(**change))


def _pass_args(tensors: dict, change: dict) -> dict:
    """valid()'s inputs without y, plus a backward pass's ``tensors`` with ``change`` applied."""
    args = valid()
    del args["y"]
    args.update(
        {k: cap(v) if isinstance(v, torch.Tensor) else v for k, v in (tensors | change).items()}
    )
    return args


def backward_args(**change):
    return _pass_args(
        {
            "dy": torch.rand(5, 2),
            "dx": torch.empty(5, 3),
            "dcenters": torch.empty(10, 3),
            "dshapes": torch.empty(10, 3),
            "dweights": torch.empty(10, 2),
        },
        change,
    )


@pytest.mark.parametrize(
    "change,message",
    [
        ({"dy": torch.rand(5, 3)}, "dy must have shape (5, 2), got (5, 3)"),
        ({"dx": torch.empty(5, 2)}, "dx must have shape (5, 3), got (5, 2)"),
        ({"dshapes": torch.empty(10)}, "dshapes must have shape (10, 3), got (10,)"),
        (
            {"dweights": torch.empty(10, 2, dtype=torch.float64)},
            "dweights must have the dtype of x (float32), got float64",
        ),
    ],
)
def test_backward_binding_errors(change, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        core.rbf_eval_backward(**backward_args(**change))


def test_backward_refuses_out_of_range_indices_and_skips_none_outputs():
    bad = valid(idx=torch.full((5, 3), 10))
    args = backward_args()
    args["idx"] = bad["idx"]
    with pytest.raises(
        ValueError, match=re.escape("idx must hold values in [0, M) = [0, 10), got 15 out of range")
    ):
        core.rbf_eval_backward(**args)
    core.rbf_eval_backward(**backward_args(dx=None, dcenters=None, dshapes=None, dweights=None))


def backward_backward_args(**change):
    return _pass_args(
        {
            "dy": torch.rand(5, 2),
            "ddx": torch.rand(5, 3),
            "ddcenters": torch.rand(10, 3),
            "ddweights": torch.rand(10, 2),
            "ddy": torch.empty(5, 2),
            "gx": torch.empty(5, 3),
            "gcenters": torch.empty(10, 3),
            "gshapes": torch.empty(10, 3),
            "gweights": torch.empty(10, 2),
        },
        change,
    )


@pytest.mark.parametrize(
    "change,message",
    [
        ({"dy": torch.rand(4, 2)}, "dy must have shape (5, 2), got (4, 2)"),
        ({"ddx": torch.rand(5, 2)}, "ddx must have shape (5, 3), got (5, 2)"),
        ({"ddcenters": torch.rand(9, 3)}, "ddcenters must have shape (10, 3), got (9, 3)"),
        (
            {"ddweights": torch.rand(10, 2, dtype=torch.float64)},
            "ddweights must have the dtype of x (float32), got float64",
        ),
        ({"ddy": torch.empty(5, 3)}, "ddy must have shape (5, 2), got (5, 3)"),
        ({"gx": torch.empty(5, 3, 1)}, "gx must have shape (5, 3), got (5, 3, 1)"),
        (
            {"gcenters": torch.empty(3, 10).t()},
            "gcenters must be contiguous (call .contiguous() first)",
        ),
        ({"gshapes": torch.empty(10, 3, 3)}, "gshapes must have shape (10, 3), got (10, 3, 3)"),
        ({"gweights": torch.empty(10, 3)}, "gweights must have shape (10, 2), got (10, 3)"),
        (
            {"x": torch.rand(5, 3, dtype=torch.float64)},
            "centers must have the dtype of x (float64), got float32",
        ),
    ],
)
def test_backward_backward_binding_errors(change, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        core.rbf_eval_backward_backward(**backward_backward_args(**change))


def test_backward_backward_refuses_out_of_range_indices_and_runs_with_nothing_given():
    args = backward_backward_args()
    args["idx"] = cap(torch.tensor([[0, 1, 2]] * 4 + [[3, 11, 12]]))
    message = "idx must hold values in [0, M) = [0, 10), got 2 out of range"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        core.rbf_eval_backward_backward(**args)
    none = dict.fromkeys(
        ("ddx", "ddcenters", "ddweights", "ddy", "gx", "gcenters", "gshapes", "gweights")
    )
    core.rbf_eval_backward_backward(**backward_backward_args(**none))


def test_backward_backward_without_incoming_gradients_writes_zeros():
    """Every output given is overwritten, also where no incoming gradient reaches it."""
    args = {
        "ddy": torch.full((5, 2), 7.0),
        "gx": torch.full((5, 3), 7.0),
        "gweights": torch.full((10, 2), 7.0),
    }
    core.rbf_eval_backward_backward(
        **backward_backward_args(ddx=None, ddcenters=None, ddweights=None, **args)
    )
    assert all(torch.equal(t, torch.zeros_like(t)) for t in args.values())
