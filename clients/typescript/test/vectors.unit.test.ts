/** The specification's test vectors, recomputed by the client's own encoders. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  EMPTY_ROOT,
  PREVOTE,
  PRECOMMIT,
  blockId,
  encodeBatch,
  encodeCertificate,
  encodeEntry,
  fromHex,
  leafHash,
  namespaceTable,
  pack,
  proposalSigningBytes,
  toHex,
  txId,
  txSigningBytes,
  voteSigningBytes,
  verifyAbsence,
  verifyPresence,
  entryProof,
} from "../src/index.js";
import { buildBlock, vectorKey, vectorTxs } from "./helpers.js";

const hex = (h: string) => fromHex(h.replace(/\s+/g, ""));
const repeat = (byte: number, n: number) => new Uint8Array(n).fill(byte);
const ascii = (s: string) => toHex(new TextEncoder().encode(s));

describe("transaction vector", () => {
  it("derives the sender and tx_id of the specification", () => {
    const [tx] = vectorTxs();
    assert.equal(toHex(vectorKey().publicKey), "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
    assert.equal(toHex(txId(tx!)), "f233b35f3ba984f0a5cc0001bce78734975320e4be6e247c6ca13f516befeb1b");
  });

  it("lays out the signing bytes byte for byte", () => {
    const sender = Uint8Array.from({ length: 32 }, (_, i) => i);
    const bytes = txSigningBytes({
      chain_id: "devnet-1", namespace: 7n, sender, nonce: 256n, gas_price: (1n << 64n) - 1n, payload: new TextEncoder().encode("hello"),
    });
    const want = "97" + "a9" + ascii("seq/tx/v1") + "a8" + ascii("devnet-1") + "07" + "c420" + toHex(sender) +
      "cd0100" + "cfffffffffffffffff" + "c405" + ascii("hello");
    assert.equal(toHex(bytes), want);
  });
});

describe("merkle and namespace vector", () => {
  const txs = vectorTxs();
  const ids = txs.map((tx) => toHex(txId(tx)));
  const { entries, root } = namespaceTable(txs);

  it("has the tx ids, entries, leaves and root of the specification", () => {
    assert.equal(toHex(EMPTY_ROOT), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    assert.deepEqual(ids, [
      "f233b35f3ba984f0a5cc0001bce78734975320e4be6e247c6ca13f516befeb1b",
      "0678555b2be23ee18ffb78b1c8771bd0c0a6d3cba1244493b77def35bcb1fc23",
      "5c4e8a3a87c2b143c94bde7234a499ae94011e618ddebda688bee0a3cb88bcc3",
    ]);
    assert.equal(toHex(encodeEntry(entries[0]!)), "930702c420bc3395278b5a7736add5cc19f11faada4c142a544540be4f049006fcf0c49e9d");
    assert.equal(toHex(encodeEntry(entries[1]!)), "930901c420b76e9723eff6b018766ff8dd4098edd57abd5390bd95857b107cceb76add10d1");
    assert.equal(toHex(leafHash(encodeEntry(entries[0]!))), "a39e7a6acda1172504ba633ac16b4c367ecdb3b0f0db4bca3d7c7c66e1fe74fe");
    assert.equal(toHex(leafHash(encodeEntry(entries[1]!))), "72ce01d34981fd3d2e64d6c4d61a0d41c7cd85f814d40ea756feb1debac676e8");
    assert.equal(toHex(root), "8aaba9fbb688984409587478cce493b42ff7faf8fae9e78748eff764b296fee8");
  });

  it("has the block's tx_root, state_root and block_id", () => {
    const { header } = buildBlock(txs, null);
    assert.equal(toHex(header.tx_root), "36351fd2b7c37dd625d47099f851647c62e0301ced7efd59fcd1c6d8d49a6103");
    assert.equal(toHex(header.state_root), "a91f7efdeab98569bbcd8b9bb116710429cf0311b6ceeb61d51c15fc6f78b147");
    assert.equal(toHex(blockId(header)), "2a774916bed6e23ae4bb88597309e1feef78fe8bfe21433e63472780b0bb534d");
  });

  it("proves presence of 7 and absence of 8, 3 and 10 as the specification does", () => {
    const p0 = entryProof(entries, 0);
    const p1 = entryProof(entries, 1);
    assert.deepEqual(p0.path.map(toHex), [toHex(leafHash(encodeEntry(entries[1]!)))]);
    assert.deepEqual(p1.path.map(toHex), [toHex(leafHash(encodeEntry(entries[0]!)))]);
    const seven = verifyPresence(7n, root, entries[0]!, p0, [txs[0]!, txs[2]!]);
    assert.deepEqual(seven.map(toHex), [ids[0], ids[2]]);
    const e7 = { entry: entries[0]!, proof: p0 };
    const e9 = { entry: entries[1]!, proof: p1 };
    verifyAbsence(8n, root, { left: e7, right: e9 });
    verifyAbsence(3n, root, { left: null, right: e7 });
    verifyAbsence(10n, root, { left: e9, right: null });
  });
});

describe("consensus and batch vectors", () => {
  it("encodes vote signing bytes", () => {
    const precommit = voteSigningBytes("c", PRECOMMIT, 5n, 0n, repeat(0x11, 32));
    assert.equal(toHex(precommit), "96ab" + ascii("seq/vote/v1") + "a1" + ascii("c") + "020500c420" + "11".repeat(32));
    const nil = voteSigningBytes("c", PREVOTE, 5n, 3n, new Uint8Array(0));
    assert.equal(toHex(nil), "96ab" + ascii("seq/vote/v1") + "a1" + ascii("c") + "010503c400");
  });

  it("encodes proposal signing bytes with pol_round -1", () => {
    const bytes = proposalSigningBytes("c", 5n, 1n, -1n, repeat(0x22, 32));
    assert.equal(toHex(bytes), "96af" + ascii("seq/proposal/v1") + "a1" + ascii("c") + "0501ffc420" + "22".repeat(32));
  });

  it("encodes a certificate", () => {
    const bytes = encodeCertificate({ height: 2n, round: 1n, block_id: repeat(0x33, 32), signatures: [[0, repeat(0x44, 64)], [2, repeat(0x55, 64)]] });
    assert.equal(toHex(bytes), "940201c420" + "33".repeat(32) + "92" + "9200c440" + "44".repeat(64) + "9202c440" + "55".repeat(64));
  });

  it("encodes a batch commitment", () => {
    const bytes = encodeBatch({ chain_id: "c", batch_number: 0n, first_height: 1n, last_height: 300n, blocks_root: repeat(0x66, 32), last_commit_id: repeat(0x77, 32) });
    assert.equal(toHex(bytes), "97ac" + ascii("seq/batch/v1") + "a1" + ascii("c") + "0001cd012c" + "c420" + "66".repeat(32) + "c420" + "77".repeat(32));
  });
});

describe("canonical msgpack", () => {
  const table: Array<[bigint, string]> = [
    [0n, "00"], [127n, "7f"], [128n, "cc80"], [255n, "ccff"], [256n, "cd0100"], [65535n, "cdffff"],
    [65536n, "ce00010000"], [0xffffffffn, "ceffffffff"], [0x100000000n, "cf0000000100000000"],
    [(1n << 64n) - 1n, "cfffffffffffffffff"], [-1n, "ff"], [-32n, "e0"], [-33n, "d0df"], [-128n, "d080"],
    [-129n, "d1ff7f"], [-32768n, "d18000"], [-32769n, "d2ffff7fff"], [-(1n << 31n) - 1n, "d3ffffffff7fffffff"],
  ];
  for (const [value, want] of table) {
    it(`writes ${value} in its shortest form`, () => assert.equal(toHex(pack(value)), want));
  }

  it("writes string, bin and array lengths at each width", () => {
    assert.equal(toHex(pack("a".repeat(31))).slice(0, 2), "bf");
    assert.equal(toHex(pack("a".repeat(32))).slice(0, 4), "d920");
    assert.equal(toHex(pack("a".repeat(256))).slice(0, 6), "da0100");
    assert.equal(toHex(pack(new Uint8Array(255))).slice(0, 4), "c4ff");
    assert.equal(toHex(pack(new Uint8Array(256))).slice(0, 6), "c50100");
    assert.equal(toHex(pack(new Uint8Array(65536))).slice(0, 10), "c600010000");
    assert.equal(toHex(pack(new Array(15).fill(0))).slice(0, 2), "9f");
    assert.equal(toHex(pack(new Array(16).fill(0))).slice(0, 6), "dc0010");
    assert.equal(toHex(pack("é")), "a2c3a9"); // UTF-8 bytes count, not characters
  });

  it("refuses what the protocol cannot carry", () => {
    assert.throws(() => pack(1n << 64n), /above 2\^64-1/);
    assert.throws(() => pack(1.5), /not an integer/);
    assert.throws(() => pack(2 ** 53), /not an integer/);
    assert.throws(() => pack(null as never), /cannot encode/);
  });
});
