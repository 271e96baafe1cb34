"""The node's Trust from a desk config: whom it deals with, on what terms, within what limits.

A config writes deposit terms and amount limits in each asset's units (channels/cli/peer_terms.py).
Before the node starts, the desk reads each configured asset's decimals from the token contract
(18 for ETH) and scales the amounts with them; a channel proposal also carries decimals, but the
peer chose those, and our limits must not move with them (the node refuses a proposal whose
decimals are not the chain's: channels/runtime/assets.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from adjudicator.client import ETH_DECIMALS
from adjudicator.errors import ContractError
from adjudicator.rpc import open_rpc
from adjudicator.tokens import decimals as token_decimals
from channels.cli.config import Config, ConfigError
from channels.cli.peer_terms import ETH, TermsError
from channels.core.model import Address, to_checksum
from channels.core.trust import Peer, Trust


async def asset_decimals(cfg: Config) -> dict[bytes, int]:
    """The decimals of every asset whose amounts the config gives in the asset's units."""
    wanted = {
        asset.address: asset.where
        for peer in cfg.peers.values()
        for asset in peer.terms.assets
        if asset.needs_decimals
    }
    found: dict[bytes, int] = {a: ETH_DECIMALS for a in wanted if a == ETH}
    if len(found) == len(wanted):
        return found
    rpc_url, _ = cfg.require_chain()
    async with open_rpc((rpc_url, *cfg.rpc_fallback_urls)) as rpc:
        for asset, where in wanted.items():
            if asset in found:
                continue
            try:
                found[asset] = await token_decimals(rpc, asset)
            except (ContractError, ValueError) as exc:
                raise ConfigError(
                    f"{cfg.path}: {where} address: {to_checksum(asset)} answered no decimals() "
                    f"on {rpc_url} ({exc}); is it the token's address on this chain? Or give "
                    "its amounts in smallest units (KEY_raw = an integer)"
                ) from None
    return found


def trust_with(cfg: Config, decimals: Mapping[bytes, int]) -> Trust:
    """The desk's Trust, amounts scaled with ``decimals`` (each asset's)."""
    peers = []
    for p in cfg.peers.values():
        try:
            terms, limits, by_asset = p.terms.resolve(decimals)
        except TermsError as exc:
            raise ConfigError(f"{cfg.path}: {exc}") from None
        peers.append(
            Peer(
                name=p.name,
                address=Address(p.address),
                endpoint=(p.host, p.port) if p.host and p.port else None,
                terms=terms,
                approve=p.terms.approve,
                limits=limits,
                asset_limits=by_asset,
            )
        )
    # The [node] connection caps (channels/cli/node_guards.py).
    return cfg.guards.apply_caps(Trust(peers=tuple(peers)))


async def desk_trust(cfg: Config) -> Trust:
    """Whom the desk deals with: its declared peers and their terms, nobody else."""
    return trust_with(cfg, await asset_decimals(cfg))


__all__ = ["asset_decimals", "desk_trust", "trust_with"]
