"""``render_orbit``: a trained model (a NeRF or a reconstructed field) pictured from cameras circling
it, as a turntable GIF and one PNG per frame; ``fields3d render`` calls it.

    result = render_orbit("out/spot/checkpoint.safetensors", "out/spot/render", frames=24)
    result.gif, result.frames   # OUT/turntable.gif, [OUT/orbit/frame_000.png, ...]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .._checks import check_int
from ..render.cameras import MAX_FRAMES
from ._common import write_gif, write_png
from .models import load_model
from .nerf.checkpoint import KIND as NERF
from .nerf.model import MAX_PICTURE_SIDE

ORBIT = "orbit"  # the frames' folder in the output folder
FRAME = "frame_{:03d}.png"
GIF = "turntable.gif"


@dataclass
class OrbitResult:
    """What :func:`render_orbit` wrote, and of what."""

    gif: Path  # OUT/turntable.gif
    frames: list[Path]  # OUT/orbit/frame_<k>.png, in orbit order
    width: int  # pixels of each picture
    height: int
    subject: str  # "NeRF after 40 training steps", "band_sdf_grid field, sphere-traced"

    @property
    def frames_dir(self) -> Path:
        """The folder of the PNG frames (OUT/orbit)."""
        return self.gif.parent / ORBIT


def render_orbit(
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    frames: int = 36,
    width: int | None = None,
    device: str = "auto",
    progress: bool | Callable[[int, int], None] = True,
) -> OrbitResult:
    """Render the model in ``checkpoint`` from ``frames`` cameras around it; write
    ``out_dir/turntable.gif`` and ``out_dir/orbit/frame_<k>.png`` (``out_dir``: default
    ``render/`` beside the checkpoint). Frames an earlier run left in ``out_dir/orbit`` are
    removed first, so the folder holds this orbit's alone.

    A NeRF is seen from cameras circling the scene at its training views' mean distance and
    height, in pictures of their size unless ``width`` (the height follows the aspect); a
    reconstructed surface's field is sphere-traced from a ring around it (+y up), in square
    pictures 400 pixels across unless ``width``.

    Args:
        checkpoint: a NeRF's ``checkpoint.safetensors`` or a recon ``OUT.field.safetensors``.
        out_dir: the output folder (created), or None for ``render/`` beside the checkpoint.
        frames: cameras around the scene, 1 to ``MAX_FRAMES`` (3600).
        width: picture width in pixels, 1 to ``MAX_PICTURE_SIDE`` (16384), or None.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        progress: True for a progress bar, False for none, or a function called with
            ``(frames done, frames)`` after each frame.

    Returns:
        :class:`OrbitResult`: the GIF's path, the frames' paths in orbit order, the pictures'
        width and height in pixels and what was rendered.

    Raises:
        InputError: a bad setting, a NeRF checkpoint without training cameras, or an output
            that cannot be written. ModelNotFound, CheckpointError, BackendUnavailable: as
            :func:`~fields3d.pipelines.models.load_model`.

    Example:
        >>> import pathlib, tempfile, torch
        >>> from fields3d.fields import BandSDFGrid
        >>> from fields3d.geometry import Normalization
        >>> from fields3d.pipelines.recon import ReconConfig
        >>> from fields3d.pipelines.recon.checkpoint import save_field
        >>> axis = torch.linspace(-1, 1, 33)
        >>> x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
        >>> ball = (x**2 + y**2 + z**2).sqrt() - 0.5  # (33, 33, 33): a sphere in the unit cube
        >>> field = BandSDFGrid.from_coarse(ball, ball.abs() < 0.2)
        >>> tmp = tempfile.TemporaryDirectory()
        >>> norm = Normalization((10, 0, 0), 2.0)  # world = 2 unit + (10, 0, 0)
        >>> checkpoint = pathlib.Path(tmp.name) / "ball.field.safetensors"  # as recon leaves it
        >>> _ = save_field(checkpoint, field, norm, ReconConfig("ball.xyz"))
        >>> from fields3d.pipelines.orbit import render_orbit
        >>> result = render_orbit(checkpoint, frames=3, width=24, device="cpu", progress=False)
        >>> result.gif.relative_to(tmp.name).as_posix(), [p.name for p in result.frames]
        ('render/turntable.gif', ['frame_000.png', 'frame_001.png', 'frame_002.png'])
        >>> result.width, result.height, result.subject
        (24, 24, 'band_sdf_grid field, sphere-traced')
        >>> tmp.cleanup()
    """
    check_int("frames", frames, 1, MAX_FRAMES)
    if width is not None:
        check_int("width", width, 1, MAX_PICTURE_SIDE)
    model = load_model(checkpoint, device)
    cams = model.orbit(frames, width)
    out = Path(out_dir) if out_dir is not None else Path(checkpoint).parent / "render"
    for stale in (out / ORBIT).glob("frame_[0-9][0-9][0-9].png"):  # an earlier run's, maybe more
        stale.unlink()
    pictures, paths = [], []
    report = progress if callable(progress) else None
    bar = Progress(
        TextColumn("[bold]render"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=progress is not True,
    )
    with bar:
        for k in bar.track(range(frames), description="render"):
            pictures.append(model.render(cams, k)["color"].clamp(0, 1).cpu())
            paths.append(write_png(out / ORBIT / FRAME.format(k), pictures[-1]))
            if report is not None:
                report(k + 1, frames)
    gif = write_gif(out / GIF, pictures)
    subject = (
        f"NeRF after {model.step} training steps"
        if model.kind == NERF
        else f"generated object after {model.step} steps"
        if model.kind == "generate"
        else f"edited object after {model.step} steps"
        if model.kind == "edit"
        else f"{model.kind} field, sphere-traced"
    )
    return OrbitResult(gif, paths, cams.width, cams.height, subject)
