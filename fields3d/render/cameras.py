"""Pinhole cameras in the NeRF / OpenGL convention, and the rays through their pixels.

Camera frame: the camera looks down its ``-z`` axis, ``+x`` points right in the picture and ``+y``
up. A camera-to-world matrix ``c2w`` (4x4, bottom row ``[0, 0, 0, 1]``, as ``transform_matrix`` in
a ``transforms.json``) maps camera coordinates to world coordinates; its columns are the camera's
right, up and backward axes and its position.

Pixel coordinates: ``x`` grows to the right from the left edge of the picture and ``y`` grows down
from its top edge, in pixels; pixel ``(i, j)`` (column ``i``, row ``j``) covers ``[i, i + 1) x
[j, j + 1)``, so its centre is ``(i + 0.5, j + 0.5)``. The principal point ``(cx, cy)`` is in the
same coordinates (``(W / 2, H / 2)`` is the middle of the picture). The ray through ``(x, y)`` has
camera-frame direction ``((x - cx) / fx, -(y - cy) / fy, -1)``, normalised to unit length.

Note that the original NeRF code samples ``(i, j)`` without the half-pixel offset; fields3d (like
instant-NGP and nerfstudio) shoots rays through pixel centres.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from .._checks import (
    MAX_POINTS,
    check_int,
    check_size,
    dtype_str,
    is_int,
    is_number,
    parse_device,
    require_torch_cuda,
    shape_str,
)
from ..errors import InputError

FLOAT_DTYPES = (torch.float32, torch.float64)
BOTTOM_ROW_TOLERANCE = 1e-6
#: The widest picture side in pixels: past it a size is a typing slip (and scaling by it overflows).
MAX_SIDE = 1 << 20
#: The most cameras :func:`ring_cameras` places (as ``fields3d render --frames``); it builds them one by one.
MAX_FRAMES = 3600
FLOAT32_MAX = torch.finfo(torch.float32).max


def _got(value) -> str:
    """``float64 (3, 4)`` for a tensor, the type's name for anything else."""
    return (
        f"{dtype_str(value.dtype)} {shape_str(value)}"
        if isinstance(value, torch.Tensor)
        else type(value).__name__
    )


def _check_side(name: str, value) -> None:
    """A picture size: an integer from 1 to :data:`MAX_SIDE` (the ``>= 1`` message below 1)."""
    check_size(name, value, 1, MAX_SIDE)


@dataclass(frozen=True, eq=False)
class Cameras:
    """``N`` pinhole cameras sharing one picture size (conventions in the module docstring).

    Attributes:
        c2w: ``(N, 4, 4)`` float32 or float64 camera-to-world matrices, bottom rows ``[0, 0, 0, 1]``.
        fx, fy: ``(N,)`` focal lengths in pixels (> 0), same dtype and device as ``c2w``.
        cx, cy: ``(N,)`` principal points in pixels, same dtype and device as ``c2w``.
        width, height: picture size in pixels (>= 1).

    Raises:
        InputError: on a wrong type, dtype, shape or device, a non-finite pose or intrinsic, a
            bottom row other than ``[0, 0, 0, 1]``, dependent axes (a singular rotation part), a
            focal length <= 0, or a picture side past :data:`MAX_SIDE`.

    Example:
        >>> import torch
        >>> from fields3d.render.cameras import Cameras, look_at
        >>> c2w = look_at((0, 0, 2), (0, 0, 0), (0, 1, 0))[None]  # (1, 4, 4) float64
        >>> f, c = torch.tensor([4.0], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)
        >>> cams = Cameras(c2w, f, f, c, c, width=8, height=8)  # a 90-degree view
        >>> len(cams), cams.device
        (1, device(type='cpu'))
        >>> half = cams.scaled(2)
        >>> half.width, half.height, half.fx.tolist(), half.cx.tolist()
        (4, 4, [2.0], [2.0])
    """

    c2w: torch.Tensor
    fx: torch.Tensor
    fy: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        c2w = self.c2w
        is_c2w = isinstance(c2w, torch.Tensor) and c2w.dtype in FLOAT_DTYPES and c2w.dim() == 3
        if not (is_c2w and c2w.shape[1:] == (4, 4)):
            raise InputError(
                f"c2w must be a float32 or float64 tensor of shape (N, 4, 4), got {_got(c2w)}"
            )
        if c2w.is_meta:
            raise InputError("c2w must hold numbers (a cpu or cuda tensor), got a meta tensor")
        for name in ("fx", "fy", "cx", "cy"):
            _check_intrinsic(name, getattr(self, name), c2w)
        _check_side("width", self.width)
        _check_side("height", self.height)
        _check_poses(c2w)
        for name in ("fx", "fy"):
            value = getattr(self, name)
            if not bool((value > 0).all()):
                i = int(torch.nonzero(~(value > 0))[0, 0])
                raise InputError(
                    f"{name}[{i}] must be a focal length > 0 pixels, got {float(value[i])}"
                )

    def __len__(self) -> int:
        return self.c2w.shape[0]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def to(self, device: torch.device | str) -> Cameras:
        """The same cameras with every tensor on ``device`` (a cpu or cuda device; None: unchanged)."""
        if device is None:
            return self
        device = _target_device(device)
        t = {k: getattr(self, k).to(device) for k in ("c2w", "fx", "fy", "cx", "cy")}
        return Cameras(**t, width=self.width, height=self.height)

    def scaled(self, factor: int) -> Cameras:
        """The cameras of pictures downscaled by an integer ``factor`` (>= 1).

        The new size is ``(width // factor, height // factor)``; the intrinsics are scaled by the
        exact ratios ``new_width / width`` and ``new_height / height``, which is right for a
        picture resized edge to edge (a box filter over ``factor x factor`` pixels when the size
        divides, as :func:`fields3d.render.datasets.load_scene` does).

        Raises:
            InputError: ``factor`` is not an integer >= 1, or leaves fewer than one pixel.
        """
        check_int("factor", factor, 1)
        width, height = self.width // factor, self.height // factor
        if width < 1 or height < 1:
            raise InputError(
                f"factor {factor} leaves no pixels of a {self.width}x{self.height} picture; "
                f"use a factor <= {min(self.width, self.height)}"
            )
        return self.resized(width, height)

    def resized(self, width: int, height: int) -> Cameras:
        """The same views in pictures of ``width x height`` pixels (larger or smaller), the
        intrinsics scaled by ``width / self.width`` and ``height / self.height``."""
        _check_side("width", width)
        _check_side("height", height)
        sx, sy = width / self.width, height / self.height
        return Cameras(
            self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height
        )


def _check_poses(c2w: torch.Tensor) -> None:
    """Finite entries, bottom rows [0, 0, 0, 1] and independent axes (a singular rotation part
    maps some pixels' directions to zero: NaN rays)."""
    n = c2w.shape[0]
    finite = torch.isfinite(c2w).flatten(1).all(dim=1)
    if not bool(finite.all()):
        i = int(torch.nonzero(~finite)[0, 0])
        raise InputError(
            f"c2w[{i}] (camera {i} of {n}) has non-finite entries; fix or drop that camera's pose"
        )
    bottom = c2w[:, 3, :] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype, device=c2w.device)
    bad = bottom.abs().amax(dim=1) > BOTTOM_ROW_TOLERANCE
    if bool(bad.any()):
        i = int(torch.nonzero(bad)[0, 0])
        raise InputError(
            f"c2w[{i}] must have bottom row [0, 0, 0, 1], got {c2w[i, 3].tolist()}; "
            "camera-to-world matrices are affine 4x4 transforms"
        )
    rot = c2w[:, :3, :3]
    det = (rot[:, :, 0] * torch.linalg.cross(rot[:, :, 1], rot[:, :, 2], dim=1)).sum(
        dim=1
    )  # no LAPACK: any device
    # |det| <= the product of the column norms, with equality for orthogonal axes (Hadamard)
    singular = ~(det.abs() > torch.finfo(c2w.dtype).eps * rot.norm(dim=1).prod(dim=1))
    if bool(singular.any()):
        i = int(torch.nonzero(singular)[0, 0])
        raise InputError(
            f"c2w[{i}] must have independent axes (its rotation columns), got determinant "
            f"{float(det[i]):.3g}; fix or drop that camera's pose"
        )


def _target_device(device) -> torch.device:
    dev = parse_device(device, cpu_or_cuda=True)
    if dev.type == "cuda":
        require_torch_cuda(device)
    count = torch.cuda.device_count() if dev.type == "cuda" else 0
    if dev.type == "cuda" and (dev.index or 0) >= count:
        raise InputError(
            f"device {device!r} does not exist: torch sees {count} CUDA device(s), cuda:0 to "
            f"cuda:{count - 1}"
        )
    return dev


def _check_intrinsic(name: str, value, c2w: torch.Tensor) -> None:
    n = c2w.shape[0]
    if not (
        isinstance(value, torch.Tensor) and value.dtype == c2w.dtype and tuple(value.shape) == (n,)
    ):
        raise InputError(
            f"{name} must be a {dtype_str(c2w.dtype)} tensor of shape ({n},) like c2w, got {_got(value)}"
        )
    if value.device != c2w.device:
        raise InputError(f"{name} must be on {c2w.device} like c2w, got {value.device}")
    if not bool(torch.isfinite(value).all()):
        i = int(torch.nonzero(~torch.isfinite(value))[0, 0])
        raise InputError(f"{name}[{i}] must be finite, got {float(value[i])}")


def _check_rays_args(cameras: Cameras, camera_ids, pixels) -> None:
    if not isinstance(cameras, Cameras):
        raise InputError(f"cameras must be a Cameras, got {type(cameras).__name__}")
    ids = camera_ids
    if not (
        isinstance(ids, torch.Tensor) and ids.dtype in (torch.int32, torch.int64) and ids.dim() == 1
    ):
        raise InputError(
            f"camera_ids must be an int64 or int32 tensor of shape (M,), got {_got(ids)}"
        )
    m = ids.shape[0]
    if not (
        isinstance(pixels, torch.Tensor)
        and pixels.dtype.is_floating_point
        and tuple(pixels.shape) == (m, 2)
    ):
        raise InputError(
            f"pixels must be a float tensor of shape ({m}, 2) of (x, y) coordinates, got {_got(pixels)}"
        )
    for name, t in (("camera_ids", ids), ("pixels", pixels)):
        if t.device != cameras.device:
            raise InputError(
                f"{name} must be on {cameras.device} like the cameras, got {t.device}; move it with .to(device)"
            )
    if not m:
        return
    # one device-to-host copy for the three checks
    lo, hi, finite = torch.stack(
        [ids.min().long(), ids.max().long(), torch.isfinite(pixels).all().long()]
    ).tolist()
    if lo < 0 or hi >= len(cameras):
        raise InputError(
            f"camera_ids must lie in [0, {len(cameras) - 1}] for {len(cameras)} cameras, "
            f"got values from {lo} to {hi}"
        )
    if not finite:
        i = int(torch.nonzero(~torch.isfinite(pixels).all(dim=1))[0, 0])
        raise InputError(
            f"pixels must be finite (x, y) coordinates, got pixels[{i}] = {pixels[i].tolist()}; "
            "drop or fix that pixel"
        )


def generate_rays(
    cameras: Cameras,
    camera_ids: torch.Tensor,  # (M,) int64 or int32
    pixels: torch.Tensor,  # (M, 2) float (x, y)
    centre: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays from camera centres through pixels.

    Args:
        cameras: the cameras. camera_ids: ``(M,)`` int64 or int32 index of each ray's camera.
        pixels: ``(M, 2)`` float pixel coordinates ``(x, y)`` (module docstring), on the cameras'
            device. Points outside the picture are allowed.
        centre: add 0.5 to ``pixels``, so that integer pixel indices give rays through pixel
            centres. Pass False for continuous coordinates (e.g. an index plus a uniform jitter
            in ``[0, 1)``).

    Returns:
        ``(origins, directions)``: ``(M, 3)`` each, in the dtype of ``cameras.c2w``; ``directions``
        are unit vectors in world coordinates.

    Raises:
        InputError: wrong type, dtype, shape or device of an argument, a camera id out of range,
            or a NaN or infinite pixel coordinate.

    Example:
        >>> import torch
        >>> from fields3d.render.cameras import generate_rays, ring_cameras
        >>> cams = ring_cameras((0, 0, 0), 2.0, frames=1, size=8, elevation_deg=0)  # on +z
        >>> pixels = torch.tensor([[4.0, 4.0], [0.0, 0.0]])  # the middle; the top-left corner
        >>> origins, dirs = generate_rays(cams, torch.tensor([0, 0]), pixels, centre=False)
        >>> origins.tolist()
        [[0.0, 0.0, 2.0], [0.0, 0.0, 2.0]]
        >>> dirs[0].tolist(), bool(dirs[1, 0] < 0), bool(dirs[1, 1] > 0)  # ahead; left and up
        ([0.0, 0.0, -1.0], True, True)
    """
    _check_rays_args(cameras, camera_ids, pixels)
    ids = camera_ids.long()
    xy = pixels.to(cameras.c2w.dtype) + (0.5 if centre else 0.0)
    c2w = cameras.c2w[ids]  # (M, 4, 4)
    d_cam = torch.stack(
        [
            (xy[:, 0] - cameras.cx[ids]) / cameras.fx[ids],
            -(xy[:, 1] - cameras.cy[ids]) / cameras.fy[ids],
            -torch.ones_like(xy[:, 0]),
        ],
        dim=1,
    )
    directions = torch.einsum("mij,mj->mi", c2w[:, :3, :3], d_cam)
    directions = directions / directions.norm(dim=1, keepdim=True)
    return c2w[:, :3, 3].clone(), directions


def image_rays(cameras: Cameras, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rays through every pixel centre of one camera's picture, in row-major order.

    Args:
        cameras: the cameras. index: which camera, ``0 <= index < len(cameras)``.

    Returns:
        ``(origins, directions)``: ``(height * width, 3)`` each; row ``j * width + i`` is the ray
        through pixel ``(i, j)`` (column ``i``, row ``j``), so ``directions.view(height, width, 3)``
        lines up with an ``(H, W, C)`` picture.

    Raises:
        InputError: ``index`` is not an integer in range, or the picture has more than
            :data:`~fields3d._checks.MAX_POINTS` pixels.

    Example:
        >>> from fields3d.render.cameras import image_rays, ring_cameras
        >>> cams = ring_cameras((0, 0, 0), 2.0, frames=2, size=4)
        >>> origins, dirs = image_rays(cams, 1)
        >>> origins.shape, dirs.shape, dirs.dtype
        (torch.Size([16, 3]), torch.Size([16, 3]), torch.float32)
        >>> dirs.view(4, 4, 3).norm(dim=-1).round(decimals=5).unique().tolist()  # unit length
        [1.0]
    """
    if not isinstance(cameras, Cameras):
        raise InputError(f"cameras must be a Cameras, got {type(cameras).__name__}")
    if not len(cameras):
        raise InputError(
            f"cameras must hold at least one camera for image_rays, got none (index {index!r})"
        )
    if not is_int(index) or not 0 <= index < len(cameras):
        raise InputError(f"index must be an integer in [0, {len(cameras) - 1}], got {index!r}")
    w, h, device = cameras.width, cameras.height, cameras.device
    if w * h > MAX_POINTS:
        raise InputError(
            f"cameras' pictures must have at most {MAX_POINTS} pixels for image_rays (a ray each), "
            f"got {w}x{h} = {w * h}; use cameras.resized(width, height) for smaller pictures"
        )
    ys, xs = torch.meshgrid(
        torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij"
    )
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).to(cameras.c2w.dtype)
    ids = torch.full((h * w,), index, dtype=torch.int64, device=device)
    return generate_rays(cameras, ids, pixels, centre=True)


def focal_from_fov(fov: float, size: int) -> float:
    """Focal length in pixels of a picture ``size`` pixels across with field of view ``fov`` radians.

    Raises:
        InputError: ``fov`` is not a number in (0, pi) (a wider view has no pinhole focal length)
            or so narrow that the focal length overflows; ``size`` is not an integer >= 1.

    Example:
        >>> import math
        >>> from fields3d.render.cameras import focal_from_fov
        >>> round(focal_from_fov(math.pi / 2, 800), 6)  # 0.5 * size / tan(fov / 2)
        400.0
    """
    if not (isinstance(fov, numbers.Real) and not isinstance(fov, bool) and 0 < fov < math.pi):
        raise InputError(
            f"fov must be a field of view in radians between 0 and pi (exclusive), got {fov!r}"
        )
    _check_side("size", size)
    focal = 0.5 * size / math.tan(0.5 * fov)
    if not math.isfinite(focal):
        raise InputError(
            f"fov {fov!r} is too narrow: the focal length of {size} pixels overflows; "
            "use a wider field of view"
        )
    return focal


def look_at(eye, target, up) -> torch.Tensor:
    """``(4, 4)`` float64 camera-to-world matrix of a camera at ``eye`` looking at ``target``,
    with ``up`` (any vector not along the view) pointing up in its picture.

    Raises:
        InputError: the points or ``up`` are not 3 finite numbers, ``eye == target``, or ``up`` is
            along the view.

    Example:
        >>> from fields3d.render.cameras import look_at
        >>> look_at((0, 0, 2), (0, 0, 0), (0, 1, 0)).tolist()  # columns: right, up, back, eye
        [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 0.0, 1.0]]
    """
    eye, target, up = (_vec3(name, v) for name, v in (("eye", eye), ("target", target), ("up", up)))
    back = eye - target if bool(torch.isfinite(eye - target).all()) else eye / 2 - target / 2
    if not bool(back.any()):
        raise InputError(f"eye and target must differ, both are {eye.tolist()}")
    if not bool(up.any()):
        raise InputError(f"up must be a non-zero vector, got {up.tolist()}")
    back, up_ = _unit(back), _scaled(up)
    right = torch.linalg.cross(up_, back)
    if float(right.norm()) < 1e-9 * float(up_.norm()):
        raise InputError(
            f"up {up.tolist()} must not point along the view from {eye.tolist()} to {target.tolist()}"
        )
    right = _unit(right)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = (
        right,
        torch.linalg.cross(back, right),
        back,
        eye,
    )
    return c2w


def _scaled(v: torch.Tensor) -> torch.Tensor:
    """A non-zero float64 vector, over its largest entry if its squares would overflow or vanish."""
    return v if 1e-150 < float(v.norm()) < 1e150 else v / v.abs().max()


def _unit(v: torch.Tensor) -> torch.Tensor:
    """A non-zero float64 vector over its length."""
    v = _scaled(v)
    return v / v.norm()


def _check_ring(distance, frames, size, fov_deg, elevation_deg, up) -> None:
    check_size("frames", frames, 1, MAX_FRAMES)
    _check_side("size", size)
    if up not in ("y", "z"):
        raise InputError(f"up must be 'y' or 'z', got {up!r}")
    if not (is_number(distance) and math.isfinite(distance) and distance > 0):
        raise InputError(f"distance must be a number > 0, got {distance!r}")
    if not (is_number(fov_deg) and 0 < fov_deg < 180):
        raise InputError(f"fov_deg must be a number of degrees in (0, 180), got {fov_deg!r}")
    if not (is_number(elevation_deg) and -90 < elevation_deg < 90):
        raise InputError(
            f"elevation_deg must be a number of degrees in (-90, 90), got {elevation_deg!r}"
        )


def ring_cameras(
    center,
    distance: float,
    frames: int,
    size: int = 400,
    fov_deg: float = 40.0,
    elevation_deg: float = 20.0,
    up: str = "y",
) -> Cameras:
    """``frames`` float32 cameras on a ring around ``center``, ``distance`` away, raised by
    ``elevation_deg`` above the plane normal to the ``up`` axis (``"y"`` or ``"z"``), looking at
    ``center``; square pictures of ``size`` pixels with field of view ``fov_deg``. Frame ``k``
    sits at azimuth ``360 k / frames`` degrees, counter-clockwise seen from above.

    Raises:
        InputError: an argument out of range (``frames`` at most :data:`MAX_FRAMES`), or cameras
            that float32 cannot hold (a focal length or position past its range).

    Example:
        >>> from fields3d.render.cameras import ring_cameras
        >>> cams = ring_cameras((0, 0, 0), 3.0, frames=4, size=32)
        >>> len(cams), cams.c2w.shape, cams.c2w.dtype, (cams.width, cams.height)
        (4, torch.Size([4, 4, 4]), torch.float32, (32, 32))
        >>> cams.c2w[:, :3, 3].norm(dim=1).round(decimals=4).tolist()  # each 3 from the centre
        [3.0, 3.0, 3.0, 3.0]
    """
    _check_ring(distance, frames, size, fov_deg, elevation_deg, up)
    centre = _vec3("center", center)
    reach = float(centre.abs().max()) + distance
    if not reach <= FLOAT32_MAX / 2:
        raise InputError(
            f"center and distance must keep the float32 cameras within +-{FLOAT32_MAX / 2:.4g}, got "
            f"|center| + distance = {reach:.4g}; use smaller units"
        )
    focal = focal_from_fov(math.radians(fov_deg), size)
    if not focal <= FLOAT32_MAX:
        raise InputError(
            f"fov_deg {fov_deg!r} is too narrow: the focal length of {size} pixels overflows float32; "
            "use a wider field of view"
        )
    axis = torch.tensor([0.0, 1.0, 0.0] if up == "y" else [0.0, 0.0, 1.0], dtype=torch.float64)
    elev = math.radians(elevation_deg)
    poses = []
    for k in range(frames):
        a = 2 * math.pi * k / frames
        flat = [math.sin(a), 0.0, math.cos(a)] if up == "y" else [math.cos(a), math.sin(a), 0.0]
        offset = math.cos(elev) * torch.tensor(flat, dtype=torch.float64) + math.sin(elev) * axis
        poses.append(look_at(centre + distance * offset, centre, axis))
    f = torch.full((frames,), focal, dtype=torch.float32)
    c = torch.full((frames,), size / 2, dtype=torch.float32)
    return Cameras(torch.stack(poses).float(), f, f.clone(), c, c.clone(), size, size)


def _vec3(name: str, value) -> torch.Tensor:
    try:
        if isinstance(value, torch.Tensor) and value.is_complex():
            raise TypeError("complex")  # .double() would drop the imaginary parts
        v = (
            value.double().cpu()
            if isinstance(value, torch.Tensor)
            else torch.as_tensor(value, dtype=torch.float64)
        )
    except (TypeError, ValueError, RuntimeError, NotImplementedError):
        v = None
    if v is None or v.shape != (3,) or not bool(torch.isfinite(v).all()):
        raise InputError(f"{name} must be 3 finite numbers, got {value!r}")
    return v
