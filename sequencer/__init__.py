"""Domain model and pure logic of the sequencer.

Types (`types`), the canonical codec and JSON forms (`codec`), identifiers
(`ids`), Ed25519 keys and signatures (`crypto`), RFC 6962 Merkle trees with
BLAKE3 (`merkle`), certificates (`certificate`) and genesis files
(`genesis`), the mempool (`mempool`). Errors: see `sequencer.errors` for the
tree. Apart from the wallet client (`client`, HTTP to a node), nothing here
does network I/O, reads the clock or uses module-level randomness.
"""

from __future__ import annotations

from importlib import metadata

from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.codec import (
    decode,
    encode,
    from_builtins,
    from_json,
    parse_hex,
    to_builtins,
    to_json,
)
from sequencer.crypto import (
    PrivateKey,
    load_key,
    save_key,
    sign_proposal,
    sign_transaction,
    sign_vote,
    verify_proposal,
    verify_signature,
    verify_transaction,
    verify_vote,
)
from sequencer.errors import (
    CertificateError,
    DecodeError,
    InvalidGenesisError,
    KeyFileError,
    SequencerError,
)
from sequencer.genesis import dump_genesis, load_genesis, parse_genesis
from sequencer.ids import (
    batch_commitment,
    block_id,
    commit_id,
    decode_batch,
    encode_batch,
    gas,
    genesis_state_root,
    state_root,
    tx_id,
    tx_root,
)
from sequencer.merkle import MerkleTree, merkle_root, verify_inclusion
from sequencer.types import (
    NIL,
    ZERO_ID,
    BatchCommitment,
    Block,
    BlockHeader,
    ChainTip,
    CommitCertificate,
    ConsensusParams,
    Genesis,
    InclusionProof,
    Proposal,
    SigningState,
    SignStep,
    Transaction,
    TxLocation,
    ValidatorInfo,
    Vote,
    VoteKind,
)

try:
    __version__ = metadata.version("sequencer")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = [
    "NIL",
    "ZERO_ID",
    "BatchCommitment",
    "Block",
    "BlockHeader",
    "CertificateError",
    "ChainTip",
    "CommitCertificate",
    "ConsensusParams",
    "DecodeError",
    "Genesis",
    "InclusionProof",
    "InvalidGenesisError",
    "KeyFileError",
    "MerkleTree",
    "PrivateKey",
    "Proposal",
    "SequencerError",
    "SignStep",
    "SigningState",
    "Transaction",
    "TxLocation",
    "ValidatorInfo",
    "ValidatorSet",
    "Vote",
    "VoteKind",
    "__version__",
    "batch_commitment",
    "block_id",
    "commit_id",
    "decode",
    "decode_batch",
    "dump_genesis",
    "encode",
    "encode_batch",
    "from_builtins",
    "from_json",
    "gas",
    "genesis_state_root",
    "load_genesis",
    "load_key",
    "merkle_root",
    "parse_genesis",
    "parse_hex",
    "save_key",
    "sign_proposal",
    "sign_transaction",
    "sign_vote",
    "state_root",
    "to_builtins",
    "to_json",
    "tx_id",
    "tx_root",
    "verify_certificate",
    "verify_inclusion",
    "verify_proposal",
    "verify_signature",
    "verify_transaction",
    "verify_vote",
]
