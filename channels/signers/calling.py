"""Calling a signer from trio without blocking the loop.

A signer that declares ``blocking = True`` (a remote signer, a keystore that prompts) is called in
a worker thread; a local key is called inline (a thread hop would cost more than the signature).
Cancellation waits for the call to return: every blocking signer bounds its own calls with a
timeout, so that wait is bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio

from channels.core.signing import Signer, SignRequest, is_blocking, sign

T = TypeVar("T")

__all__ = ["call_signer", "on_trio_thread", "sign_async"]


async def call_signer(signer: object, fn: Callable[[], T]) -> T:
    """Run ``fn`` (which calls ``signer``) inline, or in a worker thread if ``signer`` blocks."""
    if is_blocking(signer):
        return await trio.to_thread.run_sync(fn)
    return fn()


def on_trio_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` on the trio loop's thread. A machine step of a blocking signer runs in a worker
    thread; the callbacks it makes into the node (its risk and quote policy) read trio state,
    so they hop back to the loop, which is idle meanwhile (the step's task awaits the thread)."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:  # not on the loop's thread: a worker thread of trio.to_thread
        return trio.from_thread.run_sync(fn)
    return fn()


async def sign_async(signer: Signer, request: SignRequest) -> bytes:
    """:func:`channels.core.signing.sign` without blocking the trio loop."""
    return await call_signer(signer, lambda: sign(signer, request))
