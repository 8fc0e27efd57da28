/**
 * The protocol's structures, and their strict parsers from JSON.
 *
 * Integers of 64 bits are bigints; validator indices and counts (32 bits at
 * most) are numbers. Byte strings are `Uint8Array`, written in JSON as
 * lowercase hex. A parser takes an already parsed JSON value (see
 * `parseJson`), checks every field the way the node's decoder does (types,
 * ranges, lengths, no unknown field) and throws `InputError` naming the path
 * of the first field that is wrong.
 */

import { InputError } from "./errors.js";
import { fromHex, toHex } from "./hex.js";

export const U32_MAX = 2 ** 32 - 1;
export const U64_MAX = (1n << 64n) - 1n;
export const CHAIN_ID_CHARS_MAX = 64;
export const TX_PAYLOAD_BYTES_MAX = 1024 * 1024;
export const BLOCK_TXS_MAX = 65_536;
export const VALIDATORS_MAX = 1_024;
export const TOTAL_VOTING_POWER_MAX = 1n << 60n;
export const NAME_CHARS_MAX = 64;
export const ADDRESS_CHARS_MAX = 256;
export const MERKLE_PATH_HASHES_MAX = 64;

/** What a sender signs: a transaction without its signature. */
export interface UnsignedTransaction {
  chain_id: string;
  namespace: bigint;
  sender: Uint8Array;
  nonce: bigint;
  gas_price: bigint;
  payload: Uint8Array;
}

export interface Transaction extends UnsignedTransaction {
  signature: Uint8Array;
}

export interface BlockHeader {
  chain_id: string;
  height: bigint;
  round: bigint;
  timestamp_ms: bigint;
  parent_id: Uint8Array;
  tx_root: Uint8Array;
  namespace_root: Uint8Array;
  state_root: Uint8Array;
  proposer: number;
  last_commit_id: Uint8Array;
}

/** The quorum certificate that finalizes a block: [validator index, precommit signature] pairs. */
export interface CommitCertificate {
  height: bigint;
  round: bigint;
  block_id: Uint8Array;
  signatures: Array<[number, Uint8Array]>;
}

/** An RFC 6962 audit path, siblings from the leaf up. */
export interface InclusionProof {
  index: bigint;
  size: bigint;
  path: Uint8Array[];
}

export interface NamespaceEntry {
  namespace: bigint;
  count: number;
  ns_tx_root: Uint8Array;
}

export interface ProvenEntry {
  entry: NamespaceEntry;
  proof: InclusionProof;
}

export interface NamespaceAbsence {
  left: ProvenEntry | null;
  right: ProvenEntry | null;
}

export interface ValidatorInfo {
  name: string;
  public_key: Uint8Array;
  power: bigint;
  p2p: string;
  rpc: string;
}

export interface ConsensusParams {
  timeout_propose_ms: bigint;
  timeout_propose_delta_ms: bigint;
  timeout_prevote_ms: bigint;
  timeout_prevote_delta_ms: bigint;
  timeout_precommit_ms: bigint;
  timeout_precommit_delta_ms: bigint;
  max_block_gas: bigint;
  max_block_txs: number;
  empty_block_interval_ms: bigint;
}

export interface Genesis {
  chain_id: string;
  genesis_time_ms: bigint;
  validators: ValidatorInfo[];
  consensus: ConsensusParams;
  initial_height: bigint;
}

// ------------------------------------------------------------------ field readers

type Json = Record<string, unknown>;

function fail(path: string, problem: string): never {
  throw new InputError(`${path}: ${problem}`);
}

function object(value: unknown, path: string, required: string[], optional: string[] = []): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(path, "expected an object");
  }
  const known = new Set([...required, ...optional]);
  for (const key of Object.keys(value)) {
    if (!known.has(key)) fail(`${path}.${key}`, "unknown field");
  }
  for (const key of required) {
    if (!(key in value)) fail(path, `missing field \`${key}\``);
  }
  return value as Json;
}

function integer(value: unknown, path: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  return fail(path, `expected an integer, got ${describe(value)}`);
}

export function readU64(value: unknown, path: string, min = 0n, max = U64_MAX): bigint {
  const n = integer(value, path);
  if (n < min || n > max) fail(path, `expected an integer in ${min}..${max}, got ${n}`);
  return n;
}

function readU32(value: unknown, path: string, min = 0, max = U32_MAX): number {
  return Number(readU64(value, path, BigInt(min), BigInt(max)));
}

function chars(text: string): number {
  let n = 0;
  for (const _ of text) n++; // code points, as the node counts them
  return n;
}

// A lone surrogate has no UTF-8 form: encoded, it would become U+FFFD, so
// two different strings would hash the same.
export const LONE_SURROGATE = /\p{Cs}/u;

function readString(value: unknown, path: string, min: number, max: number): string {
  if (typeof value !== "string") fail(path, `expected a string, got ${describe(value)}`);
  if (LONE_SURROGATE.test(value)) fail(path, "not valid Unicode (a lone surrogate)");
  const n = chars(value);
  if (n < min || n > max) fail(path, `expected ${min} to ${max} characters, got ${n}`);
  return value;
}

export function readBytes(value: unknown, path: string, length?: number, maxLength?: number): Uint8Array {
  if (typeof value !== "string") fail(path, `expected hex, got ${describe(value)}`);
  if (maxLength !== undefined && value.length > 2 * maxLength + 2) {
    fail(path, `longer than ${maxLength} bytes`);
  }
  return fromHex(value, length, path);
}

function readArray(value: unknown, path: string, max: number, min = 0): unknown[] {
  if (!Array.isArray(value)) fail(path, `expected an array, got ${describe(value)}`);
  if (value.length < min || value.length > max) {
    fail(path, `expected ${min} to ${max} items, got ${value.length}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value).slice(0, 40)}`;
}

// ------------------------------------------------------------------ parsers

export function parseTransaction(value: unknown, path = "$"): Transaction {
  const o = object(value, path, ["chain_id", "namespace", "sender", "nonce", "gas_price", "payload", "signature"]);
  return {
    chain_id: readString(o.chain_id, `${path}.chain_id`, 1, CHAIN_ID_CHARS_MAX),
    namespace: readU64(o.namespace, `${path}.namespace`),
    sender: readBytes(o.sender, `${path}.sender`, 32),
    nonce: readU64(o.nonce, `${path}.nonce`),
    gas_price: readU64(o.gas_price, `${path}.gas_price`),
    payload: readBytes(o.payload, `${path}.payload`, undefined, TX_PAYLOAD_BYTES_MAX),
    signature: readBytes(o.signature, `${path}.signature`, 64),
  };
}

export function parseHeader(value: unknown, path = "$"): BlockHeader {
  const o = object(value, path, [
    "chain_id", "height", "round", "timestamp_ms", "parent_id", "tx_root",
    "namespace_root", "state_root", "proposer", "last_commit_id",
  ]);
  return {
    chain_id: readString(o.chain_id, `${path}.chain_id`, 1, CHAIN_ID_CHARS_MAX),
    height: readU64(o.height, `${path}.height`, 1n),
    round: readU64(o.round, `${path}.round`),
    timestamp_ms: readU64(o.timestamp_ms, `${path}.timestamp_ms`),
    parent_id: readBytes(o.parent_id, `${path}.parent_id`, 32),
    tx_root: readBytes(o.tx_root, `${path}.tx_root`, 32),
    namespace_root: readBytes(o.namespace_root, `${path}.namespace_root`, 32),
    state_root: readBytes(o.state_root, `${path}.state_root`, 32),
    proposer: readU32(o.proposer, `${path}.proposer`),
    last_commit_id: readBytes(o.last_commit_id, `${path}.last_commit_id`, 32),
  };
}

export function parseCertificate(value: unknown, path = "$"): CommitCertificate {
  const o = object(value, path, ["height", "round", "block_id", "signatures"]);
  const pairs = readArray(o.signatures, `${path}.signatures`, VALIDATORS_MAX);
  return {
    height: readU64(o.height, `${path}.height`, 1n),
    round: readU64(o.round, `${path}.round`),
    block_id: readBytes(o.block_id, `${path}.block_id`, 32),
    signatures: pairs.map((pair, i): [number, Uint8Array] => {
      const where = `${path}.signatures[${i}]`;
      const [index, signature] = readArray(pair, where, 2, 2);
      return [readU32(index, `${where}[0]`), readBytes(signature, `${where}[1]`, 64)];
    }),
  };
}

export function parseProof(value: unknown, path = "$"): InclusionProof {
  const o = object(value, path, ["index", "size", "path"]);
  return {
    index: readU64(o.index, `${path}.index`),
    size: readU64(o.size, `${path}.size`),
    path: readArray(o.path, `${path}.path`, MERKLE_PATH_HASHES_MAX).map((h, i) =>
      readBytes(h, `${path}.path[${i}]`, 32),
    ),
  };
}

export function parseEntry(value: unknown, path = "$"): NamespaceEntry {
  const o = object(value, path, ["namespace", "count", "ns_tx_root"]);
  return {
    namespace: readU64(o.namespace, `${path}.namespace`),
    count: readU32(o.count, `${path}.count`, 1, BLOCK_TXS_MAX),
    ns_tx_root: readBytes(o.ns_tx_root, `${path}.ns_tx_root`, 32),
  };
}

function parseProvenEntry(value: unknown, path: string): ProvenEntry | null {
  if (value === null) return null;
  const o = object(value, path, ["entry", "proof"]);
  return { entry: parseEntry(o.entry, `${path}.entry`), proof: parseProof(o.proof, `${path}.proof`) };
}

export function parseAbsence(value: unknown, path = "$"): NamespaceAbsence {
  const o = object(value, path, ["left", "right"]);
  return { left: parseProvenEntry(o.left, `${path}.left`), right: parseProvenEntry(o.right, `${path}.right`) };
}

const CONSENSUS_DEFAULTS: ConsensusParams = {
  timeout_propose_ms: 300n,
  timeout_propose_delta_ms: 100n,
  timeout_prevote_ms: 100n,
  timeout_prevote_delta_ms: 50n,
  timeout_precommit_ms: 100n,
  timeout_precommit_delta_ms: 50n,
  max_block_gas: 20_000_000n,
  max_block_txs: 5_000,
  empty_block_interval_ms: 0n,
};

function parseConsensus(value: unknown, path: string): ConsensusParams {
  const keys = Object.keys(CONSENSUS_DEFAULTS);
  const o = object(value, path, [], keys);
  const out: Record<string, bigint | number> = { ...CONSENSUS_DEFAULTS };
  for (const key of keys) {
    if (!(key in o)) continue;
    const where = `${path}.${key}`;
    if (key === "max_block_txs") out[key] = readU32(o[key], where, 1, BLOCK_TXS_MAX);
    else if (key === "max_block_gas") out[key] = readU64(o[key], where, 1000n);
    else out[key] = readU64(o[key], where);
  }
  return out as unknown as ConsensusParams;
}

/** A `genesis.json`, checked as a node checks it: what the light client trusts. */
export function parseGenesis(value: unknown, path = "$"): Genesis {
  const o = object(value, path, ["chain_id", "genesis_time_ms", "validators"], ["consensus", "initial_height"]);
  const validators = readArray(o.validators, `${path}.validators`, VALIDATORS_MAX, 1).map((v, i) => {
    const where = `${path}.validators[${i}]`;
    const item = object(v, where, ["name", "public_key", "power", "p2p", "rpc"]);
    return {
      name: readString(item.name, `${where}.name`, 1, NAME_CHARS_MAX),
      public_key: readBytes(item.public_key, `${where}.public_key`, 32),
      power: readU64(item.power, `${where}.power`, 1n, TOTAL_VOTING_POWER_MAX),
      p2p: readString(item.p2p, `${where}.p2p`, 0, ADDRESS_CHARS_MAX),
      rpc: readString(item.rpc, `${where}.rpc`, 0, ADDRESS_CHARS_MAX),
    };
  });
  const genesis: Genesis = {
    chain_id: readString(o.chain_id, `${path}.chain_id`, 1, CHAIN_ID_CHARS_MAX),
    genesis_time_ms: readU64(o.genesis_time_ms, `${path}.genesis_time_ms`),
    validators,
    consensus: "consensus" in o ? parseConsensus(o.consensus, `${path}.consensus`) : { ...CONSENSUS_DEFAULTS },
    initial_height: "initial_height" in o ? readU64(o.initial_height, `${path}.initial_height`) : 1n,
  };
  if (genesis.initial_height !== 1n) fail(`${path}.initial_height`, "must be 1");
  const keys = new Set(validators.map((v) => toHex(v.public_key)));
  if (keys.size !== validators.length) fail(`${path}.validators`, "contains a public key twice");
  if (new Set(validators.map((v) => v.name)).size !== validators.length) {
    fail(`${path}.validators`, "contains a name twice");
  }
  if (validators.reduce((sum, v) => sum + v.power, 0n) > TOTAL_VOTING_POWER_MAX) {
    fail(`${path}.validators`, `total voting power exceeds ${TOTAL_VOTING_POWER_MAX}`);
  }
  return genesis;
}

// ------------------------------------------------------------------ JSON forms (for sending)

/** The JSON object of a transaction, as `POST /tx` takes it (integers stay bigints). */
export function transactionJson(tx: Transaction): Record<string, string | bigint> {
  return {
    chain_id: tx.chain_id,
    namespace: tx.namespace,
    sender: toHex(tx.sender),
    nonce: tx.nonce,
    gas_price: tx.gas_price,
    payload: toHex(tx.payload),
    signature: toHex(tx.signature),
  };
}
