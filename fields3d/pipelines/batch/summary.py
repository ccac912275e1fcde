"""The end of a batch: a table of the shapes, ``summary.csv``, ``summary.md`` and ``contact_sheet.png``."""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path

from ..._io import write_atomic

METRICS = ("chamfer_l1", "chamfer_l2", "normal_consistency", "f_score@1%", "f_score@0.5%")
COLUMNS = ("name", "status", "seconds", "vertices", "faces", *METRICS, "input", "error")
THUMB = 256


def rows(records: list[dict]) -> list[dict]:
    """One flat row per record (the CSV's columns; absent values empty)."""
    out = []
    for r in records:
        row = {
            "name": r["name"],
            "status": r["status"],
            "seconds": round(r.get("seconds", 0.0), 2),
            "vertices": r.get("mesh", {}).get("vertices", ""),
            "faces": r.get("mesh", {}).get("faces", ""),
            "input": r["input"],
            "error": r.get("error") or "",
        }
        for m in METRICS:
            value = r.get("metrics", {}).get(m)
            row[m] = "" if value is None else f"{value:.6g}"
        out.append(row)
    return out


def aggregate(records: list[dict]) -> dict[str, dict]:
    """Mean and median of the seconds and of each metric over the shapes done (where present)."""
    done = [r for r in records if r["status"] == "done"]
    out = {}
    for key in ("seconds", *METRICS):
        values = [r["seconds"] if key == "seconds" else r.get("metrics", {}).get(key) for r in done]
        values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if values:
            out[key] = {
                "mean": statistics.fmean(values),
                "median": statistics.median(values),
                "n": len(values),
            }
    return out


def write_summary(records: list[dict], outdir: Path, wall_seconds: float) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.md`` and (when any shape has a picture) ``contact_sheet.png``."""
    paths = {}
    table = rows(records)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    paths["csv"] = write_atomic(outdir / "summary.csv", text.getvalue().encode())
    sheet = contact_sheet(records, outdir)
    if sheet is not None:
        paths["contact_sheet"] = sheet
    paths["md"] = write_atomic(
        outdir / "summary.md", _markdown(records, table, wall_seconds, sheet).encode()
    )
    return paths


def _markdown(records, table, wall_seconds, sheet) -> str:
    done = sum(r["status"] == "done" for r in records)
    lines = [
        "# recon-batch summary",
        "",
        f"{len(records)} shapes: {done} done, {len(records) - done} failed "
        f"({wall_seconds:.1f} s for this run).",
        "",
    ]
    stats = aggregate(records)
    if stats:
        lines += ["| over the shapes done | mean | median | n |", "|---|---:|---:|---:|"]
        for key, s in stats.items():
            lines.append(f"| {key} | {s['mean']:.6g} | {s['median']:.6g} | {s['n']} |")
        lines.append("")
    shown = ("name", "status", "seconds", "faces", "chamfer_l1", "f_score@1%", "error")
    lines += ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in table:
        cells = [str(row[c]).replace("|", "\\|").replace("\n", " ") for c in shown]
        lines.append("| " + " | ".join(cells) + " |")
    if sheet is not None:
        lines += ["", f"![the meshes]({sheet.name})"]
    return "\n".join(lines) + "\n"


def contact_sheet(records: list[dict], outdir: Path) -> Path | None:
    """The pictures of the shapes done, as labelled tiles on one PNG (None when there are none)."""
    from PIL import Image, ImageDraw

    tiles = []
    for r in records:
        rel = r.get("outputs", {}).get("picture")
        if r["status"] != "done" or not rel:
            continue
        path = outdir / rel
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                im.thumbnail((THUMB * 2, THUMB))
                tiles.append((r["name"], im.copy()))
        except OSError:
            continue
    if not tiles:
        return None
    width = max(im.width for _, im in tiles)
    height = max(im.height for _, im in tiles) + 18
    cols = max(1, min(len(tiles), math.ceil(math.sqrt(len(tiles) * height / width))))
    grid = Image.new("RGB", (cols * width, math.ceil(len(tiles) / cols) * height), "white")
    draw = ImageDraw.Draw(grid)
    for i, (name, im) in enumerate(tiles):
        x, y = (i % cols) * width, (i // cols) * height
        grid.paste(im, (x + (width - im.width) // 2, y))
        draw.text((x + 4, y + height - 16), name, fill="black")
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return write_atomic(outdir / "contact_sheet.png", buf.getvalue())


def format_table(records: list[dict]) -> str:
    """The summary as plain text lines (name, status, seconds, faces, metrics or error)."""
    table = rows(records)
    has_metrics = any(row["chamfer_l1"] for row in table)
    headers = ["name", "status", "seconds", "faces"]
    headers += ["chamfer_l1", "f_score@1%", "normal_consistency"] if has_metrics else []
    cells = [headers]
    for row in table:
        cells.append([str(row[h]) for h in headers])
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    for row in table:
        if row["error"]:
            out.append(f"{row['name']}: {row['error']}")
    return "\n".join(out)
