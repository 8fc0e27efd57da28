"""The exception tree of the sequencer.

Every error the project raises on purpose derives from `SequencerError`, so a
caller (the CLI, an RPC handler) can catch one class and print a clear
message. Foreign exceptions (msgspec, PyNaCl, plyvel, OS errors) are converted
at the boundary where they happen.

    SequencerError
    ├── DecodeError            malformed bytes or JSON (wrong type, bad hex,
    │                          wrong length, unknown field, out-of-range int)
    ├── InvalidGenesisError    a genesis file that decodes but cannot be used
    ├── KeyFileError           a key file that is missing, unreadable or wrong
    ├── CertificateError       a commit certificate that does not verify
    │                          (`reason` says which rule failed)
    ├── storage.StorageError   (its own tree, in storage/errors.py)
    └── net.NetError           (its own tree, in net/errors.py)

Signature checks do not raise: `verify_*` functions return a bool, because a
bad signature from a peer is input to reject and count, not an exception.
"""

from __future__ import annotations

__all__ = [
    "CertificateError",
    "DecodeError",
    "InvalidGenesisError",
    "KeyFileError",
    "SequencerError",
]


class SequencerError(Exception):
    """Base class of every error this project raises on purpose."""


class DecodeError(SequencerError, ValueError):
    """Bytes or JSON that do not decode to the expected structure."""


class InvalidGenesisError(SequencerError):
    """A genesis that is well-formed but breaks a rule (duplicate keys, ...)."""


class KeyFileError(SequencerError):
    """A key file that cannot be read, parsed or written."""


class CertificateError(SequencerError):
    """A commit certificate that fails verification.

    `reason` is a stable short code (for metrics and tests); the message is
    for humans.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
