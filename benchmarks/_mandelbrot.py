"""A large test image made on the spot: the Mandelbrot set around Seahorse Valley, smooth-coloured.

The simplex-grid paper's gigapixel task fits one huge photograph; no such photograph can ship with
the project (assets stay small) or be downloaded (no network at run time). This image stands in:
it is reproducible at any size, has detail at every scale (spirals down to the pixel), and large
smooth regions, so it rewards an encoding that spends its table on detail. It is generated on the
device in row bands, float32 (the view is 0.02 wide: at 32k pixels across a pixel is still ten
float32 steps near |c| = 0.75). About a third of it is black (inside the set).

Colour: the escape count made continuous, ``nu = n + 1 - log2(log|z_n|)``, through a cosine
palette; points that do not escape in ``iterations`` steps are black.
"""

from __future__ import annotations

import math

import torch

CENTER = (-0.7436, 0.1318)  # Seahorse Valley
WIDTH = 0.02
ITERATIONS = 256
BAND_PIXELS = 2**22
PHASES = (0.0, 0.15, 0.3)  # cosine palette, one phase per channel


def mandelbrot(
    side: int, device: torch.device | str = "cpu", iterations: int = ITERATIONS
) -> torch.Tensor:
    """``(side, side, 3)`` float32 RGB in ``[0, 1]``: the view of the module docstring at ``side`` pixels."""
    if not isinstance(side, int) or side < 1:
        raise ValueError(f"side must be a positive integer, got {side!r}")
    out = torch.empty(side, side, 3, device=device)
    rows = max(1, BAND_PIXELS // side)
    threads = torch.get_num_threads()
    if (
        out.device.type == "cpu"
    ):  # many small ops: more threads only wait at barriers (10 s vs 0.15 s
        torch.set_num_threads(1)  # for 96 x 96 on a busy 2-core machine)
    try:
        for top in range(0, side, rows):
            out[top : top + rows] = _band(side, top, min(rows, side - top), device, iterations)
    finally:
        torch.set_num_threads(threads)
    return out


def _band(side: int, top: int, rows: int, device, iterations: int) -> torch.Tensor:
    pixel = WIDTH / side
    x = (
        CENTER[0]
        - WIDTH / 2
        + (torch.arange(side, device=device, dtype=torch.float32) + 0.5) * pixel
    )
    y = (
        CENTER[1]
        + WIDTH / 2
        - (torch.arange(top, top + rows, device=device, dtype=torch.float32) + 0.5) * pixel
    )
    cx, cy = (
        x.repeat(rows),
        y.repeat_interleave(side),
    )  # real arithmetic: torch's complex ops are slow on CPUs
    nu = torch.full((rows * side,), -1.0, device=device)  # -1: never escaped
    zx, zy, live = (
        torch.zeros_like(cx),
        torch.zeros_like(cy),
        torch.arange(rows * side, device=device),
    )
    for n in range(iterations):  # iterate only the points still inside the bailout
        zx, zy = zx * zx - zy * zy + cx, 2 * zx * zy + cy
        r2 = zx * zx + zy * zy
        out = r2 > 256.0  # a large bailout keeps the smooth count smooth
        nu[live[out]] = n + 1 - torch.log2(0.5 * torch.log(r2[out]))
        keep = ~out
        zx, zy, cx, cy, live = zx[keep], zy[keep], cx[keep], cy[keep], live[keep]
    phase = torch.tensor(PHASES, device=device)
    rgb = 0.5 + 0.5 * torch.cos(2 * math.pi * (nu.clamp(min=0).sqrt()[:, None] / 4 + phase))
    return torch.where(nu[:, None] < 0, torch.zeros_like(rgb), rgb).reshape(rows, side, 3)
