"""Happy paths of every entry point, events, and the dispute properties (THREATS C1, C6, C7,
C14)."""

import json

from adjudicator import errors, tokens
from adjudicator.client import ChannelStatus, connect_adjudicator
from adjudicator.transactions import TransactionSender
from channels.core import eip712, options
from channels.core.model import Amount, Timestamp, Version
from channels.core.options import Context, CreditDeposit, Pay, Trade
from channels.core.positions import PositionBook

from .kit import TOKEN_DECIMALS, Env, Kit, key_bytes

ETH = 10**18


async def test_deploy_and_views(kit: Kit) -> None:
    assert await kit.rpc.get_code("0x" + kit.env.adjudicator.hex()) != b""
    ch = kit.channel()
    assert await kit.a.channel_id_of(ch.params) == ch.id
    assert await kit.a.domain_separator() == ch.domain.separator
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.OPEN and view.version == 0 and view.deposits == (0, 0)
    assert await kit.a.asset_decimals(bytes(20)) == 18
    assert await kit.a.asset_decimals(kit.env.token) == TOKEN_DECIMALS
    assert await kit.a.head() >= 1
    assert await kit.a.block_timestamp() > 1_600_000_000


async def test_connect_adjudicator(env: Env, kit: Kit) -> None:
    async with connect_adjudicator(env.url, env.adjudicator, key_bytes(env.keys[1])) as client:
        assert client.address == env.adjudicator and client.sender is not None
        assert client.account == kit.alice.address
        ch = kit.channel()
        await client.deposit(ch.params, 0, 5)
        assert (await client.channel(ch.id)).deposits0 == 5
    async with connect_adjudicator(env.url, env.adjudicator, None) as ro:
        assert ro.sender is None and (await ro.channel(ch.id)).deposits0 == 5


async def test_eth_deposits_and_cooperative_close(kit: Kit) -> None:
    ch = kit.channel()
    start = await kit.a.head()
    r0 = await kit.a.deposit(ch.params, 0, 3 * ETH)
    await kit.b.deposit(ch.params, 1, 1 * ETH)
    await kit.c.deposit(ch.params, 1, 1 * ETH)  # anyone may fund either side
    view = await kit.a.channel(ch.id)
    assert view.deposits == (3 * ETH, 2 * ETH)
    (ev,) = kit.a.decode_receipt_events(r0)
    assert ev.name == "Deposited" and ev.channel_id == ch.id
    assert ev.args == {"channelId": ch.id, "participant": 0, "amount": 3 * ETH}

    final = ch.signed(1, balances=(1 * ETH, 4 * ETH), deposited=(3 * ETH, 2 * ETH), final=True)
    before = (await kit.eth_balance(kit.alice.address), await kit.eth_balance(kit.bob.address))
    receipt = await kit.c.conclude(ch.params, final)  # a third party pays the gas
    after = (await kit.eth_balance(kit.alice.address), await kit.eth_balance(kit.bob.address))
    assert (after[0] - before[0], after[1] - before[1]) == (1 * ETH, 4 * ETH)
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.CONCLUDED and view.version == 1
    assert view.deposits == (0, 0) and view.locked_remaining == 0

    events = await kit.a.events(start + 1, await kit.a.head(), [ch.id])
    assert [e.name for e in events] == ["Deposited", "Deposited", "Deposited", "Concluded"]
    concluded = events[-1]
    assert concluded.args["payout0"] == 1 * ETH and concluded.args["payout1"] == 4 * ETH
    assert concluded.tx_hash == bytes.fromhex(receipt.transaction_hash[2:])
    assert concluded.block_number == receipt.block_number and not concluded.removed
    assert await kit.a.events(start + 1, await kit.a.head(), [bytes(32)]) == []
    assert len(await kit.a.events(start + 1, await kit.a.head())) == 4
    many = {i.to_bytes(32, "big") for i in range(150)} | {ch.id}  # filtered locally above 100
    assert await kit.a.events(start + 1, await kit.a.head(), many) == events
    kit.a.log_chunk = 2  # small eth_getLogs ranges give the same answer
    assert await kit.a.events(start + 1, await kit.a.head(), [ch.id]) == events
    # the same channel id on the second deployment has no events of deployment A
    assert await kit.a_on_b.events(start + 1, await kit.a.head()) == []


async def test_erc20_deposit_approves_once(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    token, alice = kit.env.token, kit.alice.address
    bal = await kit.token_balance(alice)
    await kit.a.deposit(ch.params, 0, 700)
    assert await tokens.allowance(kit.rpc, token, alice, kit.env.adjudicator) == 0
    await tokens.approve(kit.rpc, kit.a.sender, token, kit.env.adjudicator, 10_000)  # type: ignore[arg-type]
    head = await kit.a.head()
    r = await kit.a.deposit(ch.params, 0, 300)
    assert r.block_number == head + 1  # no approval needed: one transaction only
    assert await tokens.allowance(kit.rpc, token, alice, kit.env.adjudicator) == 9_700
    assert await kit.token_balance(alice) == bal - 1000
    assert (await kit.a.channel(ch.id)).deposits0 == 1000


async def test_dispute_refute_timeout_pays_registered_state(kit: Kit) -> None:
    """C1: trade v1..v5, register v1, refute with v5, warp, conclude: payouts are v5's."""
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1_000_000, 500_000))
    ctx = Context(ch.params, ch.domain, Timestamp(await kit.now()), (1_000_000, 500_000))
    book = PositionBook()
    state = options.opening_state(ch.params)
    signed = []
    batches: list[list[Trade]] = [
        [CreditDeposit(0, Amount(1_000_000)), CreditDeposit(1, Amount(500_000))],
        [Pay(0, Amount(10_000))], [Pay(1, Amount(2_500))], [Pay(0, Amount(40_000))],
        [Pay(0, Amount(1))],
    ]
    for v, trades in enumerate(batches, start=1):
        state = options.apply_trades(state, book, trades, ctx, Version(v))
        signed.append(ch.sign(state))
    v1, v5 = signed[0], signed[-1]
    assert v5.state.balances == (952_499, 547_501)

    start = await kit.a.head()
    r1 = await kit.b.register(ch.params, v1)  # bob registers a stale state
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.DISPUTED and view.version == 1
    assert view.state_hash == eip712.state_struct_hash(v1.state)
    deadline = view.deadline
    assert deadline == await kit.a.block_timestamp(r1.block_number) + ch.params.challenge_period

    with_refute = await kit.a.register(ch.params, v5)
    view = await kit.a.channel(ch.id)
    assert view.version == 5 and view.deadline == deadline  # C6: never extended
    (reg,) = kit.a.decode_receipt_events(with_refute)
    assert reg.name == "Registered" and reg.args["version"] == 5
    assert reg.args["deadline"] == deadline

    try:
        await kit.c.conclude_after_timeout(ch.params, v5.state)
        raise AssertionError("expected ChallengeNotExpired")
    except errors.ChallengeNotExpired:
        pass
    await kit.warp(ch.params.challenge_period + 1)
    a0, b0 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    await kit.c.conclude_after_timeout(ch.params, v5.state)
    a1, b1 = await kit.token_balance(kit.alice.address), await kit.token_balance(kit.bob.address)
    assert (a1 - a0, b1 - b0) == v5.state.balances
    names = [e.name for e in await kit.a.events(start + 1, await kit.a.head(), [ch.id])]
    assert names == ["Registered", "Registered", "Concluded"]


async def test_identical_register_is_noop_and_deadline_fixed(kit: Kit) -> None:
    """C7: the registered state again changes nothing; C6: a newer one keeps the deadline."""
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    s3 = ch.signed(3, balances=(100, 100))
    await kit.a.register(ch.params, s3)
    view = await kit.a.channel(ch.id)
    await kit.warp(600)
    r = await kit.b.register(ch.params, s3)
    assert r.succeeded and r.logs == ()
    assert await kit.a.channel(ch.id) == view
    await kit.b.register(ch.params, ch.signed(4, balances=(50, 150)))
    after = await kit.a.channel(ch.id)
    assert after.deadline == view.deadline and after.version == 4


async def test_checkpoint_clears_dispute(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (100, 100))
    await kit.b.register(ch.params, ch.signed(2, balances=(100, 100)))
    r = await kit.a.checkpoint(ch.params, ch.signed(3, balances=(90, 110)))
    (ev,) = kit.a.decode_receipt_events(r)
    assert ev.name == "Checkpointed" and ev.args["version"] == 3
    view = await kit.a.channel(ch.id)
    assert view.status is ChannelStatus.OPEN and view.version == 3 and view.deadline == 0
    assert view.state_hash == bytes(32)
    # an open channel: checkpointing the recorded version again is a no-op
    r2 = await kit.a.checkpoint(ch.params, ch.signed(3, balances=(90, 110)))
    assert r2.logs == ()
    try:
        await kit.b.register(ch.params, ch.signed(2, balances=(100, 100)))
        raise AssertionError("expected NotNewerVersion")
    except errors.NotNewerVersion as exc:
        assert exc.args_dict == {"recorded": 3, "given": 2}


async def test_partial_withdrawal_then_close(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1000, 1000))
    dest = bytes.fromhex("00" * 19 + "77")
    w, sigs = ch.withdrawal(2, 1, 300, dest)
    r = await kit.c.withdraw_partial(ch.params, w, sigs)
    (ev,) = kit.a.decode_receipt_events(r)
    assert ev.name == "PartialWithdrawal"
    assert ev.args == {"channelId": ch.id, "version": 2, "participant": 1, "amount": 300,
                       "recipient": dest}
    assert await kit.token_balance(dest) == 300
    view = await kit.a.channel(ch.id)
    assert view.withdrawn == (0, 300) and view.min_version == 2
    final = ch.signed(3, balances=(1200, 500), withdrawn=(0, 300), deposited=(1000, 1000),
                      final=True)
    a0 = await kit.token_balance(kit.alice.address)
    await kit.b.conclude(ch.params, final)
    assert await kit.token_balance(kit.alice.address) - a0 == 1200


async def test_unexecuted_withdrawal_paid_at_conclusion(kit: Kit) -> None:
    """A state debiting a withdrawal that was never executed pays it with the payout."""
    ch = kit.channel()
    await kit.fund(ch, (1000, 1000))
    final = ch.signed(5, balances=(600, 1000), withdrawn=(400, 0), deposited=(1000, 1000),
                      final=True)
    r = await kit.c.conclude(ch.params, final)
    (ev, *_) = kit.a.decode_receipt_events(r)
    assert ev.args["payout0"] == 1000 and ev.args["payout1"] == 1000


async def test_failed_payouts_are_credited_and_pulled(kit: Kit) -> None:
    """C14: a payout to a reverting receiver is credited, the other payout still happens, and
    the credit is pulled later with withdraw."""
    ch = kit.channel()
    await kit.fund(ch, (1000, 1000))
    # Bob's address starts rejecting ETH (his key still signs states).
    art = json.loads((tokens.BUILD_DIR / "RevertingReceiver.json").read_text())
    bob_hex = "0x" + kit.bob.address.hex()
    await kit.rpc.dev.set_code(bob_hex, bytes.fromhex(art["deployedBytecode"][2:]))
    a0 = await kit.eth_balance(kit.alice.address)
    final = ch.signed(1, balances=(700, 1300), deposited=(1000, 1000), final=True)
    r = await kit.c.conclude(ch.params, final)
    names = [e.name for e in kit.a.decode_receipt_events(r)]
    assert names == ["Concluded", "PayoutCredited"]
    assert await kit.eth_balance(kit.alice.address) - a0 == 700
    assert await kit.a.credits(bytes(20), kit.bob.address) == 1300
    # Bob pulls through his contract code (RevertingReceiver.execute forwards the call).
    dest = bytes.fromhex("00" * 19 + "99")
    call = kit.a.abi.encode_call("withdraw", bytes(20), dest)
    data = tokens.load_artifact("RevertingReceiver")[0].encode_call(
        "execute", kit.env.adjudicator, call
    )
    await kit.c.sender.transact(bob_hex, data, timeout=30)  # type: ignore[union-attr]
    assert await kit.eth_balance(dest) == 1300
    assert await kit.a.credits(bytes(20), kit.bob.address) == 0


async def test_blocked_token_payout_credited_then_withdrawn(kit: Kit) -> None:
    ch = kit.channel(kit.env.token)
    await kit.fund(ch, (1000, 1000))
    await tokens.set_blocked(kit.rpc, kit.c.sender, kit.env.token, kit.bob.address, True)  # type: ignore[arg-type]
    b0 = await kit.token_balance(kit.bob.address)
    r = await kit.a.conclude(ch.params, ch.signed(1, balances=(400, 1600), deposited=(1000, 1000),
                                                  final=True))
    credited = [e for e in kit.a.decode_receipt_events(r) if e.name == "PayoutCredited"]
    assert credited[0].args == {"channelId": ch.id, "account": kit.bob.address,
                                "asset": kit.env.token, "amount": 1600}
    assert await kit.token_balance(kit.bob.address) == b0
    dest = kit.carol.address
    c0 = await kit.token_balance(dest)
    r2 = await kit.b.withdraw(kit.env.token, dest)
    (ev,) = kit.a.decode_receipt_events(r2)
    assert ev.name == "CreditWithdrawn" and ev.channel_id is None and ev.args["amount"] == 1600
    assert await kit.token_balance(dest) - c0 == 1600
    try:
        await kit.b.withdraw(kit.env.token, dest)
        raise AssertionError("expected NothingToWithdraw")
    except errors.NothingToWithdraw:
        pass


async def test_partial_withdrawal_to_rejecting_recipient_credits_participant(kit: Kit) -> None:
    ch = kit.channel()
    await kit.fund(ch, (1000, 1000))
    _abi, code = tokens.load_artifact("RevertingReceiver")
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    receiver = bytes.fromhex((await sender.deploy(code, timeout=30))[2:])
    w, sigs = ch.withdrawal(1, 0, 250, receiver)
    r = await kit.b.withdraw_partial(ch.params, w, sigs)
    assert [e.name for e in kit.a.decode_receipt_events(r)] == ["PartialWithdrawal",
                                                               "PayoutCredited"]
    assert await kit.a.credits(bytes(20), kit.alice.address) == 250


async def test_reentrancy_is_refused(kit: Kit) -> None:
    """A payout receiver that re-enters the adjudicator hits ReentrancyGuardReentrantCall."""
    art = json.loads((tokens.BUILD_DIR / "ReentrantReceiver.json").read_text())
    abi = tokens.load_artifact("ReentrantReceiver")[0]
    ch = kit.channel()
    await kit.fund(ch, (1000, 1000))
    bob_hex = "0x" + kit.bob.address.hex()
    await kit.rpc.dev.set_code(bob_hex, bytes.fromhex(art["deployedBytecode"][2:]))
    inner = kit.a.abi.encode_call("withdraw", bytes(20), kit.carol.address)
    sender: TransactionSender = kit.c.sender  # type: ignore[assignment]
    await sender.transact(bob_hex, abi.encode_call("setReentry", kit.env.adjudicator, inner),
                          timeout=30)
    b0 = await kit.eth_balance(kit.bob.address)
    await kit.a.conclude(ch.params, ch.signed(1, balances=(1000, 1000), final=True))
    assert await kit.eth_balance(kit.bob.address) - b0 == 1000
    attempts = abi.decode_output("attempts", await kit.rpc.call(
        {"to": bob_hex, "data": abi.encode_call("attempts")}))[0]
    ret = abi.decode_output("lastReturnData", await kit.rpc.call(
        {"to": bob_hex, "data": abi.encode_call("lastReturnData")}))[0]
    assert attempts == 1
    assert isinstance(errors.decode_revert(ret), errors.ReentrancyGuardReentrantCall)
