#!/usr/bin/env python3
"""Write assets/fields/spot-nerf.safetensors: a small NeRF of the shipped spot scene, for tests and
demos that need a trained field without training one (the viewer's browser test).

Trains `fields3d nerf` on assets/scenes/spot with a small field (8 levels, 2^14 entries a level,
resolution up to 256, 32 hidden units, a 32^3 occupancy grid), pictures downscaled by 2, 1500
steps, seed 0, on the CPU; then drops the optimizer state (only `--resume` needs it), leaving
about 1.1 MB. Training is multi-threaded, so a rerun gives a field of the same quality (test
PSNR about 33 dB) but not the same bytes.

    .venv/bin/python scripts/make-spot-nerf.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save

from fields3d._io import write_atomic
from fields3d.pipelines.nerf import NerfConfig, train_nerf

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "assets" / "fields" / "spot-nerf.safetensors"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = NerfConfig(
            data=str(ROOT / "assets" / "scenes" / "spot"),
            output=tmp,
            device="cpu",
            steps=1500,
            time_budget=None,
            downscale=2,
            n_levels=8,
            log2_hashmap_size=14,
            max_resolution=256,
            n_hidden=32,
            grid_resolution=32,
            turntable_frames=0,
            mesh_resolution=0,
        )
        result = train_nerf(config, progress=True)
        with safe_open(Path(tmp) / "checkpoint.safetensors", "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("optim")}
            metadata = f.metadata()
    write_atomic(TARGET, save(tensors, metadata=metadata))
    print(f"wrote {TARGET.relative_to(ROOT)}: {result.steps} steps, test PSNR {result.psnr:.2f} dB")


if __name__ == "__main__":
    main()
