"""mkdocs hook: the API reference page lists exactly the names of ``clipseg.__all__``.

The names and the modules they live in are read from ``src/clipseg/__init__.py``'s ``_EXPORTS`` by AST
(nothing is imported), so a public name that is added or moved appears on the page without editing it.
"""

from __future__ import annotations

import ast
from pathlib import Path

INIT = Path(__file__).resolve().parents[1] / "src" / "clipseg" / "__init__.py"
MARKER = "<!-- clipseg.__all__ -->"


def public_names(init: Path = INIT) -> dict[str, str]:
    """``{name: module}`` of ``_EXPORTS`` in ``init`` (the lazy exports behind ``clipseg.__all__``)."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_EXPORTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{init} has no _EXPORTS")


def reference_markdown(names: dict[str, str]) -> str:
    """One section per public name, each a mkdocstrings ``:::`` block of its defining module."""
    return "\n\n".join(f"## `clipseg.{name}`\n\n::: {names[name]}.{name}" for name in sorted(names))


def on_page_markdown(markdown: str, page, config, files) -> str:  # mkdocs' hook signature
    """Fill the reference page's marker with the public names."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference_markdown(public_names()))
