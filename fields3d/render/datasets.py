"""Posed-image scenes: NeRF-synthetic folders and instant-NGP ``transforms.json`` captures.

Two layouts are read, chosen by what the folder holds:

* **NeRF-synthetic**: ``transforms_<split>.json`` for ``split`` in ``train``, ``val``, ``test``.
  Frames name their images without an extension (``"./train/r_0"`` means ``train/r_0.png``).
* **instant-NGP**: one ``transforms.json`` (used when ``transforms_<split>.json`` is absent). Frames
  name their images with the extension. Splits are made by rule: frames are sorted by
  ``file_path`` and every 8th one (positions 0, 8, 16, ... of the sorted list) is held out as
  ``test``; ``train`` is the rest and ``all`` is every frame (the LLFF / mip-NeRF 360 convention).

Both layouts give ``transform_matrix`` as a camera-to-world matrix in the NeRF / OpenGL camera
convention (:mod:`fields3d.render.cameras`); poses are returned as they are in the file. Intrinsics
come from the top level, overridden by any the frame holds: ``fl_x`` or ``camera_angle_x`` (the
horizontal field of view, radians in (0, pi)), ``fl_y`` or ``camera_angle_y`` (else ``fy = fx``),
``cx`` and ``cy`` (else the middle of the picture), ``w`` and ``h`` (else the size of the first
image). Lens distortion (non-zero ``k1``, ``k2``, ``k3``, ``k4``, ``p1``, ``p2``) is refused: the
cameras are pinholes.

Scene bound (``aabb``, in the file's coordinates): with ``aabb_scale`` (either layout), instant-NGP's
box, the cube of side ``aabb_scale`` (at most 128) around ``(0.5, 0.5, 0.5)`` in its unit-cube space,
mapped back through ``p_ngp = p * scale + offset`` (``scale`` 0.33 and ``offset`` ``[0.5, 0.5, 0.5]``
unless given); an instant-NGP file without ``aabb_scale`` gets ``aabb_scale = 1`` (about
``[-1.52, 1.52]^3``); a NeRF-synthetic folder without it gets the standard ``[-1.5, 1.5]^3``.

Images are read with PIL as straight (not premultiplied) RGBA in ``[0, 1]``; alpha is 1 where the
file has none. Downscaling averages ``factor x factor`` boxes of premultiplied colour and alpha
(fractional boxes when the size does not divide) and divides by the averaged alpha again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._checks import check_int, is_number
from ..errors import InputError, ModelNotFound
from .cameras import Cameras, focal_from_fov

SPLITS = ("train", "val", "test", "all")
HOLDOUT_EVERY = 8
NERF_SYNTHETIC_AABB = ((-1.5, -1.5, -1.5), (1.5, 1.5, 1.5))
NGP_SCALE, NGP_OFFSET, NGP_MAX_AABB_SCALE = 0.33, (0.5, 0.5, 0.5), 128
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
WHITE = (1.0, 1.0, 1.0)


@dataclass(frozen=True, eq=False)
class PosedImages:
    """Pictures with their cameras.

    Attributes:
        images: ``(N, H, W, 4)`` float32 straight RGBA in ``[0, 1]``.
        cameras: the ``N`` cameras (float32), ``width == W`` and ``height == H``.
        aabb: ``(2, 3)`` float32 scene bound, minimum corner then maximum corner.
        background: ``(3,)`` float32 RGB to composite behind transparent pixels (white: the colour
            published NeRF-synthetic numbers use).
        name: the scene folder's name. split: the split read. layout: ``"nerf-synthetic"`` or
            ``"instant-ngp"``. files: the ``N`` image paths.
    """

    images: torch.Tensor
    cameras: Cameras
    aabb: torch.Tensor
    background: torch.Tensor
    name: str
    split: str
    layout: str
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return self.images.shape[0]


def load_scene(path: str | os.PathLike, split: str = "train", downscale: int = 1) -> PosedImages:
    """Read one split of a posed-image scene folder (layouts and conventions in the module docstring).

    Args:
        path: the scene folder. split: ``"train"``, ``"val"`` or ``"test"`` (NeRF-synthetic);
            ``"train"``, ``"test"`` or ``"all"`` (instant-NGP). downscale: integer factor >= 1.

    Returns:
        A :class:`PosedImages` whose pictures and cameras are downscaled by ``downscale``.

    Raises:
        ModelNotFound: no folder at ``path``, no transforms file in it, or a missing image.
        InputError: a bad ``split`` or ``downscale``, a transforms file that is not valid JSON or
            lacks a key, a non-finite or malformed pose, distortion, or an image of the wrong size.
    """
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    check_int("downscale", downscale, 1)
    folder = Path(path)
    if not folder.is_dir():
        raise ModelNotFound(
            f"scene folder not found: {folder}; pass a folder holding transforms_train.json (NeRF-synthetic) "
            "or transforms.json (instant-NGP) and the images they name"
        )
    json_path = folder / f"transforms_{split}.json"
    layout = "nerf-synthetic"
    if not json_path.is_file():
        json_path, layout = folder / "transforms.json", "instant-ngp"
    if not json_path.is_file():
        raise ModelNotFound(f"no transforms_{split}.json (NeRF-synthetic) or transforms.json (instant-NGP) in {folder}")
    meta = _read_json(json_path)
    frames = _select(_frames(meta, json_path), split, layout, json_path)
    return _load(folder, json_path, meta, frames, split, layout, downscale)


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # bad JSON or text, a 5000-digit number, nesting past the stack
        raise InputError(f"{path} is not valid JSON ({exc}); rewrite it or regenerate the scene") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} must hold a JSON object with 'frames', got a {type(meta).__name__}")
    return meta


def _frames(meta: dict, json_path: Path) -> list[tuple[int, dict]]:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{json_path} has no 'frames' (a non-empty list of {{file_path, transform_matrix}})")
    for i, frame in enumerate(frames):
        for key in ("file_path", "transform_matrix"):
            if not isinstance(frame, dict) or key not in frame:
                raise InputError(f"{json_path}: frames[{i}] has no '{key}'")
        if not isinstance(frame["file_path"], str):
            raise InputError(f"{json_path}: frames[{i}] 'file_path' must be a string, got {frame['file_path']!r}")
    return list(enumerate(frames))


def _select(frames: list[tuple[int, dict]], split: str, layout: str, json_path: Path) -> list[tuple[int, dict]]:
    if layout == "nerf-synthetic":
        return frames
    if split == "val":
        raise InputError(
            f"{json_path} holds one set of frames; split must be 'train', 'test' (every {HOLDOUT_EVERY}th frame "
            "by file_path) or 'all', got 'val'"
        )
    ordered = sorted(frames, key=lambda item: item[1]["file_path"])
    if split == "all":
        return ordered
    chosen = [item for k, item in enumerate(ordered) if (k % HOLDOUT_EVERY == 0) == (split == "test")]
    if not chosen:
        raise InputError(f"{json_path} holds {len(frames)} frame(s), which leaves none for the '{split}' split "
                         f"(every {HOLDOUT_EVERY}th frame by file_path is 'test', the rest 'train'); add frames")
    return chosen


def _pose(frame: dict, i: int, json_path: Path) -> np.ndarray:
    where = f"{json_path}: frames[{i}] ({frame['file_path']})"
    try:
        pose = np.array(frame["transform_matrix"], dtype=np.float64)
    except (TypeError, ValueError):
        pose = np.zeros(0)
    if pose.shape != (4, 4):
        raise InputError(f"{where} 'transform_matrix' must be a 4x4 list of numbers, got {frame['transform_matrix']!r}")
    if not np.isfinite(pose).all():
        raise InputError(f"{where} has a non-finite 'transform_matrix'; fix that frame's pose or remove the frame")
    spread = np.linalg.svd(pose[:3, :3], compute_uv=False)  # a rotation's are all 1
    if not spread[-1] > 1e-6 * spread[0]:
        raise InputError(f"{where} has a singular rotation in 'transform_matrix' (its 3x3 part flattens the camera's "
                         "axes); it must be a camera-to-world matrix: fix that frame's pose or remove the frame")
    return pose


def _number(meta: dict, frame: dict, key: str, i: int, json_path: Path, positive: bool = False):
    """The frame's ``key``, else the top level's, else None; InputError unless a finite number."""
    value = frame.get(key, meta.get(key))
    if value is None:
        return None
    if not is_number(value) or not math.isfinite(value) or (positive and value <= 0):
        kind = "a finite number > 0" if positive else "a finite number"
        raise InputError(f"{json_path}: '{key}' (frames[{i}]) must be {kind}, got {value!r}")
    return float(value)


def _angle(meta: dict, frame: dict, key: str, i: int, json_path: Path):
    """The frame's field of view ``key``, else the top level's, else None; InputError unless in (0, pi)."""
    value = frame.get(key, meta.get(key))
    if value is None:
        return None
    if not is_number(value) or not 0 < value < math.pi:  # NaN fails the comparison too
        raise InputError(f"{json_path}: '{key}' (frames[{i}]) must be a field of view in radians between 0 and pi "
                         f"(exclusive), got {value!r}; give the angle in radians (degrees * pi / 180)")
    return float(value)


def _intrinsics(meta: dict, frame: dict, i: int, json_path: Path, size: tuple[int, int]) -> tuple[float, ...]:
    """``(fx, fy, cx, cy)`` in pixels of a ``size = (width, height)`` picture."""
    for key in DISTORTION_KEYS:
        if _number(meta, frame, key, i, json_path):
            raise InputError(
                f"{json_path}: lens distortion '{key}' is {frame.get(key, meta.get(key))!r} (frames[{i}]); fields3d "
                "cameras are pinholes: undistort the images first and set the distortion coefficients to 0"
            )
    w, h = size
    fx = _number(meta, frame, "fl_x", i, json_path, positive=True)
    if fx is None:
        angle = _angle(meta, frame, "camera_angle_x", i, json_path)
        if angle is None:
            raise InputError(
                f"{json_path}: no 'camera_angle_x' or 'fl_x' for frames[{i}]; give the horizontal field of view "
                "in radians or the focal length in pixels"
            )
        fx = focal_from_fov(angle, w)
    fy = _number(meta, frame, "fl_y", i, json_path, positive=True)
    if fy is None:
        angle = _angle(meta, frame, "camera_angle_y", i, json_path)
        fy = fx if angle is None else focal_from_fov(angle, h)
    cx = _number(meta, frame, "cx", i, json_path)
    cy = _number(meta, frame, "cy", i, json_path)
    return fx, fy, w / 2 if cx is None else cx, h / 2 if cy is None else cy


def _image_path(folder: Path, file_path: str) -> Path:
    path = folder / file_path
    return path if path.suffix else path.with_name(path.name + ".png")


@contextlib.contextmanager
def open_image(path: Path):
    """``PIL.Image.open(path)`` without PIL's DecompressionBombWarning: a picture between its pixel
    limit and twice that loads as any other (the warning printed before our own output, or before
    an error line); past twice the limit PIL raises DecompressionBombError, which callers name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            yield im


def unit_pixels(im: Image.Image, mode: str) -> np.ndarray:
    """``im`` as float32 ``(H, W, len(mode))`` in [0, 1], ``mode`` "RGB" or "RGBA". Single-channel
    16- and 32-bit integer pictures are scaled by their type's range and float ones taken as they
    are (PIL's ``convert`` clips both at 255, which turns a 16-bit grey picture black and white)."""
    if im.mode not in ("F", "I") and not im.mode.startswith("I;16"):
        return np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    grey = np.asarray(im, dtype=np.float64)
    if im.mode != "F":
        grey = grey / (65535.0 if im.mode.startswith("I;16") or grey.max(initial=0) <= 65535 else 2.0**31 - 1)
    grey = np.nan_to_num(np.clip(grey, 0.0, 1.0)).astype(np.float32)
    channels = [grey] * 3 + ([np.ones_like(grey)] if mode == "RGBA" else [])
    return np.stack(channels, axis=-1)


def _read_image(path: Path, i: int, json_path: Path) -> np.ndarray:
    """``(H, W, 4)`` float32 straight RGBA in [0, 1]."""
    if not path.is_file():
        raise ModelNotFound(f"image not found: {path} (frames[{i}] of {json_path}); the transforms file names it")
    try:
        with open_image(path) as im:
            rgba = unit_pixels(im, "RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read image {path} (frames[{i}] of {json_path}): {exc}") from exc
    return rgba


def _size(meta: dict, frame: dict, i: int, json_path: Path, first: np.ndarray) -> tuple[tuple[int, int], str]:
    """The ``(width, height)`` a frame's image must have, and where that size comes from."""
    w, h = frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))
    if w is None or h is None:
        return (first.shape[1], first.shape[0]), "the size of the first image"
    for key, value in (("w", w), ("h", h)):
        if not is_number(value) or not math.isfinite(value) or value != int(value) or value < 1:
            raise InputError(f"{json_path}: '{key}' (frames[{i}]) must be a whole number of pixels >= 1, got {value!r}")
    return (int(w), int(h)), "its 'w' and 'h'"


def _downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-average premultiplied RGBA ``(H, W, 4)`` to ``(H // factor, W // factor, 4)``, straight again."""
    if factor == 1:
        return image
    h, w = image.shape[0] // factor, image.shape[1] // factor
    alpha = image[..., 3:]
    premultiplied = np.concatenate([image[..., :3] * alpha, alpha], axis=2)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(premultiplied[..., c])).resize((w, h), Image.Resampling.BOX))
        for c in range(4)  # 2-D float32 arrays are PIL mode "F"
    ]
    small = np.stack(channels, axis=2)
    a = np.clip(small[..., 3:], 0.0, 1.0)
    rgb = np.where(a > 0, small[..., :3] / np.maximum(a, 1e-12), 0.0)
    return np.concatenate([np.clip(rgb, 0.0, 1.0), a], axis=2).astype(np.float32)


def _aabb(meta: dict, layout: str, json_path: Path) -> tuple:
    if "aabb_scale" not in meta and layout == "nerf-synthetic":
        return NERF_SYNTHETIC_AABB
    k = _top_number(meta, "aabb_scale", 1.0, json_path)
    scale = _top_number(meta, "scale", NGP_SCALE, json_path)
    offset = meta.get("offset", NGP_OFFSET)
    if not (isinstance(offset, (list, tuple)) and len(offset) == 3 and all(is_number(v) for v in offset)):
        raise InputError(f"{json_path}: 'offset' must be a list of 3 finite numbers, got {offset!r}")
    if not all(math.isfinite(v) for v in offset):
        raise InputError(f"{json_path}: 'offset' must be a list of 3 finite numbers, got {offset!r}")
    k = min(k, NGP_MAX_AABB_SCALE)
    lo = tuple((0.5 - 0.5 * k - o) / scale for o in offset)
    hi = tuple((0.5 + 0.5 * k - o) / scale for o in offset)
    return lo, hi


def _top_number(meta: dict, key: str, default: float, json_path: Path) -> float:
    value = meta.get(key, default)
    if not is_number(value) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{json_path}: '{key}' must be a finite number > 0, got {value!r}")
    return float(value)


def _load(folder, json_path, meta, frames, split, layout, downscale) -> PosedImages:
    images, poses, intrinsics, files = [], [], [], []
    size = source = None
    for i, frame in frames:
        pose = _pose(frame, i, json_path)
        path = _image_path(folder, frame["file_path"])
        image = _read_image(path, i, json_path)
        frame_size, frame_source = _size(meta, frame, i, json_path, images[0] if images else image)
        size, source = (frame_size, frame_source) if size is None else (size, source)
        if (image.shape[1], image.shape[0]) != size or frame_size != size:
            raise InputError(
                f"image {path} (frames[{i}] of {json_path}) is {image.shape[1]}x{image.shape[0]} pixels, "
                f"expected {size[0]}x{size[1]} ({source}); every image of a scene must have one size"
            )
        images.append(image)
        poses.append(pose)
        intrinsics.append(_intrinsics(meta, frame, i, json_path, size))
        files.append(path)
    k = np.array(intrinsics, dtype=np.float32)
    t = {name: torch.from_numpy(np.ascontiguousarray(k[:, j])) for j, name in enumerate(("fx", "fy", "cx", "cy"))}
    cameras = Cameras(torch.tensor(np.stack(poses), dtype=torch.float32), **t, width=size[0], height=size[1])
    if min(size) // downscale < 1:
        raise InputError(f"downscale {downscale} leaves no pixels of {size[0]}x{size[1]} images; use at most {min(size)}")
    cameras = cameras.scaled(downscale)
    return PosedImages(
        images=torch.from_numpy(np.stack([_downscale(image, downscale) for image in images])),
        cameras=cameras,
        aabb=torch.tensor(_aabb(meta, layout, json_path), dtype=torch.float32),
        background=torch.tensor(WHITE, dtype=torch.float32),
        name=folder.resolve().name,
        split=split,
        layout=layout,
        files=tuple(files),
    )
