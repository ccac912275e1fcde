"""A picture grid of the reconstruction benchmark's worst cases: for each input kind, the shape on
which the default method's normal consistency is lowest, drawn as the shipped mesh, ours and
Poisson's (same view), with the numbers under each.

Reads the JSON of ``benchmarks/recon.py`` (one or more files: runs split over shapes) and the
meshes it kept with ``--keep-meshes DIR``; writes a PNG (default
``benchmarks/results/recon-worst.png``) and, with ``--small PATH``, a copy half the size.

Usage::

    python benchmarks/recon_pictures.py benchmarks/results/recon-scans-*.json \
        --meshes benchmarks/results/recon-meshes [--out PNG] [--small docs/recon-worst.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from _common import RESULTS_DIR
from PIL import Image, ImageDraw

from fields3d.geometry.mesh_io import load_mesh
from fields3d.geometry.pictures import render_mesh

MESH_DIR = Path(__file__).resolve().parent.parent / "assets" / "meshes"
TILE = 256
CAPTION = 34


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="JSON files written by benchmarks/recon.py")
    p.add_argument("--meshes", required=True, help="the folder given to recon.py --keep-meshes")
    p.add_argument("--method", default="gridpull", help="whose worst cases (default gridpull)")
    p.add_argument("--out", default=str(RESULTS_DIR / "recon-worst.png"))
    p.add_argument("--small", help="also write a half-size copy here (e.g. docs/recon-worst.png)")
    return p.parse_args(argv)


def worst_rows(rows: list[dict], method: str) -> list[dict]:
    """Per input kind (in the order met), the ``method`` row with the lowest normal consistency."""
    worst: dict[str, dict] = {}
    for r in rows:
        nc = r.get("metrics", {}).get("normal_consistency")
        if r["method"] != method or nc is None:
            continue
        if r["input"] not in worst or nc < worst[r["input"]]["metrics"]["normal_consistency"]:
            worst[r["input"]] = r
    return list(worst.values())


def tile(verts, faces, caption: str) -> Image.Image:
    picture = Image.new("RGB", (TILE, TILE + CAPTION), "white")
    if verts is not None:
        picture.paste(Image.fromarray(render_mesh(verts, faces, size=TILE, azimuth=35.0)), (0, 0))
    draw = ImageDraw.Draw(picture)
    for i, line in enumerate(caption.split("\n")):
        draw.text((6, TILE + 2 + 15 * i), line, fill=(0, 0, 0))
    return picture


def caption(row: dict | None, who: str) -> str:
    if row is None or "metrics" not in row:
        return f"{who}: {'error' if row else 'not run'}"
    m = row["metrics"]
    closed = "closed" if row.get("watertight") else "open"
    return (
        f"{who}: NC {m['normal_consistency']:.3f}  F@1% {m['f_score@1%']:.3f}\n"
        f"CD-L1 {m['chamfer_l1']:.5f}  {closed}"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [r for path in args.results for r in json.loads(Path(path).read_text())["rows"]]
    index = {(r["shape"], r["input"], r["method"]): r for r in rows}
    meshes = Path(args.meshes)
    lines = []
    for row in worst_rows(rows, args.method):
        shape, kind = row["shape"], row["input"]
        truth = load_mesh(MESH_DIR / f"{shape}.obj")
        tiles = [tile(truth.vertices, truth.faces, f"{shape}, {kind}\n(the shipped mesh)")]
        for method in (args.method, "poisson"):
            path = meshes / f"{shape}-{kind}-{method}.ply"
            mesh = load_mesh(path) if path.exists() else None
            verts, faces = (mesh.vertices, mesh.faces) if mesh is not None else (None, None)
            label = "ours" if method == args.method else method
            tiles.append(tile(verts, faces, caption(index.get((shape, kind, method)), label)))
        lines.append(np.concatenate([np.asarray(t) for t in tiles], axis=1))
    if not lines:
        print("no rows with metrics for that method", file=sys.stderr)
        return 1
    grid = Image.fromarray(np.concatenate(lines, axis=0))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    print(f"wrote {out} ({grid.width} x {grid.height})")
    if args.small:
        small = grid.resize((grid.width // 2, grid.height // 2), Image.LANCZOS)
        small.save(args.small, optimize=True)
        print(f"wrote {args.small} ({small.width} x {small.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
