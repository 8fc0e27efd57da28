"""Byzantine validators: a real host whose network port lies.

A byzantine node runs the same host as an honest one (so it is timely and
knows what the others do); its port rewrites, multiplies or drops what the
host sends, signing whatever it likes with its own key. Relayed votes of
other validators pass untouched (dropping them gains nothing the network's
loss does not already test). Behaviours (`scenario.BEHAVIOURS`):

    equivocate  per (height, round) the honest nodes are split in two halves
                (shared by all byzantine validators): half A gets the real
                proposal and votes for it, half B another block (or nil)
    silent      sends nothing and serves nothing
    nil         votes nil, always
    lying_pol   its proposals name a proof-of-lock round no polka backs
    invalid     proposes blocks that do not apply (state root, a transaction
                signature, the parent)
    subset      sends its proposals to a few nodes only
    spam        with each vote: far-round, far-height and next-height votes,
                and votes forged for other validators
    lying_sync  claims far heights (to be asked for blocks), and serves catch-up
                with tampered certificates, swapped bodies, invented heights,
                or nothing
    crowd       floods many distinct proposals per round, the real one last
"""

from __future__ import annotations

import random

import msgspec

from consensus.blocks import block_namespace_root
from consensus.messages import ProposalMessage
from consensus.sim.node import HonestPort, SimNode, World
from consensus.sync import RawSyncResponse, SyncRequest, SyncResponse
from sequencer.codec import decode, encode
from sequencer.crypto import proposal_signing_bytes, vote_signing_bytes
from sequencer.ids import block_id, tx_id, tx_root
from sequencer.types import NIL, Block, CommitCertificate, Transaction, Vote

__all__ = ["Adversary", "ByzantinePort"]

FAR_HEIGHT_MAX = 2**62
CROWD_PROPOSALS = 6


class Adversary:
    """What the byzantine validators share: the halves they split the honest
    nodes into, and the two values of each (height, round) they equivocated on."""

    def __init__(self, sim: World, rng: random.Random) -> None:
        self._sim = sim
        self._rng = rng
        self._halves: dict[tuple[int, int], frozenset[int]] = {}
        self.values: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self.seen: dict[tuple[int, int], bytes] = {}

    def half_b(self, height: int, round: int) -> frozenset[int]:
        key = (height, round)
        if key not in self._halves:
            honest = sorted(self._sim.honest_nodes)
            self._halves[key] = frozenset(self._rng.sample(honest, len(honest) // 2))
        return self._halves[key]


class ByzantinePort(HonestPort):
    def __init__(self, node: SimNode, behaviour: str, adversary: Adversary) -> None:
        super().__init__(node)
        self.behaviour = behaviour
        self._adversary = adversary
        self._rng = random.Random(f"byzantine:{node.sim.scenario.seed}:{node.index}")

    # ---------------------------------------------------------------- sending

    def _to(self, destination: int, message: object) -> None:
        self.node.sim.network.send(self.node.index, destination, message)

    def _others(self) -> list[int]:
        return [d for d in range(self.node.sim.network.size) if d != self.node.index]

    def _everyone(self, message: object) -> None:
        self.node.sim.network.broadcast(self.node.index, message)

    def broadcast_votes(self, votes: list[Vote]) -> None:
        """Re-sent votes go out as they are (its own included): the behaviours
        act on first sends, where they can mislead."""
        self.node.port_call()
        if self.behaviour != "silent":
            self.node.sim.network.broadcast_fresh(self.node.index, votes)

    def broadcast(self, message: ProposalMessage | Vote) -> None:
        self.node.port_call()
        if self.behaviour == "silent":
            return
        if isinstance(message, Vote) and message.validator != self.node.index:
            self._everyone(message)  # a relay
            return
        handler = getattr(self, f"_{self.behaviour}", None)
        if handler is None:
            self._everyone(message)
        else:
            handler(message)

    def send(self, peer: object, message: SyncRequest | RawSyncResponse) -> None:
        self.node.port_call()
        assert isinstance(peer, int)
        if self.behaviour == "silent":
            return
        if self.behaviour == "lying_sync" and isinstance(message, RawSyncResponse):
            self._to(peer, self._lie(message))
            return
        self._to(peer, message)

    # ---------------------------------------------------------------- signing

    def _vote(self, vote: Vote, **changes: object) -> Vote:
        changed = msgspec.structs.replace(vote, **changes)
        signature = self.node.key.sign(
            vote_signing_bytes(
                changed.chain_id, changed.kind, changed.height, changed.round, changed.block_id
            )
        )
        return msgspec.structs.replace(changed, signature=signature)

    def _proposal(
        self, message: ProposalMessage, block: Block | None = None, pol_round: int | None = None
    ) -> ProposalMessage:
        p = message.proposal
        block = p.block if block is None else block
        pol = p.pol_round if pol_round is None else pol_round
        value = block_id(block.header)
        signature = self.node.key.sign(
            proposal_signing_bytes(p.chain_id, p.height, p.round, pol, value)
        )
        proposal = msgspec.structs.replace(
            p, pol_round=pol, block_id=value, signature=signature, block=block
        )
        return ProposalMessage(proposal, message.parent_certificate)

    def _variant(self, message: ProposalMessage, bump: int) -> ProposalMessage:
        """The same block with another timestamp: a different value."""
        block = message.proposal.block
        header = msgspec.structs.replace(
            block.header, timestamp_ms=block.header.timestamp_ms + bump
        )
        return self._proposal(message, Block(header, block.txs))

    # ---------------------------------------------------------------- behaviours

    def _equivocate(self, message: ProposalMessage | Vote) -> None:
        adversary = self._adversary
        if isinstance(message, ProposalMessage):
            p = message.proposal
            other = self._variant(message, 1)
            adversary.values[(p.height, p.round)] = (p.block_id, other.proposal.block_id)
            self._split(p.height, p.round, message, other)
            return
        key = (message.height, message.round)
        a, b = adversary.values.get(key, (adversary.seen.get(key, message.block_id), NIL))
        self._split(
            message.height,
            message.round,
            self._vote(message, block_id=a),
            self._vote(message, block_id=b),
        )

    def _split(self, height: int, round: int, a: object, b: object) -> None:
        half_b = self._adversary.half_b(height, round)
        for destination in self._others():
            self._to(destination, b if destination in half_b else a)

    def _nil(self, message: ProposalMessage | Vote) -> None:
        if isinstance(message, Vote):
            message = self._vote(message, block_id=NIL) if message.block_id != NIL else message
        self._everyone(message)

    def _lying_pol(self, message: ProposalMessage | Vote) -> None:
        if isinstance(message, ProposalMessage) and message.proposal.round > 0:
            lie = self._rng.randrange(message.proposal.round)
            message = self._proposal(self._variant(message, 2), pol_round=lie)
        self._everyone(message)

    def _invalid(self, message: ProposalMessage | Vote) -> None:
        if isinstance(message, ProposalMessage):
            message = self._proposal(message, self._invalid_block(message.proposal.block))
        self._everyone(message)

    def _invalid_block(self, block: Block) -> Block:
        header = block.header
        kind = self._rng.choice(("state_root", "namespace_root", "tx_signature", "parent"))
        if kind == "state_root":
            return Block(
                msgspec.structs.replace(header, state_root=self._rng.randbytes(32)), block.txs
            )
        if kind == "namespace_root":
            return Block(
                msgspec.structs.replace(header, namespace_root=self._rng.randbytes(32)), block.txs
            )
        if kind == "parent":
            return Block(
                msgspec.structs.replace(header, parent_id=self._rng.randbytes(32)), block.txs
            )
        sim = self.node.sim
        tx = sim.transaction(0, self.node.disk.next_nonce(sim.senders[0]))
        forged: Transaction = msgspec.structs.replace(tx, signature=self._rng.randbytes(64))
        txs = [forged]
        ids = [tx_id(t) for t in txs]
        header = msgspec.structs.replace(
            header, tx_root=tx_root(ids), namespace_root=block_namespace_root(txs, ids)
        )
        return Block(header, txs)

    def _subset(self, message: ProposalMessage | Vote) -> None:
        if isinstance(message, Vote):
            self._everyone(message)
            return
        others = self._others()
        for destination in self._rng.sample(others, self._rng.randint(1, max(1, len(others) // 2))):
            self._to(destination, message)

    def _crowd(self, message: ProposalMessage | Vote) -> None:
        if isinstance(message, ProposalMessage):
            for bump in range(1, CROWD_PROPOSALS + 1):
                self._everyone(self._variant(message, 10 + bump))
        self._everyone(message)

    def _spam(self, message: ProposalMessage | Vote) -> None:
        self._everyone(message)
        if not isinstance(message, Vote):
            return
        rng = self._rng
        junk = [
            self._vote(message, round=message.round + rng.randint(40, 10**6)),
            self._vote(message, height=message.height + rng.randint(2, FAR_HEIGHT_MAX)),
            self._vote(message, height=message.height + 1, round=rng.randint(0, 64)),
        ]
        other = rng.randrange(len(self.node.sim.validators))
        forged = msgspec.structs.replace(
            message, validator=other, round=message.round + rng.randint(40, 1_000)
        )
        junk.append(forged)  # signed by us, claimed for another: must not verify
        for vote in junk:
            self._everyone(vote)

    def _lying_sync(self, message: ProposalMessage | Vote) -> None:
        """Consensus as usual, plus a signed vote at a far height now and then:
        a liar wants to be asked for blocks."""
        self._everyone(message)
        if isinstance(message, Vote) and self._rng.random() < 0.3:
            far = message.height + self._rng.randint(2, 10**6)
            self._everyone(self._vote(message, height=far))

    def _lie(self, raw: RawSyncResponse) -> SyncResponse | RawSyncResponse:
        response = decode(encode(raw), SyncResponse)
        if not response.blocks:
            return raw
        rng = self._rng
        blocks = list(response.blocks)
        kind = rng.choice(("certificate", "body", "invent", "empty", "truncate"))
        index = rng.randrange(len(blocks))
        block, certificate = blocks[index]
        if kind == "certificate":
            blocks[index] = (
                block,
                CommitCertificate(
                    certificate.height,
                    certificate.round,
                    certificate.block_id,
                    certificate.signatures[:1],
                ),
            )
        elif kind == "body":
            tx = self.node.sim.transaction(1, 10**6)
            blocks[index] = (Block(block.header, [tx]), certificate)
        elif kind == "invent":
            last, last_certificate = blocks[-1]
            for step in range(1, rng.randint(2, 20)):
                header = msgspec.structs.replace(
                    last.header, height=last.header.height + step, parent_id=rng.randbytes(32)
                )
                blocks.append((Block(header, []), last_certificate))
        elif kind == "empty":
            blocks = []
        else:
            blocks = blocks[: index + 1]
        return SyncResponse(response.parent_certificate, blocks)
