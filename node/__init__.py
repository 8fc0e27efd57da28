"""The node: configuration, runtime, RPC, metrics, devnet launcher and CLI (DESIGN 8-12)."""
