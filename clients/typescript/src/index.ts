/**
 * The sequencer's TypeScript client: keys and signing, submit and wait,
 * reading blocks and namespaces, and proving what a node serves against
 * genesis.json alone.
 */

export * from "./errors.js";
export { bytesEqual, fromHex, toHex } from "./hex.js";
export { pack, type Packable } from "./msgpack.js";
export { parseJson, stringifyJson } from "./json.js";
export * from "./types.js";
export * from "./ids.js";
export { EMPTY_ROOT, hash32, inclusionProof, leafHash, merkleRoot, nodeHash, verifyInclusion } from "./merkle.js";
export { Key, Wallet, devAccount, verifySignature, type SignArgs } from "./keys.js";
export { loadKey, saveKey } from "./keyfile.js";
export { ValidatorSet, verifyCertificate } from "./certificate.js";
export { entryProof, namespaceTable, verifyAbsence, verifyPresence } from "./namespaces.js";
export { Linker, Trust, checkInclusion, verifyBlock, verifyNamespace, type VerifiedBlock, type VerifiedNamespace } from "./light.js";
export { SseParser, type SseEvent } from "./sse.js";
export * from "./client.js";
export * from "./lightclient.js";

/** UTF-8 bytes of a string (a payload). */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
