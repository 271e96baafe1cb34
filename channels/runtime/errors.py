"""Errors the runtime raises to its callers."""

from __future__ import annotations

from channels.core.errors import ChannelError


class UpdateRefusedError(ChannelError):
    """The update did not become a state; ``rule`` names the rule that refused it."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason
