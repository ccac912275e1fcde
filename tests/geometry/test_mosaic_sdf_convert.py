"""Mosaic-SDF from a mesh (FPS, scales, values), fine-tuning, meshing, and its file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from safetensors.torch import save_file

from fields3d.checkpoint import save_checkpoint
from fields3d.errors import CheckpointError, InputError, ModelNotFound
from fields3d.geometry.mosaic_convert import (
    farthest_point_sampling,
    finetune_mosaic,
    mesh_mosaic,
    mosaic_from_mesh,
)
from fields3d.geometry.mosaic_sdf import MosaicSDF, load_mosaic


@pytest.fixture(scope="module")
def ball():
    return trimesh.creation.icosphere(subdivisions=4)  # radius 1, facets within 0.003 of it


@pytest.fixture(scope="module")
def ball_mosaic(ball):
    return mosaic_from_mesh(ball, volumes=256, resolution=7, seed=1)


def test_fps_matches_brute_force():
    points = torch.rand(300, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    indices, radius = farthest_point_sampling(points, 20, start=7)
    picked = [7]
    p = points.numpy()
    for _ in range(19):
        d = np.linalg.norm(p[:, None] - p[picked][None], axis=2).min(axis=1)
        picked.append(int(d.argmax()))
    assert indices.tolist() == picked
    d = np.linalg.norm(p[:, None] - p[picked][None], axis=2).min(axis=1)
    assert radius == pytest.approx(d.max(), rel=1e-12)


def test_sphere_converts_to_its_distance_in_the_band(ball, ball_mosaic):
    scale = float(ball_mosaic.scales.detach()[0])
    assert (ball_mosaic.scales.detach() == scale).all() and 0.1 < scale < 0.5
    assert torch.allclose(ball_mosaic.centres.detach().norm(dim=1), torch.ones(256), atol=3e-3)
    g = torch.Generator().manual_seed(2)
    directions = torch.nn.functional.normalize(torch.randn(4000, 3, generator=g), dim=1)
    radii = 1 + (torch.rand(4000, 1, generator=g) - 0.5) * scale * 2 / 3  # within s / 3 of it
    x = directions * radii
    with torch.no_grad():
        sdf, defined = ball_mosaic(x)
    assert defined.all()  # the band of half-width >= r / 2 = s / 3 is covered
    err = (sdf - (x.norm(dim=1) - 1)).abs()
    # trilinear error of |x| - 1 at lattice spacing h (h^2 / 8 per unit curvature, two curved
    # directions of radius >= 1 - s / 3), plus 0.001 for the facets' distance from the sphere
    h = 2 * scale / 6
    assert float(err.max()) < h**2 / 8 * 2 / (1 - scale / 3) + 0.001


def test_round_trip_through_its_file_is_exact(ball_mosaic, tmp_path):
    path = ball_mosaic.save(tmp_path / "ball.safetensors", {"source": "icosphere"})
    again = load_mosaic(path)
    for name in ("centres", "scales", "values"):
        assert torch.equal(getattr(again, name), getattr(ball_mosaic, name))
    x = torch.randn(1000, 3)
    with torch.no_grad():
        assert torch.equal(again(x).sdf.nan_to_num(7), ball_mosaic(x).sdf.nan_to_num(7))
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left


def test_file_errors(tmp_path):
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(ModelNotFound) as info:
        load_mosaic(missing)
    assert str(info.value) == (
        f"Mosaic-SDF not found: {missing}; pass the .safetensors file that `fields3d mosaic-sdf` wrote"
    )
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError) as info:
        load_mosaic(junk)
    assert str(info.value).startswith(f"checkpoint {junk} is corrupt or not a safetensors file (")
    bad = tmp_path / "bad.safetensors"
    save_checkpoint(
        bad, {"mosaic": torch.zeros(3, 31)}, {"kind": "mosaic_sdf", "volumes": 3, "resolution": 4}
    )
    with pytest.raises(CheckpointError) as info:
        load_mosaic(bad)
    assert str(info.value) == (
        f"Mosaic-SDF {bad} does not match its header (volumes 3, resolution 4): it holds a float32 "
        "tensor (3, 31); write it again with `fields3d mosaic-sdf`"
    )
    save_checkpoint(
        bad, {"mosaic": torch.zeros(3, 31)}, {"kind": "mosaic_sdf", "volumes": 3, "resolution": 3}
    )
    with pytest.raises(CheckpointError) as info:
        load_mosaic(bad)
    assert (
        str(info.value)
        == f"Mosaic-SDF {bad} has scales <= 0; write it again with `fields3d mosaic-sdf`"
    )
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, {"x": torch.zeros(1)}, {"kind": "nerf"})
    with pytest.raises(CheckpointError) as info:
        load_mosaic(other)
    assert str(info.value) == f"checkpoint {other} holds a 'nerf', expected one of 'mosaic_sdf'"
    plain = tmp_path / "plain.safetensors"
    save_file({"mosaic": torch.zeros(3, 31)}, str(plain))
    with pytest.raises(CheckpointError) as info:
        load_mosaic(plain)
    assert str(info.value) == f"checkpoint {plain} was not written by fields3d (no fields3d header)"


def test_finetuning_lowers_the_loss(ball):
    mosaic = mosaic_from_mesh(ball, volumes=48, resolution=3, seed=0)
    start = mosaic.tensor()
    seen = []
    before, after = finetune_mosaic(
        mosaic, ball, 30, samples=6000, batch_size=2000, progress=lambda s, loss: seen.append(s)
    )
    assert after < 0.9 * before and seen == list(range(1, 31))
    assert not torch.equal(mosaic.tensor()[:, :4], start[:, :4])  # centres and scales moved too


def test_meshing_gives_one_closed_surface(ball, ball_mosaic):
    verts, faces, undefined = mesh_mosaic(ball_mosaic, resolution=64)
    mesh = trimesh.Trimesh(verts.numpy(), faces.numpy())
    assert mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1  # no inner shell
    assert float((verts.norm(dim=1) - 1).abs().max()) < 0.01
    assert mesh.volume > 0  # outward normals
    assert 0.2 < undefined < 0.9  # the ball's middle and the corners of the box


def test_thick_shell_keeps_its_cavity():
    outer = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    inner = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    inner.invert()  # a hollow ball: the cavity's wall faces inward
    shell = trimesh.util.concatenate([outer, inner])
    mosaic = mosaic_from_mesh(shell, volumes=200, resolution=4)
    verts, faces, _ = mesh_mosaic(mosaic, resolution=48)
    parts = trimesh.Trimesh(verts.numpy(), faces.numpy()).split(only_watertight=False)
    radii = sorted(round(float(np.linalg.norm(p.vertices, axis=1).mean()), 1) for p in parts)
    assert radii == [0.5, 1.0]  # both walls, nothing between them


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"volumes": 0}, "volumes must be an integer from 1 to 1048576, got 0"),
        ({"resolution": 1}, "resolution must be an integer from 2 to 64, got 1"),
        ({"overlap": 0}, "overlap must be a finite number > 0, got 0"),
    ],
)
def test_conversion_errors(ball, kwargs, message):
    with pytest.raises(InputError) as info:
        mosaic_from_mesh(ball, **kwargs)
    assert str(info.value) == message


def test_meshing_a_field_of_one_sign_gives_no_surface():
    mosaic = MosaicSDF(torch.zeros(1, 3), torch.ones(1), torch.ones(1, 2, 2, 2))
    _, faces, undefined = mesh_mosaic(mosaic, resolution=8)  # positive everywhere: no surface
    assert faces.shape == (0, 3) and 0 < undefined < 1


def test_a_hole_is_closed_without_an_inner_shell():
    ball = trimesh.creation.icosphere(subdivisions=3)
    keep = ball.triangles_center[:, 2] < 0.9  # an open cap: inside and outside meet through it
    opened = trimesh.Trimesh(ball.vertices, ball.faces[keep])
    verts, faces, _ = mesh_mosaic(mosaic_from_mesh(opened, 200, 4), resolution=48)
    radius = verts.norm(dim=1)
    assert float(radius.min()) > 0.85 and float(radius.max()) < 1.15  # no shell at the band's edge
    assert len(trimesh.Trimesh(verts.numpy(), faces.numpy()).split(only_watertight=False)) == 1
