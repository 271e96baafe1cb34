"""The trio shell of the authenticated, encrypted transport.

The framing, cipher and login rules are sans-IO and live in :mod:`channels.core.secure_session`;
this package only moves bytes between them and a trio stream, with timeouts.
"""
