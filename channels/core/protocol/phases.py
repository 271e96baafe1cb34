"""The channel's phases and the one table of how they change.

Every phase check and every phase change of the machine goes through :data:`TABLE`: a step
(what happened) is allowed in a phase if the table has an entry for the pair, and the entry is the
phase that follows. :func:`expect` raises the typed error when a step is not allowed: an
:class:`~channels.core.errors.IllegalCall` when our caller asked for it, an
:class:`~channels.core.errors.UnexpectedMessage` when the peer's message did.
"""

from __future__ import annotations

import enum

from channels.core.errors import IllegalCall, UnexpectedMessage


class Phase(enum.Enum):
    OPENING = "opening"  # version 0 signed by us, waiting for the peer's signature
    FUNDING = "funding"  # version 0 fully signed; deposits not yet credited
    OPEN = "open"  # trading
    FINAL = "final"  # a final state is fully signed: close on chain
    DISPUTED = "disputed"  # a state is registered on chain; no updates
    CLOSED = "closed"  # concluded on chain


class Step(enum.Enum):
    """What happened to the channel, as far as its phase is concerned."""

    TRADE = "a new state"  # a request, a proposal or the peer's request
    OPEN_ACCEPTED = "the peer's signature on version 0"
    FUNDED = "a state crediting every agreed deposit"
    FINALISED = "a final state"
    PEER_LOST = "the connection to the peer is lost"
    RESYNC = "a resynchronisation with the peer"
    DISPUTE = "a dispute on chain"
    RESUME_FUNDING = "a cleared dispute (deposits not all credited)"
    RESUME_OPEN = "a cleared dispute"
    RESUME_FINAL = "a cleared dispute (the latest state is final)"
    CONCLUDED = "the channel concluded on chain"


_LIVE = (Phase.OPENING, Phase.FUNDING, Phase.OPEN, Phase.FINAL)

#: (phase, step) -> the next phase. A pair that is not here is not allowed in that phase.
TABLE: dict[tuple[Phase, Step], Phase] = {
    (Phase.FUNDING, Step.TRADE): Phase.FUNDING,
    (Phase.OPEN, Step.TRADE): Phase.OPEN,
    (Phase.OPENING, Step.OPEN_ACCEPTED): Phase.FUNDING,
    (Phase.FUNDING, Step.FUNDED): Phase.OPEN,
    **{(p, Step.FINALISED): Phase.FINAL for p in (*_LIVE, Phase.DISPUTED)},
    **{(p, Step.PEER_LOST): p for p in (Phase.FUNDING, Phase.OPEN, Phase.FINAL, Phase.DISPUTED)},
    **{(p, Step.RESYNC): p for p in Phase if p is not Phase.OPENING},
    **{(p, Step.DISPUTE): Phase.DISPUTED for p in _LIVE},
    (Phase.DISPUTED, Step.RESUME_FUNDING): Phase.FUNDING,
    (Phase.DISPUTED, Step.RESUME_OPEN): Phase.OPEN,
    (Phase.DISPUTED, Step.RESUME_FINAL): Phase.FINAL,
    **{(p, Step.CONCLUDED): Phase.CLOSED for p in Phase if p is not Phase.CLOSED},
}


def next_phase(phase: Phase, step: Step) -> Phase | None:
    """The phase after ``step``, or None when ``step`` does not apply in ``phase``."""
    return TABLE.get((phase, step))


def allows(phase: Phase, step: Step) -> bool:
    return (phase, step) in TABLE


def expect(phase: Phase, step: Step, *, ours: bool, what: str | None = None) -> Phase:
    """The phase after ``step``; raises if ``step`` is not allowed in ``phase``.

    ``ours``: our caller asked for the step (IllegalCall), else the peer did (UnexpectedMessage).
    ``what`` names the input in the error message (default: the step).
    """
    after = TABLE.get((phase, step))
    if after is None:
        text = f"{what or step.value} while the channel is {phase.value}"
        raise IllegalCall(text) if ours else UnexpectedMessage(text)
    return after


__all__ = ["TABLE", "Phase", "Step", "allows", "expect", "next_phase"]
