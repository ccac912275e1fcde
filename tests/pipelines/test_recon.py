"""End-to-end reconstruction: files written, quality on a known shape, bad input, re-meshing."""

import json

import numpy as np
import pytest
import trimesh

from fields3d.checkpoint import load_checkpoint
from fields3d.cli import main
from fields3d.errors import CheckpointError, InputError, ModelNotFound
from fields3d.geometry.mesh_io import load_mesh
from fields3d.pipelines.recon import ReconConfig, postprocess, reconstruct
from fields3d.pipelines.remesh import remesh

FAST = {"resolution": 64, "steps": 60, "picture": False, "device": "cpu"}


@pytest.fixture(scope="module")
def sphere(tmp_path_factory):
    """A 4000-point cloud on a sphere of radius 2 centred at (5, -1, 3), and the exact sphere mesh."""
    folder = tmp_path_factory.mktemp("sphere")
    truth = trimesh.creation.icosphere(subdivisions=5, radius=2.0)
    truth.apply_translation([5.0, -1.0, 3.0])
    points, _ = trimesh.sample.sample_surface(truth, 4000, seed=3)
    np.savetxt(folder / "sphere.xyz", points)
    truth.export(folder / "truth.obj")
    return folder


@pytest.fixture(scope="module")
def gridpull_run(sphere, tmp_path_factory):
    out = tmp_path_factory.mktemp("gridpull") / "mesh.ply"
    config = ReconConfig(
        sphere / "sphere.xyz", out, gt=sphere / "truth.obj", trim=0, **{**FAST, "picture": True}
    )
    return reconstruct(config, progress=False), out


def test_gridpull_reconstructs_the_sphere_where_it_was(gridpull_run):
    result, _ = gridpull_run
    m = result.report["metrics"]
    # a broken sign, scale or offset fails these by orders of magnitude
    assert m["chamfer_l1"] < 0.004, m
    assert m["f_score@1%"] > 0.97, m
    assert m["normal_consistency"] > 0.97, m
    mesh = trimesh.Trimesh(result.verts, result.faces)
    assert np.allclose(mesh.bounds.mean(axis=0), [5.0, -1.0, 3.0], atol=0.05)
    assert mesh.volume > 0  # outward faces


def test_recon_writes_mesh_picture_report_and_field(gridpull_run):
    result, out = gridpull_run
    assert set(result.paths) == {"mesh", "field", "picture", "report"}
    assert load_mesh(out).faces.shape == result.faces.shape
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["config"]["method"] == "gridpull" and report["config"]["device"] == "cpu"
    assert report["input"]["points"] == 4000
    assert report["mesh"]["faces"] == len(result.faces)
    assert {"read_s", "fit_s", "mesh_s", "total_s"} <= set(report["timings"])
    _, meta = load_checkpoint(out.with_suffix(".field.safetensors"))
    assert meta["kind"] == "band_sdf_grid" and meta["resolution"] == 64
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_remesh_of_the_checkpoint_matches_and_refines(gridpull_run, tmp_path):
    result, out = gridpull_run
    same, faces, _ = remesh(
        out.with_suffix(".field.safetensors"), tmp_path / "again.ply", 64, "cpu"
    )
    # recon removed nothing from a clean sphere (trim=0), so re-meshing at the same resolution is
    # identical once given recon's Taubin rounds (linear in the vertices: the same in any coordinates)
    assert result.report["method"]["small_component_faces_removed"] == 0
    assert "far_faces_trimmed" not in result.report["method"]
    smoothed = postprocess.taubin(same, faces, result.report["method"]["taubin_iterations"])
    np.testing.assert_allclose(np.sort(smoothed, axis=0), np.sort(result.verts, axis=0), atol=1e-5)
    fine, fine_faces, _ = remesh(
        out.with_suffix(".field.safetensors"), tmp_path / "fine.obj", 100, "cpu"
    )
    assert len(fine_faces) > 2 * len(faces)
    radius = np.linalg.norm(fine - [5.0, -1.0, 3.0], axis=1)
    assert abs(radius.mean() - 2.0) < 0.02


def test_poisson_method_runs_through_the_same_pipeline(sphere, tmp_path):
    pytest.importorskip(
        "open3d", reason="the Poisson baseline needs Open3D (pip install 'fields3d[poisson]')"
    )
    config = ReconConfig(
        sphere / "sphere.xyz", tmp_path / "p.obj", method="poisson", gt=sphere / "truth.obj", **FAST
    )
    result = reconstruct(config, progress=False)
    assert set(result.paths) == {"mesh", "report"}
    assert result.report["metrics"]["f_score@1%"] > 0.97
    assert result.report["method"]["depth"] == 6


def test_neural_method_reconstructs_and_its_checkpoint_remeshes(sphere, tmp_path):
    out = tmp_path / "n.ply"
    config = ReconConfig(
        sphere / "sphere.xyz",
        out,
        method="neural",
        gt=sphere / "truth.obj",
        **{**FAST, "steps": 150},
    )
    result = reconstruct(config, progress=False)
    assert result.report["metrics"]["f_score@1%"] > 0.95, result.report["metrics"]
    _, meta = load_checkpoint(out.with_suffix(".field.safetensors"))
    assert meta["kind"] == "neural_sdf"
    verts, _, _ = remesh(out.with_suffix(".field.safetensors"), tmp_path / "again.ply", 48, "cpu")
    radius = np.linalg.norm(verts - [5.0, -1.0, 3.0], axis=1)
    assert abs(radius.mean() - 2.0) < 0.05


def test_repeated_points_are_merged_before_the_fit(sphere, tmp_path):
    # merged scans repeat points: the fit's spacing estimate (distance to the 8th neighbour) was 0
    points = np.loadtxt(sphere / "sphere.xyz")[:2000]
    np.savetxt(tmp_path / "repeated.xyz", np.repeat(points, 9, axis=0))
    config = ReconConfig(
        tmp_path / "repeated.xyz", tmp_path / "m.ply", gt=sphere / "truth.obj", trim=0, **FAST
    )
    result = reconstruct(config, progress=False)
    assert (
        result.report["input"]["points"] == 18000
        and result.report["method"]["distinct_points"] == 2000
    )
    assert result.report["method"]["fit"]["spacing"] > 0
    assert result.report["metrics"]["f_score@1%"] > 0.95, result.report["metrics"]


def test_a_far_off_point_that_squeezes_the_cloud_is_named(sphere, tmp_path):
    points = np.loadtxt(sphere / "sphere.xyz")[:500]
    far = np.repeat([[1e300, 0.0, 0.0]], 20, axis=0)  # one alone would be dropped as isolated
    np.savetxt(tmp_path / "far.xyz", np.r_[points, far])
    with pytest.raises(InputError) as info:
        reconstruct(ReconConfig(tmp_path / "far.xyz", tmp_path / "m.ply", **FAST), progress=False)
    assert str(info.value) == (
        "cannot fit a normalization: the points' bounding box is 1e+300 across around (5e+299, -0.998, 2.5); "
        "fields3d works with sizes from 2e-12 to 2e+12 within 1e+12 of the origin: rescale or translate the "
        "points; or look for far-off outliers (--remove-outliers drops them)"
    )


def test_a_line_of_points_is_refused_before_the_fit(tmp_path):
    t = np.linspace(0.0, 1.0, 200)[:, None]
    np.savetxt(tmp_path / "line.xyz", t * np.array([[1.0, 2.0, 0.5]]))
    with pytest.raises(InputError) as info:
        reconstruct(ReconConfig(tmp_path / "line.xyz", tmp_path / "m.ply", **FAST), progress=False)
    message = str(info.value)
    assert message.startswith(
        f"point cloud {tmp_path / 'line.xyz'}: all 200 points lie on one line"
    )
    assert message.endswith(
        "; a surface needs points spread out in two directions at least; or look for far-off "
        "outliers (--remove-outliers drops them)"
    )
    assert not (tmp_path / "m.ply").exists()


def test_bad_inputs_raise_before_anything_is_written(tmp_path):
    out = tmp_path / "o" / "mesh.ply"
    with pytest.raises(ModelNotFound, match="not found"):
        reconstruct(ReconConfig(tmp_path / "missing.ply", out, **FAST), progress=False)
    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    with pytest.raises(InputError):
        reconstruct(ReconConfig(empty, out, **FAST), progress=False)
    nan = tmp_path / "nan.xyz"
    np.savetxt(nan, np.r_[np.random.default_rng(0).random((50, 3)), [[np.nan, 0, 0]]])
    with pytest.raises(InputError, match="NaN"):
        reconstruct(ReconConfig(nan, out, **FAST), progress=False)
    assert not out.parent.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("method", "marching", "method must be one of gridpull, neural, poisson, got 'marching'"),
        (
            "output",
            "mesh.vtk",
            "output must end in one of .ply, .obj, .off, .stl, .glb, got 'mesh.vtk'",
        ),
        ("trim", -1, "trim must be a finite number >= 0 (gap radii; 0 keeps every face), got -1"),
        (
            "trim",
            float("nan"),
            "trim must be a finite number >= 0 (gap radii; 0 keeps every face), got nan",
        ),
        (
            "seed",
            2**63,
            "seed must be an integer from 0 to 9223372036854775807, got 9223372036854775808",
        ),
        ("n_samples", 10**10, "n_samples must be an integer from 10 to 100000000, got 10000000000"),
        ("min_component", 1.5, "min_component must be a fraction in [0, 1), got 1.5"),
        ("device", "tpu", "device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ],
)
def test_config_errors_name_the_setting(field, value, message):
    with pytest.raises(InputError) as err:
        ReconConfig("scan.ply", **{field: value})
    assert str(err.value) == message


def test_corrupt_checkpoint_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "bad.field.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(
        CheckpointError,
        match=r"^checkpoint .*bad.field.safetensors is corrupt or not a safetensors",
    ):
        remesh(bad, tmp_path / "m.ply", 32, "cpu")
    with pytest.raises(ModelNotFound) as err:
        remesh(tmp_path / "none.safetensors", tmp_path / "m.ply", 32, "cpu")
    assert str(err.value) == (
        f"checkpoint not found: {tmp_path / 'none.safetensors'}; pass the .safetensors file that `fields3d recon` wrote"
    )


def test_cli_recon_mesh_and_eval(sphere, tmp_path, capsys):
    out = tmp_path / "cli.ply"
    argv = [
        "recon",
        str(sphere / "sphere.xyz"),
        "-o",
        str(out),
        "--resolution",
        "48",
        "--steps",
        "30",
        "--device",
        "cpu",
        "--quiet",
        "--no-picture",
        "--gt",
        str(sphere / "truth.obj"),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "Chamfer-L1" in text and str(out) in text
    assert (
        main(
            [
                "mesh",
                str(out.with_suffix(".field.safetensors")),
                "-o",
                str(tmp_path / "m.obj"),
                "--resolution",
                "40",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "eval",
                str(tmp_path / "m.obj"),
                str(sphere / "truth.obj"),
                "--json",
                "--points",
                "30000",
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert metrics["f_score@1%"] > 0.9


def test_cli_reports_a_missing_input_without_a_traceback(tmp_path, capsys):
    assert (
        main(["recon", str(tmp_path / "nope.ply"), "-o", str(tmp_path / "m.ply"), "--quiet"]) == 2
    )
    assert capsys.readouterr().err.startswith("error: ")
