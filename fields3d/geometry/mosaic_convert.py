"""Mosaic-SDF from a mesh and back: conversion, fine-tuning, meshing (see :mod:`.mosaic_sdf`).

**Conversion** (:func:`mosaic_from_mesh`), fast, as the paper's point is that datasets convert
quickly:

1. ``samples_per_volume * K`` points are drawn on the surface uniformly by area;
2. ``K`` of them are picked by farthest-point sampling (:func:`farthest_point_sampling`) as the
   centres. The last distance FPS reaches is the *covering radius* ``r``: every surface sample
   lies within ``r`` of a centre;
3. every scale is ``overlap * r`` (default 1.5). Our rule, stated so it can be checked: a surface
   sample lies within ``r`` of some centre, so with ``s = 1.5 r`` its weight from that volume is
   at least 1/3; every point within ``s - r = r / 2`` (max-norm) of a surface sample is covered,
   so the field is defined on a band of half-width at least ``r / 2`` around the sampled surface;
   and FPS centres are at least ``r`` apart, so cubes of side ``3r`` around neighbours overlap.
   On the five shipped meshes 1.5 gave a lower Chamfer-L1 than 2 at 256 x 5^3 on all five (30-52%)
   and at 1024 x 7^3 on four (3-13%; the bunny's was 10% higher); its lattice is finer and about 6
   volumes cover a surface point instead of 11. 1.25 was better still on spot and cow but left 24 of
   200k surface samples of the cow undefined at 256 x 5^3 (``benchmarks/RESULTS.md``);
4. the values are the mesh's signed distance (:class:`~fields3d.geometry.sdf.MeshSDF`, negative
   inside) at each volume's ``k^3`` lattice points.

**Fine-tuning** (:func:`finetune_mosaic`, optional): Adam on values, centres and scales, minimising
the L1 error of the blended field on surface samples (target 0) and on samples moved off the
surface by Gaussian noise of ``s / 4`` and ``s / 2`` (targets from the mesh's SDF); points the
field leaves undefined do not count. Scales are kept above 1% of their starting median.

**Meshing** (:func:`mesh_mosaic`): the field on a regular grid over the volumes' bounding box,
then our marching cubes. Undefined grid points (outside every volume) take, per connected
undefined region (6-neighbours), the sign most of its defined neighbours have, with the magnitude
of the largest defined value; a region whose neighbours are mixed (at least :data:`MIXED` of them
of the minority sign: the inside and the outside meeting through a hole of the mesh) takes instead
at each point the sign of the nearest defined point (scipy's Euclidean distance transform), so its
surface closes the hole. A constant positive fill would also close the shape, but the inside of a
thick shape is undefined too (volumes only cover a band around the surface), and filling it
positive adds a second, inner surface at the band's edge. Measured at 1024 x 7^3, scale 1.5 r:
the majority sign alone filled the bunny's inside and outside, one region through its open base,
positive (Chamfer-L1 0.0098); the nearest sign everywhere grew six small pieces off the cow
(0.0023 against 0.0017).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import trimesh

from .._checks import check_int, check_seed, is_number
from ..errors import InputError
from .marching_cubes import marching_cubes
from .mosaic_sdf import MAX_RESOLUTION, MAX_VOLUMES, MosaicSDF, _blend, _CellIndex
from .pointcloud import sample_mesh
from .sdf import MeshSDF

#: An undefined region meets both sides of the surface when at least this share of its defined
#: neighbours has the minority sign (a few stray signs stay outvoted).
MIXED = 0.1


def farthest_point_sampling(
    points: torch.Tensor,  # (M, 3)
    n: int,
    *,
    start: int = 0,
) -> tuple[torch.Tensor, float]:
    """Pick ``n`` of ``points`` greedily, each the farthest from those picked before.

    Args:
        points: ``(M, 3)`` float, ``M >= n``, on any device.
        n: how many to pick, from 1 to ``M``.
        start: the index picked first.

    Returns:
        ``indices`` ``(n,)`` int64 and the covering radius: the largest distance from any point
        to its nearest picked point (0 when every point is picked or duplicated).

    Example:
        >>> import torch
        >>> from fields3d.geometry.mosaic_convert import farthest_point_sampling
        >>> points = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [1.0, 0, 0], [0.5, 0, 0]])
        >>> indices, radius = farthest_point_sampling(points, 2)
        >>> indices.tolist(), round(radius, 3)  # the far end, then everything within 0.5
        ([0, 2], 0.5)
    """
    if not isinstance(points, torch.Tensor) or points.dim() != 2 or points.shape[1] != 3:
        raise InputError(f"points must be a float tensor of shape (M, 3), got {points!r:.60}")
    check_int("n", n, 1, max(1, points.shape[0]))
    check_int("start", start, 0, points.shape[0] - 1)
    dist2 = torch.full(points.shape[:1], math.inf, dtype=points.dtype, device=points.device)
    indices = torch.empty(n, dtype=torch.int64, device=points.device)
    current = torch.tensor(start, device=points.device)
    for i in range(n):
        indices[i] = current
        dist2 = torch.minimum(dist2, (points - points[current]).square().sum(dim=1))
        current = dist2.argmax()
    return indices, float(dist2.max().sqrt())


def mosaic_from_mesh(
    mesh: trimesh.Trimesh,
    volumes: int = 1024,
    resolution: int = 7,
    *,
    overlap: float = 1.5,
    samples_per_volume: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    sdf: MeshSDF | None = None,
) -> MosaicSDF:
    """Convert a closed mesh to a Mosaic-SDF (steps in the module docstring).

    Args:
        mesh: a ``trimesh.Trimesh`` with area, closed and wound outward (the sign of its SDF
            assumes it; see :mod:`fields3d.geometry.sdf`).
        volumes: ``K``, from 1 to 2^20; resolution: ``k``, values per axis, from 2 to 64.
        overlap: scale over the FPS covering radius, > 0 (1.5: see the module docstring).
        samples_per_volume: surface samples per volume that FPS picks from, >= 2.
        seed: the surface sampling's seed (FPS starts at the first sample).
        device: where the Mosaic-SDF's parameters live.
        sdf: the mesh's :class:`MeshSDF` when the caller has one already.

    Returns:
        A float32 :class:`~fields3d.geometry.mosaic_sdf.MosaicSDF` in the mesh's coordinates.

    Example:
        >>> import torch, trimesh
        >>> from fields3d.geometry.mosaic_convert import mosaic_from_mesh
        >>> ball = trimesh.creation.icosphere(subdivisions=3)  # radius 1
        >>> mosaic = mosaic_from_mesh(ball, volumes=64, resolution=5)
        >>> mosaic.values.shape, round(float(mosaic.scales.detach()[0]), 2)  # 1.5 x FPS radius
        (torch.Size([64, 5, 5, 5]), 0.48)
        >>> with torch.no_grad():
        ...     sdf, defined = mosaic(torch.tensor([[0.0, 0.0, 0.9], [0.0, 0.0, 2.0]]))
        >>> round(float(sdf[0]), 2), defined.tolist()  # the facetted ball's surface is near 0.98
        (-0.09, [True, False])
    """
    check_int("volumes", volumes, 1, MAX_VOLUMES)
    check_int("resolution", resolution, 2, MAX_RESOLUTION)
    check_int("samples_per_volume", samples_per_volume, 2)
    check_seed(seed)
    if not is_number(overlap) or not 0 < overlap < math.inf:
        raise InputError(f"overlap must be a finite number > 0, got {overlap!r}")
    sdf = sdf or MeshSDF(mesh.vertices, mesh.faces)
    surface = sample_mesh(mesh, samples_per_volume * volumes, seed=seed).points
    picked, radius = farthest_point_sampling(torch.from_numpy(surface), volumes)
    centres = surface[picked.numpy()]
    if radius == 0:
        raise InputError(
            f"the mesh's {len(surface)} surface samples hold only {volumes} distinct points or "
            "fewer; pass fewer volumes"
        )
    scale = overlap * radius
    lattice = np.linspace(-1.0, 1.0, resolution)
    grid = np.stack(np.meshgrid(lattice, lattice, lattice, indexing="ij"), axis=-1).reshape(-1, 3)
    values = sdf((centres[:, None, :] + scale * grid[None]).reshape(-1, 3))
    k = resolution
    return MosaicSDF(
        torch.from_numpy(centres).float(),
        torch.full((volumes,), scale, dtype=torch.float32),
        torch.from_numpy(values).float().reshape(volumes, k, k, k),
    ).to(device)


def finetune_mosaic(
    mosaic: MosaicSDF,
    mesh: trimesh.Trimesh,
    steps: int,
    *,
    samples: int = 1 << 15,
    batch_size: int = 1 << 13,
    lr: float = 0.02,
    seed: int = 0,
    sdf: MeshSDF | None = None,
    progress: Callable[[int, float], object] | None = None,
) -> tuple[float, float]:
    """Fine-tune ``mosaic`` in place (module docstring): ``steps`` Adam steps on batches.

    Args:
        mosaic: the :class:`~fields3d.geometry.mosaic_sdf.MosaicSDF` to train.
        mesh: the mesh it was converted from (targets: its signed distance).
        steps: >= 0; samples: training points (a third each on, near and farther from the
            surface); batch_size: points a step.
        lr: step size in lattice spacings (values, centres) and in 1/2 of that for scales.
        seed: sampling and batching seed.
        progress: called as ``progress(step, loss)`` after each step, or None.

    Returns:
        The mean L1 error over all training samples the field defines, before and after.

    Example:
        >>> import trimesh
        >>> from fields3d.geometry.mosaic_convert import finetune_mosaic, mosaic_from_mesh
        >>> ball = trimesh.creation.icosphere(subdivisions=3)
        >>> mosaic = mosaic_from_mesh(ball, volumes=32, resolution=3)
        >>> before, after = finetune_mosaic(mosaic, ball, 20, samples=3000, batch_size=1000)
        >>> after < before
        True
    """
    check_int("steps", steps, 0)
    check_int("samples", samples, 3)
    check_int("batch_size", batch_size, 1)
    check_seed(seed)
    if not is_number(lr) or not 0 < lr < math.inf:
        raise InputError(f"lr must be a finite number > 0, got {lr!r}")
    x, y = _training_samples(mosaic, mesh, samples, seed, sdf or MeshSDF(mesh.vertices, mesh.faces))
    before = _mean_error(mosaic, x, y)
    step_size = float(mosaic.scales.detach().median()) * 2 / (mosaic.resolution - 1) * lr
    floor = 0.01 * float(mosaic.scales.detach().median())
    opt = torch.optim.Adam(
        [
            {"params": [mosaic.values, mosaic.centres], "lr": step_size},
            {"params": [mosaic.scales], "lr": step_size / 2},
        ]
    )
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        pick = torch.randint(0, x.shape[0], (batch_size,), generator=generator).to(x.device)
        sdf_values, defined = mosaic(x[pick])
        loss = (sdf_values[defined] - y[pick][defined]).abs().mean()
        opt.zero_grad(set_to_none=True)
        if defined.any():
            loss.backward()
            opt.step()
        with torch.no_grad():
            mosaic.scales.clamp_(min=floor)
        if progress is not None:
            progress(step, float(loss.detach()))
    return before, _mean_error(mosaic, x, y)


def _training_samples(mosaic, mesh, n, seed, sdf) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, 3)`` points (a third on the surface, a third each with noise s / 4 and s / 2) and targets."""
    rng = np.random.default_rng([seed, 5])
    surface = sample_mesh(mesh, n, seed=seed + 1).points
    s = float(mosaic.scales.detach().median())
    third = n // 3
    noise = np.zeros_like(surface)
    noise[third : 2 * third] = rng.normal(scale=s / 4, size=(third, 3))
    noise[2 * third :] = rng.normal(scale=s / 2, size=(n - 2 * third, 3))
    points = surface + noise
    target = sdf(points)
    target[:third] = 0.0
    dtype, device = mosaic.centres.dtype, mosaic.centres.device
    as_tensor = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    return as_tensor(points), as_tensor(target)


@torch.no_grad()
def _mean_error(mosaic: MosaicSDF, x: torch.Tensor, y: torch.Tensor) -> float:
    sdf, defined = mosaic(x)
    return float((sdf[defined] - y[defined]).abs().mean()) if defined.any() else math.nan


class MosaicMesh(NamedTuple):
    """What :func:`mesh_mosaic` returns."""

    verts: torch.Tensor  # (V, 3) float32, the mosaic's coordinates, on the CPU
    faces: torch.Tensor  # (F, 3) int64
    undefined_share: float  # fraction of the grid's points outside every volume


@torch.no_grad()
def mesh_mosaic(
    mosaic: MosaicSDF,
    resolution: int = 256,
    *,
    progress: Callable[[float], object] | None = None,
) -> MosaicMesh:
    """Mesh the zero level set with our marching cubes (undefined points: module docstring).

    Args:
        mosaic: the Mosaic-SDF.
        resolution: grid points along the longest side of the volumes' bounding box (plus one
            cell of margin each side), equal spacing on every axis; from 8 to 1024.
        progress: called with the fraction of the grid evaluated, or None.

    Returns:
        :class:`MosaicMesh` ``(verts, faces, undefined_share)``; outward normals (negative inside).

    Example:
        >>> import trimesh
        >>> from fields3d.geometry.mosaic_convert import mesh_mosaic, mosaic_from_mesh
        >>> mosaic = mosaic_from_mesh(trimesh.creation.icosphere(subdivisions=3), 128, 5)
        >>> verts, faces, undefined = mesh_mosaic(mosaic, resolution=40)
        >>> bool(((verts.norm(dim=1) - 1).abs() < 0.02).all()), 0.3 < undefined < 0.9
        (True, True)
    """
    check_int("resolution", resolution, 8, 1024)
    centres, scales = mosaic.centres.detach(), mosaic.scales.detach()
    lo = (centres - scales[:, None]).amin(dim=0)
    hi = (centres + scales[:, None]).amax(dim=0)
    spacing = float((hi - lo).max()) / (resolution - 3)
    origin = lo - spacing
    shape = [int(math.ceil(float(e) / spacing)) + 3 for e in (hi - lo)]
    index = _CellIndex(centres, scales)
    axes = [
        origin[i] + spacing * torch.arange(n, dtype=centres.dtype, device=centres.device)
        for i, n in enumerate(shape)
    ]
    y, z = torch.meshgrid(axes[1], axes[2], indexing="ij")
    volume = np.empty(shape, dtype=np.float32)
    for i, xi in enumerate(axes[0]):
        slab = torch.stack([torch.full_like(y, float(xi)), y, z], dim=-1).reshape(-1, 3)
        sdf, _ = _blend(slab, centres, scales, mosaic.values.detach(), index)
        volume[i] = sdf.reshape(shape[1], shape[2]).float().cpu().numpy()
        if progress is not None:
            progress((i + 1) / shape[0])
    undefined_share = _fill_undefined(volume)
    verts, faces = marching_cubes(
        torch.from_numpy(volume), 0.0, origin=origin.tolist(), spacing=spacing
    )
    return MosaicMesh(verts, faces, undefined_share)


def _fill_undefined(volume: np.ndarray) -> float:
    """Replace the NaNs of ``volume`` in place (module docstring); returns their share."""
    from scipy import ndimage

    undefined = np.isnan(volume)
    share = float(undefined.mean())
    if not undefined.any():
        return share
    labels, n = ndimage.label(undefined)
    positive, negative = np.zeros(n + 1), np.zeros(n + 1)
    for axis in range(3):
        for a, b in ((slice(1, None), slice(None, -1)), (slice(None, -1), slice(1, None))):
            here, there = [slice(None)] * 3, [slice(None)] * 3
            here[axis], there[axis] = a, b
            lab, value = labels[tuple(here)], volume[tuple(there)]
            edge = lab > 0
            positive += np.bincount(lab[edge & (value >= 0)], minlength=n + 1)
            negative += np.bincount(lab[edge & (value < 0)], minlength=n + 1)
    magnitude = max(float(np.abs(volume[~undefined]).max(initial=0.0)), 1e-6)
    sign = np.where(negative > positive, -1.0, 1.0)
    volume[undefined] = (magnitude * sign[labels])[undefined]
    mixed = np.minimum(positive, negative) > MIXED * (positive + negative)
    if mixed.any():  # regions that meet both sides (through a hole): the nearest sign
        pick = undefined & mixed[labels]
        nearest = ndimage.distance_transform_edt(
            undefined, return_distances=False, return_indices=True
        )  # (3, X, Y, Z) int32: the nearest defined point of each point
        source = volume[tuple(index[pick] for index in nearest)]
        volume[pick] = np.where(source < 0, -magnitude, magnitude)
    return share
