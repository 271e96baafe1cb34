"""Whether a node knows that its latest state of a channel is the newest one signed.

A store read from disk may be an old copy: a backup restored after a disk loss is just as
"cleanly shut down" as the store it replaced, so nothing on disk proves it is current. Until one
of the sources that can tell has spoken (the peer's reestablish, a watchtower holding no newer
state, or a registration seen on chain), the node registers nothing on its own initiative: its
watcher alarms and waits, and :meth:`Node.dispute` refuses unless forced. A registration by the
peer still gets an answer (refuting an older registration can only help). The flag itself is the
machine's ``synced``.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.core.errors import IllegalCall
from channels.core.node_events import Alarm, Event
from channels.core.protocol import ChannelMachine


class NotKnownCurrent(IllegalCall):
    """The node has not established that its latest state is the newest one signed."""


RISK = (
    "this node has not established that v{version} is the newest state of the channel (the peer "
    "has not been heard since the start and no tower has confirmed it). If this store is an old "
    "copy, registering v{version} publishes a stale state: the peer refutes it with the newer one "
    "and may keep what the newer state gives it. Reconnect to the peer (or a tower) first, or "
    "force it (CLI: --force) if you accept that risk"
)


def check_current_for_dispute(
    machine: ChannelMachine, *, force: bool, emit: Callable[[Event], None]
) -> None:
    """Refuse a dispute the node cannot stand behind; a forced one is recorded as an alarm."""
    if machine.synced:
        return
    version = machine.latest.signed.state.version
    if not force:
        raise NotKnownCurrent(RISK.format(version=version))
    emit(
        Alarm(
            machine.channel_id,
            "ForcedDispute",
            f"registering v{version} on the operator's --force without knowing it is current",
        )
    )
