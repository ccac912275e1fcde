"""A trained NeRF loaded from its checkpoint alone, to render from any camera: ``load_nerf``.

Training leaves ``OUT/checkpoint.safetensors`` (:func:`~fields3d.pipelines.nerf.train_nerf`). It
holds the field's settings and weights, the occupancy grid (or a learned occupancy network, from
which a grid is derived for viewers), the marching step, the scene's
background colour and its training cameras, so rendering needs neither the pictures nor the
training settings: a viewer or a script starts from ``model.cameras`` (or builds its own
:class:`~fields3d.render.cameras.Cameras`) and calls :meth:`NerfModel.render`.

    model = load_nerf("out/spot/checkpoint.safetensors")
    picture = model.render(model.cameras, 0)["color"]   # (H, W, 3) on the scene's background
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch

from ..._checks import check_int, is_int, rgb_triple
from ...errors import CheckpointError, InputError, one_line
from ...fields.radiance import RadianceField
from ...render.cameras import Cameras
from ...render.learned_occupancy import OccupancyNetwork
from ...render.occupancy import OccupancyGrid
from ...render.volume import RenderSettings, render_camera
from .._common import resolve_device
from .checkpoint import CAMERA_TENSORS, KIND, read_checkpoint, restore_weights
from .learned import VIEW_GRID, marching_spec
from .outputs import orbit_cameras

WHITE = (1.0, 1.0, 1.0)  # checkpoints written before the background was stored: NeRF-synthetic's
MAX_PICTURE_SIDE = 16384  # pixels; a larger training picture size in a checkpoint is corrupt


@dataclass
class NerfModel:
    """A radiance field with its occupancy grid and the render settings it was trained with.

    :func:`load_nerf` builds one from a checkpoint (an example there); :meth:`orbit` gives cameras
    around the scene and :meth:`render` pictures it from any of them.
    """

    field: RadianceField
    grid: OccupancyGrid
    settings: RenderSettings
    background: torch.Tensor  # (3,) the scene's background colour, on the model's device
    step: int  # training steps behind the weights
    cameras: Cameras | None = (
        None  # the training views (None in checkpoints written before they were kept)
    )
    kind: str = KIND  # "nerf", as the checkpoint says (SdfModel.kind: the field's)
    occupancy: OccupancyNetwork | None = None  # a learned occupancy: marched instead of the grid,
    # which is then derived from it (for viewers)

    @property
    def device(self) -> torch.device:
        return self.background.device

    def orbit(self, frames: int, width: int | None = None) -> Cameras:
        """``frames`` views circling the world's z axis through the origin (NeRF scenes are centred
        there) at the training views' mean distance and height, in pictures of their size or
        ``width`` pixels across (the height keeps the aspect).

        Returns :class:`~fields3d.render.cameras.Cameras` of ``frames`` views on the model's
        device. InputError for a checkpoint that kept no training cameras.
        """
        check_int("frames", frames, 1)
        if self.cameras is None:
            raise InputError(
                "this NeRF checkpoint keeps no training cameras to orbit around (it predates them); "
                "train it again with `fields3d nerf`, or render it from cameras of your own"
            )
        cams = orbit_cameras(self.cameras, frames)
        if width is None:
            return cams
        return cams.resized(width, max(1, round(cams.height * width / cams.width)))

    @torch.no_grad()
    def render(
        self,
        cameras: Cameras,
        index: int = 0,
        *,
        background: torch.Tensor | float | None = None,
        chunk: int = 1 << 13,
    ) -> dict[str, torch.Tensor]:
        """Camera ``index``'s picture: ``color`` (H, W, 3), ``depth`` and ``opacity`` (H, W).

        ``cameras``: :class:`~fields3d.render.cameras.Cameras` (moved to the model's device),
        ``index`` one of them.
        ``background``: the colour behind the field (a number, three numbers or a ``(3,)`` tensor in
        [0, 1]); default the scene's. ``chunk``: rays rendered at once.
        ``depth`` is the expected ``t`` of the ray's weights (divide by ``opacity`` for the surface's).
        Every tensor is float32 on the model's device, rendered without gradients.
        """
        if isinstance(cameras, Cameras):  # anything else: render_camera says what it needs
            cameras = cameras.to(self.device)
        bg = (
            self.background
            if background is None
            else torch.tensor(rgb_triple("background", background), device=self.device)
        )
        spec = marching_spec(self)
        return render_camera(self.field, spec, cameras, index, self.settings, bg, chunk)


@torch.no_grad()
def snapshot(state, scene) -> NerfModel:
    """A :class:`NerfModel` of a training run as it stands: copies of ``state``'s field and
    occupancy grid (later steps do not touch them), its render settings, and ``scene``'s
    background and training cameras. Take it between steps (a
    :class:`~fields3d.pipelines.hooks.TrainingHook` is called there)."""
    field = copy.deepcopy(state.field).requires_grad_(False).eval()
    net = state.occupancy
    if net is not None:
        net = copy.deepcopy(net).requires_grad_(False).eval()
    grid = copy.deepcopy(state.grid) if net is None else net.to_grid(VIEW_GRID)
    return NerfModel(
        field, grid, state.settings, scene.background.clone(), state.step, scene.cameras, KIND, net
    )


def load_nerf(path: str | os.PathLike, device: str = "auto") -> NerfModel:
    """The model in a checkpoint written by ``fields3d nerf`` / ``train_nerf``, on ``device``.

    Args:
        path: the checkpoint (``OUT/checkpoint.safetensors``). device: ``"auto"``, ``"cpu"`` or
            ``"cuda"``.

    Returns:
        A :class:`NerfModel` in evaluation mode: the field, its occupancy grid, the render
        settings, the scene's background ``(3,)``, the training steps behind it and the
        training cameras.

    Raises:
        ModelNotFound: no file at ``path``. CheckpointError: not a NeRF checkpoint, or one that is
            corrupt or incomplete. BackendUnavailable: ``device="cuda"`` without CUDA.

    Example:
        >>> import pathlib, tempfile
        >>> import fields3d
        >>> from fields3d.pipelines.nerf import NerfConfig
        >>> spot = pathlib.Path(fields3d.__file__).parents[1] / "assets" / "scenes" / "spot"
        >>> tiny = dict(  # 20 x 20 pictures, a small field, long steps: seconds on one core
        ...     downscale=10, samples_per_step=4096, n_levels=4, log2_hashmap_size=12,
        ...     max_resolution=64, n_hidden=16, grid_resolution=16, step_size=0.05,
        ...     time_budget=None, turntable_frames=0, device="cpu",
        ... )
        >>> from fields3d.pipelines.nerf import load_nerf, train_nerf
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     config = NerfConfig(data=str(spot), output=tmp, steps=1, **tiny)
        ...     _ = train_nerf(config, progress=False)
        ...     model = load_nerf(pathlib.Path(tmp) / "checkpoint.safetensors", device="cpu")
        >>> model.step, len(model.cameras), model.cameras.width, model.background.tolist()
        (1, 100, 20, [1.0, 1.0, 1.0])
        >>> out = model.render(model.orbit(4, width=16), 2)  # the third of 4 views, 16 x 16
        >>> out["color"].shape, out["depth"].shape, out["opacity"].shape, out["color"].dtype
        (torch.Size([16, 16, 3]), torch.Size([16, 16]), torch.Size([16, 16]), torch.float32)
    """
    target = resolve_device(device)
    tensors, meta = read_checkpoint(path)
    size = _picture_size(path, meta.get("picture_size"))
    try:
        field = RadianceField.from_config(meta["field"], device=target)
        occupancy = _occupancy(meta.get("occupancy"), tensors, target)
        if occupancy is None:
            grid = OccupancyGrid(meta["field"]["aabb"], resolution=meta["grid_resolution"])
            restore_weights(field, grid.to(target), tensors)
        else:
            restore_weights(field, None, tensors)
            grid = occupancy.to_grid(VIEW_GRID)
        settings = RenderSettings(
            step=float(meta["render_step"]), max_samples=4 * int(meta["config"]["samples_per_step"])
        )
        background = torch.tensor(
            rgb_triple("background", meta.get("background") or WHITE), device=target
        )
        step = int(meta["step"])
        cameras = _cameras(tensors, size, target)
    except (
        KeyError,
        IndexError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
        RuntimeError,
        InputError,
    ) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not hold a complete NeRF "
            f"({type(exc).__name__}: {one_line(exc)}); "
            "train it again with `fields3d nerf`"
        ) from exc
    field.eval()
    return NerfModel(field, grid, settings, background, step, cameras, KIND, occupancy)


def _occupancy(config, tensors: dict, device: torch.device) -> OccupancyNetwork | None:
    """The learned occupancy network a checkpoint holds (``occupancy.*`` tensors, the header's
    ``occupancy`` settings), or None for a grid's checkpoint."""
    if config is None:
        return None
    net = OccupancyNetwork.from_config(config, device=device)
    prefix = "occupancy."
    net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    return net.requires_grad_(False).eval()


def _picture_size(path, size) -> tuple[int, int] | None:
    """The training pictures' ``(width, height)`` a checkpoint holds (None in checkpoints that predate it)."""
    if size is None:
        return None
    if not (
        isinstance(size, list)
        and len(size) == 2
        and all(is_int(v) and 1 <= v <= MAX_PICTURE_SIDE for v in size)
    ):
        raise CheckpointError(
            f"checkpoint {path} holds a bad picture_size {size!r}: expected [width, height], two "
            f"integers from 1 to {MAX_PICTURE_SIDE}; train it again with `fields3d nerf`"
        )
    return size[0], size[1]


def _cameras(tensors: dict, size: tuple[int, int] | None, device: torch.device) -> Cameras | None:
    if size is None:
        return None
    parts = {k: tensors[f"cameras.{k}"].to(device) for k in CAMERA_TENSORS}
    return Cameras(**parts, width=size[0], height=size[1])
