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
    ├── VerificationError      something a node served that does not verify
    │   │                      (`reason`: a stable code saying which rule broke)
    │   ├── CertificateError   a commit certificate
    │   └── ProofError         a Merkle, namespace or chain-link proof
    ├── ClientError            an RPC call of `sequencer.client` that failed:
    │                          the node's error response (its stable `code`
    │                          and HTTP `status`), or no usable answer (codes
    │                          unreachable, timeout, bad_response, bad_proof)
    ├── l1.L1Error             posting to or reading from an L1 (its tree in
    │                          sequencer/l1/base.py: unavailable, conflict)
    ├── storage.StorageError   (its own tree, in storage/errors.py)
    └── net.NetError           (its own tree, in net/errors.py)

httpx errors are converted in `sequencer.client`, so a wallet catches
`ClientError` alone and matches on `code`.

Signature checks do not raise: `verify_*` functions return a bool, because a
bad signature from a peer is input to reject and count, not an exception.
"""

from __future__ import annotations

__all__ = [
    "CertificateError",
    "ClientError",
    "DecodeError",
    "InvalidGenesisError",
    "KeyFileError",
    "ProofError",
    "SequencerError",
    "VerificationError",
]


class SequencerError(Exception):
    """Base class of every error this project raises on purpose."""


class DecodeError(SequencerError, ValueError):
    """Bytes or JSON that do not decode to the expected structure."""


class InvalidGenesisError(SequencerError):
    """A genesis that is well-formed but breaks a rule (duplicate keys, ...)."""


class KeyFileError(SequencerError):
    """A key file that cannot be read, parsed or written."""


class VerificationError(SequencerError):
    """Data that fails verification: the light client's one failure type.

    `reason` is a stable short code (for metrics, tests and programs); the
    message is for humans.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CertificateError(VerificationError):
    """A commit certificate that fails verification."""


class ProofError(VerificationError):
    """A proof that fails: an inclusion or namespace proof, a header that does
    not hash to its id, a broken parent or last-commit link."""


class ClientError(SequencerError):
    """An RPC call that failed (`sequencer.client`).

    `code` is either the node's stable error code (`{"error": {"code",
    "message"}}`) or one of the client's own: `unreachable` (no HTTP answer),
    `timeout` (waiting gave up), `bad_response` (an answer that does not parse
    or contradicts the request) and `bad_proof` (a proof that does not check
    out). `status` is the HTTP status of the response that carried the error,
    None when there was none (transport failures, per-item batch results,
    checks made by the client). `message` is for humans.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        where = f"HTTP {status}, " if status is not None else ""
        super().__init__(f"{message} ({where}{code})")
        self.status = status
        self.code = code
        self.message = message
