"""Our latest fully signed state onto the chain on the caller's request: a force-close
(``register``) and a ``checkpoint``, both through the watcher's transaction driver (recorded as an
intent, rebroadcast and fee-bumped until mined). :class:`~channels.runtime.node.Node` exposes them
as ``dispute`` and ``checkpoint``."""

from __future__ import annotations

from collections.abc import Callable

from adjudicator.client import AdjudicatorClient
from channels.core.errors import IllegalCall
from channels.core.node_events import Event
from channels.defence.watcher import Watcher
from channels.runtime.channel_runtime import ChannelRuntime
from channels.runtime.currency import check_current_for_dispute
from channels.store import IntentStatus


async def register_latest(
    runtime: ChannelRuntime, watcher: Watcher, emit: Callable[[Event], None], *, force: bool
) -> None:
    """Register the channel's latest fully signed state; returns once it is mined."""
    signed = runtime.machine.latest.signed
    if not signed.fully_signed:
        raise IllegalCall("no fully signed state to register yet")
    check_current_for_dispute(runtime.machine, force=force, emit=emit)
    tx = await watcher.submit_register("register", runtime, signed)
    await tx.done.wait()
    if tx.outcome is IntentStatus.FAILED:  # cancelled means already registered: fine
        raise IllegalCall(f"the registration did not go through: {tx.detail}")
    await watcher.refresh(runtime, [])


async def checkpoint_latest(
    runtime: ChannelRuntime,
    watcher: Watcher,
    chain: AdjudicatorClient,
    emit: Callable[[Event], None],
) -> None:
    """Checkpoint the channel's latest fully signed state; returns once it is mined."""
    signed = runtime.machine.latest.signed
    check_current_for_dispute(runtime.machine, force=False, emit=emit)
    view = await chain.channel(runtime.channel_id)
    if view.version >= signed.state.version:
        raise IllegalCall(
            f"the chain already records v{view.version}; checkpoint needs a newer state "
            f"than that and ours is v{signed.state.version}"
        )
    tx = await watcher.submit_checkpoint(runtime, signed, deadline=view.deadline or None)
    await tx.done.wait()
    if tx.outcome is IntentStatus.FAILED:
        raise IllegalCall(f"the checkpoint did not go through: {tx.detail}")
    await watcher.refresh(runtime, [])
