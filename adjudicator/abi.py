"""Small generic helpers over a contract ABI (the JSON list of a solc artifact).

Encodes calls and constructor args, decodes results, event logs and revert data (custom errors,
``Error(string)``, ``Panic(uint256)``) with eth-abi. Struct (``tuple``) parameters map to
eth-abi type strings like ``(uint256,address)[]``; struct arguments may be given as tuples/lists
in component order or as mappings by component name; decoded structs are tuples (use
``named()`` to turn them into dicts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils.crypto import keccak

from channels.core.errors import LocalError

AbiParam = Mapping[str, Any]
AbiEntry = Mapping[str, Any]


class AbiError(LocalError, ValueError):
    """The ABI or the data our caller passed does not fit."""


def canonical_type(param: AbiParam) -> str:
    """The canonical type string of an ABI parameter: ``tuple`` with components becomes
    ``(t1,t2,...)``, keeping any array suffix (``tuple[]`` → ``(t1,t2)[]``)."""
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in param.get("components", []))
        return f"({inner}){typ[len('tuple'):]}"
    return typ


def selector(signature: str) -> bytes:
    """First 4 bytes of keccak256 of a canonical signature like ``transfer(address,uint256)``."""
    return keccak(text=signature)[:4]


def event_topic(signature: str) -> bytes:
    return keccak(text=signature)


def _types(params: Sequence[AbiParam]) -> tuple[str, ...]:
    return tuple(canonical_type(p) for p in params)


def _signature(name: str, params: Sequence[AbiParam]) -> str:
    return f"{name}({','.join(_types(params))})"


def _array_dims(typ: str) -> tuple[str, list[str]]:
    """Split ``tuple[2][]`` into (``tuple``, [``2``, ``]``...])."""
    base, _, rest = typ.partition("[")
    dims = [] if not rest else ("[" + rest)[1:-1].split("][")
    return base, dims


def normalize_arg(param: AbiParam, value: Any) -> Any:
    """Prepare a Python value for eth-abi: structs given as mappings become tuples in component
    order (recursively, also inside arrays)."""
    typ = str(param["type"])
    base, dims = _array_dims(typ)
    if dims:
        inner = dict(param)
        inner["type"] = base + "".join(f"[{d}]" for d in dims[:-1])
        if isinstance(value, str | bytes | bytearray | Mapping):
            raise AbiError(f"{param.get('name', '')}: expected a sequence for {typ}")
        return [normalize_arg(inner, v) for v in value]
    if base == "tuple":
        comps: Sequence[AbiParam] = param.get("components", [])
        if isinstance(value, Mapping):
            try:
                return tuple(normalize_arg(c, value[c["name"]]) for c in comps)
            except KeyError as exc:
                raise AbiError(f"struct {param.get('name', '')}: missing field {exc}") from exc
        values = list(value)
        if len(values) != len(comps):
            raise AbiError(
                f"struct {param.get('name', '')}: {len(values)} values for {len(comps)} fields"
            )
        return tuple(normalize_arg(c, v) for c, v in zip(comps, values, strict=True))
    return value


def named(param: AbiParam, value: Any) -> Any:
    """Turn a decoded value into nested dicts for structs (recursively)."""
    typ = str(param["type"])
    base, dims = _array_dims(typ)
    if dims:
        inner = dict(param)
        inner["type"] = base + "".join(f"[{d}]" for d in dims[:-1])
        return [named(inner, v) for v in value]
    if base == "tuple":
        comps = param.get("components", [])
        return {c["name"]: named(c, v) for c, v in zip(comps, value, strict=True)}
    return value


def _encode(params: Sequence[AbiParam], args: Sequence[Any]) -> bytes:
    if len(args) != len(params):
        raise AbiError(f"{len(args)} arguments for {len(params)} parameters")
    values = [normalize_arg(p, a) for p, a in zip(params, args, strict=True)]
    return abi_encode(list(_types(params)), values)


def _decode(params: Sequence[AbiParam], data: bytes) -> tuple[Any, ...]:
    try:
        return tuple(abi_decode(list(_types(params)), data))
    except (DecodingError, ValueError, TypeError) as exc:
        raise AbiError(f"cannot decode {_types(params)}: {exc}") from exc


@dataclass(frozen=True)
class SelectedEntry:
    """An ABI entry named on chain by the 4-byte selector of its signature: a function (its
    calldata) or a custom error (its revert data)."""

    name: str
    inputs: tuple[AbiParam, ...]

    @property
    def signature(self) -> str:
        return _signature(self.name, self.inputs)

    @property
    def selector(self) -> bytes:
        return selector(self.signature)

    def encode_selected(self, *args: Any) -> bytes:
        """The selector followed by ``args`` encoded as the inputs."""
        return self.selector + _encode(self.inputs, args)


@dataclass(frozen=True)
class AbiFunction(SelectedEntry):
    outputs: tuple[AbiParam, ...]
    state_mutability: str

    @classmethod
    def from_entry(cls, entry: AbiEntry) -> AbiFunction:
        return cls(
            name=str(entry["name"]),
            inputs=tuple(entry.get("inputs", [])),
            outputs=tuple(entry.get("outputs", [])),
            state_mutability=str(entry.get("stateMutability", "nonpayable")),
        )

    def encode_call(self, *args: Any) -> bytes:
        return self.encode_selected(*args)

    def decode_input(self, calldata: bytes) -> tuple[Any, ...]:
        if calldata[:4] != self.selector:
            raise AbiError(f"calldata is not a call to {self.signature}")
        return _decode(self.inputs, calldata[4:])

    def decode_output(self, data: bytes) -> tuple[Any, ...]:
        return _decode(self.outputs, data)


@dataclass(frozen=True)
class DecodedEvent:
    name: str
    args: Mapping[str, Any]
    """By parameter name (unnamed parameters get ``_<index>``). Indexed parameters of dynamic
    type (string, bytes, arrays, structs) are the 32-byte topic (their keccak hash)."""


@dataclass(frozen=True)
class AbiEvent:
    name: str
    inputs: tuple[AbiParam, ...]
    anonymous: bool

    @classmethod
    def from_entry(cls, entry: AbiEntry) -> AbiEvent:
        return cls(
            name=str(entry["name"]),
            inputs=tuple(entry.get("inputs", [])),
            anonymous=bool(entry.get("anonymous", False)),
        )

    @property
    def signature(self) -> str:
        return _signature(self.name, self.inputs)

    @property
    def topic0(self) -> bytes:
        return event_topic(self.signature)

    def decode_log(self, topics: Sequence[bytes], data: bytes) -> DecodedEvent:
        topic_iter = iter(topics if self.anonymous else topics[1:])
        if not self.anonymous and (not topics or topics[0] != self.topic0):
            raise AbiError(f"log is not a {self.signature} event")
        indexed = [p for p in self.inputs if p.get("indexed")]
        if len(topics) - (0 if self.anonymous else 1) != len(indexed):
            raise AbiError(f"{self.signature}: {len(topics)} topics for {len(indexed)} indexed")
        plain = [p for p in self.inputs if not p.get("indexed")]
        plain_values = iter(_decode(plain, data))
        args: dict[str, Any] = {}
        for i, p in enumerate(self.inputs):
            key = str(p.get("name") or f"_{i}")
            if p.get("indexed"):
                topic = next(topic_iter)
                typ = canonical_type(p)
                if _is_dynamic(typ):
                    args[key] = topic
                else:
                    args[key] = _decode([p], topic)[0]
            else:
                args[key] = next(plain_values)
        return DecodedEvent(self.name, args)

    def topics_filter(self, *indexed: Any) -> list[bytes | None]:
        """Topics for ``eth_getLogs``: topic0 then the given indexed values (None = any)."""
        params = [p for p in self.inputs if p.get("indexed")]
        out: list[bytes | None] = [] if self.anonymous else [self.topic0]
        for p, v in zip(params, indexed, strict=False):
            if v is None:
                out.append(None)
            elif _is_dynamic(canonical_type(p)):
                raise AbiError("filter on dynamic indexed types by their hash yourself")
            else:
                out.append(abi_encode([canonical_type(p)], [normalize_arg(p, v)]))
        return out


def _is_dynamic(typ: str) -> bool:
    return typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("(")


@dataclass(frozen=True)
class DecodedError:
    name: str
    args: tuple[Any, ...]
    selector: bytes

    def __str__(self) -> str:
        return f"{self.name}{self.args!r}" if self.args else f"{self.name}()"


@dataclass(frozen=True)
class AbiCustomError(SelectedEntry):
    @classmethod
    def from_entry(cls, entry: AbiEntry) -> AbiCustomError:
        return cls(name=str(entry["name"]), inputs=tuple(entry.get("inputs", [])))

    def encode(self, *args: Any) -> bytes:
        return self.encode_selected(*args)

    def decode(self, revert_data: bytes) -> DecodedError:
        if revert_data[:4] != self.selector:
            raise AbiError(f"revert data is not {self.signature}")
        return DecodedError(self.name, _decode(self.inputs, revert_data[4:]), self.selector)


BUILTIN_ERRORS: tuple[AbiCustomError, ...] = (
    AbiCustomError("Error", ({"name": "message", "type": "string"},)),
    AbiCustomError("Panic", ({"name": "code", "type": "uint256"},)),
)


class ContractAbi:
    """Index of a contract ABI: functions (by name and by signature), events (by name and
    topic0), custom errors (by name and selector; plus ``Error(string)``/``Panic(uint256)``)."""

    def __init__(self, abi: Iterable[AbiEntry]) -> None:
        self.entries: tuple[AbiEntry, ...] = tuple(abi)
        self.functions_by_signature: dict[str, AbiFunction] = {}
        self.functions_by_selector: dict[bytes, AbiFunction] = {}
        self._functions_by_name: dict[str, list[AbiFunction]] = {}
        self.events: dict[str, AbiEvent] = {}
        self.events_by_topic: dict[bytes, AbiEvent] = {}
        self.errors: dict[str, AbiCustomError] = {}
        self.errors_by_selector: dict[bytes, AbiCustomError] = {
            e.selector: e for e in BUILTIN_ERRORS
        }
        self.constructor_inputs: tuple[AbiParam, ...] = ()
        for entry in self.entries:
            kind = entry.get("type", "function")
            if kind == "function":
                fn = AbiFunction.from_entry(entry)
                self.functions_by_signature[fn.signature] = fn
                self.functions_by_selector[fn.selector] = fn
                self._functions_by_name.setdefault(fn.name, []).append(fn)
            elif kind == "event":
                ev = AbiEvent.from_entry(entry)
                self.events[ev.name] = ev
                if not ev.anonymous:
                    self.events_by_topic[ev.topic0] = ev
            elif kind == "error":
                err = AbiCustomError.from_entry(entry)
                self.errors[err.name] = err
                self.errors_by_selector[err.selector] = err
            elif kind == "constructor":
                self.constructor_inputs = tuple(entry.get("inputs", []))

    def function(self, name_or_signature: str) -> AbiFunction:
        """By signature (``f(uint256)``), or by name when it is not overloaded."""
        if "(" in name_or_signature:
            try:
                return self.functions_by_signature[name_or_signature]
            except KeyError:
                raise AbiError(f"no function {name_or_signature}") from None
        fns = self._functions_by_name.get(name_or_signature, [])
        if not fns:
            raise AbiError(f"no function {name_or_signature}")
        if len(fns) > 1:
            sigs = ", ".join(f.signature for f in fns)
            raise AbiError(f"{name_or_signature} is overloaded ({sigs}); use a signature")
        return fns[0]

    def event(self, name: str) -> AbiEvent:
        try:
            return self.events[name]
        except KeyError:
            raise AbiError(f"no event {name}") from None

    def error(self, name: str) -> AbiCustomError:
        try:
            return self.errors[name]
        except KeyError:
            raise AbiError(f"no error {name}") from None

    def encode_call(self, fn: str, *args: Any) -> bytes:
        return self.function(fn).encode_call(*args)

    def decode_output(self, fn: str, data: bytes) -> tuple[Any, ...]:
        return self.function(fn).decode_output(data)

    def encode_constructor(self, *args: Any) -> bytes:
        return _encode(self.constructor_inputs, args)

    def deploy_data(self, bytecode: bytes, *args: Any) -> bytes:
        return bytecode + self.encode_constructor(*args)

    def decode_log(self, topics: Sequence[bytes], data: bytes) -> DecodedEvent | None:
        """Decode a log of a known (non-anonymous) event; None if topic0 is unknown."""
        if not topics:
            return None
        ev = self.events_by_topic.get(topics[0])
        return None if ev is None else ev.decode_log(topics, data)

    def decode_error(self, revert_data: bytes) -> DecodedError | None:
        """Decode revert data into (error name, args); None if empty, unknown, or malformed."""
        if len(revert_data) < 4:
            return None
        err = self.errors_by_selector.get(revert_data[:4])
        if err is None:
            return None
        try:
            return err.decode(revert_data)
        except AbiError:
            return None
