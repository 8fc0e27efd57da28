/** Test helpers: a synthetic chain signed by real keys, built with the client's own encoders. */

import {
  Key,
  PRECOMMIT,
  blockId,
  commitId as commitIdOf,
  entryProof,
  genesisStateRoot,
  namespaceTable,
  stateRoot,
  toHex,
  transactionJson,
  txId,
  txRoot,
  voteSigningBytes,
  Wallet,
  utf8,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
  type Transaction,
} from "../src/index.js";

export const CHAIN = "devnet-1";
export const VALIDATOR_KEYS = [0, 1, 2, 3].map((i) => new Key(new Uint8Array(32).fill(100 + i)));

export function genesis(): Genesis {
  return {
    chain_id: CHAIN,
    genesis_time_ms: 0n,
    validators: VALIDATOR_KEYS.map((k, i) => ({ name: `node${i}`, public_key: k.publicKey, power: 1n, p2p: "", rpc: "" })),
    consensus: {
      timeout_propose_ms: 300n, timeout_propose_delta_ms: 100n, timeout_prevote_ms: 100n,
      timeout_prevote_delta_ms: 50n, timeout_precommit_ms: 100n, timeout_precommit_delta_ms: 50n,
      max_block_gas: 20_000_000n, max_block_txs: 5000, empty_block_interval_ms: 0n,
    },
    initial_height: 1n,
  };
}

export function certify(header: BlockHeader, signers = [0, 1, 2], round = header.round): CommitCertificate {
  const id = blockId(header);
  const message = voteSigningBytes(CHAIN, PRECOMMIT, header.height, round, id);
  return { height: header.height, round, block_id: id, signatures: signers.map((i) => [i, VALIDATOR_KEYS[i]!.sign(message)]) };
}

export function vectorKey(): Key {
  return new Key(Uint8Array.from({ length: 32 }, (_, i) => i));
}

/** The transactions of the spec's block vector. */
export function vectorTxs(): Transaction[] {
  const wallet = new Wallet(vectorKey(), CHAIN);
  return [
    wallet.sign({ nonce: 0n, payload: utf8("hello"), gasPrice: 10n, namespace: 7n }),
    wallet.sign({ nonce: 1n, payload: utf8("world"), gasPrice: 10n, namespace: 9n }),
    wallet.sign({ nonce: 2n, payload: utf8("!"), gasPrice: 10n, namespace: 7n }),
  ];
}

export interface Built {
  header: BlockHeader;
  txs: Transaction[];
}

/** A block of `txs` on top of `parent` (null: height 1), with honest roots. */
export function buildBlock(txs: Transaction[], parent: { header: BlockHeader; certificate: CommitCertificate } | null, timestamp = 1700000000000n): Built {
  const table = namespaceTable(txs);
  const next = new Map<string, [Uint8Array, bigint]>();
  for (const tx of txs) next.set(toHex(tx.sender), [tx.sender, tx.nonce + 1n]);
  const parentState = parent === null ? genesisStateRoot(CHAIN) : parent.header.state_root;
  const header: BlockHeader = {
    chain_id: CHAIN,
    height: parent === null ? 1n : parent.header.height + 1n,
    round: 0n,
    timestamp_ms: timestamp,
    parent_id: parent === null ? new Uint8Array(32) : blockId(parent.header),
    tx_root: txRoot(txs.map(txId)),
    namespace_root: table.root,
    state_root: stateRoot(parentState, [...next.values()]),
    proposer: 0,
    last_commit_id: parent === null ? new Uint8Array(32) : commitIdOf(parent.certificate),
  };
  return { header, txs };
}

function headerJson(h: BlockHeader): Record<string, unknown> {
  return {
    chain_id: h.chain_id, height: h.height, round: h.round, timestamp_ms: h.timestamp_ms,
    parent_id: toHex(h.parent_id), tx_root: toHex(h.tx_root), namespace_root: toHex(h.namespace_root),
    state_root: toHex(h.state_root), proposer: h.proposer, last_commit_id: toHex(h.last_commit_id),
  };
}

function certificateJson(c: CommitCertificate): Record<string, unknown> {
  return { height: c.height, round: c.round, block_id: toHex(c.block_id), signatures: c.signatures.map(([i, s]) => [i, toHex(s)]) };
}

/** A block as `GET /blocks/{h}?full=true` answers it. */
export function blockAnswer(block: Built, certificate: CommitCertificate): Record<string, unknown> {
  return {
    block_id: toHex(blockId(block.header)),
    header: headerJson(block.header),
    tx_ids: block.txs.map((tx) => toHex(txId(tx))),
    certificate: certificateJson(certificate),
    txs: block.txs.map(transactionJson),
  };
}

/** The namespace view, as `GET /namespaces/{N}/blocks/{h}` answers it. */
export function namespaceAnswer(block: Built, certificate: CommitCertificate, namespace: bigint): Record<string, unknown> {
  const { entries } = namespaceTable(block.txs);
  const entryJson = (i: number) => ({ namespace: entries[i]!.namespace, count: entries[i]!.count, ns_tx_root: toHex(entries[i]!.ns_tx_root) });
  const proofJson = (i: number) => {
    const p = entryProof(entries, i);
    return { index: p.index, size: p.size, path: p.path.map(toHex) };
  };
  const at = entries.findIndex((e) => e.namespace === namespace);
  const base = { namespace, height: block.header.height, block_id: toHex(blockId(block.header)), header: headerJson(block.header), certificate: certificateJson(certificate) };
  if (at >= 0) {
    const txs = block.txs.filter((tx) => tx.namespace === namespace).map((tx) => ({ ...transactionJson(tx), tx_id: toHex(txId(tx)) }));
    return { ...base, entry: entryJson(at), entry_proof: proofJson(at), txs, absence: null };
  }
  const right = entries.findIndex((e) => e.namespace > namespace);
  const r = right < 0 ? entries.length : right;
  const side = (i: number) => (i >= 0 && i < entries.length ? { entry: entryJson(i), proof: proofJson(i) } : null);
  return { ...base, entry: null, entry_proof: null, txs: [], absence: { left: side(r - 1), right: side(r) } };
}

/** A deep copy of a JSON answer, to tamper with. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}
