"""The rendering benchmark end to end on a tiny picture: the samplers agree, the memory floor is
timed for both compositing workloads and caps the speed-up as torch / floor. (Timings are not
tested, only that they are there and consistent.)"""

import importlib.util
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # for its _common
_spec = importlib.util.spec_from_file_location("render_benchmark", BENCHMARKS / "render.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_tiny_run_writes_the_memory_floor_and_its_cap(tmp_path, capsys):
    out = tmp_path / "render.json"
    flags = [
        "--device",
        "cpu",
        "--rays-side",
        "24",
        "--repeats",
        "1",
        "--ref-repeats",
        "1",
        "--warmup",
        "0",
    ]
    assert bench.main([*flags, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["workload"] for r in rows] == ["sampling", "composite fwd", "composite fwd+bwd"]
    assert rows[0]["samples"] > 0 and abs(rows[0]["count_diff"]) <= 1
    assert "memory_floor" not in rows[0]
    for r in rows[1:]:
        floor = r["memory_floor"]["median_ms"]
        assert floor > 0
        assert r["max_speedup_vs_torch"] == r["torch"]["median_ms"] / floor
    assert "memory floor (read every input, write every gradient once" in capsys.readouterr().out
