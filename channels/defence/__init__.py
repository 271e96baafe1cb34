"""The on-chain defence: the watcher, the dispute transaction driver and the watchtower.

They talk to the node only through the narrow interface in :mod:`channels.defence.host`.
"""
