"""Errors the runtime raises to its callers."""

from __future__ import annotations

from channels.core.errors import RemoteError


class UpdateRefusedError(RemoteError):
    """The peer refused the update (or it was lost with the connection); ``rule`` names why."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason
