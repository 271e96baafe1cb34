"""Crash points for the kill -9 harness (docs/THREATS.md section 5.2).

A node started with ``CHANNELS_CRASH_AT=<point>:<phase>:<nth>`` kills itself with SIGKILL the
``nth`` time (1-based) it reaches ``point`` in ``phase``. The points wired today are the
executor's (:mod:`channels.runtime.executor`): ``signature`` (a batch that stores our signature
on a version, W5) and ``state`` (a batch that stores a fully signed state, W6); ``channel`` (a
new channel, W1; the responder's ``post_send`` is its OpenAccept on the wire), ``deposit`` (W3:
the deposit intent is written, then the deposit sent, channels/runtime/channel_runtime.py) and
``chain_tx`` (W7).
Phases are ``pre_write``, ``post_write_pre_send`` and ``post_send``. Without the variable
every call is a dictionary lookup and nothing else.
"""

from __future__ import annotations

import os
import signal

ENV = "CHANNELS_CRASH_AT"
PHASES = ("pre_write", "post_write_pre_send", "post_send")
#: The points some code reaches (see above).
POINTS = ("signature", "state")


def _parse(spec: str | None) -> tuple[str, str, int] | None:
    if not spec:
        return None
    point, phase, nth = spec.split(":")
    if phase not in PHASES:
        raise ValueError(f"{ENV}: phase must be one of {PHASES}")
    return point, phase, int(nth)


_target = _parse(os.environ.get(ENV))
_seen = 0


def crash_point(point: str, phase: str) -> None:
    """Die here (SIGKILL, no cleanup at all) if the harness asked for this point."""
    global _seen
    if _target is None or _target[0] != point or _target[1] != phase:
        return
    _seen += 1
    if _seen >= _target[2]:
        os.kill(os.getpid(), signal.SIGKILL)
