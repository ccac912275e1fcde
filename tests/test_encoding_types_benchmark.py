"""The encoding types benchmark's settings: --log2-table sets the table size of the hashed
encodings only. (Its timings are not tested.)"""

import importlib
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # as running it does: it imports its _common
bench = importlib.import_module("encoding_types")


def run(names: list[str], *flags: str) -> dict:
    args = bench.parse_args(["--repeats", "1", "--warmup", "0", *flags])
    return {name: bench.bench_encoding(name, torch.device("cpu"), [6], args) for name in names}


def test_log2_table_sets_the_hash_and_simplex_tables_and_leaves_the_others():
    names = ["hash_grid", "simplex_grid", "dense_grid"]
    default, small = run(names), run(names, "--log2-table", "10")
    for name in ("hash_grid", "simplex_grid"):
        assert default[name]["config"]["log2_hashmap_size"] == 19
        assert small[name]["config"]["log2_hashmap_size"] == 10
        assert small[name]["n_params"] < default[name]["n_params"]
    assert small["dense_grid"]["config"] == default["dense_grid"]["config"]
    assert [r["workload"] for r in small["hash_grid"]["rows"]] == list(bench.WORKLOADS)
