#!/usr/bin/env python3
"""Write assets/scenes/spot/: a NeRF-synthetic style posed-image scene of the shipped cow "spot".

    .venv/bin/python scripts/make-nerf-scene.py [--mesh assets/meshes/spot.obj] [--out assets/scenes/spot]
                                                [--specular 0]

(Another y-up mesh and folder give the same kind of scene of that mesh, e.g. to check that NeRF
settings tuned on spot hold on other objects.)

Several meshes and ``--spread S`` (> 1) give a large, sparse scene: each mesh normalised as below
and placed at a random point (seed 0, at least 4 units apart) of the box ``[-S, S]^3``, S times the
size of one object; train and test views go round the objects in turn (view ``i`` looks at object
``i mod n`` as the single-object views look at the origin, so other objects may show behind it), and
the transforms files give the box through ``aabb_scale`` 1 and ``scale`` ``0.5 / S``:

    .venv/bin/python scripts/make-nerf-scene.py --mesh assets/meshes/spot.obj assets/meshes/cow.obj \
        assets/meshes/stanford-bunny.obj --spread 20 --out benchmarks/results/scenes/sparse

World and object: z is up, as in NeRF-synthetic (Blender). assets/meshes/spot.obj (y up) is turned
+90 degrees about x (its +y becomes +z), its bounding box is centred on the origin and it is scaled
so the longest side spans [-1, 1]; it fits the [-1.5, 1.5]^3 box NeRF-synthetic loaders assume.

Cameras: 200x200 pixels, camera_angle_x 0.6911112070083618 (NeRF-synthetic's), radius 4.0311
(NeRF-synthetic's) from the origin, each looking at the origin with +z up in the picture. Train:
100 views, 85 uniform over the upper hemisphere (cos of the polar angle in [0, 0.97]) and 15 below
the equator (in [-0.4, 0)), shuffled, seed 0. Test: 20 views on a spiral, azimuth 9 + 18 k degrees,
elevation rising from -10 to 60 degrees.

Appearance (view-independent, baked): an albedo of coloured 0.4-unit cells (a palette colour per 3D
cell, picked by a hash of the cell index) crossed by dark bands every 0.1 units of height and light
bands every 0.25 units along x + y, shaded by a fixed directional light (Lambert plus ambient);
transparent background. ``--specular S`` (default 0, the shipped scene) adds a white Blinn-Phong
highlight S * max(0, n.h)^SHININESS from the same light, h halfway between the light and the
direction to the camera: the colour then depends on the view, as a NeRF's view-dependent head must
learn. Each view is rendered at 2x with a perspective z-buffer (fields3d.geometry.raster) at pixel centres and box-downsampled over premultiplied colour and alpha.
Frames are written as transforms_train.json / transforms_test.json and RGBA PNGs train/r_<i>.png,
test/r_<i>.png. Deterministic: running it again rewrites the same files.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from fields3d.geometry.mesh_io import load_mesh, write_atomic
from fields3d.geometry.raster import interpolate, rasterize_perspective

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assets" / "meshes" / "spot.obj"
TARGET = ROOT / "assets" / "scenes" / "spot"
SIZE, SUPERSAMPLE = 200, 2
CAMERA_ANGLE_X = 0.6911112070083618
RADIUS = 4.031128874
N_UPPER, N_LOWER, N_TEST = 85, 15, 20
SEED = 0
LIGHT = np.array([0.35, -0.45, 0.82]) / np.linalg.norm([0.35, -0.45, 0.82])
AMBIENT, DIFFUSE = 0.3, 0.7
SHININESS = 24.0
PALETTE = np.array(
    [
        [0.85, 0.25, 0.20],
        [0.95, 0.65, 0.15],
        [0.30, 0.70, 0.30],
        [0.20, 0.45, 0.85],
        [0.60, 0.30, 0.75],
        [0.90, 0.85, 0.80],
        [0.15, 0.65, 0.70],
        [0.75, 0.50, 0.30],
    ]
)


def normalise(verts: np.ndarray) -> np.ndarray:
    """spot.obj's ``(V, 3)`` vertices in the scene's world: z up, box centred, longest side [-1, 1]."""
    turned = np.stack([verts[:, 0], -verts[:, 2], verts[:, 1]], axis=1)  # +90 degrees about x
    lo, hi = turned.min(axis=0), turned.max(axis=0)
    return (turned - 0.5 * (lo + hi)) * (2.0 / (hi - lo).max())


def albedo(points: np.ndarray) -> np.ndarray:
    """``(P, 3)`` world points -> ``(P, 3)`` colours: palette cells with dark and light bands."""
    cell = np.floor(points / 0.4).astype(np.int64)
    key = (cell[:, 0] * 73856093) ^ (cell[:, 1] * 19349663) ^ (cell[:, 2] * 83492791)
    colour = PALETTE[np.abs(key) % len(PALETTE)]
    dark = (points[:, 2] / 0.1) % 1.0 < 0.22
    light = ((points[:, 0] + points[:, 1]) / 0.25) % 1.0 < 0.15
    colour = np.where(light[:, None], 0.5 + 0.5 * colour, colour)
    return np.where(dark[:, None], 0.35 * colour, colour)


def look_at(eye: np.ndarray, target: np.ndarray | None = None) -> np.ndarray:
    """The ``(4, 4)`` camera-to-world matrix of a camera at ``eye`` looking at ``target`` (default
    the origin), +z up."""
    offset = eye if target is None else eye - target
    back = offset / np.linalg.norm(offset)  # the camera looks down -back
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, np.cross(back, right), back, eye
    return c2w


def train_eyes() -> np.ndarray:
    """``(100, 3)`` camera positions: uniform over the upper hemisphere, some below, shuffled."""
    rng = np.random.default_rng(SEED)
    cos_polar = np.concatenate([rng.uniform(0.0, 0.97, N_UPPER), rng.uniform(-0.4, 0.0, N_LOWER)])
    azimuth = rng.uniform(0.0, 2 * math.pi, N_UPPER + N_LOWER)
    sin_polar = np.sqrt(1.0 - cos_polar**2)
    eyes = RADIUS * np.stack(
        [sin_polar * np.cos(azimuth), sin_polar * np.sin(azimuth), cos_polar], axis=1
    )
    return eyes[rng.permutation(len(eyes))]


def test_eyes() -> np.ndarray:
    """``(20, 3)`` camera positions on a spiral around the object."""
    azimuth = np.radians(9.0 + 18.0 * np.arange(N_TEST))
    elevation = np.radians(np.linspace(-10.0, 60.0, N_TEST))
    return RADIUS * np.stack(
        [
            np.cos(elevation) * np.cos(azimuth),
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
        ],
        axis=1,
    )


def unit(v: np.ndarray) -> np.ndarray:
    """The ``(P, 3)`` rows of v scaled to length 1 (zero rows stay zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def shade(points: np.ndarray, normals: np.ndarray, eye: np.ndarray, specular: float) -> np.ndarray:
    """``(P, 3)`` colours of surface points seen from ``eye``: albedo, Lambert plus ambient, and
    (``specular`` > 0) a white Blinn-Phong highlight, the only view-dependent term."""
    n_dot_l = normals @ LIGHT
    colour = albedo(points) * (AMBIENT + DIFFUSE * np.clip(n_dot_l, 0.0, 1.0))[:, None]
    if specular <= 0:
        return colour
    n_dot_h = np.sum(normals * unit(unit(eye - points) + LIGHT), axis=1)
    highlight = np.where(n_dot_l > 0, specular * np.clip(n_dot_h, 0.0, 1.0) ** SHININESS, 0.0)
    return np.clip(colour + highlight[:, None], 0.0, 1.0)


def render_view(mesh: trimesh.Trimesh, c2w: np.ndarray, specular: float = 0.0) -> np.ndarray:
    """One anti-aliased ``(SIZE, SIZE, 4)`` uint8 RGBA view (straight, not premultiplied, colour)."""
    big = SIZE * SUPERSAMPLE
    focal = 0.5 * big / math.tan(0.5 * CAMERA_ANGLE_X)
    face_id, _, bary = rasterize_perspective(
        mesh.vertices, mesh.faces, c2w, focal, focal, big / 2, big / 2, big, big
    )
    points = interpolate(mesh.vertices, mesh.faces, face_id, bary).reshape(-1, 3)
    normals = unit(interpolate(mesh.vertex_normals, mesh.faces, face_id, bary).reshape(-1, 3))
    alpha = (face_id >= 0).reshape(-1, 1).astype(np.float64)
    colour = shade(points, normals, c2w[:3, 3], specular)
    premultiplied = np.concatenate([colour * alpha, alpha], axis=1).reshape(big, big, 4)
    small = premultiplied.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 4).mean(axis=(1, 3))
    a = small[..., 3:]
    rgb = np.where(a > 0, small[..., :3] / np.maximum(a, 1e-12), 0.0)
    return np.clip(np.round(np.concatenate([rgb, a], axis=2) * 255.0), 0, 255).astype(np.uint8)


def place(n: int, spread: float) -> np.ndarray:
    """``(n, 3)`` object centres in ``[-0.8 S, 0.8 S]^3``, at least 4 units apart (seed 0)."""
    rng = np.random.default_rng(SEED)
    centres: list[np.ndarray] = []
    while len(centres) < n:
        c = rng.uniform(-0.8 * spread, 0.8 * spread, 3)
        if all(np.linalg.norm(c - other) >= 4.0 for other in centres):
            centres.append(c)
    return np.array(centres)


def write_split(
    target: Path,
    mesh: trimesh.Trimesh,
    split: str,
    eyes: np.ndarray,
    specular: float = 0.0,
    centres: np.ndarray | None = None,
    meta: dict | None = None,
) -> None:
    frames = []
    for i, eye in enumerate(eyes):
        at = None if centres is None else centres[i % len(centres)]
        c2w = look_at(eye if at is None else eye + at, at)
        picture = render_view(mesh, c2w, specular)
        if centres is None and (picture[[0, -1], :, 3].any() or picture[:, [0, -1], 3].any()):
            raise RuntimeError(f"{split} view {i} cuts the object at the picture's edge")
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG", optimize=True)
        write_atomic(target / split / f"r_{i}.png", buffer.getvalue())
        frames.append(
            {"file_path": f"./{split}/r_{i}", "transform_matrix": (c2w + 0.0).tolist()}
        )  # no -0.0
    meta = {"camera_angle_x": CAMERA_ANGLE_X, **(meta or {}), "frames": frames}
    write_atomic(target / f"transforms_{split}.json", (json.dumps(meta, indent=2) + "\n").encode())


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="Render a y-up mesh into a NeRF-synthetic style scene.")
    p.add_argument("--mesh", type=Path, nargs="+", default=[SOURCE])
    p.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="> 1: place the meshes in [-S, S]^3, S object sizes across (a large sparse scene)",
    )
    p.add_argument("--out", type=Path, default=TARGET)
    p.add_argument(
        "--specular",
        type=float,
        default=0.0,
        help="strength of a view-dependent highlight (0: none)",
    )
    args = p.parse_args()
    sources = [load_mesh(path) for path in args.mesh]
    if args.spread > 1:
        centres = place(len(sources), args.spread)
        parts = [
            trimesh.Trimesh(normalise(m.vertices) + c, m.faces, process=False)
            for m, c in zip(sources, centres)
        ]
        mesh = trimesh.util.concatenate(parts)
        box = {"aabb_scale": 1, "scale": 0.5 / args.spread, "offset": [0.5, 0.5, 0.5]}
    else:
        mesh = trimesh.Trimesh(normalise(sources[0].vertices), sources[0].faces, process=False)
        centres, box = None, None
    if args.out.exists():
        shutil.rmtree(args.out)
    write_split(args.out, mesh, "train", train_eyes(), args.specular, centres, box)
    write_split(args.out, mesh, "test", test_eyes(), args.specular, centres, box)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out}: {N_UPPER + N_LOWER} train + {N_TEST} test views, {size:,} bytes")


if __name__ == "__main__":
    main()
