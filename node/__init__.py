"""The node: configuration, runtime, RPC, metrics, devnet launcher and CLI."""
