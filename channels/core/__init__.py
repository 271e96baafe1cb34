"""The sans-IO core: model, EIP-712 encoding, signatures, options rules and the channel machine.

Nothing in this package touches a socket, a clock, a disk or a chain; time and chain facts are
inputs. import-linter enforces it (setup.cfg).
"""
