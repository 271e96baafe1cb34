"""The package, the examples and the benchmarks keep to public names, and no module grows past
the size limit (docs/ARCHITECTURE.md, "Size").

A name with a leading underscore is private to the module or object that defines it. So, read
with ``ast`` (not grep, so multi-line imports and aliases count):

* no ``from m import _x``, no ``import m._x`` or ``from m._x import y``, and no module file named
  ``_x.py``: a module another module imports is not private;
* no ``obj._x`` where ``obj`` is not ``self`` or ``cls`` (nor ``super()``): another object's
  private attribute. ``self._a._b`` counts, since ``self._a`` is another object.

Dunder names (``__init__``, ``__version__``) are public by convention and allowed, as are the
few standard-library names in ``STDLIB_PUBLIC``. The only other exceptions are in ``ALLOWED``,
each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("channels", "examples", "benchmarks")
MAX_LINES = 600

#: (path relative to the repository, the private name) -> why it is allowed.
ALLOWED: dict[tuple[str, str], str] = {}
#: Standard-library names that are documented public API despite their underscore
#: (``os._exit``; a named tuple's ``_replace``, ``_asdict``, ``_fields``, ``_make``).
STDLIB_PUBLIC = {"_exit", "_replace", "_asdict", "_fields", "_make"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_own(node: ast.expr) -> bool:
    """``self``, ``cls`` or ``super()``: the object whose private names these are."""
    if isinstance(node, ast.Name):
        return node.id in {"self", "cls"}
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def reaches(path: Path) -> list[tuple[int, str, str]]:
    """Every reach into another module's or object's private name in one file, as
    ``(line, name, what)``."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            for part in module.split("."):
                if _private(part):
                    found.append((node.lineno, part, f"from {module} import ..."))
            for alias in node.names:
                if _private(alias.name):
                    what = f"from {module or '.'} import {alias.name}"
                    found.append((node.lineno, alias.name, what))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                for part in alias.name.split("."):
                    if _private(part):
                        found.append((node.lineno, part, f"import {alias.name}"))
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            if not _is_own(node.value) and node.attr not in STDLIB_PUBLIC:
                found.append((node.lineno, node.attr, f"{ast.unparse(node.value)}.{node.attr}"))
    return found


def _files() -> list[Path]:
    return sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py"))


def all_reaches() -> list[str]:
    out = []
    for path in _files():
        rel = str(path.relative_to(ROOT))
        if _private(path.stem):
            out.append(f"{rel}: module named {path.stem!r} (rename it: others import it)")
        for line, name, what in reaches(path):
            if (rel, name) not in ALLOWED:
                out.append(f"{rel}:{line}: {what}")
    return out


def test_no_private_name_of_another_module_or_object_is_reached() -> None:
    found = all_reaches()
    assert not found, "private names reached:\n" + "\n".join(found)


def test_every_allowance_is_still_needed() -> None:
    used = {(str(p.relative_to(ROOT)), name) for p in _files() for _, name, _ in reaches(p)}
    assert set(ALLOWED) <= used, f"stale allowances: {set(ALLOWED) - used}"


def test_the_scanner_sees_every_kind_of_reach(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from m import (\n    a,\n    _b,\n)\n"
        "import m._c\n"
        "from m._d import e\n"
        "from . import _f\n"
        "x = obj._g\n"
        "y = self._h._i\n"
        "z = self._ok, cls._ok, super()._ok(), obj.__dict__, obj.public, os._exit\n"
    )
    assert [name for _, name, _ in reaches(sample)] == ["_b", "_c", "_d", "_f", "_g", "_i"]


def test_no_module_in_the_package_is_over_the_size_limit() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for p in (ROOT / "channels").rglob("*.py")
    }
    over = {path: n for path, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): {over}"
