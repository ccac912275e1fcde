"""Helpers the pipelines share: device choice, reading images, writing outputs atomically."""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from .. import _core_ops, _native
from .._io import write_atomic
from ..errors import BackendUnavailable, InputError, ModelNotFound
from ..render.datasets import open_image, unit_pixels

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> cuda when torch sees a GPU and the core was built with CUDA, else cpu.

    ``"cuda"`` raises BackendUnavailable (with the fix) when either half is missing.
    """
    if name not in DEVICES:
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', got {name!r}")
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        usable = torch.cuda.is_available() and _core_ops.build_info()["cuda"]
        return torch.device("cuda" if usable else "cpu")
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            f"device 'cuda' was requested but torch {torch.__version__} sees no CUDA device; "
            "install a CUDA build of torch on a machine with a GPU, or use device 'cpu' or 'auto'"
        )
    device = torch.device("cuda")
    _native.check_backend(device)
    return device


def check_path(name: str, value, what: str) -> None:
    """Raise InputError unless ``value`` is a non-empty ``str`` or ``os.PathLike`` (``what`` it names)."""
    if not isinstance(value, (str, os.PathLike)) or isinstance(os.fspath(value), bytes):
        raise InputError(
            f"{name} must be the path of {what} (a str or os.PathLike), got {type(value).__name__}"
        )
    if not os.fspath(value):
        raise InputError(f"{name} must be the path of {what}, got an empty string")


def as_tuple(value) -> tuple | None:
    """``tuple(value)``, or None when ``value`` is not iterable (the caller's check then names it)."""
    try:
        return tuple(value)
    except TypeError:
        return None


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as ``(H, W, 3)`` float32 RGB in ``[0, 1]`` (alpha dropped, grey repeated)."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFound(f"image not found: {path}; pass the path of a PNG or JPEG file")
    if path.is_dir():
        raise InputError(
            f"cannot read image {path}: it is a folder; pass the path of a PNG or JPEG file"
        )
    try:
        with open_image(path) as im:
            rgb = unit_pixels(im, "RGB")
    except UnidentifiedImageError:
        raise InputError(
            f"cannot read image {path}: unrecognised format; pass a PNG or JPEG file"
        ) from None
    except (
        Image.DecompressionBombError
    ) as exc:  # PIL's limit: twice MAX_IMAGE_PIXELS (see open_image)
        raise InputError(
            f"cannot read image {path}: it has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, which "
            "PIL refuses as a possible decompression bomb; downscale it"
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image {path}: {exc}; pass a PNG or JPEG file") from exc
    return torch.from_numpy(rgb.copy())


def write_gif(path: Path, pictures: list[torch.Tensor]) -> Path:
    """An animated GIF (looping, 80 ms a frame) of (H, W, 3) pictures in [0, 1], written atomically."""
    frames = [
        Image.fromarray(p.detach().clamp(0, 1).mul(255).round().byte().cpu().numpy())
        for p in pictures
    ]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0
    )
    return write_atomic(path, buffer.getvalue())


def write_json(path: Path, obj) -> Path:
    return write_atomic(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def write_png(path: Path, image: torch.Tensor) -> Path:
    """Write ``(H, W, C)`` float in ``[0, 1]`` (clamped, rounded to 8 bits) as a PNG."""
    pixels = image.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(
        buffer, format="PNG"
    )
    return write_atomic(path, buffer.getvalue())


def run_fraction(config, state) -> float:
    """How much of a run is done (1.0 or more: stop): the larger of steps done over
    ``config.steps`` and seconds spent over ``config.time_budget`` (either may be None, not
    both), from ``state.step`` and ``state.seconds``."""
    parts = []
    if config.steps is not None:
        parts.append(state.step / config.steps)
    if config.time_budget is not None:
        parts.append(state.seconds / config.time_budget)
    return max(parts)


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, ``"cpu"`` otherwise."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


@contextlib.contextmanager
def timed(timings: dict, key: str):
    """``with timed(timings, key):`` sets ``timings[key]`` to the block's wall-clock seconds (also
    when it raises)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - start


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run torch's own CPU ops on ``n`` threads (None: leave the setting alone) for a while.

    Training steps of small fields are many small torch ops, where torch's OpenMP threads gain
    little and lose much on a busy machine: every op ends at a barrier, so one descheduled thread
    costs a time slice per op (the SDF fit of spot on 2 busy cores: 38 ms a step with one torch
    thread, 250 ms with two). The encodings' core keeps its own thread pool either way.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
