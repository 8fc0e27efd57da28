"""The domain model, as typed msgspec structs.

Every structure is encoded as a MessagePack **array in field order**
(`array_like=True`); the field order below is normative and must not change.
Field constraints are part of the type, so a typed decoder rejects malformed
input in one place (see `sequencer.codec`). Rules that span fields are checked
in `__post_init__`, which msgspec runs on decode and on construction alike.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from sequencer.limits import (
    ADDRESS_CHARS_MAX,
    BLOCK_TXS_MAX,
    CHAIN_ID_CHARS_MAX,
    MERKLE_PATH_HASHES_MAX,
    NAME_CHARS_MAX,
    OWN_VOTES_MAX,
    TOTAL_VOTING_POWER_MAX,
    TX_PAYLOAD_BYTES_MAX,
    U32_MAX,
    VALIDATORS_MAX,
)

# msgspec cannot bound an int above int64 in `Meta`; MessagePack cannot carry
# more than u64 anyway, and the JSON path checks the upper bound (codec).
U64 = Annotated[int, Meta(ge=0)]
U32 = Annotated[int, Meta(ge=0, le=U32_MAX)]
Height = Annotated[int, Meta(ge=1)]
PolRound = Annotated[int, Meta(ge=-1)]
Bytes32 = Annotated[bytes, Meta(min_length=32, max_length=32)]
Bytes64 = Annotated[bytes, Meta(min_length=64, max_length=64)]
# A block id or nothing (nil): length 0 or 32, enforced in __post_init__.
MaybeBytes32 = Annotated[bytes, Meta(max_length=32)]
MaybeBytes64 = Annotated[bytes, Meta(max_length=64)]
Payload = Annotated[bytes, Meta(max_length=TX_PAYLOAD_BYTES_MAX)]
ChainId = Annotated[str, Meta(min_length=1, max_length=CHAIN_ID_CHARS_MAX)]
Name = Annotated[str, Meta(min_length=1, max_length=NAME_CHARS_MAX)]
Address = Annotated[str, Meta(max_length=ADDRESS_CHARS_MAX)]

ZERO_ID = bytes(32)
NIL = b""


class Wire(Struct, array_like=True, frozen=True, forbid_unknown_fields=True):
    """Base of every wire structure: array in field order, immutable, strict."""


def _check_length(name: str, value: bytes, allowed: tuple[int, ...]) -> None:
    if len(value) not in allowed:
        lengths = " or ".join(map(str, allowed))
        raise ValueError(f"`{name}` must be {lengths} bytes, got {len(value)}")


# ---------------------------------------------------------------- transaction


class Transaction(Wire, gc=False):
    chain_id: ChainId
    namespace: U64
    sender: Bytes32
    nonce: U64
    gas_price: U64
    payload: Payload
    signature: Bytes64


# ---------------------------------------------------------------- block


class BlockHeader(Wire, gc=False):
    chain_id: ChainId
    height: Height
    round: U64
    timestamp_ms: U64
    parent_id: Bytes32
    tx_root: Bytes32
    namespace_root: Bytes32  # Merkle root of the namespace table (sequencer.namespaces)
    state_root: Bytes32
    proposer: U32
    last_commit_id: Bytes32


class Block(Wire):
    header: BlockHeader
    txs: Annotated[list[Transaction], Meta(max_length=BLOCK_TXS_MAX)]


# ---------------------------------------------------------------- votes, proposals, QCs


class VoteKind(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


class Vote(Wire, gc=False):
    chain_id: ChainId
    kind: VoteKind
    height: Height
    round: U64
    block_id: MaybeBytes32  # NIL (empty) votes for no block
    validator: U32
    signature: Bytes64

    def __post_init__(self) -> None:
        _check_length("block_id", self.block_id, (0, 32))


class Proposal(Wire):
    chain_id: ChainId
    height: Height
    round: U64
    pol_round: PolRound  # -1 when the proposer has no proof-of-lock round
    block_id: Bytes32
    validator: U32
    signature: Bytes64
    block: Block


class CommitCertificate(Wire):
    height: Height
    round: U64
    block_id: Bytes32
    # [validator_index, precommit signature], sorted by index (checked on verify).
    signatures: Annotated[list[tuple[U32, Bytes64]], Meta(max_length=VALIDATORS_MAX)]


# ---------------------------------------------------------------- genesis


class ValidatorInfo(Wire):
    name: Name
    public_key: Bytes32
    power: Annotated[int, Meta(ge=1, le=TOTAL_VOTING_POWER_MAX)]
    p2p: Address  # multiaddr, /ip4/127.0.0.1/udp/26656/p2p/12D3KooW...
    rpc: Address  # base URL of the node's HTTP API


class ConsensusParams(Wire):
    """Consensus parameters; timeouts grow by their delta each round."""

    timeout_propose_ms: U64 = 300
    timeout_propose_delta_ms: U64 = 100
    timeout_prevote_ms: U64 = 100
    timeout_prevote_delta_ms: U64 = 50
    timeout_precommit_ms: U64 = 100
    timeout_precommit_delta_ms: U64 = 50
    max_block_gas: Annotated[int, Meta(ge=1000)] = 20_000_000
    max_block_txs: Annotated[int, Meta(ge=1, le=BLOCK_TXS_MAX)] = 5_000
    # 0 = no empty blocks: a height starts only when the mempool has work.
    empty_block_interval_ms: U64 = 0


class Genesis(Wire):
    chain_id: ChainId
    genesis_time_ms: U64
    validators: Annotated[list[ValidatorInfo], Meta(min_length=1, max_length=VALIDATORS_MAX)]
    consensus: ConsensusParams = msgspec.field(default_factory=ConsensusParams)
    initial_height: U64 = 1

    def __post_init__(self) -> None:
        if self.initial_height != 1:
            raise ValueError("`initial_height` must be 1")
        if len({v.public_key for v in self.validators}) != len(self.validators):
            raise ValueError("`validators` contains a public key twice")
        if len({v.name for v in self.validators}) != len(self.validators):
            raise ValueError("`validators` contains a name twice")
        if sum(v.power for v in self.validators) > TOTAL_VOTING_POWER_MAX:
            raise ValueError(f"total voting power exceeds {TOTAL_VOTING_POWER_MAX}")


# ---------------------------------------------------------------- batch commitment


class BatchCommitment(Wire):
    """The fields of an L1 batch commitment; the encoding adds the tag (ids.py)."""

    chain_id: ChainId
    batch_number: U64
    first_height: Height
    last_height: Height
    blocks_root: Bytes32
    last_commit_id: Bytes32

    def __post_init__(self) -> None:
        if self.last_height < self.first_height:
            raise ValueError("`last_height` must not be below `first_height`")


# ---------------------------------------------------------------- Merkle proofs


class InclusionProof(Wire):
    """RFC 6962 audit path: sibling hashes from the leaf up to the root."""

    index: U64
    size: U64
    path: Annotated[list[Bytes32], Meta(max_length=MERKLE_PATH_HASHES_MAX)]


# ---------------------------------------------------------------- namespace table


class NamespaceEntry(Wire, gc=False):
    """One row of a block's namespace table: a namespace with transactions in
    the block, how many, and the Merkle root over their ids in block order."""

    namespace: U64
    count: Annotated[int, Meta(ge=1, le=BLOCK_TXS_MAX)]
    ns_tx_root: Bytes32


class ProvenEntry(Wire):
    """A namespace table entry with its audit path against `namespace_root`."""

    entry: NamespaceEntry
    proof: InclusionProof


class NamespaceAbsence(Wire):
    """The two neighbours of an absent namespace in the table; None past an end."""

    left: ProvenEntry | None
    right: ProvenEntry | None


# ---------------------------------------------------------------- node records


class ChainTip(Wire):
    """The last finalized block as the store records it."""

    height: U64
    block_id: Bytes32
    state_root: Bytes32
    commit_id: Bytes32  # the next block's last_commit_id


class TxLocation(Wire):
    height: Height
    index: U32


class SignStep(IntEnum):
    NONE = 0
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


class SigningState(Wire):
    """What a validator must remember across restarts so it never equivocates.

    The last signed (height, round, step) with its block id and signature (to
    re-sign an identical request with the stored signature), and the
    Tendermint lock and valid value. Persisted and fsynced before a
    signature leaves the node.

    `polka` holds the prevotes that justified the lock and the valid value, and
    `valid_proposal` (with the certificate its block links to) the valid value
    itself: after a restart a locked node must be able to show the polka and
    re-propose the value, or peers that missed them could never accept the
    value it is locked on (L28), and the height would stall.
    """

    height: U64
    round: U64
    step: SignStep
    block_id: MaybeBytes32
    signature: MaybeBytes64
    locked_round: PolRound = -1
    locked_block_id: MaybeBytes32 = NIL
    valid_round: PolRound = -1
    valid_block_id: MaybeBytes32 = NIL
    polka: Annotated[list[Vote], Meta(max_length=2 * VALIDATORS_MAX)] = msgspec.field(
        default_factory=list
    )
    valid_proposal: Proposal | None = None
    valid_parent_certificate: CommitCertificate | None = None
    # The validator's own votes of the last few rounds of `height`, re-sent
    # after a restart: a peer that missed one could otherwise wait for it in
    # that round forever. (Absent in states written before it existed.)
    votes: Annotated[list[Vote], Meta(max_length=OWN_VOTES_MAX)] = msgspec.field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        for name in ("block_id", "locked_block_id", "valid_block_id"):
            _check_length(name, getattr(self, name), (0, 32))
        _check_length("signature", self.signature, (0, 64))
