/**
 * A block's namespace table and its proofs.
 *
 * The table has one entry `[namespace, count, ns_tx_root]` per namespace with
 * transactions in the block, in ascending namespace order; `namespace_root`
 * is the Merkle root over the encoded entries. A presence proof shows all of
 * one namespace's transactions; an absence proof shows the two neighbouring
 * entries, adjacent in the table, on either side of the namespace.
 */

import { ProofError } from "./errors.js";
import { bytesEqual } from "./hex.js";
import { encodeEntry, txId } from "./ids.js";
import { toU64 } from "./keys.js";
import { EMPTY_ROOT, inclusionProof, merkleRoot, verifyInclusion } from "./merkle.js";
import type { InclusionProof, NamespaceAbsence, NamespaceEntry, ProvenEntry, Transaction } from "./types.js";

/** The table of a block's transactions (in block order): its entries and root. */
export function namespaceTable(txs: readonly Transaction[]): { entries: NamespaceEntry[]; root: Uint8Array } {
  const ids = new Map<bigint, Uint8Array[]>();
  for (const tx of txs) {
    const list = ids.get(tx.namespace) ?? [];
    list.push(txId(tx));
    ids.set(tx.namespace, list);
  }
  const entries = [...ids.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((namespace) => {
      const list = ids.get(namespace)!;
      return { namespace, count: list.length, ns_tx_root: merkleRoot(list) };
    });
  return { entries, root: merkleRoot(entries.map(encodeEntry)) };
}

/** The audit path of entry `index` of `entries` in the table. */
export function entryProof(entries: readonly NamespaceEntry[], index: number): InclusionProof {
  return inclusionProof(entries.map(encodeEntry), index);
}

function checkEntry(proven: ProvenEntry, root: Uint8Array, side: string): void {
  if (!verifyInclusion(encodeEntry(proven.entry), proven.proof, root)) {
    throw new ProofError(
      "entry_not_in_table",
      `the ${side}entry of namespace ${proven.entry.namespace} is not in the table the header's namespace_root commits to`,
    );
  }
}

/**
 * `txs` are all of `namespace`'s transactions, in block order, in the block
 * whose header has `namespace_root == root`. Returns their tx ids
 * (recomputed); throws `ProofError`.
 */
export function verifyPresence(
  namespace_: bigint | number,
  root: Uint8Array,
  entry: NamespaceEntry,
  proof: InclusionProof,
  txs: readonly Transaction[],
): Uint8Array[] {
  const namespace = toU64("namespace", namespace_);
  if (entry.namespace !== namespace) {
    throw new ProofError("wrong_namespace", `the entry is for namespace ${entry.namespace}, not ${namespace}`);
  }
  checkEntry({ entry, proof }, root, "");
  if (entry.count !== txs.length) {
    throw new ProofError(
      "wrong_count",
      `the table says namespace ${namespace} has ${entry.count} transactions, the proof carries ${txs.length}`,
    );
  }
  txs.forEach((tx, position) => {
    if (tx.namespace !== namespace) {
      throw new ProofError(
        "tx_wrong_namespace",
        `transaction ${position} has namespace ${tx.namespace}, not ${namespace}`,
      );
    }
  });
  const ids = txs.map(txId);
  if (!bytesEqual(merkleRoot(ids), entry.ns_tx_root)) {
    throw new ProofError(
      "wrong_ns_tx_root",
      `the transactions of namespace ${namespace} (their ids, in this order) do not hash to the entry's ns_tx_root`,
    );
  }
  return ids;
}

/** The block whose header has `namespace_root == root` has no transaction of `namespace`; throws `ProofError`. */
export function verifyAbsence(namespace_: bigint | number, root: Uint8Array, absence: NamespaceAbsence): void {
  const namespace = toU64("namespace", namespace_);
  const { left, right } = absence;
  if (left === null && right === null) {
    if (!bytesEqual(root, EMPTY_ROOT)) {
      throw new ProofError("table_not_empty", "the proof claims an empty table, but namespace_root is not empty");
    }
    return;
  }
  if (left !== null) {
    checkEntry(left, root, "left ");
    if (!(left.entry.namespace < namespace)) {
      throw new ProofError(
        "left_not_below",
        `the left neighbour is namespace ${left.entry.namespace}, not below ${namespace}`,
      );
    }
  }
  if (right !== null) {
    checkEntry(right, root, "right ");
    if (!(namespace < right.entry.namespace)) {
      throw new ProofError(
        "right_not_above",
        `the right neighbour is namespace ${right.entry.namespace}, not above ${namespace}`,
      );
    }
  }
  if (left === null) {
    if (right!.proof.index !== 0n) {
      throw new ProofError("not_adjacent", "without a left neighbour the right one must be the first entry");
    }
  } else if (right === null) {
    if (left.proof.index !== left.proof.size - 1n) {
      throw new ProofError("not_adjacent", "without a right neighbour the left one must be the last entry");
    }
  } else if (left.proof.size !== right.proof.size || right.proof.index !== left.proof.index + 1n) {
    throw new ProofError("not_adjacent", "the two neighbours are not adjacent entries of one table");
  }
}
