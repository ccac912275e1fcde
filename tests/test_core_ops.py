"""fields3d._core_ops wraps exactly the functions the compiled core exports, under their binding
names and with their binding's arguments, and no other module under fields3d/ reaches into the
core: a reader greps from any Python call to its binding and back."""

import ast
import inspect
from pathlib import Path

import pytest

import fields3d
from fields3d import _core_ops

PACKAGE = Path(fields3d.__file__).parent
WRAPPER = PACKAGE / "_core_ops.py"


def exported(module) -> set[str]:
    """The callables (functions and classes) a compiled module exports."""
    return {n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))}


def _is_core_call(node) -> bool:
    """``core()``, ``_native.core()`` or ``_core_ops.core()``."""
    if not isinstance(node, ast.Call) or node.args or node.keywords:
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "core") or (
        isinstance(f, ast.Attribute) and f.attr == "core"
    )


def wrapped() -> dict[str, set[str]]:
    """For each function of the wrapper (but the loader): the core attributes its body reads."""
    tree = ast.parse(WRAPPER.read_text())
    out = {}
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef) and fn.name != "core":
            out[fn.name] = {
                n.attr
                for n in ast.walk(fn)
                if isinstance(n, ast.Attribute) and _is_core_call(n.value)
            }
    return out


def test_every_wrapper_calls_its_namesake():
    for name, reads in wrapped().items():
        assert reads == {name}, f"_core_ops.{name} must call core().{name} and nothing else"


@pytest.mark.parametrize("module", ["_core", "_core_emu"])
def test_the_wrapper_covers_every_binding(module):
    if module == "_core":
        compiled = _core_ops.core()
    else:
        compiled = pytest.importorskip("fields3d._core_emu", reason="fields3d._core_emu not built")
    assert exported(compiled) == set(wrapped())


def _binding_parameters(obj) -> list[tuple[str, bool]]:
    """(name, has a default) of a pybind11 function's arguments, from its signature line."""
    line = (obj.__init__ if inspect.isclass(obj) else obj).__doc__.splitlines()[0]
    inner = line[line.index("(") + 1 : line.rindex(")")]
    parts, part, depth = [], "", 0  # split at the commas outside brackets (types like list[int])
    for ch in inner:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(part)
            part = ""
        else:
            part += ch
    parts.append(part)
    params = [(p.split(":")[0].strip(), " = " in p) for p in parts if p.strip()]
    return [p for p in params if p[0] != "self"]


@pytest.mark.parametrize("name", sorted(wrapped()))
def test_wrappers_take_the_binding_arguments(name):
    binding = getattr(_core_ops.core(), name)
    sig = inspect.signature(getattr(_core_ops, name)).parameters.values()
    mine = [(p.name, p.default is not inspect.Parameter.empty) for p in sig]
    assert mine == _binding_parameters(binding)


def reaches_into_the_core(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """Lines of ``path`` that use the compiled module other than through _core_ops: an attribute
    of ``core()`` or the module held in a name (any use of ``core()`` but a bare call that only
    loads it), an import of ``_core``/``_core_emu``, or an attribute ``._core``/``._core_emu``."""
    tree = ast.parse(path.read_text())
    bare = {
        id(s.value) for s in ast.walk(tree) if isinstance(s, ast.Expr) and _is_core_call(s.value)
    }
    found = []
    for n in ast.walk(tree):
        if _is_core_call(n) and id(n) not in bare:
            found.append(n.lineno)
        elif isinstance(n, ast.ImportFrom) and (
            any(a.name in ("_core", "_core_emu") for a in n.names)
            or (n.module or "").split(".")[-1] in ("_core", "_core_emu")
        ):
            found.append(n.lineno)
        elif isinstance(n, ast.Import) and any(
            a.name.split(".")[-1] in ("_core", "_core_emu") for a in n.names
        ):
            found.append(n.lineno)
        elif isinstance(n, ast.Attribute) and n.attr in ("_core", "_core_emu"):
            found.append(n.lineno)
    lines = path.read_text().splitlines()
    return [f"{path.relative_to(root)}:{i}: {lines[i - 1].strip()}" for i in sorted(found)]


def test_only_the_wrapper_calls_the_core():
    sources = sorted(p for p in PACKAGE.rglob("*.py") if p != WRAPPER)
    assert len(sources) > 20
    found = [line for p in sources for line in reaches_into_the_core(p)]
    assert not found, "call the core through fields3d._core_ops:\n" + "\n".join(found)


def test_the_check_finds_a_direct_call(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from fields3d import _native\n"
        "_native.core()\n"  # loading it is fine
        "_native.core().knn(1)\n"
        "core = _native.core()\n"
        "from fields3d import _core\n"
    )
    found = [line.split(": ", 1)[1] for line in reaches_into_the_core(bad, tmp_path)]
    assert found == ["_native.core().knn(1)", "core = _native.core()", "from fields3d import _core"]
