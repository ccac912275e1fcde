"""Small scenes for the edit tests, built in seconds: the shipped spot mesh as a voxel source
(densities from its inside, a flat grey colour: no NeRF to train) and the edit's target, spot
with a sphere unioned on its back."""

from pathlib import Path

import numpy as np
import torch
import trimesh

from fields3d.geometry import load_mesh
from fields3d.geometry.sdf import MeshSDF
from fields3d.pipelines.edit import VoxelField, save_voxels

SPOT = Path(__file__).parents[3] / "assets" / "meshes" / "spot.obj"
GREY = 0.8  # target guidance's default albedo
DENSITY = 400.0  # per world unit inside the object: opaque within a voxel or two
SPHERE_CENTER = (0.0, 0.45, 0.5)  # on spot's back (its head is at -z)
SPHERE_RADIUS = 0.25


def spot_box() -> list:
    verts = np.asarray(load_mesh(SPOT).vertices)
    lo, hi = verts.min(0), verts.max(0)
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2 * 1.15
    return [(centre - half).tolist(), (centre + half).tolist()]


def signed_distance(points: torch.Tensor, with_sphere: bool = False) -> torch.Tensor:
    """spot's signed distance at ``points`` ``(N, 3)`` float64 (negative inside), or that of
    spot unioned with the sphere."""
    mesh = load_mesh(SPOT)
    sdf = torch.from_numpy(MeshSDF(np.asarray(mesh.vertices), np.asarray(mesh.faces))(points))
    if with_sphere:
        ball = (points - torch.tensor(SPHERE_CENTER, dtype=points.dtype)).norm(dim=-1)
        sdf = torch.minimum(sdf, ball - SPHERE_RADIUS)
    return sdf


def spot_source(path: Path, resolution: int, box=None, with_sphere: bool = False) -> Path:
    """spot as a voxel checkpoint (kind edit): density ``DENSITY`` inside, falling to 0 over
    about a cell across the surface (so the trilinear grid puts the surface where the mesh has
    it, between vertices), a flat grey; cameras 3.2 from its centre (its bounding radius is 1.1).
    ``with_sphere``: the changed object, spot with the sphere on its back."""
    field = VoxelField(box or spot_box(), resolution)
    x = field.vertices()
    sdf = signed_distance(x.reshape(-1, 3).double(), with_sphere).view(x.shape[:3]).float()
    cell = float(field.hi[0] - field.lo[0]) / (resolution - 1)
    density = DENSITY * torch.sigmoid(-sdf / (0.25 * cell))
    field.set_grids(density, torch.full((*x.shape[:3], 3), GREY))
    return save_voxels(path, field, up="y", camera_distance=3.2, fov=40.0)


def spot_with_sphere(path: Path) -> Path:
    mesh = load_mesh(SPOT)
    ball = trimesh.creation.icosphere(subdivisions=3, radius=SPHERE_RADIUS)
    ball.apply_translation(SPHERE_CENTER)
    both = trimesh.util.concatenate([trimesh.Trimesh(mesh.vertices, mesh.faces), ball])
    both.export(path)
    return path


def ring(field: VoxelField, n: int = 8, elevation: float = 20.0):
    """``n`` views around the scene as the source's cameras see it."""
    from fields3d.pipelines.edit.model import ring_views

    return ring_views(tuple(field.center.tolist()), 3.2, 40.0, "y", n, elevation)


@torch.no_grad()
def changed_pixels_iou(original, result, target, views, size: int = 64) -> float:
    """IoU of the pixels where ``result``'s renders differ from ``original``'s and those where
    ``target``'s do (by more than 0.1 in a channel), over ``views``."""
    from fields3d.pipelines.edit.model import render_views

    cams = views.to_cameras(size)
    white = torch.ones(3)
    step = 2 * original.radius * 3**0.5 / 256
    before, after, want = (
        render_views(f, cams, white, step)["color"] for f in (original, result, target)
    )
    mine = (after - before).abs().amax(1) > 0.1
    theirs = (want - before).abs().amax(1) > 0.1
    return float((mine & theirs).sum() / (mine | theirs).sum())


@torch.no_grad()
def outside_correlation(original, result, target, margin: int = 2) -> float:
    """Pearson correlation of ``result``'s and ``original``'s densities at the vertices farther
    than ``margin`` vertices from the changed region (where ``target`` has matter and
    ``original`` has none)."""
    from fields3d.pipelines.edit.regularise import correlation

    before = original.density_grid()
    changed = (target.density_grid() > DENSITY / 2) & (before < DENSITY / 2)
    width = 2 * margin + 1
    near = torch.nn.functional.max_pool3d(changed[None, None].float(), width, 1, margin)
    near = near[0, 0].bool()
    return float(correlation(before[~near], result.density_grid()[~near]))
