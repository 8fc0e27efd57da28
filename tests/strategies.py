"""Hypothesis strategies for every wire structure (valid by construction), and
`mutated`, which spoils valid encodings the way a hostile peer would."""

from __future__ import annotations

from hypothesis import strategies as st

from sequencer.limits import BLOCK_TXS_MAX, U32_MAX, U64_MAX
from sequencer.types import (
    BatchCommitment,
    Block,
    BlockHeader,
    ChainTip,
    CommitCertificate,
    ConsensusParams,
    Genesis,
    InclusionProof,
    NamespaceAbsence,
    NamespaceEntry,
    Proposal,
    ProvenEntry,
    SigningState,
    SignStep,
    Transaction,
    TxLocation,
    ValidatorInfo,
    Vote,
    VoteKind,
)

u64 = st.integers(0, U64_MAX)
u32 = st.integers(0, U32_MAX)
heights = st.integers(1, U64_MAX)
pol_rounds = st.integers(-1, U64_MAX)
bytes32 = st.binary(min_size=32, max_size=32)
bytes64 = st.binary(min_size=64, max_size=64)
maybe_id = st.one_of(st.just(b""), bytes32)
chain_ids = st.text(min_size=1, max_size=64)
names = st.text(min_size=1, max_size=64)
addresses = st.text(max_size=256)

transactions = st.builds(
    Transaction, chain_ids, u64, bytes32, u64, u64, st.binary(max_size=256), bytes64
)
headers = st.builds(
    BlockHeader, chain_ids, heights, u64, u64, bytes32, bytes32, bytes32, bytes32, u32, bytes32
)
blocks = st.builds(Block, headers, st.lists(transactions, max_size=4))
votes = st.builds(Vote, chain_ids, st.sampled_from(VoteKind), heights, u64, maybe_id, u32, bytes64)
proposals = st.builds(Proposal, chain_ids, heights, u64, pol_rounds, bytes32, u32, bytes64, blocks)
certificates = st.builds(
    CommitCertificate, heights, u64, bytes32, st.lists(st.tuples(u32, bytes64), max_size=8)
)
consensus_params = st.builds(
    ConsensusParams,
    u64,
    u64,
    u64,
    u64,
    u64,
    u64,
    st.integers(1000, U64_MAX),
    st.integers(1, 65_536),
    u64,
)
validator_infos = st.builds(
    ValidatorInfo, names, bytes32, st.integers(1, 2**50), addresses, addresses
)
geneses = st.builds(
    Genesis,
    chain_ids,
    u64,
    st.lists(
        validator_infos,
        min_size=1,
        max_size=8,
        unique_by=(lambda v: v.public_key, lambda v: v.name),
    ),
    consensus_params,
)


@st.composite
def batch_commitments(draw: st.DrawFn) -> BatchCommitment:
    first = draw(heights)
    last = draw(st.integers(first, U64_MAX))
    return BatchCommitment(draw(chain_ids), draw(u64), first, last, draw(bytes32), draw(bytes32))


inclusion_proofs = st.builds(InclusionProof, u64, u64, st.lists(bytes32, max_size=64))
namespace_entries = st.builds(
    NamespaceEntry, u64, st.integers(min_value=1, max_value=BLOCK_TXS_MAX), bytes32
)
proven_entries = st.builds(ProvenEntry, namespace_entries, inclusion_proofs)
namespace_absences = st.builds(
    NamespaceAbsence, st.none() | proven_entries, st.none() | proven_entries
)
chain_tips = st.builds(ChainTip, u64, bytes32, bytes32, bytes32)
tx_locations = st.builds(TxLocation, heights, u32)
signing_states = st.builds(
    SigningState,
    u64,
    u64,
    st.sampled_from(SignStep),
    maybe_id,
    st.one_of(st.just(b""), bytes64),
    pol_rounds,
    maybe_id,
    pol_rounds,
    maybe_id,
    st.lists(votes, max_size=3),
    st.none() | proposals,
    st.none() | certificates,
)

# (strategy, type) for every structure of the domain model.
ALL_STRUCTURES = [
    (transactions, Transaction),
    (headers, BlockHeader),
    (blocks, Block),
    (votes, Vote),
    (proposals, Proposal),
    (certificates, CommitCertificate),
    (validator_infos, ValidatorInfo),
    (consensus_params, ConsensusParams),
    (geneses, Genesis),
    (batch_commitments(), BatchCommitment),
    (inclusion_proofs, InclusionProof),
    (namespace_entries, NamespaceEntry),
    (proven_entries, ProvenEntry),
    (namespace_absences, NamespaceAbsence),
    (chain_tips, ChainTip),
    (tx_locations, TxLocation),
    (signing_states, SigningState),
]


# Typical msgpack length headers claiming far more than follows.
HUGE_HEADERS = [
    b"\xdd\xff\xff\xff\xff",  # array32 of 4G items
    b"\xdc\xff\xff",  # array16 of 65,535
    b"\xc6\xff\xff\xff\xff",  # bin32 of 4 GiB
    b"\xdb\x7f\xff\xff\xff",  # str32 of 2 GiB
    b"\xcf" + b"\xff" * 8,  # u64 max
    b"\xd3\x80" + bytes(7),  # i64 min
    b"\xca\x7f\xc0\x00\x00",  # float32 NaN
    b"\xc1",  # never used
]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few bit flips, cuts, insertions or overwritten spans."""
    raw = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "overwrite", "extend"]))
        position = draw(st.integers(0, max(0, len(raw) - 1)))
        if action == "flip" and raw:
            raw[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del raw[position:]
        elif action == "insert":
            raw[position:position] = draw(st.binary(min_size=1, max_size=9))
        elif action == "overwrite":
            huge = draw(st.sampled_from(HUGE_HEADERS))
            raw[position : position + len(huge)] = huge
        else:
            raw += draw(st.binary(min_size=1, max_size=32))
    return bytes(raw)
