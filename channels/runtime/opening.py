"""Opening a channel over links that break: the opener's ``OpenProposal`` and the responder's
``OpenAccept`` each travel once, and a connection that breaks (or is replaced by a new one) in the
moment after the send loses the message with it.

Without help the opener then waits in OPENING until its ``open_timeout``: the resynchronisation
that repairs a lost update on every new link starts only once version 0 is fully signed, and the
responder that never saw the proposal has nothing to resend. So the opener re-sends its proposal
on every new link while an ``open_channel`` call waits for the answer (:class:`LiveOpens`).

Only a live call does: a channel restored in OPENING after a restart has nobody left to fund it,
and proposing it again would lock the peer's deposit. A responder that already accepted ignores
the repeat (``Node._on_open_proposal``) and needs nothing more: its reestablish on the new link
carries version 0 with both signatures, which the opener adopts
(``channels/core/protocol/resync.py``), so a lost ``OpenAccept`` is repaired too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from channels.core.model import Address, ChannelId
from channels.core.protocol import Phase
from channels.core.protocol.events import Action, Send
from channels.core.terms import TermsRefused
from channels.runtime.channel_runtime import ChannelRuntime

log = logging.getLogger("channels.runtime.opening")


class LiveOpens:
    """The proposals of the ``open_channel`` calls still waiting for the peer's answer."""

    def __init__(self) -> None:
        self._waiting: dict[ChannelId, tuple[ChannelRuntime, list[Action]]] = {}

    @contextmanager
    def waiting(self, runtime: ChannelRuntime, actions: list[Action]) -> Iterator[None]:
        """While the caller waits: ``actions`` (those of ``ChannelMachine.initiate``) hold the
        proposal to send again."""
        sends: list[Action] = [a for a in actions if isinstance(a, Send)]
        self._waiting[runtime.channel_id] = (runtime, sends)
        try:
            yield
        finally:
            self._waiting.pop(runtime.channel_id, None)

    async def link_up(self, peer: Address) -> None:
        """A new link to ``peer``: send the proposals still unanswered again."""
        for runtime, sends in list(self._waiting.values()):
            if runtime.peer_address == peer and runtime.machine.phase is Phase.OPENING:
                log.info("0x%s: proposing the channel again on the new link", _short(runtime))
                await runtime.enqueue(list(sends))


async def wait_accepted(
    runtime: ChannelRuntime, refused: Mapping[ChannelId, TermsRefused]
) -> TermsRefused | None:
    """consent: until the peer signed version 0, or refused the channel (rule and reason)."""
    while runtime.machine.phase is Phase.OPENING:
        found = refused.get(runtime.channel_id)
        if found is not None:
            return found
        await runtime.wait_changed()
    return None


def _short(runtime: ChannelRuntime) -> str:
    return runtime.channel_id.hex()[:12]
