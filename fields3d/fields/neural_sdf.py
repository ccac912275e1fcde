"""A signed distance field ``x -> f(x)`` on ``[-1, 1]^3``: a 3-D hash grid and a small MLP, ``NeuralSDF``.

The MLP sees the raw position beside the grid's features, ``mlp([x, grid((x + 1) / 2)])``, and
starts from the geometric initialisation of SAL (Atzmon & Lipman, CVPR 2020) with the grid's
input weights zeroed, as in NeuS / instant-nsr: at initialisation ``f(x) ~ |x| - sphere_radius``,
a signed distance with the right sign everywhere, which the grid then refines.

Activation: softplus with ``beta = 100`` (IGR, SAL, Neural-Pull). It behaves like ReLU away from
a thin bend, so the geometric initialisation holds, but unlike ReLU its derivative is smooth:
the normals ``grad f / |grad f|`` that Neural-Pull moves queries along, and the eikonal term
``(|grad f| - 1)^2``, then see a gradient that changes continuously instead of jumping at every
unit's kink, and the eikonal loss has a useful second derivative through the MLP.

``field_modulation="cam"`` adds Coordinate-Aware Modulation (:mod:`fields3d.fields.modulation`):
a tri-plane of ``cam_resolution`` vertices a side over the cube scales and shifts every hidden
layer's normalised pre-activations. The normalisation changes what the geometric initialisation
gives: the initial field is no longer a sphere's distance, only smooth (the reconstruction
pipeline starts from its regression onto the closing's signed distance, which does not need one).

Positions outside ``[-1, 1]^3`` are clamped for the grid (constant along the outward axis) but
not for the MLP's raw input, so the field keeps growing away from the cube.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import (
    MAX_BATCH,
    MAX_GRID,
    check_choice,
    check_device,
    check_points,
    check_size,
    dtype_str,
    is_number,
)
from ..encodings import HashGrid
from ..errors import InputError
from .mlp import MAX_HIDDEN_LAYERS, MAX_WIDTH
from .modulation import CoordinateModulation

MODULATIONS = ("none", "cam")

_GRID_KEYS = (
    "n_levels",
    "n_features_per_level",
    "log2_hashmap_size",
    "base_resolution",
    "per_level_scale",
    "interpolation",
)
_MLP_KEYS = (
    "n_hidden",
    "n_hidden_layers",
    "beta",
    "sphere_radius",
    "field_modulation",
    "cam_resolution",
)


class NeuralSDF(nn.Module):
    """``HashGrid(3 -> L*F)`` then ``MLP(3 + L*F -> [n_hidden] * n_hidden_layers -> 1)``, softplus(beta).

    Args:
        n_levels, n_features_per_level, log2_hashmap_size, base_resolution, per_level_scale,
            interpolation: the hash grid's settings (see :class:`~fields3d.encodings.HashGridConfig`;
            its ``[0, 1]`` spans this field's ``[-1, 1]``).
        n_hidden, n_hidden_layers: the MLP's width (1 to 4096) and number of hidden layers (1 to 16).
        beta: the softplus sharpness (finite, > 0).
        sphere_radius: radius of the sphere the initial field approximates, in ``(0, 1]``.
        field_modulation: ``"none"`` or ``"cam"``; cam_resolution: the CAM tri-plane's vertices
            per side (2 to 1024).
        device: where the parameters live.

    ``forward(x)``: ``(N, 3)`` positions (the parameters' dtype, float32 unless the module was
    converted with ``.double()``) -> ``(N,)`` signed distances, negative inside.

    Example:
        >>> import torch
        >>> from fields3d.fields import NeuralSDF
        >>> _ = torch.manual_seed(0)
        >>> sdf = NeuralSDF(n_levels=4, log2_hashmap_size=12, n_hidden=32)
        >>> x = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]])  # (N, 3) float32
        >>> f = sdf(x)  # at initialisation about |x| - 0.5
        >>> f.shape, bool(f[0] < 0 < f[1])
        (torch.Size([2]), True)
        >>> f, g = sdf.gradient(x)  # (N,) values and (N, 3) gradients
        >>> g.shape, bool(g[1, 0] > 0)  # pointing outward
        (torch.Size([2, 3]), True)
        >>> sdf.grid_values(8).shape  # values on an 8^3 grid over [-1, 1]^3
        torch.Size([8, 8, 8])
    """

    def __init__(
        self,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float = 1.5,
        interpolation: str = "linear",
        n_hidden: int = 64,
        n_hidden_layers: int = 2,
        beta: float = 100.0,
        sphere_radius: float = 0.5,
        field_modulation: str = "none",
        cam_resolution: int = 64,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check_size("n_hidden", n_hidden, 1, MAX_WIDTH)
        check_size("n_hidden_layers", n_hidden_layers, 1, MAX_HIDDEN_LAYERS)
        if not is_number(beta) or not beta > 0:
            raise InputError(f"beta must be a number > 0, got {beta!r}")
        if not math.isfinite(
            beta
        ):  # softplus(inf * x) is NaN at x = 0 and its gradient NaN everywhere
            raise InputError(
                f"beta must be finite, got {beta!r}; use a large number such as 1000 for a sharp bend"
            )
        if not is_number(sphere_radius) or not 0 < sphere_radius <= 1:
            raise InputError(f"sphere_radius must be a number in (0, 1], got {sphere_radius!r}")
        check_choice("field_modulation", field_modulation, MODULATIONS)
        device = check_device(device)
        self.encoding = HashGrid(
            3,
            n_levels,
            n_features_per_level,
            log2_hashmap_size,
            base_resolution,
            per_level_scale,
            interpolation,
            device=device,
        )
        self._mlp_settings = {
            "n_hidden": n_hidden,
            "n_hidden_layers": n_hidden_layers,
            "beta": float(beta),
            "sphere_radius": float(sphere_radius),
        }
        if field_modulation == "cam":  # absent without CAM: configs saved before it read the same
            self._mlp_settings.update(field_modulation="cam", cam_resolution=cam_resolution)
        widths = [3 + self.encoding.n_output_dims] + [n_hidden] * n_hidden_layers + [1]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(w_in, w_out, device=device))
            if i < n_hidden_layers:
                layers.append(nn.Softplus(beta=beta))
        self.mlp = nn.Sequential(*layers)
        self._geometric_init(sphere_radius)
        self.cam = None
        if field_modulation == "cam":
            check_size("cam_resolution", cam_resolution, 2, 1024)
            if n_hidden < 2:
                raise InputError(
                    "field_modulation 'cam' normalises each layer's units and needs n_hidden >= 2, "
                    f"got {n_hidden}"
                )
            self.cam = CoordinateModulation(
                n_hidden_layers, "triplane", cam_resolution, device=device
            )

    @torch.no_grad()
    def _geometric_init(self, radius: float) -> None:
        linears = [m for m in self.mlp if isinstance(m, nn.Linear)]
        for i, lin in enumerate(linears):
            if lin is linears[-1]:
                nn.init.normal_(
                    lin.weight, mean=math.sqrt(math.pi) / math.sqrt(lin.in_features), std=1e-4
                )
                nn.init.constant_(lin.bias, -radius)
            else:
                nn.init.normal_(lin.weight, 0.0, math.sqrt(2.0) / math.sqrt(lin.out_features))
                nn.init.zeros_(lin.bias)
            if i == 0:
                lin.weight[
                    :, 3:
                ].zero_()  # the grid's features start silent: the MLP alone draws the sphere

    @property
    def device(self) -> torch.device:
        return self.encoding.params.device

    def config(self) -> dict:
        """The constructor's settings as a JSON-able dict; ``NeuralSDF.from_config(d)`` rebuilds the module."""
        grid = self.encoding.spec
        return {
            "hash_grid": {k: getattr(grid, k) for k in _GRID_KEYS},
            "mlp": dict(self._mlp_settings),
        }

    @classmethod
    def from_config(cls, config: dict, *, device: torch.device | str | None = None) -> NeuralSDF:
        """A freshly initialised module with the settings of :meth:`config` (load a state_dict into it)."""
        if not isinstance(config, dict) or set(config) != {"hash_grid", "mlp"}:
            got = sorted(config, key=str) if isinstance(config, dict) else type(config).__name__
            raise InputError(
                f"a NeuralSDF config must be a dict with keys 'hash_grid' and 'mlp', got {got}"
            )
        for part in ("hash_grid", "mlp"):
            if not isinstance(config[part], dict):
                raise InputError(
                    f"a NeuralSDF config's {part!r} must be a dict of settings, got "
                    f"{type(config[part]).__name__}"
                )
        grid, mlp = dict(config["hash_grid"]), dict(config["mlp"])
        unknown = sorted(set(grid) - set(_GRID_KEYS), key=str) + sorted(
            set(mlp) - set(_MLP_KEYS), key=str
        )
        if unknown:
            raise InputError(
                f"a NeuralSDF config has unknown settings {unknown}; known: {[*_GRID_KEYS, *_MLP_KEYS]}"
            )
        return cls(**grid, **mlp, device=device)

    def _check(self, x) -> None:
        params = self.encoding.params
        check_points(
            "x",
            x,
            f"{dtype_str(params.dtype)} of shape (N, 3)",
            dtype=params.dtype,
            device=params.device,
            owner="field's parameters",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        u = ((x + 1.0) * 0.5).clamp(0.0, 1.0)
        h = torch.cat((x, self.encoding(u)), dim=1)
        if self.cam is None:
            return self.mlp(h).squeeze(1)
        mods = self.cam(u)
        for i, layer in enumerate(self.mlp[:-1:2]):
            h = self.mlp[2 * i + 1](self.cam.modulate(layer(h), mods, i))
        return self.mlp[-1](h).squeeze(1)

    def gradient(
        self, x: torch.Tensor, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), grad_x f(x))``: ``(N,)`` and ``(N, 3)``, by autograd.

        With ``create_graph=True`` both stay differentiable (w.r.t. the parameters, and w.r.t.
        ``x`` when it requires grad): losses on the gradient (eikonal, pulling along the normal)
        train the field through the hash grid's double backward. Otherwise both come back detached.
        """
        self._check(x)
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            f = self(x)
            (g,) = torch.autograd.grad(f, x, torch.ones_like(f), create_graph=create_graph)
        return (f, g) if create_graph else (f.detach(), g.detach())

    @torch.no_grad()
    def grid_values(self, resolution: int, chunk: int = 2**18) -> torch.Tensor:
        """Values on the ``resolution``^3 grid spanning ``[-1, 1]^3``, ``chunk`` points at a time
        (``resolution`` from 2 to ``MAX_GRID``, 2048; ``chunk`` from 1 to ``MAX_BATCH``, 2^24).

        Returns ``(R, R, R)`` on the module's device, ``out[i, j, k]`` at ``-1 + (i, j, k) * 2 / (R - 1)``
        (the layout of :class:`~fields3d.geometry.closing.GridSDF`; marching cubes on it
        with ``spacing=(2 / (R - 1),) * 3`` and vertices shifted by -1 gives world coordinates).
        """
        check_size("resolution", resolution, 2, MAX_GRID)
        check_size("chunk", chunk, 1, MAX_BATCH)
        dtype, device = self.encoding.params.dtype, self.device
        axis = torch.linspace(-1.0, 1.0, resolution, dtype=dtype, device=device)
        out = torch.empty(resolution**3, dtype=dtype, device=device)
        plane = resolution * resolution
        jk = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
        rows = max(1, chunk // plane)
        for i0 in range(0, resolution, rows):
            i1 = min(i0 + rows, resolution)
            xs = axis[i0:i1].repeat_interleave(plane).unsqueeze(1)
            pts = torch.cat((xs, jk.repeat(i1 - i0, 1)), dim=1)
            for s in range(0, pts.shape[0], chunk):
                out[i0 * plane + s : i0 * plane + min(s + chunk, pts.shape[0])] = self(
                    pts[s : s + chunk]
                )
        return out.view(resolution, resolution, resolution)
