/**
 * JSON with exact integers. The protocol's integers reach 2^64-1, past what
 * a JavaScript number holds exactly, so every integer of an answer parses as
 * a bigint (one type for all of them, whatever their size); a number with a
 * fraction or an exponent stays a number. Bigints are written back as JSON
 * integers.
 */

import { parse, parseNumberAndBigInt, stringify } from "lossless-json";

export function parseJson(text: string): unknown {
  return parse(text, null, parseNumberAndBigInt);
}

export function stringifyJson(value: unknown): string {
  const text = stringify(value);
  if (text === undefined) throw new TypeError("value has no JSON form");
  return text;
}
