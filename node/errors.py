"""The exception tree of `node`.

    SequencerError (sequencer.errors)
    └── NodeError
        └── ConfigError    a config.toml, environment override, devnet layout or
                           devnet manifest that cannot be used; the message
                           names the file and the dotted key (`key` holds it)

The CLI catches `SequencerError` and prints the message on one line, so every
message here says where the problem is (file, key) and what was expected.
"""

from __future__ import annotations

from sequencer.errors import SequencerError

__all__ = ["ConfigError", "NodeError"]


class NodeError(SequencerError):
    """Base class of the node package's errors."""


class ConfigError(NodeError, ValueError):
    """A configuration problem the operator can fix by editing a file or variable.

    `key` is the dotted config key at fault (`rpc.listen`, `p2p.peers[1]`),
    or None when the problem is not one key's (an unreadable file).
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
