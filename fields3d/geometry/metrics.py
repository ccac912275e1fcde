"""Surface reconstruction metrics: Chamfer distance, accuracy, completeness, normal consistency, F-score.

Protocol (the one most reconstruction papers follow, e.g. Occupancy Networks / ConvONet):

1. both meshes are normalised by the ground truth's bounding box: translated by its centre and
   scaled so that its diagonal is 1, so every distance is a fraction of that diagonal;
2. ``n_points`` points are sampled on each surface, uniformly by area, with face normals, using
   the same seed for both (identical meshes therefore give identical samples and exact zeros);
3. nearest neighbours between the two sample sets (scipy cKDTree):
   ``accuracy`` = mean distance pred -> gt, ``completeness`` = mean distance gt -> pred,
   ``chamfer_l1`` = (accuracy + completeness) / 2,
   ``chamfer_l2`` = (mean squared pred -> gt + mean squared gt -> pred) / 2,
   ``normal_consistency`` = (mean |n_pred . n_gt(nearest)| + mean |n_gt . n_pred(nearest)|) / 2,
   and for each threshold t: ``precision@t`` = fraction of pred samples closer than t to a gt
   sample, ``recall@t`` = fraction of gt samples closer than t to a pred sample,
   ``f_score@t`` = 2 P R / (P + R) (0 when both are 0).

Keys name thresholds in percent of the diagonal: 0.01 -> ``f_score@1%``, 0.005 -> ``f_score@0.5%``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from .._checks import MAX_POINTS, check_int, check_seed
from ..errors import InputError
from .mesh_io import mesh_arrays, rescaled
from .pointcloud import _sample_surface

MAX_REACH = 1e100  # ground-truth diagonals; a prediction farther off is in other units


def mesh_metrics(
    pred, gt, *, n_points: int = 100_000, seed: int = 0, thresholds=(0.01, 0.005)
) -> dict:
    """Compare a reconstructed mesh with the ground truth (see the module docstring for the protocol).

    ``pred``, ``gt``: ``trimesh.Trimesh`` or ``(verts, faces)`` tuples (``(V, 3)`` float and
    ``(F, 3)`` int, numpy or torch). Returns plain Python numbers: ``chamfer_l1``, ``chamfer_l2``,
    ``accuracy``, ``completeness``, ``normal_consistency``, ``f_score@<t>%``, ``precision@<t>%``,
    ``recall@<t>%`` for each threshold, ``n_points`` and ``gt_diagonal`` (the scale, in the ground
    truth's units, that turns the distances back into world units).

    Raises InputError for an empty or zero-area mesh, NaN vertices and bad arguments.

    Example:
        >>> import numpy as np
        >>> from fields3d.geometry import mesh_metrics
        >>> verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
        >>> faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])  # a tetrahedron
        >>> same = mesh_metrics((verts, faces), (verts, faces), n_points=2000)
        >>> same["chamfer_l1"], same["f_score@1%"], round(same["normal_consistency"], 6)
        (0.0, 1.0, 1.0)
        >>> moved = mesh_metrics((verts + 0.05, faces), (verts, faces), n_points=2000)
        >>> 0 < moved["chamfer_l1"] < 0.05, moved["f_score@1%"] < 0.5, round(moved["gt_diagonal"], 4)
        (True, True, 1.7321)
    """
    check_int("n_points", n_points, 1)
    if n_points > MAX_POINTS:
        raise InputError(
            f"n_points must be at most {MAX_POINTS} samples a surface (memory), got {n_points}"
        )
    check_seed(seed)
    thresholds = tuple(thresholds) if isinstance(thresholds, (tuple, list)) else thresholds
    if (
        not isinstance(thresholds, tuple)
        or not thresholds
        or not all(
            isinstance(t, numbers.Real) and not isinstance(t, bool) and 0 < t < 1
            for t in thresholds
        )
    ):
        raise InputError(
            "thresholds must be a non-empty sequence of numbers between 0 and 1 (fractions of the "
            f"ground truth's bounding-box diagonal), got {thresholds!r}"
        )
    pred_verts, pred_faces = _surface(pred, "pred")
    gt_verts, gt_faces = _surface(gt, "gt")

    corners = gt_verts[gt_faces.reshape(-1)]
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    center, diagonal = (
        lo / 2 + hi / 2,
        math.hypot(*(hi - lo)),
    )  # neither overflows for a mesh at 1e300
    pred_unit = (pred_verts - center) / diagonal
    reach = float(np.abs(pred_unit).max())
    if (
        not reach <= MAX_REACH
    ):  # its squared distances would overflow (and inf distances have no neighbour)
        raise InputError(
            f"pred mesh reaches {reach:.3g} ground-truth diagonals from the ground truth's centre, "
            "too far to measure: put both meshes in the same units"
        )
    pred_points, pred_normals = _sample_surface(pred_unit, pred_faces, n_points, seed)
    gt_points, gt_normals = _sample_surface(
        (gt_verts - center) / diagonal, gt_faces, n_points, seed
    )

    to_gt, nearest_gt = cKDTree(gt_points).query(pred_points, workers=-1)
    to_pred, nearest_pred = cKDTree(pred_points).query(gt_points, workers=-1)
    accuracy, completeness = float(to_gt.mean()), float(to_pred.mean())
    cos_pred = np.abs(np.einsum("ij,ij->i", pred_normals, gt_normals[nearest_gt]))
    cos_gt = np.abs(np.einsum("ij,ij->i", gt_normals, pred_normals[nearest_pred]))
    result = {
        "chamfer_l1": 0.5 * (accuracy + completeness),
        "chamfer_l2": 0.5 * float(np.mean(to_gt**2) + np.mean(to_pred**2)),
        "accuracy": accuracy,
        "completeness": completeness,
        "normal_consistency": 0.5 * float(cos_pred.mean() + cos_gt.mean()),
    }
    for t in thresholds:
        label = threshold_label(t)
        precision, recall = float(np.mean(to_gt < t)), float(np.mean(to_pred < t))
        both = precision + recall
        result[f"f_score@{label}"] = 2 * precision * recall / both if both > 0 else 0.0
        result[f"precision@{label}"] = precision
        result[f"recall@{label}"] = recall
    result["n_points"] = n_points
    result["gt_diagonal"] = diagonal
    return result


def threshold_label(t: float) -> str:
    """A threshold as a fraction of the diagonal -> its key suffix: ``0.01`` -> ``"1%"``, ``0.005`` -> ``"0.5%"``."""
    return f"{100 * float(t):g}%"


def format_metrics(m: dict) -> str:
    """One line for the CLI: the Chamfer distances, normal consistency and F-scores present in ``m``.

    Example:
        >>> from fields3d.geometry import format_metrics
        >>> format_metrics({"chamfer_l1": 0.00123, "normal_consistency": 0.98765, "f_score@1%": 0.9})
        'Chamfer-L1 0.00123 | NC 0.9877 | F@1% 0.9000'
    """
    parts = []
    for key, name, spec in (
        ("chamfer_l1", "Chamfer-L1", ".5f"),
        ("chamfer_l2", "Chamfer-L2", ".3e"),
        ("normal_consistency", "NC", ".4f"),
    ):
        if key in m:
            parts.append(f"{name} {m[key]:{spec}}")
    parts += [
        f"F@{key[len('f_score@') :]} {value:.4f}"
        for key, value in m.items()
        if key.startswith("f_score@")
    ]
    for key in ("accuracy", "completeness"):
        if key in m:
            parts.append(f"{key} {m[key]:.5f}")
    line = " | ".join(parts)
    if "n_points" in m:
        line += f" ({m['n_points']:,} samples a surface; distances in ground-truth bounding-box diagonals)"
    return line


def _surface(mesh, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(verts float64 (V, 3), faces int64 (F, 3))`` of a mesh with area; InputError naming it otherwise."""
    if isinstance(mesh, trimesh.Trimesh):
        verts, faces = mesh_arrays(mesh.vertices, mesh.faces, prefix=f"{name} ")
    elif isinstance(mesh, (tuple, list)) and len(mesh) == 2:
        verts, faces = mesh_arrays(*mesh, prefix=f"{name} ")
    else:
        raise InputError(
            f"{name} must be a trimesh.Trimesh or a (verts, faces) tuple, got {type(mesh).__name__}"
        )
    if len(faces) == 0:
        raise InputError(
            f"{name} mesh holds no triangles, so there is no surface to compare; "
            + (
                "check that the reconstruction produced a surface"
                if name == "pred"
                else "pass the ground-truth mesh"
            )
        )
    triangles = rescaled(verts)[
        faces
    ]  # only whether there is area: a power-of-two copy cannot overflow
    area = 0.5 * np.linalg.norm(
        np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]), axis=1
    )
    if not math.fsum(area) > 0:
        raise InputError(
            f"{name} mesh has zero surface area (all {len(faces)} triangles are degenerate)"
        )
    return verts, faces
