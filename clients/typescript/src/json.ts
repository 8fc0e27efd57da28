/**
 * JSON with exact integers. The protocol's integers reach 2^64-1, past what
 * a JavaScript number holds exactly, so answers are parsed with integers
 * above 2^53 as bigints (and written back the same way).
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
