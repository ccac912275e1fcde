"""The field text-to-3D trains: density and albedo on an encoding, shaded by a point light.

DreamFusion / threestudio's implicit volume, on our encodings. A position ``x`` is normalised to
the object's box, ``p = (x - center) / radius`` in ``[-1, 1]^3``, encoded (a hash grid by default,
:func:`fields3d.encodings.create`) and mapped by a small MLP to a raw density ``h`` and an albedo
``sigmoid(a)``. The density starts as a centred blob (Magic3D / threestudio's ``blob_magic3d``):

    sigma(x) = softplus(h(p) + blob_scale * (1 - |p| / blob_radius)) / radius,

so an untrained field is a soft ball of radius ``blob_radius`` (in units of the box's half side)
and the density, per unit of the object's size, is the same at any scale.

Normals are the normalised negative density gradient, ``n = -grad sigma / |grad sigma|``, taken by
autograd; the hash grid has a double backward, so the shading's gradient trains the table
through them. Shading (DreamFusion's), with ``l`` the unit direction to a point light:

- ``"albedo"``: the albedo itself;
- ``"lambert"``: ``albedo * (ambient + (1 - ambient) * max(0, n . l))``;
- ``"textureless"``: ``ambient + (1 - ambient) * max(0, n . l)`` (a white albedo: shape alone).

With ``channels=4`` the field's colours are Latent-NeRF's latent colours instead: 4 raw values (no
sigmoid) whose renders are Stable Diffusion latents (``latents="direct"``); they are never lit, so
only ``"albedo"`` shading applies, and a :class:`BackgroundField` for them has ``channels=4``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_device, check_size, is_number
from ..encodings import create
from ..errors import InputError
from .mlp import MAX_HIDDEN_LAYERS, MAX_WIDTH, MLP

SHADINGS = ("albedo", "lambert", "textureless")
#: A hash grid small enough for two CPU cores, fine enough for a 64-pixel picture of the object.
DEFAULT_ENCODING = {
    "type": "hash_grid",
    "n_levels": 12,
    "n_features_per_level": 2,
    "log2_hashmap_size": 16,
    "base_resolution": 16,
    "per_level_scale": 1.3819,  # 16 * 1.3819^11 ~ 512
}
SETTINGS = ("encoding", "n_hidden", "n_hidden_layers", "blob_scale", "blob_radius", "channels")
CHANNELS = (3, 4)  # RGB albedo, or latent colours


class GenerativeField(nn.Module):
    """Density and albedo around ``center`` within ``radius`` (module docstring).

    Args:
        center: the object's centre (3 numbers). radius: half the side of its box (> 0).
        encoding: an encoding config dict (default :data:`DEFAULT_ENCODING`), 3 inputs.
        n_hidden, n_hidden_layers: the MLP's width (1 to 4096) and hidden layers (0 to 16).
        blob_scale: the density bias at the centre (>= 0; 0: no blob).
        blob_radius: where the bias crosses zero, in units of ``radius`` (> 0).
        channels: 3 (an RGB albedo, default) or 4 (latent colours, module docstring).
        device: where the parameters live.

    ``density(x)``: ``(N, 3)`` float -> ``(N,)`` float32 (>= 0). ``forward(x, dirs)``: densities
    and ``(N, 3)`` albedos (the radiance-field interface :func:`fields3d.render.render_rays`
    reads; ``dirs`` unused). :meth:`shade` adds normals and light.

    Example:
        >>> import torch
        >>> from fields3d.fields import GenerativeField
        >>> _ = torch.manual_seed(0)
        >>> field = GenerativeField((0, 0, 0), 1.0, n_hidden=16)
        >>> x = torch.tensor([[0.0, 0.0, 0.0], [0.9, 0.0, 0.0]])  # (N, 3): centre, outside the blob
        >>> sigma = field.density(x)
        >>> bool(sigma[0] > 9), bool(sigma[1] < 0.01)  # a soft ball of radius 0.5
        (True, True)
        >>> sigma, rgb, normals = field.shade(x, torch.tensor([[0.0, 0.0, 3.0]]).expand(2, 3))
        >>> rgb.shape, normals.shape  # (N, 3) shaded colours and unit normals
        (torch.Size([2, 3]), torch.Size([2, 3]))
        >>> round(float(normals[1, 0]), 3)  # outward at (0.9, 0, 0): along +x
        1.0
    """

    def __init__(
        self,
        center=(0.0, 0.0, 0.0),
        radius: float = 1.0,
        encoding: dict | None = None,
        n_hidden: int = 64,
        n_hidden_layers: int = 1,
        blob_scale: float = 10.0,
        blob_radius: float = 0.5,
        channels: int = 3,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        device = check_device(device)
        if not (
            isinstance(center, (tuple, list))
            and len(center) == 3
            and all(is_number(c) and math.isfinite(c) for c in center)
        ):
            raise InputError(f"center must be 3 finite numbers, got {center!r}")
        if not (is_number(radius) and 0 < radius < math.inf):
            raise InputError(f"radius must be a finite number > 0, got {radius!r}")
        if not (is_number(blob_scale) and 0 <= blob_scale < math.inf):
            raise InputError(f"blob_scale must be a finite number >= 0, got {blob_scale!r}")
        if not (is_number(blob_radius) and 0 < blob_radius < math.inf):
            raise InputError(f"blob_radius must be a finite number > 0, got {blob_radius!r}")
        check_size("n_hidden", n_hidden, 1, MAX_WIDTH)
        check_choice("channels", channels, CHANNELS)
        check_size("n_hidden_layers", n_hidden_layers, 0, MAX_HIDDEN_LAYERS)
        encoding = dict(DEFAULT_ENCODING if encoding is None else encoding)
        if not isinstance(encoding, dict):
            raise InputError(f"encoding must be an encoding config dict, got {encoding!r}")
        encoding.setdefault("n_input_dims", 3)
        self.encoding = create(encoding, device=device)
        if self.encoding.n_input_dims != 3:
            raise InputError(
                f"the encoding must take 3D positions, got n_input_dims={self.encoding.n_input_dims}"
            )
        self.channels = int(channels)
        self.net = MLP(
            self.encoding.n_output_dims, 1 + self.channels, n_hidden, n_hidden_layers
        ).to(device)
        self.register_buffer("center", torch.tensor([float(c) for c in center], device=device))
        self.radius = float(radius)
        self.blob_scale, self.blob_radius = float(blob_scale), float(blob_radius)
        self.settings = {
            "encoding": self.encoding.config(),
            "n_hidden": n_hidden,
            "n_hidden_layers": n_hidden_layers,
            "blob_scale": self.blob_scale,
            "blob_radius": self.blob_radius,
        }
        if self.channels != 3:  # RGB fields' configs stay as they were
            self.settings["channels"] = self.channels

    @property
    def aabb(self) -> torch.Tensor:
        """``(2, 3)`` the box the field covers: ``center -+ radius``."""
        return torch.stack([self.center - self.radius, self.center + self.radius])

    def config(self) -> dict:
        """The settings :meth:`from_config` rebuilds this field from."""
        return {"center": self.center.tolist(), "radius": self.radius, **self.settings}

    @staticmethod
    def from_config(config: dict, device=None) -> GenerativeField:
        if not isinstance(config, dict):
            raise InputError(
                f"a GenerativeField config must be a dict, got {type(config).__name__}"
            )
        unknown = sorted(k for k in config if k not in ("center", "radius", *SETTINGS))
        if unknown:
            raise InputError(f"a GenerativeField config has unknown settings {unknown}")
        return GenerativeField(
            **{**config, "center": tuple(config.get("center", (0, 0, 0)))}, device=device
        )

    def _raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not (isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 2):
            raise InputError(f"x must be a float tensor of shape (N, 3), got {x!r:.80}")
        p = (x.float() - self.center) / self.radius
        u = ((p + 1) / 2).clamp(0, 1).contiguous()
        h = self.net(self.encoding(u))
        blob = self.blob_scale * (1 - p.norm(dim=1) / self.blob_radius)
        return h[:, 0] + blob, h[:, 1:]

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` positions -> ``(N,)`` densities (>= 0, per world unit)."""
        return F.softplus(self._raw(x)[0]) / self.radius

    def _colors(self, a: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a) if self.channels == 3 else a

    def forward(self, x: torch.Tensor, dirs: torch.Tensor | None = None):
        """``(N, 3)`` positions -> ``(N,)`` densities and ``(N, 3)`` albedos in ``(0, 1)``
        (``(N, 4)`` raw latent colours with ``channels=4``)."""
        raw, a = self._raw(x)
        return F.softplus(raw) / self.radius, self._colors(a)

    def shade(
        self,
        x: torch.Tensor,
        light: torch.Tensor,
        shading: str = "lambert",
        ambient: float = 0.1,
        create_graph: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Densities ``(N,)``, shaded colours ``(N, 3)`` and unit normals ``(N, 3)`` at ``x``
        lit by point lights at ``light`` (``(N, 3)`` or ``(3,)``), per the module docstring.

        ``create_graph`` (default: whether grad is enabled) keeps the normals' graph so the
        shading trains the density; ``"albedo"`` shading still returns the normals (for the
        orientation regulariser), detached unless ``create_graph``.
        """
        check_choice("shading", shading, SHADINGS)
        if self.channels != 3 and shading != "albedo":
            raise InputError(
                f"a field of {self.channels} latent colour channels is not lit: shading must be "
                f"'albedo', got {shading!r}"
            )
        if create_graph is None:
            create_graph = torch.is_grad_enabled()
        with torch.enable_grad():
            xg = x.detach().float().requires_grad_(True)
            raw, a = self._raw(xg)
            sigma = F.softplus(raw) / self.radius
            (grad,) = torch.autograd.grad(sigma.sum(), xg, create_graph=create_graph)
        normals = -F.normalize(grad, dim=1, eps=1e-12)
        albedo = self._colors(a)
        if shading == "albedo":
            return sigma, albedo, normals
        to_light = F.normalize(light.to(xg) - xg.detach(), dim=-1, eps=1e-12)
        diffuse = (normals * to_light).sum(dim=1).clamp(min=0)
        light_amount = (ambient + (1 - ambient) * diffuse)[:, None]
        color = light_amount.expand(-1, 3) if shading == "textureless" else albedo * light_amount
        return sigma, color, normals


class BackgroundField(nn.Module):
    """A learned background: ray directions ``(R, 3)`` -> colours ``(R, 3)`` in ``(0, 1)`` (a
    small MLP on the direction's low-frequency Fourier features, threestudio's neural environment
    map); with ``channels=4``, ``(R, 4)`` raw latent colours (no sigmoid).

    Example:
        >>> import torch
        >>> from fields3d.fields import BackgroundField
        >>> _ = torch.manual_seed(0)
        >>> background = BackgroundField()
        >>> dirs = torch.nn.functional.normalize(torch.randn(4, 3), dim=1)  # (R, 3) unit
        >>> colors = background(dirs)
        >>> colors.shape, bool(((colors > 0) & (colors < 1)).all())
        (torch.Size([4, 3]), True)
    """

    def __init__(
        self, n_hidden: int = 16, n_frequencies: int = 2, device=None, channels: int = 3
    ) -> None:
        super().__init__()
        check_choice("channels", channels, CHANNELS)
        self.n_frequencies, self.channels = n_frequencies, int(channels)
        n_in = 3 + 6 * n_frequencies
        activation = {"output_activation": "sigmoid"} if channels == 3 else {}
        self.net = MLP(n_in, channels, n_hidden, 1, **activation).to(check_device(device))

    def forward(self, dirs: torch.Tensor) -> torch.Tensor:
        d = dirs.float()
        feats = [d]
        for k in range(self.n_frequencies):
            feats += [torch.sin(2**k * math.pi * d), torch.cos(2**k * math.pi * d)]
        return self.net(torch.cat(feats, 1)).to(dirs.dtype)
