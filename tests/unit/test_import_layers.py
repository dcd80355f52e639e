"""The package's rooms import one way only and in no circle (read from the source by AST: nothing is
imported; imports inside functions count, and so do a package's ``__init__`` and ``from package import
name``), and the torch-free rooms (core, inference, zoo cards) import without torch."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

import clipseg

PACKAGE = Path(clipseg.__file__).parent
# Lower rank = lower floor; a module may import its own rank or below, never above.
RANKS = {
    "clipseg.core": 0,
    "clipseg.modeling": 1,
    "clipseg.data": 1,
    "clipseg.metrics": 1,
    "clipseg.inference": 2,
    "clipseg.zoo": 2,
    "clipseg.backends": 2,
    "clipseg.training": 3,
    "clipseg.export": 3,
    "clipseg.serve": 3,
    "clipseg.ray": 3,  # a second inference engine (Ray Data), beside serve
    "clipseg.eval": 4,
    "clipseg.cli": 5,
}
TORCH = ("torch", "lightning", "torchmetrics", "torchvision")
TORCH_FREE = (
    "clipseg.core",
    "clipseg.inference",
    "clipseg.zoo.cards",
    "clipseg.zoo.catalog",
    "clipseg.zoo.store",
    "clipseg.zoo.weights",
    "clipseg.zoo.onnx",
    "clipseg.backends.onnx",
)


def module_name(path: Path, root: Path = PACKAGE.parent) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int | None:
    """The rank of a clipseg module (its longest listed prefix); the bare package ``clipseg`` is below all."""
    if module == "clipseg":
        return -1
    prefixes = [p for p in RANKS if module == p or module.startswith(p + ".")]
    return RANKS[max(prefixes, key=len)] if prefixes else None


def bound_names(init: Path) -> set[str]:
    """The names a package's ``__init__.py`` binds at its top level (functions, classes, assignments,
    imported names): ``from package import name`` takes these from the ``__init__``, any other name is a
    submodule."""
    names: set[str] = set()
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).partition(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def imports(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (function-level imports too).

    ``from package import name`` is the submodule ``package.name`` where one exists and the package does
    not bind ``name`` itself, else the package (its ``__init__``).
    """
    found: set[str] = set()
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x` is the package itself, each dot one level up
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).rstrip(".")
            folder = root.joinpath(*base.split("."))
            init = folder / "__init__.py"
            for alias in node.names:
                submodule = (folder / f"{alias.name}.py").exists() or (
                    folder / alias.name / "__init__.py"
                ).exists()
                bound = init.exists() and alias.name in bound_names(init)
                found.add(f"{base}.{alias.name}" if submodule and not bound else base)
    return found


def module_graph(root: Path, top: str) -> dict[str, set[str]]:
    """``module -> the modules it imports`` for every module of the package ``root/top``."""
    return {module_name(p, root): imports(p, root) for p in sorted((root / top).rglob("*.py"))}


@functools.cache
def graph() -> dict[str, set[str]]:
    return module_graph(PACKAGE.parent, "clipseg")


def find_cycle(modules: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports between ``modules`` (``[a, b, ..., a]``), or ``None``. A package's
    ``__init__`` is a module like any other: ``zoo -> zoo.onnx -> zoo`` is a circle."""
    edges = {src: sorted(d for d in dsts if d in modules and d != src) for src, dsts in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    return next((c for m in sorted(edges) if m not in state and (c := visit(m, [m]))), None)


def test_every_module_has_a_room():
    assert [m for m in graph() if rank(m) is None] == []


def test_no_import_points_up():
    upward = [
        f"{src} (rank {rank(src)}) -> {dst} (rank {rank(dst)})"
        for src, targets in graph().items()
        for dst in targets
        if dst.startswith("clipseg") and rank(dst) is not None and rank(dst) > rank(src)
    ]
    assert upward == []


def test_no_circles_between_modules():
    assert find_cycle(graph()) is None


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize(
    "onnx",
    [
        "from pkg import load\n",  # a name the package's __init__ binds
        "def backend():\n    from pkg import load\n",  # the same, imported lazily
        "def backend():\n    import pkg\n",
    ],
)
def test_a_circle_through_a_package_init_or_a_lazy_import_is_found(tmp_path, onnx):
    """The shape of the zoo's old circle: ``__init__`` re-exports a factory that imports ``onnx``
    lazily, and ``onnx`` takes a name from the package's ``__init__``."""
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.factory import load\n",
            "pkg/factory.py": "def load():\n    from pkg.onnx import backend\n",
            "pkg/onnx.py": onnx,
        },
    )
    cycle = find_cycle(module_graph(tmp_path, "pkg"))
    assert cycle is not None and cycle[0] == cycle[-1] and {"pkg", "pkg.onnx"} <= set(cycle)


def test_a_submodule_taken_from_its_package_is_no_circle(tmp_path):
    """``from pkg import sibling`` (a submodule the ``__init__`` does not bind) imports the sibling."""
    write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.predictor import Predictor\n",
            "pkg/predictor.py": "from pkg import bulk\n\nclass Predictor: ...\n",
            "pkg/bulk.py": "import os\n",
        },
    )
    modules = module_graph(tmp_path, "pkg")
    assert modules["pkg.predictor"] == {"pkg.bulk"} and find_cycle(modules) is None


def test_serve_uses_only_core_inference_and_zoo():
    """The web app is one more client of the predictor: no model, training or torch code of its own."""
    allowed = ("clipseg.core", "clipseg.inference", "clipseg.zoo", "clipseg.serve")
    used = {
        dst
        for src, targets in graph().items()
        if src.startswith("clipseg.serve")
        for dst in targets
        if dst.startswith("clipseg") or dst.split(".")[0] in TORCH
    }
    assert used and sorted(d for d in used if not d.startswith(allowed)) == []


@pytest.mark.parametrize("room", TORCH_FREE)
def test_torch_free_rooms_never_import_torch(room):
    offenders = {
        src: sorted(d for d in targets if d.split(".")[0] in TORCH)
        for src, targets in graph().items()
        if src == room or src.startswith(room + ".")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


BLOCKED = """
import importlib, pkgutil, sys
sys.modules["torch"] = None  # any `import torch` now fails
import clipseg.core, clipseg.inference
for package in (clipseg.core, clipseg.inference):
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
import clipseg.zoo, clipseg.zoo.onnx, clipseg.backends.onnx
assert "shapes-tiny" in clipseg.zoo.list_models()
from clipseg import Prompt, PreprocessConfig, ClipSegConfig, Predictor
assert ClipSegConfig().preprocessing == PreprocessConfig()
print("ok")
"""


def test_core_inference_and_cards_import_with_torch_blocked():
    result = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
