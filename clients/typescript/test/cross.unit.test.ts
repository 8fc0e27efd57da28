/**
 * Encodings and ids against the node's own encoder: cases drawn by the Python
 * test (`SEQ_CROSS_VECTORS`, a JSON file of structures at the edges of every
 * integer and length width, with what the Python side computed for them).
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

import {
  blockId,
  commitId,
  encodeCertificate,
  encodeEntry,
  encodeHeader,
  encodeTransaction,
  fromHex,
  merkleRoot,
  parseCertificate,
  parseEntry,
  parseHeader,
  parseJson,
  parseTransaction,
  toHex,
  txId,
  txSigningBytes,
  verifySignature,
} from "../src/index.js";

const FILE = process.env.SEQ_CROSS_VECTORS;

describe("cross-language encodings", { skip: FILE ? false : "SEQ_CROSS_VECTORS not set" }, () => {
  const cases = FILE ? (parseJson(readFileSync(FILE, "utf8")) as any) : {};

  it("encodes transactions, their signing bytes and ids as the node does, and their signatures verify", () => {
    assert.ok(cases.txs.length > 0);
    for (const c of cases.txs) {
      const tx = parseTransaction(c.json);
      assert.equal(toHex(encodeTransaction(tx)), c.encoding);
      assert.equal(toHex(txSigningBytes(tx)), c.signing_bytes);
      assert.equal(toHex(txId(tx)), c.tx_id);
      assert.equal(verifySignature(tx.sender, txSigningBytes(tx), tx.signature), true);
    }
  });

  it("encodes headers, certificates and namespace entries as the node does", () => {
    for (const c of cases.headers) {
      const header = parseHeader(c.json);
      assert.equal(toHex(encodeHeader(header)), c.encoding);
      assert.equal(toHex(blockId(header)), c.block_id);
    }
    for (const c of cases.certificates) {
      const certificate = parseCertificate(c.json);
      assert.equal(toHex(encodeCertificate(certificate)), c.encoding);
      assert.equal(toHex(commitId(certificate)), c.commit_id);
    }
    for (const c of cases.entries) assert.equal(toHex(encodeEntry(parseEntry(c.json))), c.encoding);
  });

  it("accepts exactly the signatures the nodes accept (torsioned R, S + L, a flipped bit)", () => {
    assert.ok(cases.signatures.length > 0);
    for (const c of cases.signatures) {
      const verdict = verifySignature(fromHex(c.public_key), fromHex(c.message), fromHex(c.signature));
      assert.equal(verdict, c.valid, `${c.kind} signature`);
    }
  });

  it("computes Merkle roots as the node does", () => {
    for (const c of cases.merkle) assert.equal(toHex(merkleRoot(c.items.map((h: string) => fromHex(h)))), c.root);
  });

  it("refuses what the node's decoder refuses", () => {
    for (const c of cases.invalid_txs) {
      assert.throws(() => parseTransaction(c.json), Error, `accepted: ${c.why}`);
    }
  });
});
