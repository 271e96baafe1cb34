"""Whether the node can see the chain, said loudly once and logged sparingly.

An endpoint that stops answering is as dangerous as one that serves an old head: the watcher is
blind either way. :class:`ChainHealth` tracks the watcher's polls: after ``max_age`` seconds
without a successful poll it raises the same ``StaleHead`` alarm an old head raises (once, until
a poll succeeds again), and it logs failures at most once per ``log_every`` seconds with the
number left out, instead of one warning per poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("channels.defence.watcher")


@dataclass
class ChainHealth:
    max_age: float
    clock: Callable[[], float]
    log_every: float = 60.0
    last_ok: float = field(default=0.0)
    failures: int = 0
    """Failed polls since the last successful one."""
    failures_total: int = 0
    alarmed: bool = False
    _last_log: float | None = None
    _unlogged: int = 0

    def __post_init__(self) -> None:
        self.last_ok = self.clock()

    @property
    def blind_for(self) -> float:
        """Seconds since the last successful poll (0 while polls succeed)."""
        return 0.0 if not self.failures else self.clock() - self.last_ok

    def succeeded(self) -> None:
        if self.failures:
            log.warning(
                "chain endpoint answers again after %d failed poll(s) in %.0fs",
                self.failures,
                self.clock() - self.last_ok,
            )
        self.last_ok = self.clock()
        self.failures = 0
        self.alarmed = False
        self._last_log = None
        self._unlogged = 0

    def failed(self, exc: BaseException) -> str | None:
        """Record a failed poll; returns the StaleHead alarm's text when one is due."""
        self.failures += 1
        self.failures_total += 1
        now = self.clock()
        if self._last_log is None or now - self._last_log >= self.log_every:
            more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
            log.warning("watcher poll failed: %s: %s%s", type(exc).__name__, exc, more)
            self._last_log = now
            self._unlogged = 0
        else:
            self._unlogged += 1
        blind = now - self.last_ok
        if blind > self.max_age and not self.alarmed:
            self.alarmed = True
            return (
                f"no successful chain poll for {blind:.0f}s (> {self.max_age:.0f}s; "
                f"{self.failures} failed, last: {type(exc).__name__}): the node cannot see the "
                "chain, so it can neither see nor answer a dispute"
            )
        return None
