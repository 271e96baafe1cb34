"""The local control protocol: one-shot ``channels`` commands drive a running ``channels node``.

Transport: a Unix domain socket (mode 0600, so only the desk's own user can reach it) whose path is
in the node's config (by default next to the store: ``<store>.sock``). The node serves it from a
trio task in its own nursery (:func:`serve_control`).

Framing: JSON lines, UTF-8, at most :data:`MAX_LINE` bytes each. A client sends one request per
line and reads one response line per request, in order, on the same connection::

    {"cmd": "pay", "channel": "0x1f2e...", "amount": 1000}
    {"ok": true, "result": {"version": 7, "our_balance": 976000, "their_balance": 1024000, ...}}
    {"ok": false, "error": "UpdateRefusedError: InsufficientFunds: ..."}

Values: amounts, prices, quantities and times are JSON integers (Python's ``json`` keeps them
exact, however large); bytes (addresses, channel ids, hashes) are ``0x``-prefixed hex strings.
A ``channel`` may be given as any unique prefix of its id, as ``channels status`` shows it.

Balances: every reply that shows a channel's balances shows them in this node's view, ours first
and labelled, ``our_balance`` then ``their_balance`` (:func:`views.balances_json`), never as a
list by participant index. The trades (``pay``, ``unwind``, ``settle``, ``top_up``, ``withdraw``)
answer with the new state: ``version, our_balance, their_balance, locked, position_count,
is_final``; the trades that open a position (``write_option``, ``buy_option``, ``fill``) answer
with the same fields and ``position`` (``fill``: and ``quote``); a ``status`` row has the same
``version, our_balance, their_balance, locked``.

Errors are ``"<ErrorClass>: message"``, the class being the one the node raised (a rule violation
keeps the rule's name), so a script can match on the part before the first colon. Fields that a
command does not know are refused (``BadRequest``), so a typo never becomes a silent default.

Commands (fields in brackets are optional):

============== ==================================================================================
``ping``       the node's address, chain id, adjudicator, listen port and chain time
``status``     a list of channels: id, peer, phase, version, balances, positions, finality,
               dispute deadline, next expiry, ``known_current`` (false after a start until the
               peer, a tower or the chain showed the version is the newest) and ``backed_up``
               (the newest version a watchtower acked; null without one)
``chain_view`` ``channel``: the adjudicator's record of a channel and the node's chain time
``open``       ``peer_host, peer_port, peer_address, asset, deposit, peer_deposit, oracle``
               ``[challenge_period, asset_decimals]``: returns the channel's status row
``pay``        ``channel, amount``: the new state
``write_option`` / ``buy_option``
               ``channel, kind, underlying, strike, quantity, premium, collateral`` and
               ``expiry`` (unix time) or ``expiry_in`` (seconds from the node's chain time):
               the new state and the position
``unwind``     ``channel, position, holder_share``
``settle``     ``channel, position, price, signature``: settle an expired position off chain with
               the oracle's signature over (underlying, expiry, price)
``top_up``     ``channel, amount``
``close``      ``channel``: agree a final state and conclude it on chain
``dispute``    ``channel [wait] [force]``: force close: register our latest state, then (unless
               ``wait`` is false) wait until the watcher concluded it after the challenge period;
               refused while the node is not known current unless ``force`` is true
``checkpoint`` ``channel``: record our newest state on chain (clears an older dispute)
``withdraw``   ``channel, amount [recipient]``: partial withdrawal while the channel stays open;
               or ``asset [recipient]`` without ``channel``: pull what failed payouts credited us
``export``     ``[channel]``: the audit trail of signed states (the store's ``export_audit``)
``asset_info`` ``asset``: the asset's decimals, read from the chain
``getinfo``    the node's version, identity, metrics URL, channel counts by phase and health
               (chain reachable, head age, peers connected, open alarms); ``towers``: what the
               start recovered from the watchtowers (``rebuilt``: a wiped store's channels with
               their versions and open positions, ``skipped`` with why; ``restored``: channels an
               old copy held at an older version, as ``[ours, the tower's]``)
``peers``      every peer with a channel: connected or not, and its channels
``alarms``     ``[all]``: the open alarms, each with its id (``all``: acknowledged ones too)
``ack``        ``id``: acknowledge an alarm; it stays acknowledged across restarts
``request_quote``
               ``channel, kind, underlying, strike, expiry | expiry_in, side, quantity``
               ``[timeout]``: ask the peer for a firm quote (``side`` is ours); returns it
``offer``      ``channel, kind, underlying, strike, expiry | expiry_in, side, price, collateral,``
               ``max_quantity [valid_for, replaces]``: an unsolicited firm quote (``side`` is the
               peer's); ``replaces`` (a live quote of ours, an id prefix) is retired as it is booked
``quotes``     ``[channel]``: the quotes in the book and the peer's requests waiting for us
``answer``     ``channel, request_id`` and ``price, collateral [max_quantity, valid_for]`` or
               ``decline`` (a reason): answer a waiting request
``fill``       ``channel, quote [quantity]``: fill the peer's quote (an id prefix) in one update;
               the new state, the position and the quote
``withdraw_quote``
               ``quote``: withdraw a live quote of ours (an id prefix): fills of it are refused
============== ==================================================================================
"""

from __future__ import annotations

from channels.control.client import ControlClient, call, connect_control
from channels.control.codec import (
    EXPORT_FORMAT,
    MAX_LINE,
    PROTOCOL,
    decode_request,
    decode_response,
    encode_error,
    encode_request,
    encode_result,
    to_json,
)
from channels.control.codec import MAX_SOCKET_PATH as MAX_SOCKET_PATH
from channels.control.codec import LineStream as LineStream
from channels.control.codec import hex_bytes as hex_bytes
from channels.control.errors import (
    BadRequest,
    ControlError,
    ControlProtocolError,
    ControlSocketInUse,
    NodeNotRunning,
    error_text,
)
from channels.control.errors import one_line as one_line
from channels.control.fields import Fields as Fields
from channels.control.fields import Handler as Handler
from channels.control.server import ControlServer, serve_control
from channels.control.server import check_socket_path as check_socket_path
from channels.control.views import balances_json as balances_json
from channels.control.views import position_json as position_json
from channels.control.views import state_json as state_json
from channels.control.views import trade_json as trade_json

__all__ = [
    "EXPORT_FORMAT",
    "MAX_LINE",
    "PROTOCOL",
    "BadRequest",
    "ControlClient",
    "ControlError",
    "ControlProtocolError",
    "ControlServer",
    "ControlSocketInUse",
    "NodeNotRunning",
    "call",
    "connect_control",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_result",
    "error_text",
    "serve_control",
    "to_json",
]
