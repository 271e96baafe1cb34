"""The control protocol's errors and how any error is shown on one line."""

from __future__ import annotations

import trio

from channels.core.errors import LocalError, RemoteError


# Errors ----------------------------------------------------------------------------------------
class ControlError(RemoteError):
    """The node answered a control request with an error.

    ``kind`` is the class name of the error the node raised, ``message`` its text.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message


class ControlProtocolError(RemoteError):
    """A control line is not valid JSON, not an object, too long, or lacks its fields."""


class BadRequest(LocalError):
    """A control request names an unknown command or has a missing, unknown or mistyped field."""


class NodeNotRunning(LocalError):
    """Nothing answers on the control socket."""


class ControlSocketInUse(LocalError):
    """Another process already serves the control socket."""


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so an error fits on one line."""
    return " ".join(text.split())


def error_text(exc: BaseException) -> str:
    """``"<ErrorClass>: message"`` (just the class when there is no message), on one line."""
    if isinstance(exc, ControlError):
        return one_line(str(exc))
    if isinstance(exc, trio.TooSlowError):
        return "Timeout: the operation did not finish in time"
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{type(exc).__name__}: {exc.strerror}{where}"
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
