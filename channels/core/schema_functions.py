"""Each wire schema's encoder and decoder, written out once as one straight-line function.

Walking a schema's fields generically (a loop and a dict comprehension per map, a call through
each field's kind, then ``cls(**values)``) was about half of the codec's CPU on a 100-trade
update. So each :class:`~channels.core.schema.Schema` gets two functions made for its fields, the
way :mod:`dataclasses` writes ``__init__``: the same checks in the same order, the same errors,
the same map (keys in wire order), without the per-field machinery.

The source is made only from our own schema tables (a field name must be an identifier, checked
here); nothing a peer sends reaches it. The functions call the fields' own ``Kind`` functions,
so every check of a value stays where it is written.
"""

from __future__ import annotations

import dataclasses
import keyword
from collections.abc import Callable, Sequence
from typing import Any

#: One field as the builders need it: key, its kind's encode and decode, and its reader (None:
#: the attribute named by the key).
FieldFunctions = tuple[
    str, Callable[[Any], Any], Callable[[Any, str], Any], Callable[[Any], Any] | None
]


def _checked_key(key: str) -> str:
    if not key.isidentifier() or keyword.iskeyword(key):
        raise ValueError(f"schema field {key!r} is not an identifier")
    return key


def _made(source: str, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    exec(compile(source, f"<schema functions: {name}>", "exec"), namespace)
    made: Callable[..., Any] = namespace["made"]
    return made


def build_encoder(
    name: str, cls: type, fields: Sequence[FieldFunctions], unencodable: type[Exception]
) -> Callable[[Any], dict[str, Any]]:
    """``encode(obj)``: ``obj`` (exactly a ``cls``) as the map of its fields, each value
    encoded by its kind (``unencodable`` if ``obj`` is of another type)."""
    namespace: dict[str, Any] = {"cls": cls, "Unencodable": unencodable}
    entries = []
    for i, (key, encode, _, get) in enumerate(fields):
        namespace[f"e{i}"] = encode
        if get is None:
            value = f"obj.{_checked_key(key)}"
        else:
            namespace[f"g{i}"] = get
            value = f"g{i}(obj)"
        entries.append(f"        {key!r}: e{i}({value}),\n")
    source = (
        "def made(obj):\n"
        "    if type(obj) is not cls:\n"
        "        raise Unencodable(f'expected a {cls.__name__}, got {type(obj).__name__}')\n"
        "    return {\n" + "".join(entries) + "    }\n"
    )
    return _made(source, name, namespace)


def _positional(cls: type, keys: Sequence[str]) -> bool:
    """Whether ``cls(*values)`` in wire order is ``cls(**values)``: the keys are the first
    init fields of the dataclass, in its order."""
    if not dataclasses.is_dataclass(cls):
        return False
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    return names[: len(keys)] == list(keys)


def build_decoder(
    name: str,
    cls: type,
    fields: Sequence[FieldFunctions],
    build: Callable[[dict[str, Any]], Any] | None,
    schema_error: type[Exception],
) -> Callable[..., Any]:
    """``decode(obj, name=None)``: the object a map of exactly these keys describes, each value
    checked by its kind in wire order, built by ``build(values)`` or ``cls``. ``name`` is the
    field the map sits in (unused: a map's errors name the schema)."""
    keys = frozenset(key for key, *_ in fields)

    def wrong_keys(obj: dict[str, Any]) -> None:
        missing = sorted(keys - obj.keys())
        unknown = sorted(obj.keys() - keys)
        raise schema_error(f"{name}: missing keys {missing}, unknown keys {unknown}")

    namespace: dict[str, Any] = {
        "cls": cls,
        "build": build,
        "keys": keys,
        "wrong_keys": wrong_keys,
        "SchemaError": schema_error,
        "not_a_map": f"{name} must be a map",
    }
    values = []
    for i, (key, _, decode, _) in enumerate(fields):
        namespace[f"d{i}"] = decode
        values.append((key, f"d{i}(obj[{key!r}], {key!r})"))
    if build is not None:
        result = "build({" + ", ".join(f"{key!r}: {value}" for key, value in values) + "})"
    elif _positional(cls, [key for key, _ in values]):
        result = "cls(" + ", ".join(value for _, value in values) + ")"
    else:
        result = "cls(" + ", ".join(f"{_checked_key(k)}={value}" for k, value in values) + ")"
    source = (
        "def made(obj, name=None):\n"
        "    if type(obj) is not dict:\n"
        "        raise SchemaError(not_a_map)\n"
        "    if obj.keys() != keys:\n"
        "        wrong_keys(obj)\n"
        f"    return {result}\n"
    )
    return _made(source, name, namespace)
