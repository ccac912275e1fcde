"""fields3d recon-batch on the local pool: three shipped shapes and a corrupt file, reruns, --force,
--gt, a worker killed mid-shape, a driver killed between two shapes, and the manifest's writes."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fields3d.cli import main
from fields3d.pipelines.batch import MANIFEST, Manifest, collect_shapes, read_manifest
from fields3d.pipelines.batch.executors import LocalPool
from fields3d.pipelines.batch.pipeline import resolve_settings

MESHES = Path(__file__).resolve().parents[2] / "assets" / "meshes"
SHAPES = [MESHES / "cow.obj", MESHES / "spot.obj", MESHES / "fandisk.obj"]
# the smallest settings that still give each shape a closed mesh: seconds per shape on one core
SMALL = ["--resolution", "32", "--steps", "5", "--samples", "2000", "--device", "cpu"]
BROKEN_TEXT = "1 2 3\nthis is not a number\n"


def broken_error(path) -> str:
    return (
        f"cannot read point cloud {path}: line 2 has 5 values; each line needs 3 (x y z) or 6 "
        "(x y z nx ny nz) numbers separated by spaces"
    )


def lines(out: Path) -> list[dict]:
    text = (out / MANIFEST).read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One batch run through the CLI with --gt pairing each mesh with itself, and its output."""
    tmp = tmp_path_factory.mktemp("batch")
    broken = tmp / "broken.xyz"
    broken.write_text(BROKEN_TEXT)
    out = tmp / "out"
    argv = ["recon-batch", *map(str, SHAPES), str(broken), "-o", str(out), "--gt", str(MESHES)]
    code = main([*argv, *SMALL, "--quiet"])
    return argv, code, out, broken


def test_three_meshes_and_one_failed_line(batch, capsys):
    _, code, out, broken = batch
    assert code == 1  # one shape failed
    records = lines(out)
    assert len(records) == 4
    by_name = {r["name"]: r for r in records}
    assert set(by_name) == {"cow", "spot", "fandisk", "broken"}
    failed = by_name["broken"]
    assert failed["status"] == "failed" and failed["error_kind"] == "input"
    assert failed["error"] == broken_error(broken)
    for name in ("cow", "spot", "fandisk"):
        r = by_name[name]
        assert r["status"] == "done" and r["error"] is None, r
        assert r["outputs"]["mesh"] == f"{name}/mesh.ply"
        assert (out / r["outputs"]["mesh"]).stat().st_size > 0
        assert (out / r["outputs"]["picture"]).is_file()
        assert r["mesh"]["faces"] > 1000 and r["seconds"] > 0
        # --gt paired the mesh with itself by name: a broken fit fails these by far
        assert r["gt"] == str(MESHES / f"{name}.obj")
        assert r["metrics"]["chamfer_l1"] < 0.02, r["metrics"]
        assert r["metrics"]["f_score@1%"] > 0.5, r["metrics"]


def test_workers_share_the_cores(batch):
    _, _, out, _ = batch
    cores = len(os.sched_getaffinity(0))
    workers = min(cores, 4)
    report = json.loads((out / "cow" / "mesh.json").read_text())
    assert report["threads"] == max(1, cores // workers)


def test_summary_files(batch):
    _, _, out, _ = batch
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["cow", "spot", "fandisk", "broken"]
    assert rows[3]["status"] == "failed" and rows[3]["error"].startswith("cannot read point cloud")
    assert float(rows[0]["chamfer_l1"]) > 0
    md = (out / "summary.md").read_text()
    assert "4 shapes: 3 done, 1 failed" in md and "| chamfer_l1 |" in md
    assert "![the meshes](contact_sheet.png)" in md
    from PIL import Image

    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width >= 256 and sheet.height >= 256


def test_rerun_does_nothing_new_and_force_redoes(batch, capsys):
    argv, _, out, _ = batch
    mtimes = {n: (out / n / "mesh.ply").stat().st_mtime_ns for n in ("cow", "spot", "fandisk")}
    assert main([*argv, *SMALL, "--quiet"]) == 1  # the corrupt file is still failed
    assert "(0 run now, 4 already in the manifest" in capsys.readouterr().out
    assert len(lines(out)) == 4
    assert {n: (out / n / "mesh.ply").stat().st_mtime_ns for n in mtimes} == mtimes
    assert main([*argv, *SMALL, "--quiet", "--force"]) == 1
    assert "(4 run now, 0 already in the manifest" in capsys.readouterr().out
    records = lines(out)
    assert len(records) == 8 and sorted(r["name"] for r in records[4:]) == sorted(
        ["cow", "spot", "fandisk", "broken"]
    )
    assert all((out / n / "mesh.ply").stat().st_mtime_ns > mtimes[n] for n in mtimes)


def test_other_settings_redo_the_shapes(batch, tmp_path):
    _, _, out, _ = batch
    records = read_manifest(out / MANIFEST)
    done = [r for r in records if r["status"] == "done"]
    shapes = collect_shapes([r["input"] for r in done[:1]], gt_dir=MESHES)
    settings = resolve_settings({"resolution": 32, "steps": 5, "n_samples": 2000, "device": "cpu"})
    from fields3d.pipelines.batch.pipeline import fingerprint, is_settled

    assert is_settled(done[0], fingerprint(shapes[0], settings), out)
    other = resolve_settings({"resolution": 48, "steps": 5, "n_samples": 2000, "device": "cpu"})
    assert not is_settled(done[0], fingerprint(shapes[0], other), out)


def test_a_killed_worker_fails_its_shape_and_the_batch_goes_on(tmp_path):
    settings = resolve_settings({"resolution": 32, "steps": 5, "n_samples": 2000, "device": "cpu"})
    tasks = [
        {
            "name": p.stem,
            "input": str(p),
            "gt": None,
            "output": str(tmp_path / p.stem / "mesh.ply"),
            "settings": {**settings, "picture": False},
            "threads": 1,
            "fingerprint": {},
        }
        for p in SHAPES[:2]
    ]
    pool, done = LocalPool(workers=1, threads=1), []

    def on_start(task):
        if task["name"] == "cow":  # the shape was just handed to this process: kill it
            os.kill(pool.pids["cow"], signal.SIGKILL)

    pool.run(tasks, on_start, done.append)
    assert [r["name"] for r in done] == ["cow", "spot"]
    assert done[0]["status"] == "failed" and done[0]["error_kind"] == "worker"
    assert done[0]["error"] == "the worker process died (SIGKILL) while reconstructing this shape"
    assert done[1]["status"] == "done"  # on a new process
    assert (tmp_path / "spot" / "mesh.ply").is_file()


def test_the_manifest_survives_a_driver_killed_between_two_shapes(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fields3d", "recon-batch", *map(str, SHAPES[:2]), "-o", str(out)]
    cmd += [*SMALL, "--no-picture", "--workers", "1", "--quiet"]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out / MANIFEST).exists() or not (out / MANIFEST).read_bytes():
        assert driver.poll() is None, driver.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)  # the first line is written; the second shape is running
    driver.wait()
    first = lines(out)  # every line whole (and parses)
    assert len(first) == 1 and first[0]["status"] == "done"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(1 run now, 1 already in the manifest" in done.stdout
    records = lines(out)
    assert len(records) == 2 and {r["name"] for r in records} == {"cow", "spot"}
    assert all(r["status"] == "done" for r in records)


def test_manifest_appends_each_line_in_one_write_and_skips_a_torn_last_line(tmp_path, monkeypatch):
    path = tmp_path / MANIFEST
    writes = []
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(data) or real(fd, data))
    with Manifest(path) as m:
        m.append({"input": "a", "status": "done", "error": "two\nlines"})
        m.append({"input": "b", "status": "failed"})
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    monkeypatch.undo()
    with open(path, "ab") as f:
        f.write(b'{"input": "c", "sta')  # a write cut short
    with pytest.warns(UserWarning, match="skipping an incomplete last line"):
        records = read_manifest(path)
    assert [r["input"] for r in records] == ["a", "b"]
    assert records[0]["error"] == "two\nlines"


def test_manifest_opens_for_append(tmp_path, monkeypatch):
    seen = []
    real = os.open
    monkeypatch.setattr(os, "open", lambda p, f, *a: seen.append(f) or real(p, f, *a))
    with Manifest(tmp_path / MANIFEST):
        pass
    assert seen and seen[0] & os.O_APPEND


def test_inputs_folders_globs_names_and_errors(tmp_path):
    from fields3d.errors import InputError, ModelNotFound
    from fields3d.pipelines.batch import expand_inputs

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for p in ("a/scan.ply", "b/scan.ply", "a/x.xyz", "a/notes.txt.json", "b/.hidden.ply"):
        (tmp_path / p).write_text("0 0 0\n")
    (tmp_path / "a" / "out").mkdir()
    (tmp_path / "a" / "out" / "mesh.ply").write_text("")
    shapes = collect_shapes(
        [tmp_path / "a", str(tmp_path / "b" / "*.ply")], exclude=tmp_path / "a" / "out"
    )
    assert [s.name for s in shapes] == ["a-scan", "x", "b-scan"]
    assert (
        expand_inputs([tmp_path / "a" / "x.xyz", tmp_path / "a"], exclude=tmp_path / "a" / "out")[0]
        == (tmp_path / "a" / "x.xyz").resolve()
    )
    with pytest.raises(ModelNotFound, match="^input not found: nope.ply; pass point cloud or mesh"):
        expand_inputs(["nope.ply"])
    with pytest.raises(InputError, match=r"^the pattern '.*\*\.obj' holds no point cloud or mesh"):
        expand_inputs([str(tmp_path / "*.obj")])
    with pytest.raises(ModelNotFound, match="^--gt folder not found: nowhere"):
        collect_shapes([tmp_path / "a" / "x.xyz"], gt_dir="nowhere")


def test_ray_missing_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    (tmp_path / "s.xyz").write_text("0 0 0\n")
    assert main(["recon-batch", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "o"), "--ray"]) == 2
    assert capsys.readouterr().err == (
        "error: --ray needs Ray, which is not installed; install it with pip install "
        "'fields3d[ray]' (the same version on every machine of the cluster), or leave out --ray "
        "to use the local pool\n"
    )
    assert not (tmp_path / "o").exists()  # nothing written


def test_bad_batch_settings_stop_before_any_work(capsys, tmp_path):
    (tmp_path / "s.xyz").write_text("0 0 0\n")
    code = main(
        ["recon-batch", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "o"), "--method", "x"]
    )
    assert code == 2
    assert capsys.readouterr().err == (
        "error: method must be one of gridpull, neural, poisson, got 'x'\n"
    )
    assert (
        main(["recon-batch", str(tmp_path / "s.xyz"), "-o", str(tmp_path / "o"), "--workers", "0"])
        == 2
    )
    assert capsys.readouterr().err == "error: workers must be an integer >= 1, got 0\n"
    assert not (tmp_path / "o").exists()
