"""On-chain side of option-channels: JSON-RPC client, transaction sender, ABI helpers, dev chain.

Submodules (import them directly; this package imports nothing heavy on its own):

* ``adjudicator.rpc``: ``RpcClient`` (JSON-RPC over httpx, trio: retries, endpoint failover);
* ``adjudicator.rpc_errors``, ``adjudicator.rpc_types``: its typed ``RpcError``s and results;
* ``adjudicator.devrpc``: dev-chain controls (time, mining, snapshots, reorgs), as ``rpc.dev``;
* ``adjudicator.transactions``: ``TransactionSender`` (EIP-1559, nonces, receipts, fee bumps);
* ``adjudicator.abi``: ``ContractAbi`` (call/log/error encoding and decoding);
* ``adjudicator.devchain``: start/stop anvil (``anvil()``, ``open_anvil()``);
* ``adjudicator.testing``: pytest fixtures (``pytest_plugins = ["adjudicator.testing"]``).
"""
