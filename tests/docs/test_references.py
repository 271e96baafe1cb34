"""Every repository path and module name the docs cite resolves in the tree, so the docs stay
true when code moves: backticked paths (with ``file.py::test_name`` naming a test in it),
``channels.x.y`` / ``adjudicator.x.y`` names, the paths and names written in the package's
docstrings and comments, and the layout table of the README."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "benchmarks/README.md"]
#: Where a doc's short paths are relative to (THREATS.md cites tests relative to tests/, the
#: architecture page modules relative to channels/, and so on).
BASES = (
    "",
    "channels",
    "channels/core",
    "channels/core/protocol",
    "adjudicator",
    "adjudicator/contracts",
    "tests",
    "examples",
    "benchmarks",
)
#: Made by the commands (gitignored) or by the reader following the README (``channels chain``
#: writes ``desks/``, the bot example is saved as ``bot.py``), so absent from a fresh checkout.
GENERATED = {"node_modules/", ".venv/", "benchmarks/results/", "desks/", "bot.py"}
BENCHMARK_OUTPUTS = re.compile(r"^[a-z_]+\.json$")

_TICKED = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"^[\w.\-]+(?:/[\w.\-*]*)+$|^[\w\-]+\.(?:py|md|sol|json|toml|cfg|js)$")
_MODULE = re.compile(r"^(?:channels|adjudicator)(?:\.\w+)+$")
_SOURCE_NAME = re.compile(r"(?:``|:\w+:`~?)((?:channels|adjudicator)(?:\.\w+)+)`")
_SOURCE_PATH = re.compile(
    r"\b((?:channels|adjudicator|tests|examples|benchmarks|docs)/[\w/.\-]*\w)"
)


def _resolve(path: str, doc: Path) -> Path | None:
    for base in (*BASES, str(doc.parent.relative_to(ROOT))):
        candidate = ROOT / base / path
        if candidate.exists() or ("*" in path and any((ROOT / base).glob(path))):
            return candidate
    return None


def _ticked(doc: Path) -> list[str]:
    return [t.strip() for t in _TICKED.findall(doc.read_text())]


def _broken_path(token: str, doc: Path) -> str | None:
    path, _, test = token.partition("::")
    if path in GENERATED or (doc.parent.name == "benchmarks" and BENCHMARK_OUTPUTS.match(path)):
        return None
    found = _resolve(path, doc)
    if found is None:
        return f"{token}: no such file"
    defines = rf"^\s*(?:async )?def {re.escape(test.split('[')[0])}\("
    if test and not re.search(defines, found.read_text(), re.M):
        return f"{token}: no such test in {found.relative_to(ROOT)}"
    return None


def _broken_module(name: str) -> str | None:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return f"{name}: {'.'.join(parts[:cut])} has no {attr!r}"
            obj = getattr(obj, attr)
        return None
    return f"{name}: no such module"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_cited_path_and_name_exists(doc: Path) -> None:
    broken = []
    for token in _ticked(doc):
        if _PATH.match(token.partition("::")[0]):
            broken.append(_broken_path(token, doc))
        elif _MODULE.match(token):
            broken.append(_broken_module(token))
    problems = [b for b in broken if b]
    assert not problems, "\n".join(problems)


def test_paths_and_names_in_code_docstrings_and_comments_exist() -> None:
    broken = []
    sources = [*ROOT.glob("channels/**/*.py")]
    sources += [*ROOT.glob("adjudicator/*.py"), *ROOT.glob("examples/*.py")]
    sources += ROOT.glob("benchmarks/*.py")
    for source in sorted(sources):
        text = source.read_text()
        for path in _SOURCE_PATH.findall(text):
            generated = any(f"{path}/".startswith(g) for g in GENERATED)
            if not (ROOT / path).exists() and not generated:
                broken.append(f"{source.relative_to(ROOT)}: {path}")
        for name in _SOURCE_NAME.findall(text):
            problem = _broken_module(name)
            if problem:
                broken.append(f"{source.relative_to(ROOT)}: {problem}")
    assert not broken, "\n".join(broken)


def test_readme_layout_table_matches_the_tree() -> None:
    """Each package directory is in the README's layout table, and each row names a real one."""
    readme = (ROOT / "README.md").read_text()
    first_cells = re.findall(r"^\| (`[^|]+`) \|", readme, re.M)
    rows = [path for cell in first_cells for path in re.findall(r"`([^`]+)`", cell)]
    assert rows, "the README has no layout table"
    for row in rows:
        assert _resolve(row, ROOT / "README.md") is not None, row
    packages = sorted(
        f"{p.parent.relative_to(ROOT)}/"
        for p in ROOT.glob("channels/*/__init__.py")
    )
    top_level = ["adjudicator/contracts/", "benchmarks/", "examples/", "tests/", "docs/"]
    missing = [p for p in [*packages, *top_level] if p not in rows]
    assert not missing, f"packages missing from the README's layout table: {missing}"
