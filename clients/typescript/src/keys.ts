/**
 * Ed25519 keys and wallets. A `Key` holds a 32-byte seed (RFC 8032's private
 * key); a `Wallet` binds one to a chain and signs transactions offline.
 *
 *     const wallet = new Wallet(Key.generate(), "devnet-1");
 *     const tx = wallet.sign({ nonce: 0n, payload: utf8("hello"), gasPrice: 10n });
 */

import * as ed from "@noble/ed25519";
import { blake3 } from "@noble/hashes/blake3.js";
import { sha512 } from "@noble/hashes/sha2.js";

import { InputError } from "./errors.js";
import { bytesEqual, concatBytes, fromHex, toHex } from "./hex.js";
import { txSigningBytes } from "./ids.js";
import { CHAIN_ID_CHARS_MAX, LONE_SURROGATE, TX_PAYLOAD_BYTES_MAX, U64_MAX, type Transaction } from "./types.js";

// The synchronous API of @noble/ed25519 needs a SHA-512; this is the one it documents.
ed.hashes.sha512 = sha512;

export class Key {
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;

  constructor(seed: Uint8Array) {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new InputError("an Ed25519 seed is 32 bytes");
    }
    this.seed = Uint8Array.from(seed);
    this.publicKey = ed.getPublicKey(this.seed);
  }

  /** A new key from the platform's secure random source. */
  static generate(): Key {
    return new Key(ed.utils.randomSecretKey());
  }

  static fromHex(seedHex: string): Key {
    return new Key(fromHex(seedHex, 32, "seed"));
  }

  sign(message: Uint8Array): Uint8Array {
    return ed.sign(message, this.seed);
  }

  get address(): string {
    return toHex(this.publicKey);
  }

  toString(): string {
    return `Key(${this.address})`; // never the seed
  }
}

// The order of the Ed25519 base point.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/**
 * Ed25519 verification exactly as the nodes do it (libsodium's rules): the
 * key and R canonical and not of small order, S below the group order, and
 * the cofactorless equation R == [S]B - [k]A compared by encoding. RFC 8032
 * also allows the cofactored equation, which accepts a signature whose R
 * carries a small torsion component; a validator could sign such a
 * precommit on purpose, and clients that disagree with the nodes on it would
 * disagree on which certificates are valid.
 */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const rBytes = signature.subarray(0, 32);
    const s = littleEndian(signature.subarray(32));
    if (s >= L) return false;
    const a = ed.Point.fromBytes(publicKey, false);
    const r = ed.Point.fromBytes(rBytes, false);
    if (a.isSmallOrder() || r.isSmallOrder()) return false;
    const k = littleEndian(sha512(concatBytes(rBytes, publicKey, message))) % L;
    const check = ed.Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k));
    return bytesEqual(check.toBytes(), rBytes);
  } catch {
    return false; // an encoding that is not a curve point
  }
}

/**
 * Dev account `index` of a devnet started with `--seed seed` (`devnet` by
 * default): the same keys on every machine, so scripts can name them.
 */
export function devAccount(index: number, seed = "devnet"): Key {
  if (!(Number.isInteger(index) && index >= 0 && index <= 0xffffffff)) {
    throw new InputError(`account index must be in 0..2^32-1, got ${index}`);
  }
  const prefix = new TextEncoder().encode("seq/devnet/account/v1/" + seed);
  const material = new Uint8Array(prefix.length + 4);
  material.set(prefix);
  new DataView(material.buffer).setUint32(prefix.length, index);
  return new Key(blake3(material));
}

export interface SignArgs {
  nonce: bigint | number;
  payload: Uint8Array;
  gasPrice: bigint | number;
  /** The wallet's namespace when not given. */
  namespace?: bigint | number;
}

export function toU64(name: string, value: bigint | number): bigint {
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new InputError(`${name} must be an integer in 0..2^64-1, got ${value}`);
  }
  if (typeof value !== "number" && typeof value !== "bigint") {
    throw new InputError(`${name} must be an integer in 0..2^64-1, got ${typeof value}`);
  }
  const n = BigInt(value);
  if (n < 0n || n > U64_MAX) throw new InputError(`${name} must be an integer in 0..2^64-1, got ${n}`);
  return n;
}

/** A signing key bound to a chain, with a default namespace. */
export class Wallet {
  readonly key: Key;
  readonly chainId: string;
  readonly namespace: bigint;

  constructor(key: Key, chainId: string, namespace: bigint | number = 0n) {
    if (typeof chainId !== "string" || LONE_SURROGATE.test(chainId)) {
      throw new InputError("chain_id must be a string of valid Unicode");
    }
    const chars = [...chainId].length;
    if (chars < 1 || chars > CHAIN_ID_CHARS_MAX) {
      throw new InputError(`chain_id must be 1 to ${CHAIN_ID_CHARS_MAX} characters`);
    }
    this.key = key;
    this.chainId = chainId;
    this.namespace = toU64("namespace", namespace);
  }

  get sender(): Uint8Array {
    return this.key.publicKey;
  }

  get address(): string {
    return this.key.address;
  }

  sign(args: SignArgs): Transaction {
    if (!(args.payload instanceof Uint8Array)) throw new InputError("payload must be a Uint8Array");
    if (args.payload.length > TX_PAYLOAD_BYTES_MAX) {
      throw new InputError(`payload is ${args.payload.length} bytes, at most ${TX_PAYLOAD_BYTES_MAX}`);
    }
    const unsigned = {
      chain_id: this.chainId,
      namespace: toU64("namespace", args.namespace ?? this.namespace),
      sender: this.key.publicKey,
      nonce: toU64("nonce", args.nonce),
      gas_price: toU64("gasPrice", args.gasPrice),
      payload: Uint8Array.from(args.payload),
    };
    return { ...unsigned, signature: this.key.sign(txSigningBytes(unsigned)) };
  }
}
