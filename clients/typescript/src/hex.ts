/** Hex as the protocol writes it: lowercase, no `0x`. Input also takes `0x` and upper case. */

import { InputError } from "./errors.js";

const HEX_DIGITS = /^[0-9a-fA-F]*$/;

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Bytes from hex; `length`, when given, is the number of bytes required. Throws `InputError`. */
export function fromHex(text: string, length?: number, what = "value"): Uint8Array {
  if (typeof text !== "string") throw new InputError(`${what} must be a hex string`);
  const digits = text.startsWith("0x") || text.startsWith("0X") ? text.slice(2) : text;
  if (digits.length % 2 !== 0 || !HEX_DIGITS.test(digits)) {
    throw new InputError(`${what} is not hex: ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (length !== undefined && digits.length !== 2 * length) {
    throw new InputError(`${what} must be ${length} bytes, got ${digits.length / 2}`);
  }
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return joinBytes(parts);
}

/** `concatBytes` for any number of parts (a spread of 100,000 chunks would overflow the stack). */
export function joinBytes(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Compare byte strings as unsigned bytes, shorter first on a common prefix (Python's bytes order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
