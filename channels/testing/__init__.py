"""Test support that ships with the package: a throwaway dev network, fault-injection hooks and
crash points (like ``trio.testing``). Production code never uses the first two.

Import the submodules (``channels.testing.devnet``, ``channels.testing.faults``,
``channels.testing.crash``); this package imports nothing itself, so the runtime can use the
crash points without loading the rest.
"""
