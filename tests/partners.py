"""Declared partners for tests that exercise the protocol rather than consent.

Every test desk names its counterparties explicitly (a :class:`~channels.core.trust.Trust`), with
terms wide enough for the test's channels and a decision hook that consents to every trade. The
consent tests (tests/node/test_consent*.py) use strict trusts instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from channels.core.consent import Approved, UpdateView, Verdict
from channels.core.model import Address
from channels.core.terms import AssetTerms, PeerTerms
from channels.core.trust import Peer, Trust

WIDE = AssetTerms(max_deposit=10**30, max_total=10**32)


def consent_to_everything(_view: UpdateView) -> Verdict:
    return Approved("the test desk consents to every trade of its declared partner")


def partner_terms(assets: Iterable[bytes], oracles: Iterable[bytes]) -> PeerTerms:
    return PeerTerms(
        assets={Address(bytes(a)): WIDE for a in assets},
        oracles=frozenset(Address(bytes(o)) for o in oracles),
        min_challenge_period=1,
        max_challenge_period=10**9,
        max_channels=10_000,
    )


def partners(
    *others: bytes,
    assets: Iterable[bytes],
    oracles: Iterable[bytes],
    decide: bool = True,
) -> Trust:
    """Trust that declares each of ``others`` with wide terms for ``assets`` and ``oracles``."""
    terms = partner_terms(tuple(assets), tuple(oracles))
    return Trust(
        peers=tuple(
            Peer(name=f"partner-{i}", address=Address(bytes(a)), terms=terms)
            for i, a in enumerate(others)
        ),
        decide=consent_to_everything if decide else None,
    )
