"""Adaptive radial-basis-function encoding (NeuRBF, Chen et al., ICCV 2023).

Model. ``M`` bases, each a center ``c_j`` (D,), a shape ``A_j`` and a feature weight ``w_j`` (F,).
A point ``x`` reads its ``K`` nearest centers ``j_1 .. j_K`` (Euclidean distance to the centers)::

    r2_j  = |A_j (x - c_j)|^2        A_j = s_j I           (shape "isotropic", shapes (M,))
                                     A_j = diag(s_j)       (shape "diagonal",  shapes (M, D))
                                     A_j = tril(S_j)       (shape "full",      shapes (M, D, D);
                                                            the upper triangle is ignored)
    phi_j = 1 / (1 + r2_j)           kernel "inverse_quadratic"
          = exp(-r2_j)               kernel "gaussian"
    y_f   = sum_k w_{j_k, f} b_f(phi_{j_k})

with NeuRBF's sinusoidal composition ``b_f(phi) = sin(omega_{f mod L} phi)`` over the
``L = len(frequencies)`` frequencies, channel-wise (channel ``f`` uses frequency ``f mod L``), or
``b_f(phi) = phi`` (plain RBF features) when ``frequencies`` is empty. The phase is 0, so a
basis' contribution vanishes with its kernel value, as the plain RBF's does: that keeps the jump
small where a point's K-nearest set changes. Output: ``(N, F)``.

Where the work runs. The neighbour search is the core op (:func:`~fields3d.geometry.knn.knn`,
a uniform grid over the centers, CPU and CUDA). It is recomputed at every forward, under
``no_grad``, from the current centers: rebuilding the grid is one counting sort of the ``M``
centers, cheap beside the ``N x K`` evaluation, and centers that move during training always
read their true nearest bases. The evaluation over the ``(N, K)`` neighbours is a second core
op, fused (:func:`~fields3d.encodings.rbf_eval.rbf_evaluate_fused`: one pass over the points, no
``N x K x F`` intermediates), with a fused backward for the first derivatives w.r.t. positions,
centers, shapes and weights, and a fused double backward for second derivatives (e.g. eikonal
losses) that flow through the position, center and weight gradients. Only a second derivative
through the shapes' gradient (a loss on ``d/d shapes``) recomputes in differentiable torch
(:func:`~fields3d.encodings.rbf_eval.rbf_evaluate`), exact at the torch path's speed. The
neighbour selection itself is piecewise constant (no gradient flows through the choice).

Domain: any; the centers start uniformly in ``[0, 1]^D`` (:meth:`RBFEncoding.init_from_points`
places them on data). A point with a NaN coordinate encodes to NaN and contributes no gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, check_dense, dtype_str, is_int, is_number, shape_str
from ..errors import InputError
from ..geometry.knn import MAX_K, knn
from ._table_op import check_inputs
from .base import Encoding
from .factory import register
from .rbf_eval import rbf_evaluate_fused

MAX_BASES = 2**24
MAX_FEATURES = 256
SHAPES = ("isotropic", "diagonal", "full")
KERNELS = ("inverse_quadratic", "gaussian")
#: The largest composition frequency. A feature is sin(omega * phi) with phi in (0, 1]: at
#: omega = 1e4 float32 still resolves the phase to omega * 2^-24 = 6e-4 rad and the derivatives
#: (omega, omega^2 = 1e8 for eikonal double backward) stay far inside float32; past ~1e7 the phase
#: is rounding noise, and past 3.4e38 the argument overflows to inf and the features turn NaN.
MAX_FREQUENCY = 1e4


@dataclass(frozen=True)
class RBFConfig:
    """Settings of an RBF encoding; validated on construction (raises InputError).

    Attributes:
        n_input_dims: D, 2 or 3. n_bases: M, 1 to 2^24. n_features: F, 1 to 256.
        k: K, the nearest bases each point reads, 1 to ``MAX_K`` of
            :mod:`fields3d.geometry.knn` and at most M.
        shape: ``"isotropic"``, ``"diagonal"`` or ``"full"`` (the module doc's ``A_j``).
        kernel: ``"inverse_quadratic"`` or ``"gaussian"``.
        frequencies: at most F numbers in ``(0, 1e4]`` for the sinusoidal composition (stored
            as a tuple of floats), or empty for plain RBF features.

    Derived: ``shapes_shape`` (``(M,)``, ``(M, D)`` or ``(M, D, D)``), ``n_output_dims`` (F) and
    ``n_params`` (centers, shapes and weights).

    Example:
        >>> from fields3d.encodings import RBFConfig
        >>> cfg = RBFConfig(n_input_dims=2, n_bases=64, n_features=8, k=4, shape="full")
        >>> cfg.shapes_shape, cfg.n_output_dims, cfg.n_params  # 64 * (2 + 4 + 8)
        ((64, 2, 2), 8, 896)
        >>> RBFConfig(n_bases=4, k=8)
        Traceback (most recent call last):
            ...
        fields3d.errors.InputError: k (8) must be at most n_bases (4); use fewer neighbours or more bases
    """

    n_input_dims: int = 3
    n_bases: int = 4096
    n_features: int = 16
    k: int = 8
    shape: str = "diagonal"
    kernel: str = "inverse_quadratic"
    frequencies: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)

    def __post_init__(self) -> None:
        check_choice("n_input_dims", self.n_input_dims, (2, 3))
        if not is_int(self.n_bases) or not 1 <= self.n_bases <= MAX_BASES:
            raise InputError(
                f"n_bases must be an integer from 1 to {MAX_BASES}, got {self.n_bases!r}"
            )
        if not is_int(self.n_features) or not 1 <= self.n_features <= MAX_FEATURES:
            raise InputError(
                f"n_features must be an integer from 1 to {MAX_FEATURES}, got {self.n_features!r}"
            )
        if not is_int(self.k) or not 1 <= self.k <= MAX_K:
            raise InputError(f"k must be an integer from 1 to {MAX_K}, got {self.k!r}")
        if self.k > self.n_bases:
            raise InputError(
                f"k ({self.k}) must be at most n_bases ({self.n_bases}); use fewer neighbours or more bases"
            )
        check_choice("shape", self.shape, SHAPES)
        check_choice("kernel", self.kernel, KERNELS)
        self._check_frequencies()

    def _check_frequencies(self) -> None:
        f = self.frequencies
        ok = isinstance(f, (list, tuple)) and len(f) <= self.n_features
        ok = ok and all(
            is_number(v) and 0 < v <= MAX_FREQUENCY for v in f
        )  # refuses NaN, inf and bools too
        if not ok:
            raise InputError(
                f"frequencies must be a list of at most n_features ({self.n_features}) numbers in "
                f"(0, {MAX_FREQUENCY:g}] (empty: plain RBF features), got {f!r}; channel f uses frequency "
                "f mod L, so give at most one frequency per feature"
            )
        object.__setattr__(self, "frequencies", tuple(float(v) for v in f))

    @property
    def shapes_shape(self) -> tuple[int, ...]:
        """Shape of the shape parameters: (M,), (M, D) or (M, D, D)."""
        m, d = self.n_bases, self.n_input_dims
        return {"isotropic": (m,), "diagonal": (m, d), "full": (m, d, d)}[self.shape]

    @property
    def n_output_dims(self) -> int:
        return self.n_features

    @property
    def n_params(self) -> int:
        m, d = self.n_bases, self.n_input_dims
        return m * d + math.prod(self.shapes_shape) + m * self.n_features

    def channel_frequencies(self, like: torch.Tensor) -> torch.Tensor | None:
        """``(F,)`` frequency of each channel (``f mod L``), in ``like``'s dtype and device; None if plain."""
        f = self.frequencies
        if not f:
            return None
        return torch.tensor(
            [f[c % len(f)] for c in range(self.n_features)], dtype=like.dtype, device=like.device
        )

    def to_dict(self) -> dict:
        return {
            "n_input_dims": self.n_input_dims,
            "n_bases": self.n_bases,
            "n_features": self.n_features,
            "k": self.k,
            "shape": self.shape,
            "kernel": self.kernel,
            "frequencies": list(self.frequencies),
        }


def shape_params(config: RBFConfig, inverse_scale: torch.Tensor) -> torch.Tensor:
    """Shape parameters of ``config.shape`` for per-basis inverse scales ``(M,)`` (``A_j = s_j I``)."""
    s = inverse_scale
    if config.shape == "isotropic":
        return s.clone()
    if config.shape == "diagonal":
        return s[:, None].expand(-1, config.n_input_dims).clone()
    return s[:, None, None] * torch.eye(config.n_input_dims, dtype=s.dtype, device=s.device)


def _check_params(centers, shapes, weights, config: RBFConfig) -> None:
    m, d, f = config.n_bases, config.n_input_dims, config.n_features
    if not isinstance(weights, torch.Tensor) or weights.dtype not in (torch.float32, torch.float64):
        got = (
            dtype_str(weights.dtype)
            if isinstance(weights, torch.Tensor)
            else type(weights).__name__
        )
        raise InputError(f"weights must be a float32 or float64 tensor, got {got}")
    expected = (
        ("centers", centers, (m, d)),
        ("shapes", shapes, config.shapes_shape),
        ("weights", weights, (m, f)),
    )
    for name, t, want in expected:
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != want or t.dtype != weights.dtype:
            got = (
                f"{dtype_str(t.dtype)} {shape_str(t)}"
                if isinstance(t, torch.Tensor)
                else type(t).__name__
            )
            raise InputError(
                f"{name} must have shape {want} and the weights' dtype for this config, got {got}"
            )
        check_dense(name, t)
        if t.device != weights.device:
            raise InputError(f"{name} must be on {weights.device} like the weights, got {t.device}")


def rbf_encode(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    config: RBFConfig,
) -> torch.Tensor:
    """Evaluate an RBF encoding at positions.

    Args:
        x: ``(N, D)`` positions, float32 (float64 on the CPU), in the parameters' dtype and device.
        centers: ``(M, D)``; shapes: ``config.shapes_shape``; weights: ``(M, F)``.
        config: the encoding's :class:`RBFConfig`.

    Returns:
        ``(N, F)`` in ``x``'s dtype, differentiable twice w.r.t. ``x``, ``centers``, ``shapes``
        and ``weights`` (the K nearest centers are found by the core under ``no_grad``).

    Example:
        >>> import torch
        >>> from fields3d.encodings import RBFConfig, rbf_encode
        >>> from fields3d.encodings.reference import rbf_reference
        >>> cfg = RBFConfig(n_input_dims=2, n_bases=64, n_features=8, k=4)  # diagonal shapes
        >>> gen = torch.Generator().manual_seed(0)
        >>> centers = torch.rand(64, 2, generator=gen)  # (M, D)
        >>> shapes = torch.full(cfg.shapes_shape, 8.0)  # (M, D): inverse radii 1/8
        >>> weights = torch.randn(64, 8, generator=gen, requires_grad=True)  # (M, F)
        >>> x = torch.rand(100, 2, generator=gen)  # (N, D)
        >>> y = rbf_encode(x, centers, shapes, weights, cfg)
        >>> y.shape, y.dtype
        (torch.Size([100, 8]), torch.float32)
        >>> torch.allclose(y, rbf_reference(x, centers, shapes, weights, cfg), atol=1e-5)
        True
        >>> (dw,) = torch.autograd.grad(y.sum(), weights)  # (M, F)
        >>> dw.shape
        torch.Size([64, 8])
    """
    _check_params(centers, shapes, weights, config)
    check_inputs(
        x,
        weights,
        n_dims=config.n_input_dims,
        n_entries=config.n_bases,
        n_features=config.n_features,
        name="RBF encoding",
    )
    nan = torch.isnan(x).any(dim=1, keepdim=True)
    xs = torch.where(nan, torch.zeros_like(x), x)
    idx = knn(centers.detach(), xs.detach(), config.k).indices
    y = rbf_evaluate_fused(
        xs, idx, centers, shapes, weights, config, check_idx=False
    )  # idx: the core's search
    return torch.where(nan, torch.full_like(y, float("nan")), y)


def weighted_kmeans(
    points: torch.Tensor,
    weights: torch.Tensor,
    n_centers: int,
    iters: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Lloyd's algorithm with point weights: ``(P, D)``, ``(P,)`` -> ``(n_centers, D)`` centers.

    Seeds are points drawn with probability proportional to weight (without replacement while
    enough points have weight); each iteration assigns every point to its nearest center (the core
    search, k = 1) and moves each center to the weighted mean of its points (one with none stays).
    """
    replace = int((weights > 0).sum()) < n_centers
    seeds = torch.multinomial(
        weights.cpu().double(), n_centers, replacement=replace, generator=generator
    )
    centers = points[seeds.to(points.device)].clone()
    for _ in range(iters):
        nearest = knn(centers, points, 1).indices[:, 0]
        mass = torch.zeros(n_centers, dtype=points.dtype, device=points.device).index_add_(
            0, nearest, weights
        )
        sums = torch.zeros_like(centers).index_add_(0, nearest, points * weights[:, None])
        moved = mass > 0
        centers[moved] = sums[moved] / mass[moved, None]
    return centers


def center_spacing(centers: torch.Tensor, k: int, fallback: float) -> torch.Tensor:
    """``(M,)`` mean distance from each center to its ``min(k, M - 1)`` nearest other centers.

    Zero spacings (duplicate centers) take the median of the positive ones; with a single center
    (or all duplicates) every spacing is ``fallback``.
    """
    m = centers.shape[0]
    if m == 1:
        return torch.full((1,), fallback, dtype=centers.dtype, device=centers.device)
    dist2 = knn(centers, centers, min(k + 1, m, MAX_K)).dist2[:, 1:]  # column 0: the center itself
    h = dist2.clamp(min=0).sqrt().mean(dim=1)
    positive = h[h > 0]
    fill = (
        positive.median()
        if positive.numel()
        else torch.tensor(fallback, dtype=h.dtype, device=h.device)
    )
    return torch.where(h > 0, h, fill)


@register("rbf")
class RBFEncoding(Encoding):
    """Adaptive RBF encoding as an ``nn.Module``: ``(N, D)`` -> ``(N, n_features)`` (see the module doc).

    Parameters (float32; ``.double()`` on the CPU for gradcheck): ``centers`` ``(M, D)``
    uniform in ``[0, 1]^D``; ``shapes`` (``(M,)``, ``(M, D)`` or ``(M, D, D)``) with every basis'
    inverse scale ``M^(1/D)`` (radius about the mean spacing); ``weights`` ``(M, F)`` uniform in
    +-1e-4, like the grid encodings' tables.

    Args:
        n_input_dims, n_bases, n_features, k, shape, kernel, frequencies: the :class:`RBFConfig`
            settings.
        device: where the parameters are allocated (default: torch's default device).

    Example:
        >>> import torch
        >>> from fields3d.encodings import RBFEncoding
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> enc = RBFEncoding(n_input_dims=2, n_bases=16, n_features=4, k=4)
        >>> [tuple(p.shape) for p in (enc.centers, enc.shapes, enc.weights)]  # (M, D) (M, D) (M, F)
        [(16, 2), (16, 2), (16, 4)]
        >>> enc(torch.rand(10, 2)).shape  # (N, D) -> (N, F)
        torch.Size([10, 4])
        >>> t = torch.linspace(0, 1, 200)
        >>> line = torch.stack([t, torch.full_like(t, 0.5)], dim=1)  # (P, 2): points on y = 0.5
        >>> _ = enc.init_from_points(line, generator=torch.Generator().manual_seed(0))
        >>> bool((enc.centers[:, 1] == 0.5).all())  # the bases moved onto the data
        True
    """

    def __init__(
        self,
        n_input_dims: int = 3,
        n_bases: int = 4096,
        n_features: int = 16,
        k: int = 8,
        shape: str = "diagonal",
        kernel: str = "inverse_quadratic",
        frequencies: list[float] | tuple[float, ...] = (1.0, 2.0, 4.0, 8.0),
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.spec = RBFConfig(n_input_dims, n_bases, n_features, k, shape, kernel, frequencies)
        self.n_input_dims = n_input_dims
        self.n_output_dims = self.spec.n_output_dims
        opts = {"dtype": torch.float32, "device": device}
        self.centers = nn.Parameter(torch.rand(n_bases, n_input_dims, **opts))
        scale = torch.full((n_bases,), float(n_bases) ** (1.0 / n_input_dims), **opts)
        self.shapes = nn.Parameter(shape_params(self.spec, scale))
        self.weights = nn.Parameter(torch.empty(n_bases, n_features, **opts).uniform_(-1e-4, 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rbf_encode(x, self.centers, self.shapes, self.weights, self.spec)

    def config(self) -> dict:
        return {"type": self.type_name, **self.spec.to_dict()}

    @torch.no_grad()
    def init_from_points(
        self,
        points: torch.Tensor,
        weights: torch.Tensor | None = None,
        iters: int = 10,
        *,
        generator: torch.Generator | None = None,
    ) -> RBFEncoding:
        """Place the bases on data: weighted k-means of ``points``, shapes from the center spacing.

        Args:
            points: ``(P, D)`` finite, in the parameters' dtype and device, ``P >= 1``.
            weights: ``(P,)`` non-negative importance (e.g. a target's gradient magnitude), at
                least one positive; None: all 1. Heavier regions draw more centers.
            iters: Lloyd iterations (>= 0) after seeding (:func:`weighted_kmeans`).
            generator: for the seeding draw (default: torch's global generator).

        Sets ``centers`` to the k-means centers and ``shapes`` to inverse scales ``1 / h_j``, with
        ``h_j`` the mean distance to the ``min(k, M - 1)`` nearest other centers
        (:func:`center_spacing`); ``weights`` are kept. Returns ``self``.
        """
        w = self._check_init(points, weights, iters)
        centers = weighted_kmeans(points.detach(), w, self.spec.n_bases, iters, generator)
        extent = float((points.amax(dim=0) - points.amin(dim=0)).norm()) or 1.0
        h = center_spacing(centers, self.spec.k, fallback=extent)
        self.centers.copy_(centers)
        self.shapes.copy_(shape_params(self.spec, 1.0 / h))
        return self

    def _check_init(self, points, weights, iters) -> torch.Tensor:
        d, ref = self.n_input_dims, self.weights
        want = (
            f"points must be {dtype_str(ref.dtype)} of shape (P, {d}) with P >= 1 on {ref.device}"
        )
        if not isinstance(points, torch.Tensor):
            raise InputError(f"{want}, got {type(points).__name__}")
        fits = points.dtype == ref.dtype and points.dim() == 2 and points.shape[1] == d
        if not (fits and len(points) and points.device == ref.device):
            raise InputError(
                f"{want}, got {dtype_str(points.dtype)} {shape_str(points)} on {points.device}"
            )
        if not is_int(iters) or iters < 0:
            raise InputError(f"iters must be an integer >= 0, got {iters!r}")
        if weights is None:
            return torch.ones(len(points), dtype=points.dtype, device=points.device)
        ok = isinstance(weights, torch.Tensor) and tuple(weights.shape) == (len(points),)
        ok = ok and bool(
            torch.isfinite(weights).all() and (weights >= 0).all() and (weights > 0).any()
        )
        if not ok:
            raise InputError(
                f"weights must be a finite non-negative tensor of shape ({len(points)},) with a positive entry"
            )
        return weights.to(points.dtype).detach()

    def extra_repr(self) -> str:
        c = self.spec
        return (
            f"{c.n_input_dims}D, n_bases={c.n_bases}, F={c.n_features}, k={c.k}, shape={c.shape!r}, "
            f"kernel={c.kernel!r}, frequencies={list(c.frequencies)}"
        )
