"""Safety checks over the chains a devnet's nodes serve.

`fetch_blocks` reads a node's finalized blocks over RPC; `audit` takes every
node's blocks and the acknowledged transaction ids and counts:

- forks: heights at which two nodes hold different block ids;
- certificate problems: a certificate that is not a quorum of precommits
  for its block under the genesis validators, or a block that links to
  another certificate than the one served for its parent;
- conflicting signatures: a validator whose precommits, in any
  certificate any node holds, name two different blocks for one
  (height, round);
- lost: acknowledged transactions in no block; duplicated: transactions in
  more than one block position.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from node.ops.l1verify import ChainView, certificate_problems
from sequencer.certificate import ValidatorSet
from sequencer.codec import from_builtins
from sequencer.types import BlockHeader, CommitCertificate

__all__ = ["AuditReport", "NodeChain", "audit", "fetch_blocks"]

PAGE_BLOCKS = 100


@dataclasses.dataclass(frozen=True, slots=True)
class NodeChain:
    """One node's finalized blocks, heights 1..len."""

    block_ids: list[str]
    headers: list[BlockHeader]
    certificates: list[CommitCertificate]
    tx_ids: list[list[str]]

    @property
    def height(self) -> int:
        return len(self.block_ids)


def fetch_blocks(client: httpx.Client, rpc: str) -> NodeChain:
    tip = int(client.get(f"{rpc}/status").json()["height"])
    chain = NodeChain([], [], [], [])
    while chain.height < tip:
        page = client.get(
            f"{rpc}/blocks",
            params={"from": chain.height + 1, "limit": min(PAGE_BLOCKS, tip - chain.height)},
        ).json()["blocks"]
        if not page:
            break
        for block in page:
            _append(chain, block)
    return chain


def _append(chain: NodeChain, block: dict[str, Any]) -> None:
    chain.block_ids.append(block["block_id"])
    chain.headers.append(from_builtins(block["header"], BlockHeader))
    chain.certificates.append(from_builtins(block["certificate"], CommitCertificate))
    chain.tx_ids.append(list(block["tx_ids"]))


@dataclasses.dataclass
class AuditReport:
    heights: list[int]
    forks: int = 0
    certificate_problems: list[str] = dataclasses.field(default_factory=list)
    conflicting_signatures: int = 0
    finalized: int = 0  # distinct transactions in the longest chain
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.forks
            or self.certificate_problems
            or self.conflicting_signatures
            or self.lost
            or self.duplicated
            or self.problems
        )


def audit(
    chains: Sequence[NodeChain],
    chain_id: str,
    validators: ValidatorSet,
    acknowledged: Iterable[str],
) -> AuditReport:
    """Every check of the module doc over every node's chain."""
    report = AuditReport(heights=[c.height for c in chains])
    longest = max(chains, key=lambda c: c.height)
    for height in range(longest.height):
        ids = {c.block_ids[height] for c in chains if c.height > height}
        if len(ids) > 1:
            report.forks += 1
            report.problems.append(f"height {height + 1}: nodes hold {len(ids)} different blocks")
    for index, chain in enumerate(chains):
        view = ChainView(chain.headers, chain.certificates)
        for problem in certificate_problems(view, chain_id, validators):
            report.certificate_problems.append(f"node {index}: {problem}")
    report.conflicting_signatures = _conflicting_signatures(chains, report.problems)
    counts = Counter(id_ for ids in longest.tx_ids for id_ in ids)
    report.finalized = len(counts)
    report.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    lost = [id_ for id_ in acknowledged if id_ not in counts]
    report.lost = len(lost)
    report.problems += [f"acknowledged, never finalized: {id_}" for id_ in lost[:10]]
    return report


def _conflicting_signatures(chains: Sequence[NodeChain], problems: list[str]) -> int:
    """(validator, height, round) precommits naming more than one block."""
    signed: defaultdict[tuple[int, int, int], set[bytes]] = defaultdict(set)
    for chain in chains:
        for certificate in chain.certificates:
            for validator, _signature in certificate.signatures:
                signed[(validator, certificate.height, certificate.round)].add(certificate.block_id)
    conflicts = [key for key, ids in signed.items() if len(ids) > 1]
    problems += [f"validator {v} precommitted two blocks at {h}/{r}" for v, h, r in conflicts]
    return len(conflicts)
