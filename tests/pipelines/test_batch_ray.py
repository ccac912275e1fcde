"""fields3d recon-batch --ray on a local Ray with 2 CPUs: the local pool's batch, a Ray worker
killed mid-shape and retried, a driver interrupted and the batch resumed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip(
    "ray", reason="Ray is not installed: pip install 'fields3d[ray]' (make setup installs it)"
)
pytestmark = pytest.mark.ray

from fields3d.pipelines.batch import MANIFEST  # noqa: E402

MESHES = Path(__file__).resolve().parents[2] / "assets" / "meshes"
SHAPES = [MESHES / "cow.obj", MESHES / "spot.obj", MESHES / "fandisk.obj"]
SMALL = ["--resolution", "32", "--steps", "5", "--samples", "2000", "--device", "cpu"]
RAY = ["--ray", "--workers", "2", "--threads", "1", "--no-picture", "--quiet"]


def driver(inputs, out: Path, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fields3d", "recon-batch", *map(str, inputs), "-o", str(out)]
    return subprocess.Popen(
        [*cmd, *SMALL, *RAY, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(out: Path) -> list[dict]:
    path = out / MANIFEST
    if not path.exists():
        return []
    text = path.read_text()
    assert not text or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def running_shapes(root: int) -> dict[int, str]:
    """pid -> shape of the Ray workers under ``root`` running a shape (title ``ray::recon NAME``)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace").strip()
        except OSError:
            continue
        if title.startswith("ray::recon ") and root in _ancestors(int(entry)):
            found[int(entry)] = title.removeprefix("ray::recon ").strip()
    return found


def test_ray_batch_retries_a_killed_worker_and_records_each_shape_once(tmp_path):
    broken = tmp_path / "broken.xyz"
    broken.write_text("1 2 3\nthis is not a number\n")
    out = tmp_path / "out"
    proc = driver([*SHAPES, broken], out)
    killed, deadline = None, time.monotonic() + 400
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        running = {p: n for p, n in running_shapes(proc.pid).items() if n != "broken"}
        if running:
            time.sleep(1.0)  # into the shape's work
            pid, name = next(iter(running.items()))
            try:
                os.kill(pid, signal.SIGKILL)
                killed = (pid, name)
            except ProcessLookupError:  # it finished meanwhile: take the next
                pass
        time.sleep(0.1)
    stdout, stderr = proc.communicate(timeout=400)
    assert killed is not None, "no Ray worker was seen running a shape"
    assert proc.returncode == 1, stderr  # the corrupt file failed
    records = lines(out)
    names = [r["name"] for r in records]
    assert sorted(names) == ["broken", "cow", "fandisk", "spot"]  # each shape once
    by_name = {r["name"]: r for r in records}
    retried = by_name[killed[1]]
    assert retried["status"] == "done" and retried["pid"] != killed[0]  # Ray ran it again
    assert all(by_name[n]["status"] == "done" for n in ("cow", "spot", "fandisk"))
    assert by_name["broken"]["error"].startswith("cannot read point cloud")
    assert all((out / n / "mesh.ply").is_file() for n in ("cow", "spot", "fandisk"))
    assert "4 shapes: 3 done, 1 failed" in (out / "summary.md").read_text()
    assert "shapes        4: 3 done, 1 failed (4 run now" in stdout


def test_ray_driver_interrupted_then_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    proc = driver(SHAPES, out, "--workers", "1")
    deadline = time.monotonic() + 400
    while not lines(out):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    first = lines(out)
    assert 1 <= len(first) < 3 and all(r["status"] == "done" for r in first)
    again = driver(SHAPES, out, "--workers", "1")
    stdout, stderr = again.communicate(timeout=400)
    assert again.returncode == 0, stderr
    assert f"({3 - len(first)} run now, {len(first)} already in the manifest" in stdout
    records = lines(out)
    assert sorted(r["name"] for r in records) == ["cow", "fandisk", "spot"]  # each once
    assert all(r["status"] == "done" for r in records)
