"""The README stays a front page, and the docs site's architecture picture and API reference stay true to the
code (the site itself is built by `make docs`, `mkdocs build --strict`, in CI)."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import clipseg

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "clipseg"
TORCH = ("torch", "lightning", "torchmetrics", "torchvision")


def _load(name: str) -> ModuleType:
    """A script of docs/ as a module (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _room_imports() -> dict[str, set[str]]:
    """For each room (a package directly under clipseg), the top-level modules its code imports, at any
    depth (function-level imports too), relative imports resolved to ``clipseg.*`` names."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if len(parts) < 3:  # clipseg/__init__.py and loose top-level modules belong to no room
            continue
        package = parts[:-1]
        targets = found.setdefault(parts[1], set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package[: len(package) - node.level + 1], base])
                targets.add(base.rstrip("."))
    return found


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_readmes_links_into_the_docs_exist():
    links = re.findall(r"\]\((docs/[^)#\s]+)", (ROOT / "README.md").read_text())
    assert links, "the README should link into the docs"
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_every_package_has_a_box_in_the_architecture_picture():
    drawn = {room.name for row in _load("architecture_svg").LAYERS for room in row}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert sorted(packages - drawn) == []


def test_no_package_imports_one_drawn_above_it():
    layers = _load("architecture_svg").LAYERS
    row = {room.name: i for i, rooms in enumerate(layers) for room in rooms}  # 0 = top
    upward = [
        f"{room} -> {target}"
        for room, targets in _room_imports().items()
        for target in {t.split(".")[1] for t in targets if t.startswith("clipseg.")}
        if target in row and room in row and row[target] < row[room]
    ]
    assert upward == []


def test_rooms_drawn_torch_free_import_no_torch():
    free = [room.name for rooms in _load("architecture_svg").LAYERS for room in rooms if room.torch_free]
    imports = _room_imports()
    offenders = {r: sorted(t for t in imports[r] if t.split(".")[0] in TORCH) for r in free}
    assert free and {r: found for r, found in offenders.items() if found} == {}


def test_the_committed_diagrams_are_the_declared_ones(capsys):
    assert _load("architecture_svg").main(["--check"]) == 0, capsys.readouterr().err


def test_the_api_reference_lists_exactly_clipseg_all():
    hooks = _load("hooks")
    names = hooks.public_names()
    assert sorted(names) == clipseg.__all__
    page = hooks.on_page_markdown((ROOT / "docs" / "reference.md").read_text(), None, None, None)
    assert sorted(re.findall(r"^::: [\w.]+\.(\w+)$", page, flags=re.M)) == clipseg.__all__
