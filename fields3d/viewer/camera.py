"""A browser's camera as our :class:`~fields3d.render.cameras.Cameras`: ``view_camera``.

viser reports each client's camera as a pose in the OpenCV convention (``+z`` forward, ``+y``
down: ``wxyz`` rotation and ``position``), a vertical field of view in radians and the canvas size
in pixels. The render side wants the OpenGL convention of :mod:`fields3d.render.cameras` (``-z``
forward, ``+y`` up), a picture no larger than the resolution cap, and nothing a client can use to
hurt the server: a non-finite pose, a field of view outside (0, pi) or a canvas of a billion
pixels is refused (:class:`~fields3d.errors.InputError`) or capped, never rendered as sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..render.cameras import Cameras, focal_from_fov

MIN_SIDE, MAX_SIDE = 8, 4096  # the resolution cap's range, in pixels (the longer side)


@dataclass(frozen=True)
class View:
    """One client camera: ``c2w`` ``(4, 4)`` float64 (OpenGL convention), vertical ``fov`` in
    radians and ``aspect`` (width / height of the canvas)."""

    c2w: np.ndarray
    fov: float
    aspect: float

    def cameras(self, max_side: int) -> Cameras:
        """The view as one camera whose picture's longer side is ``max_side`` pixels."""
        if not (isinstance(max_side, int) and MIN_SIDE <= max_side <= MAX_SIDE):
            raise InputError(
                f"the resolution cap must be an integer from {MIN_SIDE} to {MAX_SIDE} pixels, "
                f"got {max_side!r}"
            )
        if self.aspect >= 1:
            width, height = max_side, max(1, round(max_side / self.aspect))
        else:
            width, height = max(1, round(max_side * self.aspect)), max_side
        fy = focal_from_fov(self.fov, height)
        one = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
        c2w = torch.from_numpy(self.c2w)[None]
        return Cameras(c2w, one(fy), one(fy), one(width / 2), one(height / 2), width, height)


def quaternion_matrix(wxyz) -> np.ndarray:
    """``(3, 3)`` rotation of a unit quaternion ``(w, x, y, z)`` (normalised first)."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def view_camera(wxyz, position, fov, width, height) -> View:
    """The :class:`View` of a client camera (OpenCV pose ``wxyz``, ``position``; vertical ``fov``
    in radians; canvas ``width`` x ``height`` pixels, only their ratio is kept).

    Raises:
        InputError: a pose that is not 4 + 3 finite numbers (or a zero quaternion), a ``fov``
            outside (0, pi), or a canvas side that is not a number >= 1.

    Example:
        >>> from fields3d.viewer.camera import view_camera
        >>> view = view_camera((1, 0, 0, 0), (0, 0, -3), 1.0, 1920, 1080)  # looking down +z
        >>> cams = view.cameras(256)
        >>> cams.width, cams.height, cams.c2w[0, :3, 2].tolist()  # backward axis: -z
        (256, 144, [-0.0, -0.0, -1.0])
    """
    q = _numbers("wxyz", wxyz, 4)
    p = _numbers("position", position, 3)
    if not np.linalg.norm(q) > 0:
        raise InputError("wxyz must be a non-zero quaternion, got (0, 0, 0, 0)")
    if not (isinstance(fov, (int, float)) and 0 < fov < math.pi):
        raise InputError(f"fov must be a number of radians in (0, pi), got {fov!r}")
    for name, side in (("width", width), ("height", height)):
        if not (isinstance(side, (int, float)) and math.isfinite(side) and side >= 1):
            raise InputError(f"the canvas {name} must be a number >= 1 pixel, got {side!r}")
    rot = quaternion_matrix(q)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = rot[:, 0], -rot[:, 1], -rot[:, 2], p
    aspect = min(max(float(width) / float(height), 1e-2), 1e2)
    return View(c2w, float(fov), aspect)


def _numbers(name: str, value, n: int) -> np.ndarray:
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        out = None
    if out is None or out.shape != (n,) or not np.isfinite(out).all():
        raise InputError(f"{name} must be {n} finite numbers, got {value!r}")
    return out
