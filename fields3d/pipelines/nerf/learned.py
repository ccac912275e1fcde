"""The NeRF pipeline's learned occupancy (``occupancy="learned"``, ``--occupancy learned``).

A :class:`~fields3d.render.OccupancyNetwork` replaces the occupancy grid for empty-space skipping:
each training step marches the scene box in coarse candidate steps through our core, keeps those
the network calls occupied (:class:`~fields3d.render.OccupancyTest`), and records a random subset
of the candidates' midpoints as probes; after the render, the network's loss at the probes
(:func:`~fields3d.render.learned_occupancy.occupancy_loss`: density supervision from the radiance
field, detached, and the imbalanced occupancy loss) joins the photometric loss, and one Adam step
updates both. A model that needs a grid (a viewer's preview and cell display) gets one derived from
the network (:meth:`~fields3d.render.OccupancyNetwork.to_grid`).
"""

from __future__ import annotations

import torch

from ...render.learned_occupancy import OccupancyNetwork, occupancy_loss
from ...render.march import GridSpec, OccupancyTest

OCCUPANCY = ("grid", "learned")
PROBES = 4096  # probe points per step for the network's loss
WARMUP = 64  # steps that march every candidate while the network learns (the field forms first)
VIEW_GRID = 64  # cells per axis of the grid derived from a network for viewers (NerfModel.grid)


def build_network(config, aabb, device: torch.device) -> OccupancyNetwork | None:
    """The occupancy network for a run with ``config.occupancy == "learned"`` (None for the grid),
    its parameters drawn from ``config.seed + 1``."""
    if config.occupancy != "learned":
        return None
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(config.seed + 1)  # the field takes config.seed
        return OccupancyNetwork(aabb, subdivide=config.occupancy_subdivide, device=device)


def occupancy_fraction(state) -> float | None:
    """metrics.json's ``occupancy``: the grid's share of occupied cells, or the share of the last
    step's probes the network called occupied (None before any)."""
    if state.occupancy is None:
        return state.grid.occupancy_fraction()
    return state.occupied_share


def marching_spec(holder) -> GridSpec | OccupancyTest:
    """What ``holder`` (a TrainState or a NerfModel) marches: its network's test when it has one,
    else its grid's spec."""
    net = getattr(holder, "occupancy", None)
    return holder.grid.spec() if net is None else net.spec()


class ProbeRecorder:
    """The network's occupancy test that also keeps up to ``n`` random candidate midpoints it was
    asked about (``points``, ``(P, 3)`` float32): probes drawn uniformly along the batch's rays.
    ``keep_all``: keep every candidate (the warm-up, while the network learns)."""

    def __init__(
        self, net: OccupancyNetwork, n: int, generator: torch.Generator, keep_all: bool = False
    ) -> None:
        self.net, self.n, self.generator, self.keep_all = net, n, generator, keep_all
        self.points = torch.empty(0, 3, device=net.aabb.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0]:
            pick = torch.randint(
                x.shape[0], (min(self.n, x.shape[0]),), generator=self.generator, device=x.device
            )
            self.points = x[pick].float()
        if self.keep_all:
            return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        return self.net.occupied(x)


def step_spec(
    state, generator: torch.Generator
) -> tuple[GridSpec | OccupancyTest, ProbeRecorder | None]:
    """The spec a training step marches and, with a network, the recorder of its probes."""
    if state.occupancy is None:
        return state.grid.spec(), None
    probes = ProbeRecorder(state.occupancy, PROBES, generator, state.step < WARMUP)
    spec = state.occupancy.spec()
    return OccupancyTest(spec.box, probes, subdivide=spec.subdivide), probes


def probe_loss(state, config, probes: ProbeRecorder | None) -> torch.Tensor | float:
    """The network's loss at this step's probes (0 without a network or probes); records the share
    of probes it calls occupied in ``state.occupied_share``."""
    if probes is None or probes.points.shape[0] == 0:
        return 0.0
    with torch.no_grad():
        sigmas = state.field.density(probes.points)
    loss, share = occupancy_loss(
        state.occupancy, probes.points, sigmas, state.settings.step, config.empty_share
    )
    state.occupied_share = share
    return loss
