"""How long a challenge period must be to defend a channel on a given chain."""

from __future__ import annotations

import math

#: Alarm when the latest block is older than this many seconds of wall time (docs/THREATS.md
#: section 7).
#: A NodeSettings field ``max_head_age: float`` overrides it.
DEFAULT_MAX_HEAD_AGE = 180.0

#: The shortest challenge period we consider safe on any chain (seconds): enough for an operator
#: to notice an alarm and act by hand if the automatic refute does not land.
SAFE_MIN_CHALLENGE_PERIOD = 3600

#: Worst-case delay before a transaction we send is certainly included (seconds). 0 on L1 (where
#: the minimum above covers congestion); on a rollup, its forced-inclusion window (e.g. about 24 h
#: for Arbitrum's delayed inbox, 12 h for the OP stack's sequencer window). A NodeSettings field
#: ``inclusion_window: int`` overrides it.
DEFAULT_INCLUSION_WINDOW = 0

#: Poll intervals the inclusion-risk bound allows for (a refute needs a few polls to be noticed,
#: sent, and re-priced).
POLLS_OF_SLACK = 10


def check_challenge_period(
    period: int,
    *,
    inclusion_window: int,
    poll_interval: float = 0.5,
    minimum: int = SAFE_MIN_CHALLENGE_PERIOD,
) -> str | None:
    """Why ``period`` is too short to defend a channel, or None if it is long enough.

    The bound is ``max(minimum, inclusion_window + POLLS_OF_SLACK * poll_interval)``: the
    challenge period must outlast the chain's worst-case inclusion delay (on a rollup its
    forced-inclusion window ``W``, during which a censoring sequencer can keep our refute out)
    plus the watcher's reaction time, and never be below the documented minimum.
    """
    reaction = math.ceil(POLLS_OF_SLACK * poll_interval)
    bound = max(minimum, inclusion_window + reaction)
    if period >= bound:
        return None
    return (
        f"challenge period {period}s < {bound}s (inclusion window {inclusion_window}s + "
        f"{POLLS_OF_SLACK} polls of {poll_interval}s, minimum {minimum}s): a refute may not "
        "be included in time"
    )
