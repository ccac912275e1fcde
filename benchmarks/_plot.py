"""Line charts drawn with PIL (matplotlib is not a dependency): axes, ticks, lines, markers, legend.

``save_panels(path, [Panel(...), ...])`` writes one PNG with the panels side by side. Each panel
holds series ``(label, xs, ys)``; colours follow the order of the labels across panels, so one
encoding keeps its colour in every panel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)
PANEL_SIZE = (620, 440)
MARGIN = {"left": 70, "right": 20, "top": 40, "bottom": 55}


@dataclass
class Panel:
    """One chart: ``series`` is a list of ``(label, xs, ys)``; ``x_log`` puts x on a log10 scale."""

    title: str
    x_label: str
    y_label: str
    series: list[tuple[str, list[float], list[float]]] = field(default_factory=list)
    x_log: bool = False
    markers: bool = False


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering ``[lo, hi]``."""
    if not hi > lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(int(math.ceil((hi - first) / step - 1e-9)) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2 and 5 times the powers of ten within ``[lo, hi]`` (``lo > 0``), at least the two ends' decades."""
    ticks = [
        m * 10.0**e
        for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
        for m in (1, 2, 5)
    ]
    inside = [t for t in ticks if lo <= t <= hi]
    return inside if len(inside) >= 2 else [lo, hi]


def _label(value: float) -> str:
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-2):
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def _draw_panel(
    draw: ImageDraw.ImageDraw, origin: tuple[int, int], panel: Panel, colours: dict, font
) -> None:
    x0, y0 = origin[0] + MARGIN["left"], origin[1] + MARGIN["top"]
    x1, y1 = (
        origin[0] + PANEL_SIZE[0] - MARGIN["right"],
        origin[1] + PANEL_SIZE[1] - MARGIN["bottom"],
    )
    xs = [x for _, sx, _ in panel.series for x in sx if not panel.x_log or x > 0]
    ys = [y for _, _, sy in panel.series for y in sy if math.isfinite(y)]
    if not xs or not ys:
        draw.text((x0, y0), "no data", fill="black", font=font)
        return
    fx = (lambda v: math.log10(v)) if panel.x_log else (lambda v: v)
    if panel.x_log and max(xs) < 4 * min(
        xs
    ):  # less than a factor 4: widen to show round ticks around it
        xs = [min(xs) / 2, max(xs) * 2]
    x_ticks = _log_ticks(min(xs), max(xs)) if panel.x_log else nice_ticks(min(xs), max(xs))
    y_ticks = nice_ticks(min(ys), max(ys))
    xlo, xhi = fx(min(min(xs), x_ticks[0])), fx(max(max(xs), x_ticks[-1]))
    ylo, yhi = y_ticks[0], y_ticks[-1]
    xhi, yhi = (xhi if xhi > xlo else xlo + 1), (yhi if yhi > ylo else ylo + 1)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return x0 + (fx(x) - xlo) / (xhi - xlo) * (x1 - x0), y1 - (y - ylo) / (yhi - ylo) * (
            y1 - y0
        )

    for t in y_ticks:
        _, py = to_px(10**xlo if panel.x_log else xlo, t)
        draw.line([(x0, py), (x1, py)], fill=(225, 225, 225))
        draw.text((x0 - 6, py), _label(t), fill="black", font=font, anchor="rm")
    for t in x_ticks:
        px, _ = to_px(t, ylo)
        draw.line([(px, y0), (px, y1)], fill=(225, 225, 225))
        draw.text((px, y1 + 6), _label(t), fill="black", font=font, anchor="mt")
    draw.rectangle([x0, y0, x1, y1], outline="black")
    draw.text(((x0 + x1) / 2, origin[1] + 12), panel.title, fill="black", font=font, anchor="mt")
    draw.text(((x0 + x1) / 2, y1 + 28), panel.x_label, fill="black", font=font, anchor="mt")
    draw.text((origin[0] + 6, y0 - 22), panel.y_label, fill="black", font=font)
    for label, sx, sy in panel.series:
        points = [
            to_px(x, y) for x, y in zip(sx, sy) if math.isfinite(y) and (not panel.x_log or x > 0)
        ]
        if len(points) > 1:
            draw.line(points, fill=colours[label], width=2)
        if panel.markers or len(points) == 1:
            for px, py in points:
                draw.ellipse([px - 3.5, py - 3.5, px + 3.5, py + 3.5], fill=colours[label])
    _legend(draw, (x1 - 8, y1 - 8), [s[0] for s in panel.series], colours, font)


def _legend(
    draw: ImageDraw.ImageDraw, corner: tuple[int, int], labels: list[str], colours: dict, font
) -> None:
    """Legend box anchored at its bottom-right ``corner``."""
    if not labels:
        return
    width = max(draw.textlength(label, font=font) for label in labels) + 40
    height = 18 * len(labels) + 8
    left, top = corner[0] - width, corner[1] - height
    draw.rectangle([left, top, corner[0], corner[1]], fill="white", outline=(160, 160, 160))
    for i, label in enumerate(labels):
        y = top + 13 + 18 * i
        draw.line([(left + 6, y), (left + 28, y)], fill=colours[label], width=3)
        draw.text((left + 34, y), label, fill="black", font=font, anchor="lm")


def save_panels(path: str | Path, panels: list[Panel]) -> Path:
    """Draw ``panels`` left to right into one PNG at ``path`` (parent folders created); returns the path."""
    labels = list(dict.fromkeys(label for p in panels for label, _, _ in p.series))
    colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    image = Image.new("RGB", (PANEL_SIZE[0] * len(panels), PANEL_SIZE[1]), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    for i, panel in enumerate(panels):
        _draw_panel(draw, (i * PANEL_SIZE[0], 0), panel, colours, font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
