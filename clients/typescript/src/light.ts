/**
 * The light client's checks, pure: what a node's answer must prove, with
 * genesis.json as the only thing trusted.
 *
 * A header must hash to its block id; the certificate must be valid for that
 * id with the genesis validators; tx ids must hash to `tx_root` (and served
 * transactions to those ids); a namespace's proof must reach
 * `namespace_root`; consecutive blocks must link (`parent_id`, and
 * `last_commit_id` naming a valid certificate of the parent). A field no
 * hash or signature covers is only used to ask for the next thing.
 *
 * Every failure is a `VerificationError`: `CertificateError` or `ProofError`,
 * whose `reason` names the rule; an answer that does not parse is a
 * `ProofError` with reason `malformed`.
 */

import { ValidatorSet, verifyCertificate } from "./certificate.js";
import { CertificateError, InputError, ProofError } from "./errors.js";
import { bytesEqual, fromHex, toHex } from "./hex.js";
import { blockId, commitId, txId, txRoot } from "./ids.js";
import { verifyInclusion } from "./merkle.js";
import { toU64 } from "./keys.js";
import { verifyAbsence, verifyPresence } from "./namespaces.js";
import {
  parseAbsence,
  parseCertificate,
  parseEntry,
  parseHeader,
  parseProof,
  parseTransaction,
  type BlockHeader,
  type CommitCertificate,
  type Genesis,
  type InclusionProof,
  type Transaction,
} from "./types.js";

/** What the light client trusts: a genesis file, nothing else. */
export class Trust {
  readonly genesis: Genesis;
  readonly chainId: string;
  readonly validators: ValidatorSet;

  constructor(genesis: Genesis) {
    this.genesis = genesis;
    this.chainId = genesis.chain_id;
    this.validators = new ValidatorSet(genesis);
  }
}

/** A finalized block as proven: header, id, certificate, and the tx ids (and txs, when served) under tx_root. */
export interface VerifiedBlock {
  height: bigint;
  header: BlockHeader;
  blockId: Uint8Array;
  certificate: CommitCertificate;
  txIds: Uint8Array[] | null;
  txs: Transaction[] | null;
}

/** All of one namespace's transactions in a finalized block (possibly none). */
export interface VerifiedNamespace {
  namespace: bigint;
  block: VerifiedBlock;
  txs: Transaction[];
  txIds: Uint8Array[];
}

type Answer = Record<string, unknown>;

function parsed<T>(parse: () => T, where: string): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InputError) throw new ProofError("malformed", `${where}: ${error.message}`);
    throw error;
  }
}

function asObject(answer: unknown, where: string): Answer {
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    throw new ProofError("malformed", `${where}: the answer is not an object`);
  }
  return answer as Answer;
}

function field(answer: Answer, name: string, where: string): unknown {
  if (!(name in answer)) throw new ProofError("malformed", `${where}: the answer has no \`${name}\``);
  return answer[name];
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new ProofError("malformed", `${where}: not a list`);
  return value;
}

function hex32(value: unknown, where: string): Uint8Array {
  if (typeof value === "string") {
    try {
      return fromHex(value, 32, where);
    } catch {
      // fall through to the one message below
    }
  }
  throw new ProofError("malformed", `${where}: not 32 bytes of hex`);
}

function headerAndCertificate(
  trust: Trust,
  answer: Answer,
  height: bigint | null,
  where: string,
): { header: BlockHeader; id: Uint8Array; certificate: CommitCertificate } {
  const header = parsed(() => parseHeader(field(answer, "header", where), "header"), where);
  if (header.chain_id !== trust.chainId) {
    throw new ProofError(
      "wrong_chain",
      `${where}: the header is of chain ${JSON.stringify(header.chain_id)}, not ${JSON.stringify(trust.chainId)}`,
    );
  }
  if (height !== null && header.height !== height) {
    throw new ProofError("wrong_height", `${where}: the header is of height ${header.height}`);
  }
  const id = blockId(header);
  if ("block_id" in answer && !bytesEqual(hex32(answer.block_id, `${where}: block_id`), id)) {
    throw new ProofError("wrong_block_id", `${where}: the header does not hash to the block_id served`);
  }
  const certificate = parsed(() => parseCertificate(field(answer, "certificate", where), "certificate"), where);
  try {
    verifyCertificate(certificate, trust.validators, trust.chainId, { height: header.height, blockId: id });
  } catch (error) {
    if (error instanceof CertificateError) {
      throw new CertificateError(error.reason, `${where}: the certificate: ${error.message}`);
    }
    throw error;
  }
  return { header, id, certificate };
}

/** A `GET /blocks/{h}` answer (or one item of `/blocks`, or an event of `/events`). */
export function verifyBlock(trust: Trust, answer: unknown, height: bigint | number | null): VerifiedBlock {
  return verifyBlockAt(trust, answer, height === null ? null : toU64("height", height));
}

function verifyBlockAt(trust: Trust, answer: unknown, height: bigint | null): VerifiedBlock {
  let where = `block ${height ?? "?"}`;
  const body = asObject(answer, where);
  const { header, id, certificate } = headerAndCertificate(trust, body, height, where);
  where = `block ${header.height}`;
  const ids = list(field(body, "tx_ids", where), `${where}: tx_ids`).map((h, i) => hex32(h, `${where}: tx_ids[${i}]`));
  if (!bytesEqual(txRoot(ids), header.tx_root)) {
    throw new ProofError("wrong_tx_root", `${where}: the tx_ids served do not hash to tx_root`);
  }
  let txs: Transaction[] | null = null;
  if (body.txs !== undefined && body.txs !== null) {
    txs = list(body.txs, `${where}: txs`).map((tx, i) => parsed(() => parseTransaction(tx, `txs[${i}]`), where));
    if (txs.length !== ids.length || txs.some((tx, i) => !bytesEqual(txId(tx), ids[i]!))) {
      throw new ProofError("wrong_txs", `${where}: the transactions served are not the ones tx_ids name`);
    }
  }
  return { height: header.height, header, blockId: id, certificate, txIds: ids, txs };
}

/** `id` is in `block` (already verified) at `proof.index`. */
export function checkInclusion(block: VerifiedBlock, id: Uint8Array, proof: InclusionProof): void {
  if (!verifyInclusion(id, proof, block.header.tx_root)) {
    throw new ProofError(
      "not_included",
      `transaction ${toHex(id)}: the audit path does not reach block ${block.height}'s tx_root`,
    );
  }
}

/** A `GET /namespaces/{N}/blocks/{h}` answer, or an event of `/events?namespace=N`. */
export function verifyNamespace(
  trust: Trust,
  answer: unknown,
  namespace_: bigint | number,
  height_: bigint | number | null,
): VerifiedNamespace {
  const namespace = toU64("namespace", namespace_);
  const height = height_ === null ? null : toU64("height", height_);
  let where = `namespace ${namespace} at height ${height ?? "?"}`;
  const body = asObject(answer, where);
  const { header, id, certificate } = headerAndCertificate(trust, body, height, where);
  where = `namespace ${namespace} at height ${header.height}`;
  const block: VerifiedBlock = { height: header.height, header, blockId: id, certificate, txIds: null, txs: null };
  const served = list(field(body, "txs", where), `${where}: txs`);
  const txs = served.map((item, i) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw new ProofError("malformed", `${where}: txs[${i}] is not an object`);
    }
    const { tx_id: _id, ...fields } = item as Answer;
    return parsed(() => parseTransaction(fields, `txs[${i}]`), where);
  });
  let ids: Uint8Array[];
  try {
    ids = namespaceProof(body, namespace, header.namespace_root, txs, where);
  } catch (error) {
    if (error instanceof ProofError && !error.message.startsWith(where)) {
      throw new ProofError(error.reason, `${where}: ${error.message}`);
    }
    throw error;
  }
  served.forEach((item, i) => {
    const claimed = (item as Answer).tx_id;
    if (claimed !== undefined && !bytesEqual(hex32(claimed, `${where}: txs[${i}].tx_id`), ids[i]!)) {
      throw new ProofError("wrong_tx_id", `${where}: txs[${i}] is not the transaction its tx_id names`);
    }
  });
  return { namespace, block, txs, txIds: ids };
}

function namespaceProof(
  answer: Answer,
  namespace: bigint,
  root: Uint8Array,
  txs: Transaction[],
  where: string,
): Uint8Array[] {
  const entry = answer.entry ?? null;
  const proof = answer.entry_proof ?? null;
  if (entry !== null || proof !== null) {
    return verifyPresence(
      namespace,
      root,
      parsed(() => parseEntry(entry, "entry"), where),
      parsed(() => parseProof(proof, "entry_proof"), where),
      txs,
    );
  }
  if (txs.length > 0) throw new ProofError("malformed", `${where}: transactions served without their entry`);
  const absence = parsed(() => parseAbsence(field(answer, "absence", where), "absence"), where);
  verifyAbsence(namespace, root, absence);
  return [];
}

/**
 * Checks that verified blocks form one chain, block after block.
 *
 * Each block must be the next height and name the previous one as parent,
 * and its `last_commit_id` must name a valid certificate of the previous
 * block. Honest validators may hold different valid certificates of one
 * block, and a node serves its own for its newest block until the next block
 * settles which one counts; so a `last_commit_id` naming none known yet is
 * settled by asking for the parent again: `link` returns false, pass the
 * fresh parent to `addCertificate`, then `link` again. Resuming from a stored
 * (height, block id) works the same way.
 */
export class Linker {
  height: bigint | null;
  blockId: Uint8Array | null;
  private commitIds: string[] = [];

  /** Empty, or resuming after a stored block: its height and block id, both. */
  constructor(height: bigint | number | null = null, blockId_: Uint8Array | null = null) {
    if ((height === null) !== (blockId_ === null)) {
      throw new InputError("a Linker resumes from a height and a block id, both or neither");
    }
    if (blockId_ !== null && !(blockId_ instanceof Uint8Array && blockId_.length === 32)) {
      throw new InputError("a block id is 32 bytes");
    }
    this.height = height === null ? null : toU64("height", height);
    this.blockId = blockId_;
  }

  /** Throws `ProofError` if `block` cannot follow; false if its parent's certificate is needed; true once linked. */
  link(block: VerifiedBlock): boolean {
    if (this.height !== null) {
      const where = `block ${block.height}`;
      if (block.height !== this.height + 1n) {
        throw new ProofError("not_next", `${where} does not follow block ${this.height}: heights skip`);
      }
      if (!bytesEqual(block.header.parent_id, this.blockId!)) {
        throw new ProofError(
          "wrong_parent",
          `${where}: parent_id ${toHex(block.header.parent_id)} is not block ${this.height}'s id ${toHex(this.blockId!)}`,
        );
      }
      if (!this.commitIds.includes(toHex(block.header.last_commit_id))) return false;
    }
    this.height = block.height;
    this.blockId = block.blockId;
    this.commitIds = [toHex(commitId(block.certificate))];
    return true;
  }

  /** The parent as the node serves it now (verified), to learn its certificate. */
  addCertificate(parent: VerifiedBlock): void {
    if (parent.height !== this.height || this.blockId === null || !bytesEqual(parent.blockId, this.blockId)) {
      throw new ProofError("wrong_parent", `block ${parent.height} ${toHex(parent.blockId)} is not the block followed`);
    }
    // Bounded: a node can name at most a few certificates of one block before it is caught.
    if (this.commitIds.length < 16) this.commitIds.push(toHex(commitId(parent.certificate)));
  }

  unsettled(block: VerifiedBlock): ProofError {
    return new ProofError(
      "wrong_last_commit",
      `block ${block.height}: last_commit_id ${toHex(block.header.last_commit_id)} names no valid certificate of block ${this.height} that the node serves`,
    );
  }
}
