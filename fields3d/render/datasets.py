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

Accepted values (anything else is an InputError naming the file, frame and key), in pixels of the
full-size ``w x h`` pictures:

* ``transform_matrix``: a 4x4 list of JSON numbers (not strings or booleans), each finite and
  within float32's range; bottom row ``[0, 0, 0, 1]`` within 1e-6 (as float32, as
  :class:`~fields3d.render.cameras.Cameras` checks it); a 3x3 part that is a rotation:
  singular values 1 within 1e-2 (no scale or shear) and determinant +1 (not mirrored).
* ``fl_x`` from ``1e-3 * w`` to ``1e6 * w``, ``fl_y`` from ``1e-3 * h`` to ``1e6 * h``;
  ``camera_angle_x`` and ``camera_angle_y`` from 1e-6 to 3.13759 radians (the same focal lengths).
* ``cx`` from ``-w`` to ``2 * w``, ``cy`` from ``-h`` to ``2 * h`` (normally near ``w / 2``, ``h / 2``).
* ``aabb_scale`` >= 1/128 (values above 128 are clamped to 128), ``scale`` > 0, ``offset`` 3 finite
  numbers, together giving a box (below) that is finite in float32 with every side longer than
  ``1e-6 * max(1, largest |coordinate| along it)``.

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
from .cameras import BOTTOM_ROW_TOLERANCE, FLOAT32_MAX, Cameras, focal_from_fov

SPLITS = ("train", "val", "test", "all")
HOLDOUT_EVERY = 8
NERF_SYNTHETIC_AABB = ((-1.5, -1.5, -1.5), (1.5, 1.5, 1.5))
NGP_SCALE, NGP_OFFSET, NGP_MAX_AABB_SCALE = 0.33, (0.5, 0.5, 0.5), 128
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
WHITE = (1.0, 1.0, 1.0)
ROTATION_TOLERANCE = 1e-2  # how far a pose's 3x3 singular values may be from 1
FOCAL_RANGE = (1e-3, 1e6)  # focal lengths in picture widths (heights for fl_y)
FOV_RANGE = (
    2 * math.atan(0.5 / FOCAL_RANGE[1]),
    2 * math.atan(0.5 / FOCAL_RANGE[0]),
)  # the same, as angles
CENTRE_RANGE = (-1.0, 2.0)  # principal points in picture widths (heights for cy)
MIN_AABB_SCALE = 1 / 128
BOX_MARGIN = 1e-6  # a scene box's sides must exceed this times max(1, its largest |coordinate|)


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
            lacks a key, a pose that is not a camera-to-world matrix, an intrinsic or scene-box value
            outside the accepted ranges (module docstring), distortion, or an image of the wrong size.

    Example:
        >>> import json, pathlib, tempfile
        >>> from PIL import Image
        >>> from fields3d.render.datasets import load_scene
        >>> pose = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4], [0, 0, 0, 1]]  # 4 along +z
        >>> meta = {"camera_angle_x": 0.7, "frames": [{"file_path": "./train/r_0", "transform_matrix": pose}]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folder = pathlib.Path(tmp)
        ...     (folder / "train").mkdir()
        ...     Image.new("RGB", (8, 6), (255, 0, 0)).save(folder / "train" / "r_0.png")
        ...     _ = (folder / "transforms_train.json").write_text(json.dumps(meta))
        ...     scene = load_scene(folder, "train", downscale=2)
        >>> scene.layout, len(scene), scene.images.shape, scene.images.dtype
        ('nerf-synthetic', 1, torch.Size([1, 3, 4, 4]), torch.float32)
        >>> scene.images[0, 0, 0].tolist(), scene.cameras.width, scene.aabb.tolist()
        ([1.0, 0.0, 0.0, 1.0], 4, [[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]])
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
        raise ModelNotFound(
            f"no transforms_{split}.json (NeRF-synthetic) or transforms.json (instant-NGP) in {folder}"
        )
    meta = _read_json(json_path)
    frames = _select(_frames(meta, json_path), split, layout, json_path)
    return _load(folder, json_path, meta, frames, split, layout, downscale)


def _read_json(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (
        ValueError,
        RecursionError,
    ) as exc:  # bad JSON or text, a 5000-digit number, nesting past the stack
        raise InputError(
            f"{path} is not valid JSON ({exc}); rewrite it or regenerate the scene"
        ) from None
    if not isinstance(meta, dict):
        raise InputError(
            f"{path} must hold a JSON object with 'frames', got a {type(meta).__name__}"
        )
    return meta


def _frames(meta: dict, json_path: Path) -> list[tuple[int, dict]]:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(
            f"{json_path} has no 'frames' (a non-empty list of {{file_path, transform_matrix}})"
        )
    for i, frame in enumerate(frames):
        for key in ("file_path", "transform_matrix"):
            if not isinstance(frame, dict) or key not in frame:
                raise InputError(f"{json_path}: frames[{i}] has no '{key}'")
        if not isinstance(frame["file_path"], str):
            raise InputError(
                f"{json_path}: frames[{i}] 'file_path' must be a string, got {frame['file_path']!r}"
            )
    return list(enumerate(frames))


def _select(
    frames: list[tuple[int, dict]], split: str, layout: str, json_path: Path
) -> list[tuple[int, dict]]:
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
    chosen = [
        item for k, item in enumerate(ordered) if (k % HOLDOUT_EVERY == 0) == (split == "test")
    ]
    if not chosen:
        raise InputError(
            f"{json_path} holds {len(frames)} frame(s), which leaves none for the '{split}' split "
            f"(every {HOLDOUT_EVERY}th frame by file_path is 'test', the rest 'train'); add frames"
        )
    return chosen


def _finite(value) -> bool:
    """A JSON number (not a bool) that is finite as a float64 (an integer past float64's range is not)."""
    try:
        return is_number(value) and math.isfinite(value)
    except OverflowError:
        return False


def _given(meta: dict, frame: dict, key: str):
    """The frame's ``key``, else the top level's, else None."""
    return frame.get(key, meta.get(key))


def _pose(frame: dict, i: int, json_path: Path) -> np.ndarray:
    where = f"{json_path}: frames[{i}] ({frame['file_path']})"
    given = frame["transform_matrix"]
    pose = _matrix(given, where)
    bottom = np.abs(
        pose[3].astype(np.float32) - np.float32((0, 0, 0, 1))
    ).max()  # as Cameras checks it
    if bottom > np.float32(BOTTOM_ROW_TOLERANCE):
        raise InputError(
            f"{where} 'transform_matrix' must have bottom row [0, 0, 0, 1] (within "
            f"{BOTTOM_ROW_TOLERANCE:g}), got {given[3]!r}; it must be a camera-to-world matrix (an "
            "affine 4x4 transform): fix that frame's pose or remove the frame"
        )
    _check_rotation(pose[:3, :3], where)
    return pose


def _matrix(given, where: str) -> np.ndarray:
    """``given`` as a float64 4x4 array; InputError unless a 4x4 list of finite numbers within float32."""
    rows = given if isinstance(given, list) and len(given) == 4 else []
    if not rows or not all(
        isinstance(row, list) and len(row) == 4 and all(map(is_number, row)) for row in rows
    ):
        raise InputError(f"{where} 'transform_matrix' must be a 4x4 list of numbers, got {given!r}")
    if not all(_finite(v) for row in rows for v in row):
        raise InputError(
            f"{where} has a non-finite 'transform_matrix'; fix that frame's pose or remove the frame"
        )
    pose = np.array(rows, dtype=np.float64)
    if np.abs(pose).max() > FLOAT32_MAX:
        big = next(v for row in rows for v in row if abs(v) > FLOAT32_MAX)
        raise InputError(
            f"{where} 'transform_matrix' holds {big!r}, past float32's range (about 3.4e38); fix "
            "that frame's pose or remove the frame"
        )
    return pose


def _check_rotation(rotation: np.ndarray, where: str) -> None:
    spread = np.linalg.svd(rotation, compute_uv=False)  # a rotation's are all 1
    if not spread[-1] > 1e-6 * spread[0]:
        raise InputError(
            f"{where} has a singular rotation in 'transform_matrix' (its 3x3 part flattens the camera's "
            "axes); it must be a camera-to-world matrix: fix that frame's pose or remove the frame"
        )
    if np.abs(spread - 1).max() > ROTATION_TOLERANCE:
        values = ", ".join(f"{v:.3g}" for v in spread)
        raise InputError(
            f"{where} has a scaled or sheared rotation in 'transform_matrix' (its 3x3 part's singular "
            f"values are {values}; a rotation's are 1, within {ROTATION_TOLERANCE:g}); it must be a "
            "camera-to-world matrix: fix that frame's pose (scale the scene through the translations "
            "or 'scale', not the rotation) or remove the frame"
        )
    if np.linalg.det(rotation) < 0:
        raise InputError(
            f"{where} has a mirrored rotation (determinant -1) in 'transform_matrix' (its 3x3 part "
            "flips one of the camera's axes); it must be a camera-to-world matrix with determinant +1: "
            "fix that frame's pose (a change of camera convention flips two axes, never one) or "
            "remove the frame"
        )


def _number(meta: dict, frame: dict, key: str, i: int, json_path: Path, positive: bool = False):
    """The frame's ``key``, else the top level's, else None; InputError unless a finite number."""
    value = _given(meta, frame, key)
    if value is None:
        return None
    if not _finite(value) or (positive and value <= 0):
        kind = "a finite number > 0" if positive else "a finite number"
        raise InputError(f"{json_path}: '{key}' (frames[{i}]) must be {kind}, got {value!r}")
    return float(value)


def _angle(meta: dict, frame: dict, key: str, i: int, json_path: Path):
    """The frame's field of view ``key``, else the top level's, else None; InputError unless in (0, pi)
    and giving a focal length within FOCAL_RANGE."""
    value = _given(meta, frame, key)
    if value is None:
        return None
    if not is_number(value) or not 0 < value < math.pi:  # NaN fails the comparison too
        raise InputError(
            f"{json_path}: '{key}' (frames[{i}]) must be a field of view in radians between 0 and pi "
            f"(exclusive), got {value!r}; give the angle in radians (degrees * pi / 180)"
        )
    if not FOV_RANGE[0] <= value <= FOV_RANGE[1]:
        side = "w" if key.endswith("x") else "h"
        raise InputError(
            f"{json_path}: '{key}' (frames[{i}]) must be a field of view from {FOV_RANGE[0]:.3g} to "
            f"{FOV_RANGE[1]:.6g} radians (focal lengths from 1e6*{side} down to 1e-3*{side} pixels), "
            f"got {value!r}; give the camera's real field of view in radians"
        )
    return float(value)


def _intrinsics(
    meta: dict, frame: dict, i: int, json_path: Path, size: tuple[int, int]
) -> tuple[float, ...]:
    """``(fx, fy, cx, cy)`` in pixels of a ``size = (width, height)`` picture."""
    for key in DISTORTION_KEYS:
        if _number(meta, frame, key, i, json_path):
            raise InputError(
                f"{json_path}: lens distortion '{key}' is {_given(meta, frame, key)!r} (frames[{i}]); fields3d "
                "cameras are pinholes: undistort the images first and set the distortion coefficients to 0"
            )
    fx = _focal(meta, frame, "x", i, json_path, size)
    if fx is None:
        raise InputError(
            f"{json_path}: no 'camera_angle_x' or 'fl_x' for frames[{i}]; give the horizontal field of view "
            "in radians or the focal length in pixels"
        )
    fy = _focal(meta, frame, "y", i, json_path, size)
    cx, cy = (_centre(meta, frame, axis, i, json_path, size) for axis in "xy")
    return fx, fx if fy is None else fy, cx, cy


def _focal(meta: dict, frame: dict, axis: str, i: int, json_path: Path, size: tuple[int, int]):
    """``fl_<axis>``, else the focal length of ``camera_angle_<axis>``, else None; InputError unless
    within FOCAL_RANGE times the picture's width (``axis`` "x") or height ("y")."""
    key, side, n = (f"fl_{axis}", *(("w", size[0]) if axis == "x" else ("h", size[1])))
    focal = _number(meta, frame, key, i, json_path, positive=True)
    if focal is None:
        angle = _angle(meta, frame, f"camera_angle_{axis}", i, json_path)
        return None if angle is None else focal_from_fov(angle, n)
    lo, hi = (r * n for r in FOCAL_RANGE)
    if not lo <= focal <= hi:
        raise InputError(
            f"{json_path}: '{key}' (frames[{i}]) must be a focal length in pixels from 1e-3*{side} to 1e6*{side} "
            f"({lo:g} to {hi:g} for {size[0]}x{size[1]} pictures), got {_given(meta, frame, key)!r}; give it in "
            f"pixels of the full-size images, or give 'camera_angle_{axis}' in radians instead"
        )
    return focal


def _centre(
    meta: dict, frame: dict, axis: str, i: int, json_path: Path, size: tuple[int, int]
) -> float:
    """``c<axis>``, else the middle of the picture; InputError unless within CENTRE_RANGE times its
    width (``axis`` "x") or height ("y")."""
    key, side, n = (f"c{axis}", *(("w", size[0]) if axis == "x" else ("h", size[1])))
    centre = _number(meta, frame, key, i, json_path)
    if centre is None:
        return n / 2
    lo, hi = (r * n for r in CENTRE_RANGE)
    if not lo <= centre <= hi:
        raise InputError(
            f"{json_path}: '{key}' (frames[{i}]) must be the principal point's {axis} in pixels, normally near "
            f"{side}/2 = {n / 2:g}, from -{side} to 2*{side} ({lo:g} to {hi:g} for {size[0]}x{size[1]} pictures), "
            f"got {_given(meta, frame, key)!r}; give it in pixels of the full-size images, or leave it out for "
            "the middle of the picture"
        )
    return centre


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
        grey = grey / (
            65535.0 if im.mode.startswith("I;16") or grey.max(initial=0) <= 65535 else 2.0**31 - 1
        )
    grey = np.nan_to_num(np.clip(grey, 0.0, 1.0)).astype(np.float32)
    channels = [grey] * 3 + ([np.ones_like(grey)] if mode == "RGBA" else [])
    return np.stack(channels, axis=-1)


def _read_image(path: Path, i: int, json_path: Path) -> np.ndarray:
    """``(H, W, 4)`` float32 straight RGBA in [0, 1]."""
    if not path.is_file():
        raise ModelNotFound(
            f"image not found: {path} (frames[{i}] of {json_path}); the transforms file names it"
        )
    try:
        with open_image(path) as im:
            rgba = unit_pixels(im, "RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InputError(f"cannot read image {path} (frames[{i}] of {json_path}): {exc}") from exc
    return rgba


def _size(
    meta: dict, frame: dict, i: int, json_path: Path, first: np.ndarray
) -> tuple[tuple[int, int], str]:
    """The ``(width, height)`` a frame's image must have, and where that size comes from."""
    w, h = frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))
    if w is None or h is None:
        return (first.shape[1], first.shape[0]), "the size of the first image"
    for key, value in (("w", w), ("h", h)):
        if not _finite(value) or value != int(value) or value < 1:
            raise InputError(
                f"{json_path}: '{key}' (frames[{i}]) must be a whole number of pixels >= 1, got {value!r}"
            )
    return (int(w), int(h)), "its 'w' and 'h'"


def _downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-average premultiplied RGBA ``(H, W, 4)`` to ``(H // factor, W // factor, 4)``, straight again."""
    if factor == 1:
        return image
    h, w = image.shape[0] // factor, image.shape[1] // factor
    alpha = image[..., 3:]
    premultiplied = np.concatenate([image[..., :3] * alpha, alpha], axis=2)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(premultiplied[..., c])).resize(
                (w, h), Image.Resampling.BOX
            )
        )
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
    if k < MIN_AABB_SCALE:
        raise InputError(
            f"{json_path}: 'aabb_scale' must be a number >= 1/128 (instant-NGP's scene-box side in its "
            f"unit cube, a power of two from 1 to 128; larger values are clamped to 128), got "
            f"{meta['aabb_scale']!r}; use a power of two from 1 to 128"
        )
    scale = _top_number(meta, "scale", NGP_SCALE, json_path)
    offset = meta.get("offset", NGP_OFFSET)
    if not (isinstance(offset, (list, tuple)) and len(offset) == 3 and all(map(_finite, offset))):
        raise InputError(
            f"{json_path}: 'offset' must be a list of 3 finite numbers, got {offset!r}"
        )
    k = min(k, NGP_MAX_AABB_SCALE)
    lo = tuple((0.5 - 0.5 * k - o) / scale for o in offset)
    hi = tuple((0.5 + 0.5 * k - o) / scale for o in offset)
    _check_box(meta, np.array([lo, hi]), json_path)
    return lo, hi


def _check_box(meta: dict, box: np.ndarray, json_path: Path) -> None:
    """InputError unless ``box`` ``(2, 3)`` is finite in float32 with every side > BOX_MARGIN * max(1, |corner|)."""
    with np.errstate(over="ignore", invalid="ignore"):
        box = box.astype(np.float32)
        side = box[1].astype(np.float64) - box[0]
        ok = (
            np.isfinite(box).all()
            and (side > BOX_MARGIN * np.maximum(1.0, np.abs(box).max(axis=0))).all()
        )
    if not ok:
        given = ", ".join(
            f"'{key}' {meta.get(key, default)!r}"
            for key, default in (
                ("aabb_scale", 1),
                ("scale", NGP_SCALE),
                ("offset", list(NGP_OFFSET)),
            )
        )
        lo, hi = ("[" + ", ".join(f"{v + 0.0:.3g}" for v in corner) + "]" for corner in box)
        raise InputError(
            f"{json_path}: the scene box from {given} is {lo} to {hi} in float32; it must be finite with every "
            f"side longer than {BOX_MARGIN:g} times its largest coordinate (and than {BOX_MARGIN:g}): give 'scale' "
            "and 'offset' that map the scene into instant-NGP's unit cube (p * scale + offset; 0.33 and "
            "[0.5, 0.5, 0.5] by default)"
        )


def _top_number(meta: dict, key: str, default: float, json_path: Path) -> float:
    value = meta.get(key, default)
    if not _finite(value) or value <= 0:
        raise InputError(f"{json_path}: '{key}' must be a finite number > 0, got {value!r}")
    return float(value)


def _load(folder, json_path, meta, frames, split, layout, downscale) -> PosedImages:
    aabb = _aabb(meta, layout, json_path)  # before reading any image
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
    t = {
        name: torch.from_numpy(np.ascontiguousarray(k[:, j]))
        for j, name in enumerate(("fx", "fy", "cx", "cy"))
    }
    cameras = Cameras(
        torch.tensor(np.stack(poses), dtype=torch.float32), **t, width=size[0], height=size[1]
    )
    if min(size) // downscale < 1:
        raise InputError(
            f"downscale {downscale} leaves no pixels of {size[0]}x{size[1]} images; use at most {min(size)}"
        )
    cameras = cameras.scaled(downscale)
    return PosedImages(
        images=torch.from_numpy(np.stack([_downscale(image, downscale) for image in images])),
        cameras=cameras,
        aabb=torch.tensor(aabb, dtype=torch.float32),
        background=torch.tensor(WHITE, dtype=torch.float32),
        name=folder.resolve().name,
        split=split,
        layout=layout,
        files=tuple(files),
    )
