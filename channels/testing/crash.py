"""Crash points for the kill -9 harness (docs/THREATS.md section 5.2).

A node started with ``CHANNELS_CRASH_AT=<point>:<phase>:<nth>`` kills itself with SIGKILL the
``nth`` time (1-based) it reaches ``point`` in ``phase``. The points (:data:`POINTS`, the write
rules of THREATS.md section 5.1 they test):

* ``channel`` (W1): a new channel is stored; the responder's ``post_send`` is its OpenAccept on
  the wire (:mod:`channels.runtime.node`);
* ``deposit`` (W3): the deposit intent is written, then the deposit sent
  (:mod:`channels.runtime.channel_runtime`);
* ``signature`` (W5) and ``state`` (W6): an executor batch that stores our signature on a version,
  or a fully signed state (:mod:`channels.runtime.executor`; ``post_send`` in
  :mod:`channels.runtime.links`);
* ``chain_tx`` (W7): a dispute transaction's intent (:mod:`channels.defence.txdriver`).

Phases are ``pre_write``, ``post_write_pre_send`` and ``post_send``. An unknown point or phase is
refused, in the variable and (when armed) in the code. Without the variable every call is one
comparison and nothing else.
"""

from __future__ import annotations

import os
import signal

ENV = "CHANNELS_CRASH_AT"
PHASES = ("pre_write", "post_write_pre_send", "post_send")
#: Every point the code reaches (see above); ``tests/crash/test_crash_points.py`` keeps this
#: list and the code's calls equal.
POINTS = ("channel", "deposit", "signature", "state", "chain_tx")


def _parse(spec: str | None) -> tuple[str, str, int] | None:
    if not spec:
        return None
    point, phase, nth = spec.split(":")
    if point not in POINTS:
        raise ValueError(f"{ENV}: point must be one of {POINTS}, not {point!r}")
    if phase not in PHASES:
        raise ValueError(f"{ENV}: phase must be one of {PHASES}")
    return point, phase, int(nth)


_target = _parse(os.environ.get(ENV))
_seen = 0


def crash_point(point: str, phase: str) -> None:
    """Die here (SIGKILL, no cleanup at all) if the harness asked for this point."""
    global _seen
    if _target is None:
        return
    if point not in POINTS or phase not in PHASES:
        raise ValueError(f"crash point {point}:{phase} is not one of {POINTS} x {PHASES}")
    if _target[0] != point or _target[1] != phase:
        return
    _seen += 1
    if _seen >= _target[2]:
        os.kill(os.getpid(), signal.SIGKILL)
