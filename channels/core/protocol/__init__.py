"""The channel protocol as a pure state machine (sans-IO): events in, actions out.

* :mod:`.events`: the inputs the shell feeds in and the actions it must perform, in order;
* :mod:`.phases`: the phases and the one table of allowed steps (:func:`~.phases.expect`);
* :mod:`.roles`: what the leader and the follower each take from the peer, as data;
* :mod:`.base`: the machine's data and shared helpers; :mod:`.leader`, :mod:`.follower`,
  :mod:`.resync`, :mod:`.chain`: the steps, by who takes them; :mod:`.machine`: construction and
  the one entry point :meth:`~.machine.ChannelMachine.handle`.
"""

from channels.core.protocol.base import MAX_VERSION_SKIP, Config
from channels.core.protocol.events import (
    Action,
    ChainStateSeen,
    ConcludedObserved,
    DataLossRecovered,
    DepositsObserved,
    Disconnected,
    DisputeCleared,
    DisputeObserved,
    Input,
    PersistSignature,
    PersistState,
    PhaseChanged,
    Policy,
    Received,
    Reconnected,
    RequestUpdate,
    Send,
    UpdateApplied,
    UpdateRefused,
)
from channels.core.protocol.machine import ChannelMachine
from channels.core.protocol.phases import Phase, Step, expect

__all__ = [
    "MAX_VERSION_SKIP",
    "Action",
    "ChainStateSeen",
    "ChannelMachine",
    "ConcludedObserved",
    "Config",
    "DataLossRecovered",
    "DepositsObserved",
    "Disconnected",
    "DisputeCleared",
    "DisputeObserved",
    "Input",
    "PersistSignature",
    "PersistState",
    "Phase",
    "PhaseChanged",
    "Policy",
    "Received",
    "Reconnected",
    "RequestUpdate",
    "Send",
    "Step",
    "UpdateApplied",
    "UpdateRefused",
    "expect",
]
