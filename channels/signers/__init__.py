"""Signers for the channel key and the gas key: in-process keys, eth-account accounts, encrypted
keystores and remote JSON-RPC signers (docs/SIGNERS.md)."""

from channels.signers.account import AccountSigner
from channels.signers.errors import BadSignerReply, KeySourceError, SignerUnavailable
from channels.signers.keystore import PasswordSource, load_keystore, read_key_file, write_keystore
from channels.signers.remote import RemoteSigner
from channels.signers.sources import KeySource, open_key_source, parse_key_source

__all__ = [
    "AccountSigner",
    "BadSignerReply",
    "KeySource",
    "KeySourceError",
    "PasswordSource",
    "RemoteSigner",
    "SignerUnavailable",
    "load_keystore",
    "open_key_source",
    "parse_key_source",
    "read_key_file",
    "write_keystore",
]
