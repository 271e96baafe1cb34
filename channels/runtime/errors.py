"""Errors the runtime raises to its callers."""

from __future__ import annotations

from channels.core.errors import LocalError, RemoteError


class UpdateRefusedError(RemoteError):
    """The peer refused the update (or it was lost with the connection); ``rule`` names why."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


class TowerBehind(LocalError):
    """Our watchtowers have not acked the channel's states closely enough to sign a new one.

    With watchtowers configured, a new version is signed only while the newest fully signed
    state is at most ``NodeSettings.max_tower_lag`` versions ahead of what a tower acked: a lost
    store must never cost more than that. Bring a tower back (or raise the bound) and retry.
    """

    rule = "TowerBehind"
