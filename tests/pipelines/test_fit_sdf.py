"""End-to-end: fit_sdf on the shipped spot.obj with a small hash grid, its outputs and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from fields3d.encodings import available
from fields3d.errors import InputError, ModelNotFound
from fields3d.geometry import load_mesh
from fields3d.geometry.sdf import MeshSDF
from fields3d.pipelines.fit_sdf import (
    DEFAULT_ENCODING,
    FitSdfConfig,
    fit_sdf,
    normalization,
    training_samples,
)

SPOT = Path(__file__).resolve().parents[2] / "assets" / "meshes" / "spot.obj"
SMALL_GRID = {
    "type": "hash_grid",
    "n_levels": 8,
    "log2_hashmap_size": 14,
    "base_resolution": 8,
    "per_level_scale": 1.5,
}
FAST = {
    "encoding": SMALL_GRID,
    "steps": 150,
    "batch_size": 4096,
    "n_near": 2**14,
    "n_uniform": 2**13,
    "mc_resolution": 64,
    "iou_points": 2**15,
    "eval_points": 20_000,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("sdf")
    return fit_sdf(FitSdfConfig(mesh=SPOT, out_dir=out, **FAST), progress=False), out


def test_fit_reaches_the_quality_thresholds(fitted):
    result, _ = fitted
    # measured on a 2-core CPU: IoU 0.987, Chamfer-L1 0.0034, NC 0.982, F@1% 0.9996 (150 steps, ~6 s);
    # a flipped sign gives IoU ~0, a blob or a shifted normalisation far below 0.9
    assert result.iou > 0.95
    assert result.chamfer_l1 < 0.006
    assert result.normal_consistency > 0.95
    assert result.f_score > 0.98
    assert result.steps == 150 and result.device == "cpu" and result.train_seconds > 0


def test_writes_mesh_metrics_and_config(fitted):
    result, out = fitted
    assert set(result.paths) == {"mesh", "metrics", "config"}
    assert {p.name for p in out.iterdir()} == {"mesh.ply", "metrics.json", "config.json"}
    mesh, gt = load_mesh(out / "mesh.ply"), load_mesh(SPOT)
    np.testing.assert_allclose(
        mesh.bounds, gt.bounds, atol=0.03 * np.ptp(gt.bounds, axis=0).max()
    )  # world units
    metrics = json.loads((out / "metrics.json").read_text())
    for key in (
        "iou",
        "chamfer_l1",
        "normal_consistency",
        "f_score",
        "n_params",
        "encoding",
        "train_seconds",
        "steps",
    ):
        assert key in metrics
    assert metrics["iou"] == pytest.approx(result.iou) and metrics["steps"] == 150
    assert (
        metrics["n_params"] == result.n_params == sum(p.numel() for p in result.field.parameters())
    )
    full = {**SMALL_GRID, "n_input_dims": 3, "n_features_per_level": 2, "interpolation": "linear"}
    assert metrics["encoding"] == full
    assert metrics["mesh"]["faces"] == len(mesh.faces) > 1000
    config = json.loads((out / "config.json").read_text())
    assert (
        config["mesh"] == str(SPOT)
        and config["device"] == "cpu"
        and config["encoding"] == metrics["encoding"]
    )
    assert not list(out.glob("*.tmp"))


def test_training_samples_are_in_the_cube_with_their_signed_distance():
    mesh = load_mesh(SPOT)
    norm = normalization(mesh, 0.1)
    verts = (norm.to_unit(mesh.vertices) + 1) / 2
    assert verts.min() >= 0.1 - 1e-12 and verts.max() <= 0.9 + 1e-12
    assert np.isclose(np.ptp(verts, axis=0).max(), 0.8)
    unit = trimesh.Trimesh(verts, mesh.faces, process=False)
    gt = MeshSDF(verts, mesh.faces)
    config = FitSdfConfig(mesh=SPOT, n_near=300, n_uniform=100, near_sigmas=(0.01, 0.001))
    x, y = training_samples(unit, gt, config)
    assert x.shape == (400, 3) and y.shape == (400,) and x.dtype == y.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    assert np.abs(y[150:300]).max() < 0.006  # the tighter band of the near samples
    np.testing.assert_allclose(y, gt(x.astype(np.float64)), atol=1e-6)
    again = training_samples(unit, gt, config)
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])


def test_default_encoding_is_a_3d_hash_grid():
    config = FitSdfConfig(mesh="any.obj")
    assert config.encoding["type"] == "hash_grid" and config.encoding["n_input_dims"] == 3
    assert {k: config.encoding[k] for k in DEFAULT_ENCODING} == DEFAULT_ENCODING
    assert (
        FitSdfConfig(mesh="any.obj", encoding={"type": "hash_grid"}).encoding["n_input_dims"] == 3
    )


def test_eikonal_term_trains_through_double_backward(tmp_path):
    config = FitSdfConfig(
        mesh=SPOT, out_dir=tmp_path, **{**FAST, "steps": 20, "eikonal_weight": 0.1}
    )
    result = fit_sdf(config, progress=False)
    assert np.isfinite(result.metrics["final_loss"])


def test_missing_mesh(tmp_path):
    path = tmp_path / "missing.obj"
    with pytest.raises(ModelNotFound) as info:
        fit_sdf(FitSdfConfig(mesh=path, out_dir=tmp_path / "out", **FAST))
    assert (
        str(info.value)
        == f"mesh not found: {path}; pass the path of a .ply, .obj, .off, .stl or .glb file"
    )
    assert not (tmp_path / "out").exists()


def test_unknown_encoding():
    with pytest.raises(InputError) as info:
        FitSdfConfig(mesh=SPOT, encoding={"type": "hashgrid"})
    assert (
        str(info.value)
        == f"unknown encoding type 'hashgrid'; known types: {', '.join(available())}"
    )


def test_encoding_of_other_positions():
    with pytest.raises(InputError) as info:
        FitSdfConfig(mesh=SPOT, encoding={"type": "hash_grid", "n_input_dims": 2})
    assert (
        str(info.value)
        == "the hash_grid encoding is set to n_input_dims=2; fit-sdf needs n_input_dims=3 "
        "(leave it out to get 3)"
    )


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("steps", 0, "steps must be an integer >= 1, got 0"),
        ("mc_resolution", 1, "mc_resolution must be an integer from 2 to 2048, got 1"),
        ("mc_resolution", 20000, "mc_resolution must be an integer from 2 to 2048, got 20000"),
        ("batch_size", 2**24 + 1, "batch_size must be an integer from 1 to 16777216, got 16777217"),
        ("seed", -1, "seed must be an integer from 0 to 9223372036854775807, got -1"),
        ("margin", 0.5, "margin must be a number in [0, 0.5), got 0.5"),
        ("eikonal_weight", -1.0, "eikonal_weight must be a finite number >= 0, got -1.0"),
        ("eikonal_weight", float("inf"), "eikonal_weight must be a finite number >= 0, got inf"),
        ("near_sigmas", (), "near_sigmas must be one or more finite numbers > 0, got ()"),
        (
            "near_sigmas",
            (math.inf,),
            "near_sigmas must be one or more finite numbers > 0, got (inf,)",
        ),
        ("near_sigmas", 0.01, "near_sigmas must be one or more finite numbers > 0, got 0.01"),
        ("betas", None, "betas must be two numbers in [0, 1), got None"),
        ("lr_decay_at", None, "lr_decay_at must be fractions of the steps in (0, 1), got None"),
        (
            "eps",
            math.inf,
            "eps must be a finite number >= 0, got inf",
        ),  # Adam steps of 0: an untrained field
        ("n_near", 10**13, "n_near must be an integer from 0 to 100000000, got 10000000000000"),
        (
            "n_uniform",
            10**13,
            "n_uniform must be an integer from 0 to 100000000, got 10000000000000",
        ),
        (
            "iou_points",
            10**13,
            "iou_points must be an integer from 1 to 100000000, got 10000000000000",
        ),
        (
            "eval_points",
            10**9,
            "eval_points must be an integer from 1 to 100000000, got 1000000000",
        ),
        ("mesh", None, "mesh must be the path of a mesh file (a str or os.PathLike), got NoneType"),
        ("out_dir", "", "out_dir must be the path of the output folder, got an empty string"),
        ("device", "tpu", "device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ],
)
def test_bad_settings(field, value, message):
    with pytest.raises(InputError) as info:
        FitSdfConfig(**{"mesh": SPOT, field: value})
    assert str(info.value) == message


FLAT_MESHES = {
    "triangle.obj": (np.eye(3), [[0, 1, 2]]),
    "sheet.obj": (trimesh.creation.box(extents=(1, 1, 0)).vertices, trimesh.creation.box().faces),
    "tilted.obj": (
        np.array([[0, 0, 0], [1, 1, 1], [1, 0, 1], [0, 1, 0]]) * 1e9,
        [[0, 1, 2], [0, 1, 3]],
    ),
}


@pytest.mark.parametrize("name", sorted(FLAT_MESHES))
def test_a_flat_mesh_has_no_inside(tmp_path, name):
    # its signed distance is a half-space's: a single triangle "fitted" to IoU 0.99 before
    path = tmp_path / name
    trimesh.Trimesh(*FLAT_MESHES[name], process=False).export(path)
    with pytest.raises(InputError) as info:
        fit_sdf(FitSdfConfig(mesh=path, out_dir=tmp_path / "out", **FAST), progress=False)
    assert str(info.value) == (
        f"mesh {path} is flat (its vertices lie in one plane), so it has no inside for a "
        "signed distance; fit-sdf needs a closed mesh around a solid"
    )
    assert not (tmp_path / "out").exists()


def test_a_mesh_without_area(tmp_path):
    path = tmp_path / "line.obj"
    path.write_text("v 0 0 0\nv 1 1 1\nv 2 2 2\nv 0 0 0\nf 1 2 3\nf 1 4 1\n")
    with pytest.raises(InputError) as info:
        fit_sdf(FitSdfConfig(mesh=path, out_dir=tmp_path / "out", **FAST), progress=False)
    assert str(info.value) == (
        f"mesh {path} has zero surface area (all 2 triangles are degenerate); fit-sdf needs a "
        "closed mesh around a solid"
    )


def test_open_thin_and_far_meshes_are_solid_enough():
    from fields3d.pipelines.fit_sdf import check_solid

    open_box = trimesh.creation.box()
    open_box.update_faces(
        np.arange(12) >= 2
    )  # a hole, as in the Stanford bunny: the sign still means something
    plate = trimesh.creation.box(extents=(1, 1, 1e-4))
    far = trimesh.creation.box(extents=(1e-9, 2e-9, 3e-9)).apply_translation((1e3, 0, 0))
    for mesh in (open_box, plate, far, load_mesh(SPOT)):
        check_solid(mesh, "m.obj")


def test_an_output_that_cannot_be_written_fails_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError) as info:
        fit_sdf(FitSdfConfig(mesh=SPOT, out_dir=tmp_path / "file" / "sub", **FAST), progress=False)
    assert str(info.value) == (
        f"cannot create the folder {tmp_path / 'file' / 'sub'} for metrics.json "
        f"({tmp_path / 'file'} is a file); pass an output path in a folder you can write"
    )


def test_eikonal_needs_double_backward(tmp_path, monkeypatch):
    from fields3d.pipelines import fit_sdf as module

    monkeypatch.setattr(module, "has_double_backward", lambda encoding: False)
    config = FitSdfConfig(mesh=SPOT, out_dir=tmp_path, **{**FAST, "eikonal_weight": 0.5})
    with pytest.raises(InputError) as info:
        fit_sdf(config, progress=False)
    assert str(info.value) == (
        "eikonal_weight=0.5 needs an encoding with double backward, and the hash_grid encoding has none; "
        "set eikonal_weight to 0"
    )


def test_an_empty_level_set_still_reports(tmp_path, monkeypatch):
    from fields3d.pipelines import fit_sdf as module

    monkeypatch.setattr(
        module, "extract_mesh", lambda *args: (np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    )
    result = fit_sdf(
        FitSdfConfig(mesh=SPOT, out_dir=tmp_path, **{**FAST, "steps": 5}), progress=False
    )
    assert (
        result.chamfer_l1 is None and result.normal_consistency is None and result.f_score is None
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["chamfer_l1"] is None and metrics["mesh"] == {"vertices": 0, "faces": 0}
    assert (tmp_path / "mesh.ply").exists()


def test_iou_of_a_field_inside_everywhere_is_not_perfect_on_a_box(tmp_path, monkeypatch):
    from fields3d.pipelines import fit_sdf as module

    def inside_everywhere(field, x, y, config, update):
        last = [m for m in field.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(-1.0)
        return 0.0

    box = tmp_path / "box.obj"
    trimesh.creation.box().export(box)
    monkeypatch.setattr(module, "_train", inside_everywhere)
    result = fit_sdf(FitSdfConfig(mesh=box, out_dir=tmp_path / "out", **FAST), progress=False)
    # sampled in the mesh's own box this read 1.0: the box fills it
    assert result.iou < 0.9
