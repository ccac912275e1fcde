"""A radiance field ``(x, d) -> (sigma, rgb)`` on a scene box: hash grid, density MLP, colour MLP.

Density follows instant-NGP: the position, mapped from the scene box to ``[0, 1]^3``, goes through
a hash grid and a small MLP whose first output is the log-density (``sigma = exp(h_0)``, a
truncated exponential whose gradient is clamped for stability) and whose other outputs are
geometric features. Colour comes from a second MLP over those features and the view direction
(``view="sh"``: real spherical harmonics of degree 4; ``"none"``: no view dependence).

Options from the literature (issue 25), each off by default:
- ``field_modulation="cam"``: Coordinate-Aware Modulation (Lee et al., ICLR 2024,
  :mod:`fields3d.fields.modulation`): a tri-plane over the box gives every hidden layer of both
  MLPs a scale and shift, applied to its normalised pre-activations.
  ``"cam-hash"``: the earlier variant, kept for its checkpoints and as the benchmark's peer: a
  linear map of the hash grid's own features scales and shifts the colour MLP's hidden units,
  ``h <- h * (1 + scale) + shift``, without normalisation (no grid of its own).
- ``mlp="mi"``: mi-MLP (Zhu et al., CVPR 2024): every hidden layer after the first takes the MLP's
  inputs beside the previous layer's output (the grid's features in the density MLP, the
  geometric features and direction encoding in the colour MLP). The density MLP has
  ``density_layers`` hidden layers (1 by default, where mi changes nothing there).

The colour MLP has ``color_layers + 1`` hidden layers (its first maps the inputs to the width).
Fields saved with the older ``color_net`` setting load: ``"plain"``, ``"cam"`` and ``"mi"`` are
``field_modulation="none"``, ``"cam-hash"`` and ``mlp="mi"``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_choice, check_device, check_int, check_points, check_size
from ..encodings import HashGrid
from ..encodings._levels import MAX_LEVELS
from ..errors import InputError
from .mlp import MAX_HIDDEN_LAYERS, MAX_WIDTH
from .modulation import MAX_MODULATED_LAYERS, CoordinateModulation

MODULATIONS = ("none", "cam", "cam-hash")
MLPS = ("plain", "mi")
#: The older ``color_net`` setting, as the two that replaced it.
LEGACY_COLOR_NETS = {
    "plain": {"field_modulation": "none", "mlp": "plain"},
    "cam": {"field_modulation": "cam-hash", "mlp": "plain"},
    "mi": {"field_modulation": "none", "mlp": "mi"},
}
#: Vertices per side of the CAM tri-plane over the scene box.
CAM_RESOLUTION = 128
VIEWS = ("sh", "none")
SH_DIMS = 16
#: The hash grid's finest resolution (a level past 2^30 points per axis overflows its indexing).
MAX_RESOLUTION = 2**30
#: Growth of the grid's resolution from one level to the next (the hash grid's per_level_scale).
MAX_LEVEL_GROWTH = 16
SETTINGS = (
    "n_levels",
    "n_features_per_level",
    "log2_hashmap_size",
    "base_resolution",
    "max_resolution",
    "n_geo_features",
    "n_hidden",
    "color_layers",
    "view",
    "field_modulation",
    "mlp",
    "density_layers",
    "color_net",  # the older name of field_modulation and mlp (checkpoints written before them)
)


class _TruncExp(torch.autograd.Function):
    """exp with its gradient clamped at exp(15) (instant-NGP / torch-ngp): no overflowing steps."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(max=15))


def sh_encode(d: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics of unit directions ``(N, 3)`` up to degree 3 (16 values)."""
    x, y, z = d.unbind(1)
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    return torch.stack(
        [
            torch.full_like(x, 0.28209479177387814),
            -0.48860251190291987 * y,
            0.48860251190291987 * z,
            -0.48860251190291987 * x,
            1.0925484305920792 * xy,
            -1.0925484305920792 * yz,
            0.94617469575755997 * zz - 0.31539156525251999,
            -1.0925484305920792 * xz,
            0.54627421529603959 * (xx - yy),
            0.59004358992664352 * y * (-3.0 * xx + yy),
            2.8906114426405538 * xy * z,
            0.45704579946446572 * y * (1.0 - 5.0 * zz),
            0.3731763325901154 * z * (5.0 * zz - 3.0),
            0.45704579946446572 * x * (1.0 - 5.0 * zz),
            1.4453057213202769 * z * (xx - yy),
            0.59004358992664352 * x * (-xx + 3.0 * yy),
        ],
        1,
    )


def legacy_settings(config: dict) -> dict:
    """``config`` with an older ``color_net`` key replaced by ``field_modulation`` and ``mlp``."""
    if "color_net" not in config:
        return config
    config = dict(config)
    net = config.pop("color_net")
    check_choice("color_net", net, tuple(LEGACY_COLOR_NETS))
    return {**config, **LEGACY_COLOR_NETS[net]}


def normalised_config(config: dict) -> dict:
    """A field config as :meth:`RadianceField.config` writes it now: an older ``color_net`` mapped,
    and the options added since at their defaults (what the field built from it has)."""
    defaults = {"field_modulation": "none", "mlp": "plain", "density_layers": 1}
    return {**defaults, **legacy_settings(config)}


def _linears(n_in: int, n_hidden: int, n_layers: int, n_out: int, mi: bool) -> list[nn.Linear]:
    """``n_layers`` hidden layers and an output layer; with ``mi`` every hidden layer after the first
    also takes the ``n_in`` inputs."""
    widths = [n_in] + [n_hidden + (n_in if mi else 0)] * (n_layers - 1)
    return [nn.Linear(w, n_hidden) for w in widths] + [nn.Linear(n_hidden, n_out)]


def run_mlp(linears, inputs, mi: bool, mods=None, first: int = 0) -> torch.Tensor:
    """ReLU MLP over ``linears`` (the last one the output); mi-MLP's input at every hidden layer after
    the first when ``mi``; CAM's scale and shift (``mods``, from layer ``first`` on) on every hidden
    layer when ``mods`` is given."""
    h = inputs
    for i, layer in enumerate(linears[:-1]):
        h = layer(torch.cat([h, inputs], 1) if mi and i > 0 else h)
        if mods is not None:
            h = CoordinateModulation.modulate(h, mods, first + i)
        h = torch.relu(h)
    return linears[-1](h)


class ColorNet(nn.Module):
    """``(features, dir_enc) -> rgb`` in ``(0, 1)``: ``n_layers + 1`` hidden ReLU layers.

    ``modulation="cam-hash"`` adds the linear map from the hash grid's ``n_mod`` features to a scale
    and shift per hidden unit; ``"cam"`` takes its scale and shift from the caller (``mods``).
    """

    def __init__(
        self, modulation: str, mi: bool, n_in: int, n_hidden: int, n_layers: int, n_mod: int
    ) -> None:
        super().__init__()
        self.n_in, self.mi = n_in, mi
        *hidden, out = _linears(n_in, n_hidden, n_layers + 1, 3, mi)
        self.hidden, self.out = nn.ModuleList(hidden), out
        self.modulation = None
        if modulation == "cam-hash":
            self.modulation = nn.Linear(n_mod, 2 * n_hidden * (n_layers + 1))
            nn.init.zeros_(self.modulation.weight)
            nn.init.zeros_(self.modulation.bias)

    def forward(self, inputs, grid_features, mods=None, first: int = 0) -> torch.Tensor:
        if self.modulation is None:
            return torch.sigmoid(run_mlp([*self.hidden, self.out], inputs, self.mi, mods, first))
        scale_shift = self.modulation(grid_features).chunk(2 * len(self.hidden), 1)
        h = inputs
        for i, layer in enumerate(self.hidden):
            h = layer(torch.cat([h, inputs], 1) if self.mi and i > 0 else h)
            h = torch.relu(h * (1 + scale_shift[2 * i]) + scale_shift[2 * i + 1])
        return torch.sigmoid(self.out(h))


class RadianceField(nn.Module):
    """Density and colour over the box ``aabb`` (``(2, 3)``: min and max corners).

    Args:
        aabb: the scene box; the grid covers it, and positions outside are clamped onto it.
        n_levels, n_features_per_level, log2_hashmap_size, base_resolution, max_resolution: the
            hash grid (``per_level_scale`` grows ``base_resolution`` to ``max_resolution``).
        n_geo_features: geometric features passed from the density MLP to the colour MLP.
        n_hidden: width of both MLPs (1 to 4096). color_layers: the colour MLP's hidden layers
            past its first (0 to 16). density_layers: the density MLP's hidden layers (1 to 16).
        view: ``"sh"`` or ``"none"``. field_modulation: ``"none"``, ``"cam"`` or ``"cam-hash"``.
            mlp: ``"plain"`` or ``"mi"`` (the module docstring says what each does).
        color_net: the older name of the last two (``"plain"``, ``"cam"`` or ``"mi"``); give
            either it or them.

    ``forward(x, dirs)`` and ``density(x)`` take floating-point ``(N, 3)`` tensors on the field's
    device (``dirs`` is not read with ``view="none"`` and may be None then); ``forward`` returns
    ``(N,)`` densities (>= 0) and ``(N, 3)`` colours in ``(0, 1)``, float32.

    Example:
        >>> import torch
        >>> from fields3d.fields import RadianceField
        >>> _ = torch.manual_seed(0)
        >>> field = RadianceField([[-1, -1, -1], [1, 1, 1]], n_levels=2, log2_hashmap_size=10,
        ...                       base_resolution=4, max_resolution=8, n_hidden=16)
        >>> x = torch.rand(5, 3) * 2 - 1  # (N, 3) positions in the box
        >>> dirs = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)  # (N, 3) unit
        >>> sigma, rgb = field(x, dirs)
        >>> sigma.shape, rgb.shape, rgb.dtype, bool((sigma >= 0).all())
        (torch.Size([5]), torch.Size([5, 3]), torch.float32, True)
        >>> torch.equal(field.density(x), sigma)
        True
        >>> RadianceField.from_config(field.config()).config() == field.config()
        True
        >>> cam = RadianceField([[-1, -1, -1], [1, 1, 1]], n_levels=2, log2_hashmap_size=10,
        ...                     base_resolution=4, max_resolution=8, n_hidden=16,
        ...                     field_modulation="cam", mlp="mi", density_layers=2)
        >>> cam(x, dirs)[1].shape, cam.config()["field_modulation"], cam.config()["mlp"]
        (torch.Size([5, 3]), 'cam', 'mi')
    """

    def __init__(
        self,
        aabb,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        max_resolution: int = 2048,
        n_geo_features: int = 15,
        n_hidden: int = 64,
        color_layers: int = 2,
        view: str = "sh",
        field_modulation: str = "none",
        mlp: str = "plain",
        density_layers: int = 1,
        color_net: str | None = None,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        scale = _level_growth(n_levels, base_resolution, max_resolution)
        check_size("n_geo_features", n_geo_features, 1, MAX_WIDTH)
        check_size("n_hidden", n_hidden, 1, MAX_WIDTH)
        check_size("color_layers", color_layers, 0, MAX_HIDDEN_LAYERS)
        check_size("density_layers", density_layers, 1, MAX_HIDDEN_LAYERS)
        if view not in VIEWS:
            raise InputError(f"view must be 'sh' or 'none', got {view!r}")
        field_modulation, mlp = field_options(field_modulation, mlp, color_net)
        n_modulated = density_layers + color_layers + 1
        if field_modulation == "cam" and n_modulated > MAX_MODULATED_LAYERS:
            raise InputError(
                f"field_modulation 'cam' modulates at most {MAX_MODULATED_LAYERS} hidden layers, got "
                f"density_layers + color_layers + 1 = {n_modulated}; use fewer layers"
            )
        if field_modulation == "cam" and n_hidden < 2:
            raise InputError(
                f"field_modulation 'cam' normalises each layer's units and needs n_hidden >= 2, got "
                f"{n_hidden}"
            )
        device = check_device(device)
        self.register_buffer("aabb", _box(aabb).to(device))
        self.encoding = HashGrid(
            3,
            n_levels,
            n_features_per_level,
            log2_hashmap_size,
            base_resolution,
            scale,
            device=device,
        )
        n_grid = self.encoding.n_output_dims
        mi = mlp == "mi"
        *hidden, out = _linears(n_grid, n_hidden, density_layers, 1 + n_geo_features, mi)
        self.density_net = nn.Sequential(*[m for h in hidden for m in (h, nn.ReLU())], out)
        self.mi, self.density_layers = mi, density_layers
        self.view = view
        n_in = n_geo_features + (SH_DIMS if view == "sh" else 0)
        self.color = ColorNet(field_modulation, mi, n_in, n_hidden, color_layers, n_grid)
        self.cam = None
        if field_modulation == "cam":
            self.cam = CoordinateModulation(n_modulated, "triplane", CAM_RESOLUTION, device=device)
        self.settings = dict(
            n_levels=n_levels,
            n_features_per_level=n_features_per_level,
            log2_hashmap_size=log2_hashmap_size,
            base_resolution=base_resolution,
            max_resolution=max_resolution,
            n_geo_features=n_geo_features,
            n_hidden=n_hidden,
            color_layers=color_layers,
            view=view,
            field_modulation=field_modulation,
            mlp=mlp,
            density_layers=density_layers,
        )
        self.to(device)

    def _check(self, x, dirs=None, *, with_dirs: bool = False) -> None:
        device = self.aabb.device
        check_points(
            "x",
            x,
            "a floating-point tensor of shape (N, 3)",
            dtype=None,
            device=device,
            owner="field's parameters",
        )
        if with_dirs and self.view == "sh":
            check_points(
                "dirs",
                dirs,
                f"a floating-point tensor of shape ({x.shape[0]}, 3) like x (a unit direction "
                "per position)",
                dtype=None,
                device=device,
                owner="field's parameters",
                rows=x.shape[0],
            )

    def _grid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The hash grid's features and, with CAM, the scale and shift of every hidden layer."""
        u = ((x - self.aabb[0]) / (self.aabb[1] - self.aabb[0])).clamp(0, 1).float().contiguous()
        return self.encoding(u), None if self.cam is None else self.cam(u)

    def _density_net(self, features, mods) -> torch.Tensor:
        return run_mlp(list(self.density_net[::2]), features, self.mi, mods)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` positions -> ``(N,)`` densities (>= 0)."""
        self._check(x)
        h = self._density_net(*self._grid(x))
        return _TruncExp.apply(h[:, 0])

    def forward(self, x: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3)`` positions and unit directions -> ``(N,)`` densities and ``(N, 3)`` colours."""
        self._check(x, dirs, with_dirs=True)
        features, mods = self._grid(x)
        h = self._density_net(features, mods)
        sigma = _TruncExp.apply(h[:, 0])
        inputs = (
            h[:, 1:] if self.view == "none" else torch.cat([h[:, 1:], sh_encode(dirs.float())], 1)
        )
        return sigma, self.color(inputs, features, mods, self.density_layers)

    def config(self) -> dict:
        """The settings that rebuild this field with :meth:`from_config` (with the box)."""
        return {"aabb": self.aabb.tolist(), **self.settings}

    @staticmethod
    def from_config(config: dict, device: torch.device | str | None = None) -> RadianceField:
        """The field :meth:`config` describes (``"aabb"`` is required; missing settings take the defaults)."""
        if not isinstance(config, dict):
            raise InputError(
                f"a RadianceField config must be a dict with an 'aabb' key, got {type(config).__name__}"
            )
        unknown = sorted((k for k in config if k != "aabb" and k not in SETTINGS), key=str)
        if unknown:
            raise InputError(
                f"a RadianceField config has unknown settings {unknown}; known: {['aabb', *SETTINGS]}"
            )
        if "aabb" not in config:
            raise InputError(
                f"a RadianceField config needs 'aabb' (the scene box), got keys {sorted(config)}"
            )
        return RadianceField(**legacy_settings(config), device=device)


def field_options(field_modulation, mlp, color_net=None) -> tuple[str, str]:
    """``(field_modulation, mlp)`` checked, or taken from the older ``color_net`` when it is given."""
    if color_net is not None:
        if (field_modulation, mlp) != ("none", "plain"):
            raise InputError(
                f"give field_modulation and mlp, or the older color_net, not both; got color_net="
                f"{color_net!r} with field_modulation={field_modulation!r}, mlp={mlp!r}"
            )
        check_choice("color_net", color_net, tuple(LEGACY_COLOR_NETS))
        field_modulation, mlp = LEGACY_COLOR_NETS[color_net].values()
    check_choice("field_modulation", field_modulation, MODULATIONS)
    check_choice("mlp", mlp, MLPS)
    return field_modulation, mlp


def _level_growth(n_levels, base_resolution, max_resolution) -> float:
    """The hash grid's per_level_scale taking ``base_resolution`` to ``max_resolution`` in ``n_levels``."""
    check_int("n_levels", n_levels, 1, MAX_LEVELS)
    check_int("base_resolution", base_resolution, 2)
    check_size("max_resolution", max_resolution, base_resolution, MAX_RESOLUTION)
    if n_levels == 1:
        return 1.0  # one level: its resolution is base_resolution, and there is nothing to grow
    scale = math.exp(math.log(max_resolution / base_resolution) / (n_levels - 1))
    if scale > MAX_LEVEL_GROWTH * (
        1 + 1e-12
    ):  # exactly 16 may come out of exp(log(..)) an ulp above
        raise InputError(
            f"max_resolution / base_resolution must be at most {MAX_LEVEL_GROWTH}^(n_levels - 1) (each level at most "
            f"{MAX_LEVEL_GROWTH} times finer than the last), got {max_resolution} / {base_resolution} with "
            f"n_levels={n_levels}; use more levels or a smaller max_resolution"
        )
    return min(scale, MAX_LEVEL_GROWTH)


def _box(aabb) -> torch.Tensor:
    """``aabb`` as a float32 ``(2, 3)`` tensor of finite min and max corners with max > min."""
    bad = f"aabb must be finite (2, 3) min and max corners with max > min, got {aabb!r}"
    try:
        box = torch.as_tensor(aabb, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise InputError(bad) from None
    if box.shape != (2, 3) or not torch.isfinite(box).all() or not (box[1] > box[0]).all():
        raise InputError(bad)
    if not torch.isfinite(box[1] - box[0]).all():
        raise InputError(
            f"aabb's extent max - min must be finite in float32 (at most 3.4e38 on each axis), got "
            f"{aabb!r}; scale the scene down"
        )
    return box.cpu()
