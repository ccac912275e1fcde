"""The shapes of a batch: INPUTS (files, folders, globs) expanded into named shapes, and ``--gt``."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError, ModelNotFound

# what fields3d.geometry.load_point_cloud reads (clouds, and meshes it samples); named here so
# that listing a folder does not import the geometry module (and torch)
SHAPE_EXTENSIONS = (".ply", ".xyz", ".pts", ".txt", ".npy", ".obj", ".off", ".stl", ".glb")
REFERENCE_EXTENSIONS = (".obj", ".ply", ".off", ".stl", ".glb")
_GLOB = set("*?[")


@dataclass(frozen=True)
class Shape:
    """One input of a batch: its ``name`` (the output folder under OUTDIR), absolute ``input``
    path and the reference mesh ``gt`` it is scored against (None without one)."""

    name: str
    input: str
    gt: str | None = None


def expand_inputs(
    inputs: list[str | os.PathLike], exclude: str | os.PathLike | None = None
) -> list[Path]:
    """Files named by ``inputs``: a file as given, a folder's files with a shape extension (in
    subfolders too, sorted), a glob's matches (``**`` descends); each once, in that order.

    Anything under ``exclude`` (the batch's OUTDIR) is left out, so a rerun over a folder that
    holds OUTDIR does not take the meshes it wrote for inputs. Raises ModelNotFound for a
    missing file or folder and InputError for a glob or folder with no shape in it, before any
    work starts.
    """
    if not inputs:
        raise InputError("recon-batch needs at least one input: files, folders or globs")
    skip = Path(exclude).resolve() if exclude is not None else None
    found: dict[Path, None] = {}
    for item in inputs:
        text = os.fspath(item)
        if _GLOB & set(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            files = [m for m in matches if m.is_file()]
            what = f"the pattern {text!r}"
        elif Path(text).is_dir():
            files = sorted(p for p in Path(text).rglob("*") if p.is_file() and _is_shape(p))
            what = f"the folder {text}"
        elif Path(text).exists():
            files = [Path(text)]
            what = text
        else:
            raise ModelNotFound(
                f"input not found: {text}; pass point cloud or mesh files, folders or globs"
            )
        files = [f.resolve() for f in files]
        files = [f for f in files if skip is None or not f.is_relative_to(skip)]
        if not files:
            raise InputError(f"{what} holds no point cloud or mesh ({', '.join(SHAPE_EXTENSIONS)})")
        found.update(dict.fromkeys(files))
    return list(found)


def name_shapes(files: list[Path]) -> list[str]:
    """A folder name per file: its stem, or ``<parent>-<stem>`` for stems that repeat; raises
    InputError when two files would still share a name."""
    stems = [f.stem for f in files]
    names = [s if stems.count(s) == 1 else f"{f.parent.name}-{s}" for f, s in zip(files, stems)]
    seen: dict[str, Path] = {}
    for f, n in zip(files, names):
        if n in seen:
            raise InputError(
                f"inputs {seen[n]} and {f} would both write OUTDIR/{n}; rename one or run them "
                "as separate batches"
            )
        seen[n] = f
    return names


def pair_references(files: list[Path], gt_dir: str | os.PathLike | None) -> list[str | None]:
    """The reference mesh in ``gt_dir`` named like each file (same stem, a mesh extension), or
    None; raises ModelNotFound when ``gt_dir`` is not a folder."""
    if gt_dir is None:
        return [None] * len(files)
    folder = Path(gt_dir)
    if not folder.is_dir():
        raise ModelNotFound(
            f"--gt folder not found: {gt_dir}; pass a folder of reference meshes named like the inputs"
        )
    by_stem: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in REFERENCE_EXTENSIONS:
            by_stem.setdefault(p.stem, p.resolve())
    return [str(by_stem[f.stem]) if f.stem in by_stem else None for f in files]


def collect_shapes(
    inputs: list[str | os.PathLike],
    gt_dir: str | os.PathLike | None = None,
    exclude: str | os.PathLike | None = None,
) -> list[Shape]:
    """:func:`expand_inputs`, :func:`name_shapes` and :func:`pair_references` in one call."""
    files = expand_inputs(inputs, exclude)
    names = name_shapes(files)
    refs = pair_references(files, gt_dir)
    return [Shape(n, str(f), g) for n, f, g in zip(names, files, refs)]


def _is_shape(path: Path) -> bool:
    return path.suffix.lower() in SHAPE_EXTENSIONS and not path.name.startswith(".")
