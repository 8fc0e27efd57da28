/**
 * RFC 6962 Merkle trees with BLAKE3: leaves hash `0x00 || item`, nodes
 * `0x01 || left || right`, the empty tree `blake3("")`; n > 1 items split at
 * the largest power of two below n.
 */

import { blake3 } from "@noble/hashes/blake3.js";

import { bytesEqual, concatBytes } from "./hex.js";
import type { InclusionProof } from "./types.js";

export const EMPTY_ROOT = blake3(new Uint8Array(0));

export function hash32(data: Uint8Array): Uint8Array {
  return blake3(data);
}

export function leafHash(item: Uint8Array): Uint8Array {
  return blake3(concatBytes(Uint8Array.of(0), item));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return blake3(concatBytes(Uint8Array.of(1), left, right));
}

/** The root over `items` (each hashed as a leaf). */
export function merkleRoot(items: readonly Uint8Array[]): Uint8Array {
  if (items.length === 0) return EMPTY_ROOT;
  let level = items.map(leafHash);
  while (level.length > 1) {
    // Pairing left to right, a last node without a partner moving up
    // unchanged, is the same tree as splitting at the largest power of two.
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/** The audit path of item `index` (for tests and for tools that build proofs). */
export function inclusionProof(items: readonly Uint8Array[], index: number): InclusionProof {
  if (!(Number.isInteger(index) && index >= 0 && index < items.length)) {
    throw new RangeError(`index ${index} is not in a tree of ${items.length}`);
  }
  const path: Uint8Array[] = [];
  let level = items.map(leafHash);
  let at = index;
  while (level.length > 1) {
    const sibling = at ^ 1;
    if (sibling < level.length) path.push(level[sibling]!);
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
    at >>= 1;
  }
  return { index: BigInt(index), size: BigInt(items.length), path };
}

/**
 * True iff `proof` shows `item` at `proof.index` in the tree of `proof.size`
 * items whose root is `root` (RFC 9162, 2.1.3.2: the path's length must fit
 * index and size, so the proof also fixes the size). Never throws.
 */
export function verifyInclusion(item: Uint8Array, proof: InclusionProof, root: Uint8Array): boolean {
  if (!(proof.index >= 0n && proof.index < proof.size)) return false;
  let fn = proof.index;
  let sn = proof.size - 1n;
  let node = leafHash(item);
  for (const sibling of proof.path) {
    if (sn === 0n || sibling.length !== 32) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      node = nodeHash(sibling, node);
      while (fn !== 0n && (fn & 1n) === 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      node = nodeHash(node, sibling);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && bytesEqual(node, root);
}
