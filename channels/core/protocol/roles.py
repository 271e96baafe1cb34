"""What each participant does, as data: participant 0 leads, participant 1 follows.

The leader signs every new version first and answers the follower's requests with proposals; the
follower asks, and countersigns what the leader proposed. Which peer messages each role takes is
the only difference the machine checks; a message for the other role is the peer's error.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channels.core.messages import Accept, Message, Proposal, Reject, UpdateRequest


class PeerStep(enum.Enum):
    """The peer messages whose meaning depends on our role."""

    PROPOSAL = "a proposal"
    ACCEPT = "an accept"
    REQUEST = "an update request"
    PROPOSAL_REFUSED = "a refusal of a proposal"
    REQUEST_REFUSED = "a refusal of a request"


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    index: int
    #: True: signs each new version first (the leader); False: asks the leader for it.
    proposes: bool
    #: The role-dependent peer messages this role takes.
    receives: frozenset[PeerStep]


LEADER = Role(
    "leader",
    0,
    proposes=True,
    receives=frozenset({PeerStep.ACCEPT, PeerStep.REQUEST, PeerStep.PROPOSAL_REFUSED}),
)
FOLLOWER = Role(
    "follower",
    1,
    proposes=False,
    receives=frozenset({PeerStep.PROPOSAL, PeerStep.REQUEST_REFUSED}),
)
ROLES = (LEADER, FOLLOWER)


def peer_step(msg: Message) -> PeerStep | None:
    """The role-dependent kind of ``msg`` (None for messages either role takes)."""
    if isinstance(msg, Proposal):
        return PeerStep.PROPOSAL
    if isinstance(msg, Accept):
        return PeerStep.ACCEPT
    if isinstance(msg, UpdateRequest):
        return PeerStep.REQUEST
    if isinstance(msg, Reject):
        return PeerStep.REQUEST_REFUSED if msg.version is None else PeerStep.PROPOSAL_REFUSED
    return None


__all__ = ["FOLLOWER", "LEADER", "ROLES", "PeerStep", "Role", "peer_step"]
