/**
 * Identifiers and signing bytes: what wallets and rollups recompute. Each
 * structure is the msgpack array of its fields in protocol order, and each
 * id is BLAKE3-256 of that encoding.
 */

import { compareBytes } from "./hex.js";
import { hash32, merkleRoot } from "./merkle.js";
import { pack } from "./msgpack.js";
import type { BlockHeader, CommitCertificate, NamespaceEntry, Transaction, UnsignedTransaction } from "./types.js";

export const TX_TAG = "seq/tx/v1";
export const VOTE_TAG = "seq/vote/v1";
export const PROPOSAL_TAG = "seq/proposal/v1";
export const BATCH_TAG = "seq/batch/v1";
export const PREVOTE = 1;
export const PRECOMMIT = 2;
export const GAS_PER_TX = 1000n;
export const GAS_PER_PAYLOAD_BYTE = 16n;

export function txSigningBytes(tx: UnsignedTransaction): Uint8Array {
  return pack([TX_TAG, tx.chain_id, tx.namespace, tx.sender, tx.nonce, tx.gas_price, tx.payload]);
}

export function encodeTransaction(tx: Transaction): Uint8Array {
  return pack([tx.chain_id, tx.namespace, tx.sender, tx.nonce, tx.gas_price, tx.payload, tx.signature]);
}

export function txId(tx: Transaction): Uint8Array {
  return hash32(encodeTransaction(tx));
}

export function gas(tx: { payload: Uint8Array }): bigint {
  return GAS_PER_TX + GAS_PER_PAYLOAD_BYTE * BigInt(tx.payload.length);
}

/** The Merkle root over a block's tx ids, in block order. */
export function txRoot(txIds: readonly Uint8Array[]): Uint8Array {
  return merkleRoot(txIds);
}

export function encodeHeader(h: BlockHeader): Uint8Array {
  return pack([
    h.chain_id, h.height, h.round, h.timestamp_ms, h.parent_id, h.tx_root,
    h.namespace_root, h.state_root, h.proposer, h.last_commit_id,
  ]);
}

export function blockId(header: BlockHeader): Uint8Array {
  return hash32(encodeHeader(header));
}

export function encodeCertificate(c: CommitCertificate): Uint8Array {
  return pack([c.height, c.round, c.block_id, c.signatures.map(([index, sig]) => [index, sig])]);
}

/** The id the next block's `last_commit_id` names. */
export function commitId(certificate: CommitCertificate): Uint8Array {
  return hash32(encodeCertificate(certificate));
}

/** `block_id` is empty for a nil vote. */
export function voteSigningBytes(
  chainId: string, kind: number, height: bigint, round: bigint, blockId_: Uint8Array,
): Uint8Array {
  return pack([VOTE_TAG, chainId, kind, height, round, blockId_]);
}

export function proposalSigningBytes(
  chainId: string, height: bigint, round: bigint, polRound: bigint, blockId_: Uint8Array,
): Uint8Array {
  return pack([PROPOSAL_TAG, chainId, height, round, polRound, blockId_]);
}

export function encodeEntry(entry: NamespaceEntry): Uint8Array {
  return pack([entry.namespace, entry.count, entry.ns_tx_root]);
}

export function genesisStateRoot(chainId: string): Uint8Array {
  const tag = new TextEncoder().encode("seq/genesis/" + chainId);
  return hash32(tag);
}

/** The state root after a block: the parent's chained with the senders it changed and their next nonces. */
export function stateRoot(parent: Uint8Array, nextNonces: ReadonlyArray<[Uint8Array, bigint]>): Uint8Array {
  const pairs = [...nextNonces].sort((a, b) => compareBytes(a[0], b[0]));
  const encoded = pack(pairs.map(([sender, nonce]) => [sender, nonce]));
  const out = new Uint8Array(parent.length + encoded.length);
  out.set(parent);
  out.set(encoded, parent.length);
  return hash32(out);
}

export interface BatchCommitment {
  chain_id: string;
  batch_number: bigint;
  first_height: bigint;
  last_height: bigint;
  blocks_root: Uint8Array;
  last_commit_id: Uint8Array;
}

/** The bytes posted to L1 for a batch. */
export function encodeBatch(b: BatchCommitment): Uint8Array {
  return pack([BATCH_TAG, b.chain_id, b.batch_number, b.first_height, b.last_height, b.blocks_root, b.last_commit_id]);
}

export function batchCommitment(b: BatchCommitment): Uint8Array {
  return hash32(encodeBatch(b));
}
