"""``channels chain`` (a local anvil with the contracts) and ``channels deploy``."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from adjudicator.tx_signing import TransactionSigner
from channels.cli.config import (
    DEFAULT_STATE_FILE,
    ConfigError,
    PortInUse,
    UsageError,
    load_config,
    load_gas_key,
    load_signer,
    read_key,
)
from channels.cli.desks import (
    DEV_DESKS,
    DEV_ORACLE_ACCOUNT,
    dev_desk_summary,
    write_dev_desks,
)
from channels.cli.format import note, out, print_json, with_progress
from channels.cli.node_cmd import wait_for_stop_signal
from channels.control import one_line
from channels.core import boundedjson
from channels.core.model import address, to_checksum
from channels.core.signing import LocalSigner
from channels.core.units import fmt_units
from channels.signers.errors import KeySourceError
from channels.signers.keystore import PasswordSource, load_keystore
from channels.signers.sources import KeySource, open_key_source

if TYPE_CHECKING:
    from adjudicator.devchain import AnvilConfig, DevChain


@asynccontextmanager
async def _anvil_on_port(port: int, host: str, cfg: AnvilConfig) -> AsyncIterator[DevChain]:
    """anvil on a fixed port (``open_anvil`` picks a free one)."""
    import subprocess
    import tempfile

    import httpx

    from adjudicator.devchain import DevChain, DevChainError, dev_private_keys, find_anvil

    url = f"http://{host}:{port}"
    refuse_busy_port(host, port)
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    with tempfile.TemporaryFile() as output:
        proc = await trio.lowlevel.open_process(
            [str(find_anvil()), *cfg.args(port, host)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            chain_id = None
            async with httpx.AsyncClient(timeout=1.0) as client:
                with trio.move_on_after(15):
                    while proc.poll() is None and chain_id is None:
                        try:
                            body = boundedjson.loads(
                                (await client.post(url, json=request)).content, max_bytes=4096
                            )
                            chain_id = int(body["result"], 16)
                        except (httpx.HTTPError, ValueError, KeyError, TypeError):
                            await trio.sleep(0.05)
            if chain_id is not None and proc.poll() is not None:
                # Something else answered on the port while our anvil failed to bind it.
                chain_id = None
            if chain_id is None:
                output.seek(0)
                tail = one_line(output.read()[-300:].decode(errors="replace"))
                raise DevChainError(f"anvil did not start on {url}: {tail or 'no answer'}")
            yield DevChain(url, port, chain_id, dev_private_keys(cfg.accounts), proc.pid)
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.terminate()
                    with trio.move_on_after(5):
                        await proc.wait()
                    if proc.returncode is None:
                        proc.kill()
                        await proc.wait()


#: The test token ``channels chain`` deploys has 6 decimals, like USDC.
TEST_TOKEN_DECIMALS = 6


def refuse_busy_port(host: str, port: int) -> None:
    """Refuse a port something already listens on: deploying onto a stranger's chain (another
    anvil left running) would hand out addresses of contracts we did not deploy."""
    import errno
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use (another anvil or node?): stop it, "
                    "pass another --port, or leave --port out to get a free one"
                ) from None
            raise


def _write_json_file(path: Path, value: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _deployment_info(url: str, dep: Any, accounts: Sequence[str], mint: int) -> dict[str, Any]:
    return {
        "rpc_url": url,
        "chain_id": dep.chain_id,
        "adjudicator": to_checksum(dep.adjudicator),
        "token": to_checksum(dep.token) if dep.token is not None else None,
        "token_decimals": dep.token_decimals,
        "minted_per_account": mint,
        "accounts": list(accounts),
    }


def _print_deployment(info: Mapping[str, Any], dev_keys: bool) -> None:
    decimals = int(info["token_decimals"])
    out(f"rpc url      {info['rpc_url']}")
    out(f"chain id     {info['chain_id']}")
    out(f"adjudicator  {info['adjudicator']}")
    out(f"test token   {info['token']} ({decimals} decimals)")
    if info.get("oracle"):
        out(f"dev oracle   {info['oracle']} (anvil dev account {DEV_ORACLE_ACCOUNT})")
    out(
        f"minted       {fmt_units(int(info['minted_per_account']), decimals)} test tokens to "
        "each account below"
    )
    if dev_keys:
        out("dev accounts (their keys are anvil's well-known dev keys, from the public mnemonic")
        out("'test test ... junk': never send real funds to them):")
    else:
        out("funded accounts:")
    for i, account in enumerate(info["accounts"]):
        out(f"  {i:>2}  {account}" + ("  (deployer)" if i == 0 and dev_keys else ""))


async def run_chain(args: argparse.Namespace) -> int:
    from adjudicator.deploy import deploy_dev_setup
    from adjudicator.devchain import AnvilConfig, open_anvil
    from adjudicator.rpc import open_rpc

    mint = args.mint.units(TEST_TOKEN_DECIMALS, raw=args.raw)
    if args.rpc_url is not None:
        deployer, key = await _deployer(args)
        async with open_rpc(args.rpc_url) as rpc:
            dep = await with_progress(
                "deploying the adjudicator and a test token",
                deploy_dev_setup(rpc, key, fund=[deployer], amount=mint),
            )
        info = _deployment_info(args.rpc_url, dep, [to_checksum(deployer)], mint)
        _print_deployment(info, dev_keys=False)
        if args.state_file is not None:
            _write_json_file(Path(args.state_file), info)
        return 0
    state_file = Path(args.state_file or DEFAULT_STATE_FILE)
    desks_dir = Path(args.desks)
    for name, _ in DEV_DESKS:  # before starting anything: refuse desks of an earlier chain
        if (desks_dir / f"{name}.sqlite").exists():
            raise ConfigError(
                f"{desks_dir / (name + '.sqlite')} exists: that desk has channels on an earlier "
                f"chain; remove {desks_dir}/ or pass --desks OTHER_DIR"
            )
    # Interval mining by default: chain time then moves on its own as on a real chain, so
    # challenge periods and expiries pass without anyone sending transactions.
    anvil_cfg = AnvilConfig(block_time=args.block_time or None)
    chain_cm = (
        open_anvil(anvil_cfg, host=args.host)
        if args.port is None
        else _anvil_on_port(args.port, args.host, anvil_cfg)
    )
    note("starting anvil and deploying the adjudicator and a test token…")
    async with chain_cm as chain:
        accounts = [bytes(address(a)) for a in chain.accounts]
        async with open_rpc(chain.url) as rpc:
            dep = await deploy_dev_setup(rpc, chain.private_keys[0], fund=accounts, amount=mint)
        assert dep.token is not None
        info = _deployment_info(chain.url, dep, [to_checksum(a) for a in accounts], mint)
        info["oracle"] = to_checksum(
            LocalSigner.from_hex(chain.private_keys[DEV_ORACLE_ACCOUNT]).address
        )
        info["anvil_pid"] = chain.pid
        desks = write_dev_desks(
            desks_dir,
            rpc_url=chain.url,
            adjudicator=dep.adjudicator,
            token=dep.token,
            token_decimals=dep.token_decimals,
            private_keys=chain.private_keys,
        )
        info["desks"] = dev_desk_summary(desks)
        _print_deployment(info, dev_keys=True)
        _write_json_file(state_file, info)
        out(f"state file   {state_file}")
        out("desk configs (key files next to them, mode 0600):")
        for desk in desks:
            out(f"  {desk.name:<7} {desk.config}  {desk.address}  listens on {desk.listen_port}")
        out(
            f"ready: run a desk with `channels node --config {desks[0].config}`; "
            "Ctrl-C stops the chain"
        )
        try:
            await wait_for_stop_signal()
        finally:
            state_file.unlink(missing_ok=True)
    note("chain stopped")
    return 0


def _deployer_sync(args: argparse.Namespace) -> tuple[bytes, bytes | TransactionSigner]:
    """(address, key) of the account that pays for a deployment, from the same key options as a
    desk: ``--keystore`` (its password from --password-env / --password-file / a prompt),
    ``--remote`` (a JSON-RPC signer), ``--key-env`` / ``--key-file``, or ``--config`` (its gas
    key, else its channel key). Never from the command line itself."""
    given = [
        flag
        for flag, value in (
            ("--keystore", getattr(args, "keystore", None)),
            ("--remote", getattr(args, "remote", None)),
            ("--key-env", getattr(args, "key_env", None)),
            ("--key-file", getattr(args, "key_file", None)),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise UsageError(f"give one key option, not {' and '.join(given)}")
    try:
        if args.keystore is not None:
            password = PasswordSource(
                env=args.password_env,
                file=None if args.password_file is None else Path(args.password_file),
                prompt=args.password_env is None and args.password_file is None,
            )
            signer: object = load_keystore(Path(args.keystore).expanduser(), password)
        elif args.remote is not None:
            signer = open_key_source(KeySource("remote", url=args.remote))
        elif args.key_file is not None or args.key_env is not None:
            signer = read_key(Path(args.key_file) if args.key_file else None, args.key_env)
        elif getattr(args, "config", None):
            cfg = load_config(args.config)
            gas = load_gas_key(cfg)
            signer = LocalSigner(gas) if isinstance(gas, bytes) else gas or load_signer(cfg)
        else:
            raise UsageError(
                "give a key: --keystore FILE, --remote URL, --key-env VAR or --key-file FILE "
                "(or --config DESK.toml to use its gas key)"
            )
    except KeySourceError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(signer, LocalSigner):
        return signer.address, signer.secret
    if isinstance(signer, TransactionSigner):
        return bytes(signer.address), signer
    raise UsageError("that signer cannot sign transactions: give a key that can pay for gas")


async def _deployer(args: argparse.Namespace) -> tuple[bytes, bytes | TransactionSigner]:
    # Decrypting a keystore (scrypt) or asking a remote signer blocks: off the trio loop.
    return await trio.to_thread.run_sync(_deployer_sync, args)


async def run_deploy(args: argparse.Namespace) -> int:
    from adjudicator.deploy import deploy_adjudicator
    from adjudicator.rpc import open_rpc

    url: str | None = args.rpc_url
    if url is None and args.config:
        url = load_config(args.config).rpc_url
    if url is None:
        raise UsageError("give --rpc-url URL (or --config with [chain] rpc_url)")
    deployer, key = await _deployer(args)
    async with open_rpc(url) as rpc:
        chain_id = await rpc.chain_id()
        addr = await with_progress(
            f"deploying the adjudicator to chain {chain_id} from {to_checksum(deployer)}",
            deploy_adjudicator(rpc, key),
        )
    if args.json:
        print_json({"adjudicator": to_checksum(addr), "chain_id": chain_id})
    else:
        out(to_checksum(addr))
    return 0
