from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.core.hashing import keccak256

from .server_process import signer_server

SECRET = keccak256(b"remote signer key")


@pytest.fixture(scope="module")
def honest_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with signer_server(SECRET, Path(tmp_path_factory.mktemp("signer"))) as url:
        yield url
