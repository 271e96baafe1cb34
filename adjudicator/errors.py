"""The adjudicator's reverts as Python exceptions.

Every custom error of the contract's ABI (``adjudicator/build/Adjudicator.json``, declared in
``IAdjudicator.sol`` plus the few OpenZeppelin ones compiled in) has a subclass of
:class:`ContractError` with the **same name**, so callers match the rule they hit::

    try:
        await client.register(params, signed)
    except NotNewerVersion as exc:
        print(exc.args_dict["recorded"], exc.args_dict["given"])

:func:`decode_revert` maps revert data to an instance: a known custom error gets its class (with its
arguments decoded into ``args_dict``: addresses as 20 raw bytes, ``bytes32`` as bytes, ints as int),
``Error(string)`` gives :class:`RevertReason`, ``Panic(uint256)`` gives :class:`PanicError`, and
anything else (empty data, an unknown selector, malformed arguments) gives :class:`UnknownRevert`.

The classes are written out (not generated from the artifact) so that type checkers and readers see
them; ``tests/contract/test_errors.py`` checks they match the ABI's error list one to one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError

from channels.core.errors import ChainError, ChannelError, LocalError
from channels.core.hashing import keccak256

from .rpc_errors import ExecutionReverted
from .transactions import TransactionReverted


class ContractError(ChannelError):
    """A call or transaction to the adjudicator reverted (a grouping: every concrete revert is
    also either :class:`~channels.core.errors.LocalError`, our call was malformed, or a
    :class:`~channels.core.errors.ChainError`, the chain's state refuses it).

    ``args_dict``: the error's arguments by name; ``revert_data``: the raw revert payload;
    ``tx_hash``: the mined transaction that reverted, if any (None for a revert caught while
    simulating, before anything was sent).
    """

    fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    """The error's parameters as (name, ABI type), in declaration order."""

    def __init__(
        self,
        args_dict: Mapping[str, Any] | None = None,
        *,
        revert_data: bytes = b"",
        tx_hash: str | None = None,
        message: str | None = None,
    ) -> None:
        self.args_dict: dict[str, Any] = dict(args_dict or {})
        self.revert_data = revert_data
        self.tx_hash = tx_hash
        super().__init__(message if message is not None else self._describe())

    @classmethod
    def signature(cls) -> str:
        """Canonical signature, e.g. ``NotNewerVersion(uint64,uint64)``."""
        return f"{cls.__name__}({','.join(t for _, t in cls.fields)})"

    @classmethod
    def selector(cls) -> bytes:
        return keccak256(cls.signature().encode())[:4]

    def _describe(self) -> str:
        if not self.args_dict:
            return f"{type(self).__name__}()"
        parts = ", ".join(f"{k}={_show(v)}" for k, v in self.args_dict.items())
        return f"{type(self).__name__}({parts})"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


class CustomError(ContractError):
    """Base of the errors declared in the contract's ABI (one subclass per error)."""


class BadCall(CustomError, LocalError):
    """Our transaction's arguments are wrong: fix the call (the chain's state is not the cause)."""


class ChainRefused(CustomError, ChainError):
    """The contract's state (a dispute, the peer's moves, earlier calls) refuses the call."""


# ---- parameters and inputs -------------------------------------------------------------------
class InvalidParticipants(BadCall):
    """Zero or identical participant addresses."""


class InvalidChallengePeriod(BadCall):
    """Challenge period outside the contract's bounds (60 s to 30 days)."""


class WrongChainId(BadCall):
    """``params.chainId`` is not the chain's id."""


class WrongAdjudicator(BadCall):
    """``params.adjudicator`` is not this deployment (replay across deployments)."""


class WrongChannelId(BadCall):
    """The state's or withdrawal's channel id is not the id of ``params``."""


class InvalidParticipantIndex(BadCall):
    """A participant index other than 0 or 1."""


class ZeroAmount(BadCall):
    """A deposit or withdrawal of 0 (or an ERC-20 deposit whose measured credit is 0)."""


class AmountTooLarge(BadCall):
    """A channel's deposits (both participants together) above MAX_CHANNEL_DEPOSITS = 2**96 - 1."""


class UnexpectedEther(BadCall):
    """ERC-20 deposit sent with ETH."""


class ZeroAddress(BadCall):
    """A recipient or destination is the zero address."""


# ---- signatures ------------------------------------------------------------------------------
class InvalidSignature(ChainRefused):
    """Malformed signature: length != 65, v not 27/28, r or s zero, ecrecover gives 0."""


class HighS(ChainRefused):
    """s in the upper half of the curve order (the malleated twin)."""


class WrongSigner(ChainRefused):
    """The signature recovers to another address than the participant's."""

    fields = (("expected", "address"), ("recovered", "address"))


class WrongOracle(ChainRefused):
    """The attestation is not signed by the channel's oracle."""

    fields = (("recovered", "address"),)


# ---- states ----------------------------------------------------------------------------------
class ConservationViolated(ChainRefused):
    """balance0 + balance1 + locked != deposited - withdrawn."""


class NotFinal(BadCall):
    """``conclude`` with a state that is not final."""


class PositionsInFinalState(BadCall):
    """A final state with locked collateral or positions."""


class UnderfundedState(ChainRefused):
    """The state credits more deposits than exist on chain."""


class StateBeforeWithdrawal(ChainRefused):
    """The state is older than (or does not debit) an executed partial withdrawal."""


class NotNewerVersion(ChainRefused):
    """The state is older than the on-chain record."""

    fields = (("recorded", "uint64"), ("given", "uint64"))


class EquivocatingState(ChainRefused):
    """A different state with the registered version."""


class NotRegisteredState(ChainRefused):
    """``concludeAfterTimeout`` with a state that is not the registered one."""


# ---- lifecycle -------------------------------------------------------------------------------
class ChannelConcluded(ChainRefused):
    """The channel is already concluded."""


class ChannelNotConcluded(ChainRefused):
    """Settlement before the channel is concluded."""


class NotDisputed(ChainRefused):
    """``concludeAfterTimeout`` on a channel without a dispute."""


class ChallengeOngoing(ChainRefused):
    """Partial withdrawal while a dispute is open."""


class ChallengeExpired(ChainRefused):
    """register/checkpoint at or after the deadline."""


class ChallengeNotExpired(ChainRefused):
    """``concludeAfterTimeout`` before the deadline."""


# ---- partial withdrawals ---------------------------------------------------------------------
class WithdrawalNotNewer(ChainRefused):
    """The withdrawal's version is not above the last executed one (replay)."""

    fields = (("lastExecuted", "uint64"), ("given", "uint64"))


class InsufficientHoldings(ChainRefused):
    """Executed withdrawals would exceed the channel's deposits."""


# ---- settlement ------------------------------------------------------------------------------
class NotExpired(ChainRefused):
    """Settlement before the position's expiry."""


class WrongAttestation(ChainRefused):
    """The attestation's (underlying, expiry) is not the position's."""


class InvalidProof(ChainRefused):
    """The Merkle proof does not lead to the current positions root."""


class AlreadySettled(ChainRefused):
    """The position's slot is already empty in the current root (settled or released)."""


class SettlementGraceNotOver(ChainRefused):
    """``releaseUnsettled`` before expiry + SETTLEMENT_GRACE."""


class UnknownPositionKind(BadCall):
    """A position kind other than call (0) or put (1)."""


class InvalidWriter(BadCall):
    """A position writer index other than 0 or 1."""


# ---- payouts ---------------------------------------------------------------------------------
class InsufficientPayoutGas(BadCall):
    """Not enough gas left to give a push payout its full allowance (raise the gas limit)."""


class NothingToWithdraw(BadCall):
    """``withdraw`` with no credit."""


class TransferFailed(ChainRefused):
    """A pull transfer (deposit or ``withdraw``) failed."""


# ---- OpenZeppelin errors compiled into the contract ------------------------------------------
class ReentrancyGuardReentrantCall(ChainRefused):
    """A re-entrant call into a guarded function."""


class InvalidShortString(BadCall):
    """OpenZeppelin ShortStrings (EIP-712 domain name); unreachable after deployment."""


class StringTooLong(BadCall):
    """OpenZeppelin ShortStrings (EIP-712 domain name); unreachable after deployment."""

    fields = (("str", "string"),)


# ---- built-in reverts ------------------------------------------------------------------------
class RevertReason(ContractError, ChainError):
    """``Error(string)`` (a ``require`` with a message); ``args_dict["message"]``."""

    fields = (("message", "string"),)

    @classmethod
    def signature(cls) -> str:
        return "Error(string)"


class PanicError(ContractError, ChainError):
    """``Panic(uint256)`` (assert, arithmetic overflow, ...); ``args_dict["code"]``."""

    fields = (("code", "uint256"),)

    @classmethod
    def signature(cls) -> str:
        return "Panic(uint256)"


class UnknownRevert(ContractError, ChainError):
    """Revert data we cannot decode: empty (e.g. out of gas), unknown selector, or malformed."""


CUSTOM_ERRORS: dict[str, type[CustomError]] = {
    cls.__name__: cls
    for cls in (
        InvalidParticipants, InvalidChallengePeriod, WrongChainId, WrongAdjudicator,
        WrongChannelId, InvalidParticipantIndex, ZeroAmount, AmountTooLarge,
        UnexpectedEther, ZeroAddress, InvalidSignature, HighS, WrongSigner, WrongOracle,
        ConservationViolated, NotFinal, PositionsInFinalState, UnderfundedState,
        StateBeforeWithdrawal, NotNewerVersion, EquivocatingState, NotRegisteredState,
        ChannelConcluded, ChannelNotConcluded, NotDisputed, ChallengeOngoing, ChallengeExpired,
        ChallengeNotExpired, WithdrawalNotNewer, InsufficientHoldings, NotExpired,
        WrongAttestation, InvalidProof, AlreadySettled, SettlementGraceNotOver,
        UnknownPositionKind, InvalidWriter, InsufficientPayoutGas, NothingToWithdraw,
        TransferFailed, ReentrancyGuardReentrantCall, InvalidShortString, StringTooLong,
    )
}
"""Every custom error of the adjudicator's ABI, by name."""

_DECODABLE: tuple[type[ContractError], ...] = (*CUSTOM_ERRORS.values(), RevertReason, PanicError)
_BY_SELECTOR: dict[bytes, type[ContractError]] = {cls.selector(): cls for cls in _DECODABLE}


def _pythonic(abi_type: str, value: Any) -> Any:
    if abi_type == "address" and isinstance(value, str):
        return bytes.fromhex(value[2:])
    return value


def decode_revert(data: bytes, *, tx_hash: str | None = None) -> ContractError:
    """The exception for a revert payload (never raises; unknown data gives UnknownRevert)."""
    data = bytes(data)
    cls = _BY_SELECTOR.get(data[:4]) if len(data) >= 4 else None
    if cls is None:
        what = "empty revert data" if not data else f"undecodable revert data 0x{data.hex()}"
        return UnknownRevert(revert_data=data, tx_hash=tx_hash, message=what)
    types = [t for _, t in cls.fields]
    try:
        values = abi_decode(types, data[4:]) if types else ()
    except (DecodingError, ValueError, TypeError, OverflowError):
        return UnknownRevert(
            revert_data=data, tx_hash=tx_hash,
            message=f"malformed {cls.signature()} revert data 0x{data.hex()}",
        )
    args = {
        name: _pythonic(typ, v) for (name, typ), v in zip(cls.fields, values, strict=True)
    }
    return cls(args, revert_data=data, tx_hash=tx_hash)


def from_chain_error(exc: ExecutionReverted | TransactionReverted) -> ContractError:
    """The :class:`ContractError` for a revert reported by the RPC layer or the sender."""
    if isinstance(exc, TransactionReverted):
        if exc.revert_data is None:
            return UnknownRevert(
                tx_hash=exc.tx_hash,
                message=f"transaction {exc.tx_hash} reverted (replay did not reproduce it)",
            )
        return decode_revert(exc.revert_data, tx_hash=exc.tx_hash)
    return decode_revert(exc.revert_data)
