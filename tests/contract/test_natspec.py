"""NatSpec stays complete: every function, event and error an interface declares has a @notice,
an @param for each named parameter and an @return for each returned value (the project's rule for
the Solidity side, docs/ARCHITECTURE.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

INTERFACES = Path(__file__).resolve().parents[2] / "adjudicator" / "contracts" / "interfaces"
DECLARATION = re.compile(r"^\s*(function|event|error)\s+(\w+)\s*\(")


def _split_params(text: str) -> list[str]:
    """The parameter names in a declaration's parenthesised list (types and modifiers dropped)."""
    depth, current, parts = 0, "", []
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    if current.strip():
        parts.append(current)
    names = []
    for part in parts:
        words = part.replace("indexed", " ").split()
        if len(words) >= 2:  # an unnamed parameter has only its type
            names.append(words[-1])
    return names


def _balanced(text: str, start: int) -> tuple[str, int]:
    """The text inside the parentheses opening at ``start`` and the index after them."""
    depth = 0
    for i in range(start, len(text)):
        depth += text[i] == "("
        depth -= text[i] == ")"
        if depth == 0:
            return text[start + 1 : i], i + 1
    raise AssertionError("unbalanced parentheses")


@dataclass(frozen=True)
class Declaration:
    file: str
    kind: str
    name: str
    params: list[str]
    returns: int
    natspec: str


def declarations() -> list[Declaration]:
    """Every function, event and error declared in the interfaces, with its NatSpec."""
    found = []
    for path in sorted(INTERFACES.glob("*.sol")):
        lines = path.read_text().splitlines()
        text = path.read_text()
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line) + 1)
        for number, line in enumerate(lines):
            match = DECLARATION.match(line)
            if not match:
                continue
            kind, name = match.groups()
            inside, after = _balanced(text, offsets[number] + line.index("("))
            params = _split_params(inside)
            returns: list[str] = []
            tail = text[after : text.index(";", after)]
            if kind == "function" and "returns" in tail:
                ret_inside, _ = _balanced(tail, tail.index("(", tail.index("returns")))
                returns = _split_params(ret_inside) or ["(unnamed)"] * (ret_inside.count(",") + 1)
            doc = []
            back = number - 1
            while back >= 0 and lines[back].strip().startswith("///"):
                doc.insert(0, lines[back].strip()[3:].strip())
                back -= 1
            found.append(Declaration(path.name, kind, name, params, len(returns), " ".join(doc)))
    return found


ALL = declarations()


def test_the_interfaces_declare_what_the_adjudicator_offers() -> None:
    kinds = [d.kind for d in ALL]
    assert kinds.count("function") >= 20 and kinds.count("error") >= 30
    assert kinds.count("event") >= 10


@pytest.mark.parametrize("d", ALL, ids=[d.name for d in ALL])
def test_every_declaration_is_documented(d: Declaration) -> None:
    where = f"{d.file}: {d.kind} {d.name}"
    assert "@notice" in d.natspec, f"{where} has no @notice"
    documented = re.findall(r"@param\s+(\w+)", d.natspec)
    for param in d.params:
        assert param in documented, f"{where} lacks @param {param}"
    assert d.natspec.count("@return") >= d.returns, f"{where} lacks an @return"
