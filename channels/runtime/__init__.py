"""The node runtime: the registry of channels, each channel's runtime, the coalescer, the
persist-then-send executor, peer links, the event bus, the chain clock and read-only views.

Everything here runs under one trio nursery owned by :func:`channels.runtime.node.open_node`.
"""
