"""A learned occupancy network for empty-space skipping (LeC2O-NeRF, Mi and Xu, 2024).

In place of a dense occupancy grid, a small network ``p(x) = sigmoid(MLP(HashGrid(x)))`` says
which points of the scene box are occupied; the marcher keeps the candidate steps it calls
occupied (``p > 0.5``, :meth:`OccupancyNetwork.spec`). Its memory is a hash table of a few levels,
whatever the box's size, where a grid's grows with the cube of its resolution.

It trains beside the radiance field, in the same steps, on probe points drawn from each batch's
candidate samples, with two losses:

- the **density supervision** (:func:`density_supervision_loss`): binary cross-entropy of ``p``
  against targets from the radiance field's density, detached: a probe is occupied when its
  opacity over one step, ``sigma * step``, exceeds ``min(threshold, its batch mean)`` (the
  occupancy grid's rule, so both methods call the same points occupied), the occupied probes
  weighted by how much rarer they are than the empty ones (at most 20 times);
- the **imbalanced occupancy loss** (:func:`imbalanced_occupancy_loss`): LeC2O's prior that most
  points are empty, as a load-balancing loss (Switch Transformer's ``N sum_i f_i P_i`` over the two
  classes, ``f`` the share of probes called occupied or empty, ``P`` the mean probability) whose
  two terms are weighted by ``empty_share`` and ``1 - empty_share``: its gradient vanishes when
  the share of probes called empty is ``empty_share``, pushes ``p`` down while fewer are, up while
  more are.

Simplifications against the paper: no separate small "empty space" radiance network (points
called empty are skipped, not rendered by a second network), the radiance field's output is not
scaled by the gate value (the network is trained by the two losses alone, not through the
rendering loss), and the paper's explicit density loss on the radiance field is left out; the
balancing loss's form and weighting are ours, from the paper's description (a hyper-parameter
setting the share of empty points); the class weighting of the supervision is ours too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_device, check_int, check_size, is_number
from ..encodings import HashGrid
from ..errors import InputError
from .march import MAX_SUBDIVIDE, GridSpec, OccupancyTest
from .occupancy import OccupancyGrid, pack_bits

SETTINGS = (
    "n_levels",
    "log2_hashmap_size",
    "base_resolution",
    "max_resolution",
    "n_hidden",
    "subdivide",
)
INIT_LOGIT = 2.0  # p = 0.88 everywhere at first: every point occupied until the losses say not
THRESHOLD = 0.01  # sigma * step above which a probe is occupied (OccupancyGrid.update's default)
#: The most weight an occupied probe gets in the supervision. Along rays through a large sparse box
#: (benchmarks/nerf_occupancy.py) under 1% of probes are occupied; unweighted, the empty ones
#: outvoted them and the network skipped parts of the objects (1.4 dB below the grid; 2.6 above it
#: weighted), and on spot the weighting changed nothing (26.0 against 26.2 dB).
MAX_POS_WEIGHT = 20.0
CHUNK = 1 << 18  # points per network query when deriving a grid
#: Weight of the imbalanced occupancy loss beside the density supervision. On spot at 300 steps,
#: 0.1 left the network calling most candidates occupied (twice the samples per ray of 1.0, no
#: better PSNR); its push (up to 2 / N a point) can outweigh the supervision (1 / N), so the
#: pipeline marches every candidate for a short warm-up while the field forms.
BALANCE = 1.0


class OccupancyNetwork(nn.Module):
    """Occupancy probability over the box ``aabb``: a hash grid of few levels and a tiny MLP.

    Args:
        aabb: ``(2, 3)`` min and max corners; points outside are clamped onto the box.
        n_levels, log2_hashmap_size, base_resolution, max_resolution: the hash grid (2 features a
            level). n_hidden: the MLP's one hidden layer (1 to 1024).
        subdivide: :meth:`spec`'s coarse candidate steps, in marching steps (1 to 64: the
            network is asked once per ``subdivide`` steps along empty stretches).

    ``forward(x)`` takes ``(N, 3)`` float positions on the network's device and returns ``(N,)``
    float32 probabilities; :meth:`logits` the same before the sigmoid; :meth:`occupied` ``(N,)``
    bool, ``p > 0.5``, without gradients.

    Example:
        >>> import torch
        >>> from fields3d.render import OccupancyNetwork, march_rays
        >>> _ = torch.manual_seed(0)
        >>> net = OccupancyNetwork([[-1, -1, -1], [1, 1, 1]])
        >>> x = torch.rand(4, 3) * 2 - 1
        >>> net(x).shape, net.occupied(x).tolist()  # untrained: everything occupied
        (torch.Size([4]), [True, True, True, True])
        >>> origins, dirs = torch.tensor([[-2.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])
        >>> march_rays(origins, dirs, net.spec(), step=0.1).n_samples
        20
        >>> OccupancyNetwork.from_config(net.config()).config() == net.config()
        True
    """

    def __init__(
        self,
        aabb,
        n_levels: int = 4,
        log2_hashmap_size: int = 15,
        base_resolution: int = 16,
        max_resolution: int = 128,
        n_hidden: int = 16,
        subdivide: int = 1,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        check_int("n_levels", n_levels, 1, 16)
        check_int("base_resolution", base_resolution, 2)
        check_size("max_resolution", max_resolution, base_resolution, 1 << 20)
        check_size("n_hidden", n_hidden, 1, 1024)
        check_int("subdivide", subdivide, 1, MAX_SUBDIVIDE)
        box = GridSpec.from_aabb(aabb)  # InputError for anything but finite corners, max > min
        device = check_device(device)
        lo = [c - h for c, h in zip(box.center, box.half)]
        hi = [c + h for c, h in zip(box.center, box.half)]
        self.register_buffer("aabb", torch.tensor([lo, hi], dtype=torch.float32, device=device))
        growth = (max_resolution / base_resolution) ** (1 / max(n_levels - 1, 1))
        self.encoding = HashGrid(
            3, n_levels, 2, log2_hashmap_size, base_resolution, growth, device=device
        )
        self.net = nn.Sequential(
            nn.Linear(self.encoding.n_output_dims, n_hidden), nn.ReLU(), nn.Linear(n_hidden, 1)
        ).to(device)
        nn.init.constant_(self.net[2].bias, INIT_LOGIT)
        self.settings = dict(zip(SETTINGS, (n_levels, log2_hashmap_size, base_resolution)))
        self.settings.update(max_resolution=max_resolution, n_hidden=n_hidden, subdivide=subdivide)

    def unit(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` positions mapped to the box's ``[0, 1]^3`` (clamped), float32 contiguous."""
        return ((x.float() - self.aabb[0]) / (self.aabb[1] - self.aabb[0])).clamp(0, 1).contiguous()

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` positions -> ``(N,)`` logits of occupancy."""
        if not (isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == 3):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise InputError(f"x must be an (N, 3) tensor of positions, got {got}")
        return self.net(self.encoding(self.unit(x)))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    @torch.no_grad()
    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3)`` positions -> ``(N,)`` bool, True where ``p > 0.5`` (logit > 0)."""
        return self.logits(x) > 0

    def spec(self) -> OccupancyTest:
        """The box and this network's test (coarse steps of ``subdivide``), as
        :func:`~fields3d.render.march_rays` reads them."""
        box = GridSpec.from_aabb(self.aabb.tolist())
        return OccupancyTest(box, self.occupied, subdivide=self.settings["subdivide"])

    @torch.no_grad()
    def to_grid(self, resolution: int) -> OccupancyGrid:
        """A one-level :class:`OccupancyGrid` of ``resolution**3`` cells over the box: a cell is
        occupied when the network calls its centre occupied, or a face neighbour's (one cell of
        margin: a viewer's preview and cell display read grids)."""
        grid = OccupancyGrid(self.aabb.tolist(), resolution=resolution).to(self.aabb.device)
        index = torch.arange(resolution**3, device=self.aabb.device)
        probs = torch.cat([self(grid.cell_points(i, jitter=False)) for i in index.split(CHUNK)])
        centre = (probs > 0.5).float().view(1, 1, resolution, resolution, resolution)
        grown = F.max_pool3d(centre, 3, stride=1, padding=1) > 0
        grid.values.copy_(probs.view(grid.values.shape))
        grid.occupied.copy_(grown.view(grid.occupied.shape))
        grid.bits.copy_(pack_bits(grid.occupied))
        return grid

    def config(self) -> dict:
        """The settings that rebuild this network with :meth:`from_config` (with the box)."""
        return {"aabb": self.aabb.tolist(), **self.settings}

    @staticmethod
    def from_config(config: dict, device: torch.device | str | None = None) -> OccupancyNetwork:
        """The network :meth:`config` describes (InputError for other keys or no ``aabb``)."""
        if not isinstance(config, dict) or "aabb" not in config:
            raise InputError(
                f"an OccupancyNetwork config must be a dict with an 'aabb' key, got {config!r}"
            )
        unknown = sorted(k for k in config if k != "aabb" and k not in SETTINGS)
        if unknown:
            raise InputError(
                f"an OccupancyNetwork config has unknown settings {unknown}; known: "
                f"{['aabb', *SETTINGS]}"
            )
        return OccupancyNetwork(**config, device=device)


def _check_share(empty_share) -> None:
    if not is_number(empty_share) or not 0 < empty_share < 1:
        raise InputError(
            f"empty_share must be a number in (0, 1), the share of points to call empty, "
            f"got {empty_share!r}"
        )


def imbalanced_occupancy_loss(probs: torch.Tensor, empty_share: float) -> torch.Tensor:
    """LeC2O's imbalanced occupancy loss over ``probs`` ``(N,)`` (occupancy probabilities).

    ``2 * ((empty_share) * f_o * P_o + (1 - empty_share) * f_e * P_e)``, with ``f_o`` the share of
    points called occupied (``p > 0.5``, no gradient), ``P_o`` the mean of ``p``, ``f_e = 1 - f_o``
    and ``P_e = 1 - P_o``. Its gradient ``2 (empty_share f_o - (1 - empty_share) f_e) / N`` per point
    is zero when the share called empty is ``empty_share``. Returns a scalar.

    Example:
        >>> import torch
        >>> from fields3d.render.learned_occupancy import imbalanced_occupancy_loss
        >>> p = torch.tensor([0.9, 0.2, 0.1, 0.1], requires_grad=True)  # a quarter occupied
        >>> imbalanced_occupancy_loss(p, 0.75).backward()
        >>> p.grad.abs().max().item()  # the share asked for: no push
        0.0
    """
    _check_share(empty_share)
    f_occupied = (probs.detach() > 0.5).float().mean()
    p_occupied = probs.mean()
    return 2 * (
        empty_share * f_occupied * p_occupied
        + (1 - empty_share) * (1 - f_occupied) * (1 - p_occupied)
    )


def density_targets(
    sigmas: torch.Tensor, step: float, threshold: float = THRESHOLD
) -> torch.Tensor:
    """``(N,)`` float 0/1 targets: 1 where ``sigma * step`` exceeds ``min(threshold, its mean)``."""
    opacity = sigmas.detach().float() * step
    cut = min(threshold, float(opacity.clamp(min=0).mean())) if opacity.numel() else threshold
    return (opacity > cut).float()


def density_supervision_loss(
    logits: torch.Tensor, sigmas: torch.Tensor, step: float
) -> torch.Tensor:
    """Binary cross-entropy of occupancy ``logits`` ``(N,)`` against :func:`density_targets` of the
    radiance field's densities ``sigmas`` ``(N,)`` (detached) for marching step ``step``, the
    occupied probes weighted by the ratio of empty to occupied ones (1 to :data:`MAX_POS_WEIGHT`).
    Returns a scalar."""
    targets = density_targets(sigmas, step)
    positives = float(targets.sum())
    weight = min(max((targets.numel() - positives) / max(positives, 1.0), 1.0), MAX_POS_WEIGHT)
    return F.binary_cross_entropy_with_logits(
        logits, targets, pos_weight=torch.tensor(weight, device=logits.device)
    )


def occupancy_loss(
    net: OccupancyNetwork,
    points: torch.Tensor,
    sigmas: torch.Tensor,
    step: float,
    empty_share: float,
    balance: float = BALANCE,
) -> tuple[torch.Tensor, float]:
    """The network's training loss at probe ``points`` ``(N, 3)`` with the field's ``sigmas``
    ``(N,)``: density supervision plus ``balance`` times the imbalanced occupancy loss. Returns the
    loss and the share of probes called occupied (NaN without probes)."""
    logits = net.logits(points)
    supervision = density_supervision_loss(logits, sigmas, step)
    imbalance = imbalanced_occupancy_loss(torch.sigmoid(logits), empty_share)
    share = float((logits.detach() > 0).float().mean()) if len(points) else math.nan
    return supervision + balance * imbalance, share
