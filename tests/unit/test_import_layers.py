"""The package's rooms import one way only (read from the source by AST: nothing is imported), and the
torch-free rooms (core, inference, zoo cards) import without torch."""

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
    "clipseg.convert": 1,  # the public name of modeling.convert
    "clipseg.data": 1,
    "clipseg.metrics": 1,
    "clipseg.inference": 2,
    "clipseg.zoo": 2,
    "clipseg.backends": 2,
    "clipseg.sam_refine": 2,  # a torch runtime (SAM) that the predictor calls as ``predictor.sam``
    "clipseg.training": 3,
    "clipseg.export": 3,
    "clipseg.serve": 3,
    "clipseg.ray": 3,
    "clipseg.quality": 3,
    "clipseg.refine_quality": 3,
    "clipseg.cli": 4,
}
TORCH = ("torch", "lightning", "torchmetrics", "torchvision")
TORCH_FREE = (
    "clipseg.core",
    "clipseg.inference",
    "clipseg.zoo.cards",
    "clipseg.zoo.store",
    "clipseg.zoo.onnx",
    "clipseg.backends.onnx",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int | None:
    """The rank of a clipseg module (its longest listed prefix); the bare package ``clipseg`` is below all."""
    if module == "clipseg":
        return -1
    prefixes = [p for p in RANKS if module == p or module.startswith(p + ".")]
    return RANKS[max(prefixes, key=len)] if prefixes else None


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (function-level imports too)."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x` is the package itself, each dot one level up
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base])
            found.add(base.rstrip("."))
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


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
    modules = graph()
    edges = {src: {d for d in dsts if d in modules} for src, dsts in modules.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges[node] - {node}):
            if nxt.startswith(node + "."):  # a package importing its own submodule is no circle
                continue
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return None

    cycles = [c for m in sorted(edges) if m not in state and (c := visit(m, []))]
    assert cycles == []


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
