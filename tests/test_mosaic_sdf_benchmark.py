"""The Mosaic-SDF benchmark end to end on one shape at tiny sizes: rows for the mosaic, its
fine-tuned form and the dense grid, with metrics and timings. (Timings are not tested, only that
they are there.)"""

import importlib.util
import json
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # for its _common
_spec = importlib.util.spec_from_file_location("mosaic_benchmark", BENCHMARKS / "mosaic_sdf.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_tiny_run_writes_every_method(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench, "HASH", {})  # no hash-grid fit at these sizes
    out = tmp_path / "mosaic.json"
    flags = ["--shapes", "spot", "--sizes", "128x4,64x3", "--repeats", "1"]
    flags += ["--mesh-resolution", "24", "--finetune-steps", "2"]
    threads = torch.get_num_threads()
    try:
        assert bench.main([*flags, "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["method"], r["values"]) for r in rows] == [
        ("mosaic", 8192),
        ("mosaic+ft", 8192),
        ("dense", 8000),
        ("mosaic", 1728),
        ("dense", 1728),
    ]
    for r in rows:
        assert 0 < r["chamfer_l1"] < 0.05 and r["faces"] > 0 and bench.seconds(r) > 0
    assert "mosaic+ft" in capsys.readouterr().out
