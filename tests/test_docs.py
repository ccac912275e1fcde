"""Every public op documents its shapes and dtypes and shows a short example that runs (STYLE.md,
"Absorb": nerfacc's ``volrend.py``).

- :func:`test_doctests` runs the docstring examples of every fields3d module whose source holds a
  ``>>>`` line, as doctests. Modules are found by that line, so a new example runs without being
  registered here. (One test per module rather than ``pytest --doctest-modules``: that would also
  import every module of the package and of tests/ just to look for examples, and a module whose
  optional dependency is missing would fail the collection of the whole run.)
- :func:`test_public_name_has_example` fails for a public name of :data:`COVERED` whose docstring
  has no ``Example:`` section with a ``>>>`` line, so later ops keep the habit.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch

import fields3d

# The public names that must show an example: a package or module with None (its ``__all__``) or
# with the names it documents. To extend (fields3d.encodings, the pipeline entry points), add a line.
COVERED: dict[str, tuple[str, ...] | None] = {
    "fields3d.render": None,
    "fields3d.fields": None,
    "fields3d.geometry": None,
    "fields3d.encodings": None,
    "fields3d.guidance": None,
    # not re-exported by fields3d.render; the README's cameras and posed-image loader
    "fields3d.render.cameras": (
        "Cameras",
        "focal_from_fov",
        "generate_rays",
        "image_rays",
        "look_at",
        "ring_cameras",
    ),
    "fields3d.render.datasets": ("load_scene",),
    # not re-exported by fields3d.geometry: the recon building blocks and the neighbour search
    "fields3d.geometry.closing": ("closing_sdf",),
    "fields3d.geometry.grid_distance": ("CappedDistance",),
    "fields3d.geometry.normals": ("imls", "oriented_normals", "pca_normals"),
    "fields3d.geometry.knn": ("knn",),
    # Mosaic-SDF: the field, its file, conversion from a mesh and meshing, and the pipeline
    "fields3d.geometry.mosaic_sdf": ("MosaicSDF", "load_mosaic", "mosaic_sdf"),
    "fields3d.geometry.mosaic_convert": (
        "farthest_point_sampling",
        "finetune_mosaic",
        "mesh_mosaic",
        "mosaic_from_mesh",
    ),
    "fields3d.pipelines.mosaic_sdf": ("MosaicConfig", "make_mosaic"),
    # text-guided editing: the voxel field, the pipeline, a voxel checkpoint; prompt tokens
    "fields3d.pipelines.edit": ("VoxelField", "edit", "save_voxels"),
    "fields3d.guidance.attention": ("token_indices",),
    # VoroMesh: extraction, fitting and the pipeline
    "fields3d.geometry.voromesh": ("VoronoiDiagram", "voromesh_surface"),
    "fields3d.geometry.voromesh_fit": (
        "fit_generators",
        "grid_generators",
        "resolution_for",
        "voro_loss",
    ),
    "fields3d.pipelines.voromesh": ("VoroMeshConfig", "voromesh"),
    # the pipeline entry points: what `fields3d recon`, `mesh` and `render` call
    "fields3d.pipelines.recon": ("ReconConfig", "SdfModel", "load_sdf", "reconstruct"),
    "fields3d.pipelines.remesh": ("remesh",),
    "fields3d.pipelines.models": ("load_model",),
    "fields3d.pipelines.orbit": ("render_orbit",),
    "fields3d.pipelines.nerf": ("NerfConfig", "load_job", "load_nerf", "train_nerf"),
    "fields3d.pipelines.fit_image": ("FitImageConfig", "fit_image"),
    "fields3d.pipelines.fit_sdf": ("FitSdfConfig", "fit_sdf"),
}

# Public names of COVERED not documented with an example yet, each with why; they are reported as
# skipped. Remove a name once its docstring has an example.
NOT_YET: dict[str, dict[str, str]] = {}

EXAMPLE = re.compile(r"^Examples?:[ \t]*\n(?:.*\n)*?[ \t]+>>> ", re.MULTILINE)


def _modules_with_examples() -> list[str]:
    """Dotted names of the package's modules whose source holds a ``>>>`` line."""
    root = Path(fields3d.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__main__.py" or ">>>" not in path.read_text(encoding="utf-8"):
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_doctests(module_name):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.FAIL_FAST)
    report: list[str] = []
    # examples that seed torch leave the random state of the tests after them alone; they run on
    # one torch thread, as their sizes assume ("seconds on one core"): on two busy cores a second
    # thread made the pipeline examples' tiny steps 5 to 20 times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            for test in sorted(tests, key=lambda t: t.name):
                runner.run(test, out=report.append)
    finally:
        torch.set_num_threads(threads)
    assert runner.failures == 0, "".join(report)


def _public_names() -> list:
    cases = []
    for module_name, names in COVERED.items():
        module = importlib.import_module(module_name)
        skipped = NOT_YET.get(module_name, {})
        for name in module.__all__ if names is None else names:
            marks = (
                [pytest.mark.skip(reason=f"no example yet: {skipped[name]}")]
                if name in skipped
                else []
            )
            cases.append(pytest.param(module_name, name, marks=marks, id=f"{module_name}.{name}"))
    return cases


@pytest.mark.parametrize(("module_name", "name"), _public_names())
def test_public_name_has_example(module_name, name):
    obj = getattr(importlib.import_module(module_name), name)
    if not callable(obj):
        pytest.skip(f"{module_name}.{name} is a constant")
    doc = inspect.getdoc(obj) or ""
    assert EXAMPLE.search(doc + "\n"), (
        f"{module_name}.{name} needs an 'Example:' section with a runnable '>>>' line in its "
        "docstring (argument shapes and dtypes above it)"
    )
