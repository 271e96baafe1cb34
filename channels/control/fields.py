"""Validated access to a control request's fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from channels.control.errors import BadRequest
from channels.core.errors import ChannelError
from channels.core.model import Address, address

if TYPE_CHECKING:
    pass


class Fields:
    """A request's fields with typed, validated getters."""

    def __init__(self, cmd: str, raw: Mapping[str, Any]) -> None:
        self.cmd = cmd
        self.raw = raw

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def _get(self, name: str) -> Any:
        value = self.raw.get(name)
        if value is None:
            raise BadRequest(f"{self.cmd}: missing field {name!r}")
        return value

    def get_int(self, name: str, default: int | None = None) -> int:
        if default is not None and not self.has(name):
            return default
        value = self._get(name)
        if type(value) is not int or value < 0:
            raise BadRequest(f"{self.cmd}: {name} must be a non-negative integer, not {value!r}")
        return value

    def get_str(self, name: str, default: str | None = None) -> str:
        if default is not None and not self.has(name):
            return default
        value = self._get(name)
        if not isinstance(value, str):
            raise BadRequest(f"{self.cmd}: {name} must be a string, not {value!r}")
        return value

    def get_address(self, name: str) -> Address:
        text = self.get_str(name)
        try:
            return address(text)
        except ChannelError as exc:
            raise BadRequest(f"{self.cmd}: {name}: {exc}") from None


Handler = Callable[[Fields], Awaitable[Any]]


#: The request fields of ``write_option`` and ``buy_option``.
OPTION_FIELDS = (
    "channel",
    "kind",
    "underlying",
    "strike",
    "expiry",
    "expiry_in",
    "quantity",
    "premium",
    "collateral",
)
