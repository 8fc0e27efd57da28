/**
 * The canonical MessagePack encoder of the protocol: one encoding per value.
 *
 * Every structure is an array of its fields; integers take their shortest
 * form (what the node's encoder writes), strings are `str`, byte strings are
 * `bin`. Only what the protocol uses is supported: a general-purpose encoder
 * would have to be configured not to write a float, a map or a
 * fixed-width bigint, and any of those changes a hash.
 */

import { InputError } from "./errors.js";

export type Packable = bigint | number | string | Uint8Array | readonly Packable[];

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const encoder = new TextEncoder();

class Writer {
  private buffer = new Uint8Array(256);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  u16(value: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, value);
    this.length += 2;
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
  }

  u64(value: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, value);
    this.length += 8;
  }

  i64(value: bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.length, value);
    this.length += 8;
  }

  bytes(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function writeInt(w: Writer, value: bigint): void {
  if (value >= 0n) {
    if (value > U64_MAX) throw new InputError(`integer ${value} is above 2^64-1`);
    if (value < 0x80n) w.byte(Number(value));
    else if (value <= 0xffn) (w.byte(0xcc), w.byte(Number(value)));
    else if (value <= 0xffffn) (w.byte(0xcd), w.u16(Number(value)));
    else if (value <= 0xffffffffn) (w.byte(0xce), w.u32(Number(value)));
    else (w.byte(0xcf), w.u64(value));
    return;
  }
  if (value < I64_MIN) throw new InputError(`integer ${value} is below -2^63`);
  const n = Number(value);
  if (value >= -32n) w.byte(n & 0xff);
  else if (value >= -128n) (w.byte(0xd0), w.byte(n & 0xff));
  else if (value >= -32768n) (w.byte(0xd1), w.u16(n & 0xffff));
  else if (value >= -2147483648n) (w.byte(0xd2), w.u32(n >>> 0));
  else (w.byte(0xd3), w.i64(value));
}

function writeLength(w: Writer, n: number, fix: number | null, fixMax: number, codes: number[]): void {
  if (fix !== null && n <= fixMax) w.byte(fix | n);
  else if (codes.length === 3 && n <= 0xff) (w.byte(codes[0]!), w.byte(n));
  else if (n <= 0xffff) (w.byte(codes[codes.length - 2]!), w.u16(n));
  else if (n <= 0xffffffff) (w.byte(codes[codes.length - 1]!), w.u32(n));
  else throw new InputError(`a msgpack value of ${n} items or bytes is too long`);
}

function write(w: Writer, value: Packable): void {
  if (typeof value === "bigint") return writeInt(w, value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new InputError(`${value} is not an integer the protocol can carry exactly (use a bigint)`);
    }
    return writeInt(w, BigInt(value));
  }
  if (typeof value === "string") {
    if (/\p{Cs}/u.test(value)) throw new InputError("a string with a lone surrogate has no UTF-8 encoding");
    const utf8 = encoder.encode(value);
    writeLength(w, utf8.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
    return w.bytes(utf8);
  }
  if (value instanceof Uint8Array) {
    writeLength(w, value.length, null, -1, [0xc4, 0xc5, 0xc6]);
    return w.bytes(value);
  }
  if (Array.isArray(value)) {
    writeLength(w, value.length, 0x90, 15, [0xdc, 0xdd]);
    for (const item of value) write(w, item);
    return;
  }
  throw new InputError(`cannot encode ${typeof value} in the protocol's msgpack`);
}

/** The canonical encoding of `value`. Throws `InputError` for what the protocol cannot carry. */
export function pack(value: Packable): Uint8Array {
  const w = new Writer();
  write(w, value);
  return w.result();
}
