"""`sequencer l1 verify`: check the L1 against the chain a node serves.

Reads every batch commitment from the L1 (`file:PATH` or `ethereum:URL`),
fetches the blocks and certificates from the node's RPC, checks each
certificate against the genesis validators (a genesis file, or the node's
`/validators` when none is given), recomputes every commitment and reports
contiguity (batch numbers and heights without gap or overlap) and any
mismatch. Exit status 0 when everything checks, 1 otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import trio

from sequencer.batcher import VerifyReport, check_batches
from sequencer.certificate import ValidatorSet, verify_certificate
from sequencer.codec import from_builtins
from sequencer.errors import CertificateError, SequencerError
from sequencer.genesis import load_genesis
from sequencer.ids import block_id, commit_id
from sequencer.l1.base import PostedBatch
from sequencer.types import BlockHeader, CommitCertificate, ValidatorInfo

__all__ = ["ChainView", "verify_l1"]

PAGE_BLOCKS = 100


@dataclasses.dataclass
class ChainView:
    """Headers and canonical certificates of heights 1..tip, fetched once."""

    headers: list[BlockHeader]
    certificates: list[CommitCertificate]

    @property
    def tip(self) -> int:
        return len(self.headers)

    def lookup(self, height: int) -> tuple[bytes, bytes]:
        """(block_id, commit id of the canonical certificate) for `check_batches`."""
        header = self.headers[height - 1]
        if height < self.tip:
            canonical = self.headers[height].last_commit_id
        else:
            canonical = commit_id(self.certificates[height - 1])
        return block_id(header), canonical


def fetch_chain(rpc: str) -> ChainView:
    headers: list[BlockHeader] = []
    certificates: list[CommitCertificate] = []
    with httpx.Client(base_url=rpc, timeout=30) as client:
        tip = int(_get(client, "/status")["height"])
        while len(headers) < tip:
            page = _get(client, f"/blocks?from={len(headers) + 1}&limit={PAGE_BLOCKS}")
            for block in page["blocks"]:
                headers.append(from_builtins(block["header"], BlockHeader))
                certificates.append(from_builtins(block["certificate"], CommitCertificate))
            if not page["blocks"]:
                break
    return ChainView(headers, certificates)


def _get(client: httpx.Client, path: str) -> Any:
    try:
        response = client.get(path)
    except httpx.HTTPError as error:
        raise SequencerError(f"cannot read {client.base_url}{path}: {error}") from None
    if response.status_code != 200:
        raise SequencerError(f"{client.base_url}{path}: HTTP {response.status_code}")
    return response.json()


def validators_of(rpc: str, genesis: Path | None) -> tuple[str, ValidatorSet]:
    if genesis is not None:
        loaded = load_genesis(genesis)
        return loaded.chain_id, ValidatorSet.from_genesis(loaded)
    with httpx.Client(base_url=rpc, timeout=30) as client:
        body = _get(client, "/validators")
    infos = [
        from_builtins({k: v for k, v in entry.items() if k != "index"}, ValidatorInfo)
        for entry in body["validators"]
    ]
    return body["chain_id"], ValidatorSet(infos)


def certificate_problems(
    chain: ChainView, chain_id: str, validators: ValidatorSet
) -> Iterator[str]:
    """Every certificate must be a quorum for its block; every block must link
    to the certificate the node serves for its parent."""
    for height, (header, certificate) in enumerate(
        zip(chain.headers, chain.certificates, strict=True), start=1
    ):
        if certificate.block_id != block_id(header):
            yield f"height {height}: the certificate is for another block"
        try:
            verify_certificate(certificate, validators, chain_id=chain_id)
        except CertificateError as error:
            yield f"height {height}: certificate does not verify: {error}"
        if height < chain.tip and chain.headers[height].last_commit_id != commit_id(certificate):
            yield f"height {height}: the next block links to another certificate"


async def read_l1(
    spec: str, chain_id: str, sender: str | None, inbox: str | None
) -> list[PostedBatch]:
    kind, _, where = spec.partition(":")
    if kind == "file" and where:
        from sequencer.l1.file import FileSink

        sink: Any = FileSink(Path(where), chain_id)
    elif kind == "ethereum" and where:
        from sequencer.l1.ethereum import EthereumSink

        if not (sender and inbox):
            raise SequencerError("--l1 ethereum:URL needs --sender and --inbox")
        sink = EthereumSink.reader(where, sender, inbox, chain_id)
    else:
        raise SequencerError(f"--l1 must be file:PATH or ethereum:URL, got {spec!r}")
    try:
        # A batch number found twice on the L1 must be reported, not hidden.
        return [*await sink.posted(), *getattr(sink, "duplicates", [])]
    finally:
        await sink.aclose()


def verify_l1(
    rpc: str, l1: str, genesis: Path | None, sender: str | None = None, inbox: str | None = None
) -> tuple[VerifyReport, list[str], int]:
    """(report on the batches, certificate problems, tip height)."""
    chain_id, validators = validators_of(rpc, genesis)
    chain = fetch_chain(rpc)
    posted = trio.run(read_l1, l1, chain_id, sender, inbox)
    report = check_batches(posted, chain.lookup, chain.tip, chain_id=chain_id)
    return report, list(certificate_problems(chain, chain_id, validators)), chain.tip


def print_report(report: VerifyReport, certificate_issues: list[str], tip: int) -> int:
    print(f"chain        {report.chain_id}, finalized height {tip}")
    print(f"batches      {report.batch_count} on the L1")
    print(f"covered      heights 1..{report.covered_height} without gap or overlap")
    print(f"verified     heights 1..{report.verified_height} recomputed and matching")
    waiting = tip - report.covered_height
    if waiting > 0:
        print(
            f"not yet      heights {report.covered_height + 1}..{tip} (batched once final "
            "with a successor, within max_age)"
        )
    for problem in report.problems:
        print(f"PROBLEM      batch {problem.batch_number}: {problem.issue}: {problem.message}")
    for issue in certificate_issues:
        print(f"PROBLEM      {issue}")
    ok = report.ok and not certificate_issues
    print("result       " + ("ok" if ok else "FAILED"))
    return 0 if ok else 1
