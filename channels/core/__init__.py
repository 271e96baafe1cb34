"""The sans-IO core: model, EIP-712, signatures, options rules, consent, the wire format and the
channel protocol (``channels.core.protocol``).

Nothing in this package touches a socket, a clock, a disk or a chain; time and chain facts are
inputs. import-linter enforces it (setup.cfg).
"""
