"""A 2D field ``uv -> colour``: a 2D encoding (a hash grid by default) and an MLP with a sigmoid output.

Image coordinates: ``uv[:, 0] = u`` runs along the width (columns, left to right) and
``uv[:, 1] = v`` along the height (rows, top to bottom), both in ``[0, 1]``; pixel ``(row, col)``
of an ``H x W`` image has its centre at ``u = (col + 0.5) / W``, ``v = (row + 0.5) / H``. This is
``torch.nn.functional.grid_sample``'s convention with ``align_corners=False`` (after ``2 uv - 1``).
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from .._checks import MAX_BATCH, MAX_POINTS, check_device, check_int, check_size, dtype_str
from ..encodings import Encoding, HashGridConfig, create
from ..errors import InputError
from .encoded import EncodedField
from .mlp import MAX_FEATURES


def pixel_centres(
    height: int,
    width: int,
    start: int = 0,
    stop: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``uv`` of pixel centres in row-major order, pixels ``start:stop`` of ``height * width``.

    Returns ``(stop - start, 2)`` float32 on ``device`` (see the module docstring for the layout);
    ``height * width`` is at most ``MAX_POINTS`` (10^8) and ``0 <= start <= stop <= height * width``.

    Example:
        >>> from fields3d.fields import pixel_centres
        >>> pixel_centres(2, 2).tolist()  # (u, v) = ((col + 0.5) / W, (row + 0.5) / H)
        [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
        >>> pixel_centres(2, 4, start=5, stop=7).tolist()  # row 1, columns 1 and 2
        [[0.375, 0.75], [0.625, 0.75]]
    """
    n = _check_image_size(height, width)
    stop = n if stop is None else stop
    check_int("start", start, 0, n)
    check_int("stop", stop, start, n)
    index = torch.arange(start, stop, device=device)
    u = (index % width).to(torch.float32).add_(0.5).div_(width)
    v = torch.div(index, width, rounding_mode="floor").to(torch.float32).add_(0.5).div_(height)
    return torch.stack((u, v), dim=1)


def _check_image_size(height, width) -> int:
    """``height * width`` after checking both (past MAX_POINTS pixels the image is a typing slip)."""
    check_int("height", height, 1)
    check_int("width", width, 1)
    if height * width > MAX_POINTS:
        raise InputError(
            f"height * width must be at most {MAX_POINTS} pixels, got {height} * {width} = "
            f"{height * width}; use a smaller image"
        )
    return height * width


class ImageField(EncodedField):
    """An image as a neural field: a 2D encoding then an MLP with a sigmoid output.

    Args:
        encoding_config: the encoding: a :class:`HashGridConfig`, an encoding config dict
            (``{"type": "hash_grid", "n_input_dims": 2, ...}``, see :func:`fields3d.encodings.create`)
            or a built :class:`Encoding`; it must take 2D positions (``n_input_dims == 2``).
        n_channels: colour channels out (3 for RGB).
        n_hidden, n_hidden_layers: the MLP's width and depth (see :class:`MLP`).
        device: where the parameters live (``.to(device)`` moves them later).

    ``forward(uv)``: ``(N, 2)`` float32 in ``[0, 1]`` -> ``(N, n_channels)`` float32 in ``(0, 1)``.

    Example:
        >>> import torch
        >>> from fields3d.fields import ImageField, pixel_centres
        >>> _ = torch.manual_seed(0)
        >>> field = ImageField({"type": "hash_grid", "n_input_dims": 2, "n_levels": 4, "log2_hashmap_size": 12})
        >>> rgb = field(pixel_centres(4, 6))  # (24, 2) uv -> (24, 3)
        >>> rgb.shape, rgb.dtype, bool(((rgb > 0) & (rgb < 1)).all())
        (torch.Size([24, 3]), torch.float32, True)
        >>> picture = field.render(4, 6)  # (H, W, C), no gradient
        >>> picture.shape, torch.equal(picture.view(24, 3), rgb.detach())
        (torch.Size([4, 6, 3]), True)
    """

    def __init__(
        self,
        encoding_config: HashGridConfig | dict | Encoding,
        n_channels: int = 3,
        n_hidden: int = 64,
        n_hidden_layers: int = 2,
        *,
        device: torch.device | str | None = None,
    ) -> None:
        if isinstance(encoding_config, HashGridConfig):
            encoding_config = {"type": "hash_grid", **asdict(encoding_config)}
        elif not isinstance(encoding_config, (dict, Encoding)):
            raise InputError(
                "encoding_config must be a HashGridConfig, an encoding config dict or an Encoding, "
                f"got {type(encoding_config).__name__}"
            )
        check_size("n_channels", n_channels, 1, MAX_FEATURES)
        device = check_device(device)
        encoding = (
            create(encoding_config, device=device)
            if isinstance(encoding_config, dict)
            else encoding_config
        )
        if encoding.n_input_dims != 2:
            raise InputError(
                f"an ImageField's encoding_config must have n_input_dims=2, got {encoding.n_input_dims}"
            )
        super().__init__(
            encoding,
            n_channels,
            n_hidden,
            n_hidden_layers,
            output_activation="sigmoid",
            device=device,
        )
        self.n_channels = n_channels

    def forward(self, uv: torch.Tensor) -> torch.Tensor:
        if not isinstance(uv, torch.Tensor):
            raise InputError(f"uv must be float32 of shape (N, 2), got {type(uv).__name__}")
        if uv.dtype != torch.float32 or uv.dim() != 2 or uv.shape[1] != 2:
            shape = "(" + ", ".join(str(s) for s in uv.shape) + ")"
            raise InputError(
                f"uv must be float32 of shape (N, 2), got {dtype_str(uv.dtype)} {shape}"
            )
        return self.mlp(self.encoding(uv))

    @torch.no_grad()
    def render(self, height: int, width: int, chunk: int = 2**16) -> torch.Tensor:
        """Evaluate the field on the pixel centres of an ``height x width`` image, ``chunk`` pixels at a time.

        Returns ``(height, width, n_channels)`` float32 in ``[0, 1]`` on the field's device,
        without gradients (``height * width`` at most ``MAX_POINTS``, ``chunk`` at most ``MAX_BATCH``).
        """
        n = _check_image_size(height, width)
        check_size("chunk", chunk, 1, MAX_BATCH)
        out = torch.empty(n, self.n_channels, device=self.device)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            out[start:stop] = self(pixel_centres(height, width, start, stop, self.device))
        return out.view(height, width, self.n_channels)
