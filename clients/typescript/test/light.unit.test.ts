/** The light client's checks on a synthetic chain signed by real keys: honest answers pass, each lie is refused by its rule. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CertificateError,
  Linker,
  ProofError,
  Trust,
  VerificationError,
  Wallet,
  Key,
  checkInclusion,
  inclusionProof,
  merkleRoot,
  txId,
  utf8,
  verifyBlock,
  verifyInclusion,
  verifyNamespace,
  type Transaction,
} from "../src/index.js";
import { blockAnswer, buildBlock, certify, clone, genesis, namespaceAnswer, vectorTxs, type Built } from "./helpers.js";

const trust = new Trust(genesis());

function refused(fn: () => unknown, reason: string, kind: typeof VerificationError = VerificationError): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    assert.equal((error as VerificationError).reason, reason, (error as Error).message);
    return true;
  });
}

function chain(length: number): Array<{ built: Built; certificate: ReturnType<typeof certify> }> {
  const wallet = new Wallet(new Key(new Uint8Array(32).fill(7)), "devnet-1");
  const out: Array<{ built: Built; certificate: ReturnType<typeof certify> }> = [];
  for (let h = 0; h < length; h++) {
    const txs: Transaction[] = [0, 1].map((i) => wallet.sign({ nonce: BigInt(2 * h + i), payload: utf8(`tx ${h}.${i}`), gasPrice: 1n, namespace: BigInt(i * 5) }));
    const parent = out.length ? { header: out[out.length - 1]!.built.header, certificate: out[out.length - 1]!.certificate } : null;
    const built = buildBlock(txs, parent, 1700000000000n + BigInt(h));
    out.push({ built, certificate: certify(built.header) });
  }
  return out;
}

describe("verifyBlock", () => {
  const built = buildBlock(vectorTxs(), null);
  const honest = blockAnswer(built, certify(built.header));

  it("proves an honest block, with its transactions", () => {
    const block = verifyBlock(trust, honest, 1n);
    assert.equal(block.height, 1n);
    assert.equal(block.txs!.length, 3);
  });

  const lies: Array<[string, (a: any) => void, string]> = [
    ["a header field changed", (a) => (a.header.timestamp_ms = 1n), "wrong_block_id"],
    ["another chain", (a) => (a.header.chain_id = "other"), "wrong_chain"],
    ["a tx id left out", (a) => a.tx_ids.pop(), "wrong_tx_root"],
    ["transactions swapped", (a) => a.txs.reverse(), "wrong_txs"],
    ["a payload changed", (a) => (a.txs[0].payload = "00"), "wrong_txs"],
    ["a signature dropped from the certificate", (a) => a.certificate.signatures.pop(), "insufficient_power"],
    ["a signer twice", (a) => (a.certificate.signatures[2] = a.certificate.signatures[1]), "duplicate_signer"],
    ["signers unsorted", (a) => a.certificate.signatures.reverse(), "unsorted"],
    ["an unknown signer", (a) => (a.certificate.signatures[2][0] = 9), "unknown_validator"],
    ["a forged signature", (a) => (a.certificate.signatures[0][1] = "00".repeat(64)), "bad_signature"],
    ["a certificate of another round", (a) => (a.certificate.round = 1), "bad_signature"],
    ["a certificate of another block", (a) => (a.certificate.block_id = "11".repeat(32)), "wrong_block"],
    ["a header hex cut short", (a) => (a.header.tx_root = "ab"), "malformed"],
    ["an unknown header field", (a) => (a.header.extra = 1), "malformed"],
    ["tx_ids not a list", (a) => (a.tx_ids = "x"), "malformed"],
    ["no certificate", (a) => delete a.certificate, "malformed"],
    ["a height as a string", (a) => (a.header.height = "1"), "malformed"],
  ];
  for (const [what, lie, reason] of lies) {
    it(`refuses ${what} (${reason})`, () => {
      const answer = clone(honest);
      lie(answer);
      refused(() => verifyBlock(trust, answer, 1n), reason);
    });
  }

  it("refuses a block of another height than asked", () => refused(() => verifyBlock(trust, honest, 2n), "wrong_height"));

  it("refuses a certificate signed by validators of another genesis", () => {
    const other = genesis();
    other.validators = other.validators.map((v, i) => ({ ...v, public_key: new Key(new Uint8Array(32).fill(50 + i)).publicKey }));
    refused(() => verifyBlock(new Trust(other), honest, 1n), "bad_signature", CertificateError);
  });

  it("refuses exactly two thirds of the power: a quorum is more", () => {
    const three = genesis();
    three.validators = three.validators.slice(0, 3);
    const answer = blockAnswer(built, certify(built.header, [0, 1]));
    refused(() => verifyBlock(new Trust(three), answer, 1n), "insufficient_power", CertificateError);
    assert.equal(verifyBlock(new Trust(three), blockAnswer(built, certify(built.header, [0, 1, 2])), 1n).height, 1n);
  });

  it("checks a transaction's audit path against the block", () => {
    const block = verifyBlock(trust, honest, 1n);
    const ids = built.txs.map(txId);
    checkInclusion(block, ids[1]!, inclusionProof(ids, 1));
    refused(() => checkInclusion(block, ids[1]!, inclusionProof(ids, 2)), "not_included", ProofError);
  });
});

describe("verifyNamespace", () => {
  const built = buildBlock(vectorTxs(), null);
  const certificate = certify(built.header);

  it("proves presence of 7 and 9 and absence of 3, 8 and 10", () => {
    assert.equal(verifyNamespace(trust, namespaceAnswer(built, certificate, 7n), 7n, 1n).txs.length, 2);
    assert.equal(verifyNamespace(trust, namespaceAnswer(built, certificate, 9n), 9n, 1n).txs.length, 1);
    for (const ns of [3n, 8n, 10n, (1n << 64n) - 1n]) {
      assert.equal(verifyNamespace(trust, namespaceAnswer(built, certificate, ns), ns, 1n).txs.length, 0);
    }
  });

  it("proves the empty table of an empty block", () => {
    const empty = buildBlock([], null);
    assert.deepEqual(verifyNamespace(trust, namespaceAnswer(empty, certify(empty.header), 7n), 7n, 1n).txs, []);
  });

  const present = namespaceAnswer(built, certificate, 7n);
  const lies: Array<[string, (a: any) => void, string]> = [
    ["a transaction left out, count kept", (a) => a.txs.pop(), "wrong_count"],
    ["a transaction left out, count fixed", (a) => (a.txs.pop(), (a.entry.count = 1)), "entry_not_in_table"],
    ["transactions reordered", (a) => a.txs.reverse(), "wrong_ns_tx_root"],
    ["a transaction of another namespace", (a) => (a.txs[0].namespace = 9), "tx_wrong_namespace"],
    ["the entry of another namespace", (a) => (a.entry.namespace = 9), "wrong_namespace"],
    ["a tx_id that is not the transaction's", (a) => (a.txs[0].tx_id = "00".repeat(32)), "wrong_tx_id"],
    ["absence claimed for a present namespace", (a) => ((a.entry = null), (a.entry_proof = null), (a.txs = []), (a.absence = { left: null, right: null })), "table_not_empty"],
    ["transactions without their entry", (a) => ((a.entry = null), (a.entry_proof = null)), "malformed"],
  ];
  for (const [what, lie, reason] of lies) {
    it(`refuses ${what} (${reason})`, () => {
      const answer = clone(present);
      lie(answer);
      refused(() => verifyNamespace(trust, answer, 7n, 1n), reason);
    });
  }

  it("refuses absence of 7 shown by non-adjacent or wrong-side neighbours", () => {
    const absent8 = namespaceAnswer(built, certificate, 8n) as any;
    const claim7 = clone(absent8);
    refused(() => verifyNamespace(trust, claim7, 7n, 1n), "left_not_below");
    const onlyRight = clone(absent8);
    onlyRight.absence.left = null; // "8 is below every entry": the right one is not first
    refused(() => verifyNamespace(trust, onlyRight, 8n, 1n), "not_adjacent");
    const onlyLeft = clone(absent8);
    onlyLeft.absence.right = null; // "8 is above every entry": the left one is not last
    refused(() => verifyNamespace(trust, onlyLeft, 8n, 1n), "not_adjacent");
    // Index 0 of 3 entries and of 4 take the same path: a size the other neighbour does not claim is refused.
    const three = buildBlock([...vectorTxs(), new Wallet(new Key(new Uint8Array(32).fill(3)), "devnet-1").sign({ nonce: 0n, payload: utf8("z"), gasPrice: 1n, namespace: 20n })], null);
    const sizes = namespaceAnswer(three, certify(three.header), 8n) as any;
    verifyNamespace(trust, clone(sizes), 8n, 1n);
    sizes.absence.left.proof.size = 4;
    refused(() => verifyNamespace(trust, sizes, 8n, 1n), "not_adjacent");
    const faked = clone(absent8);
    faked.absence.left.proof.index = 1; // pretend to be last
    refused(() => verifyNamespace(trust, faked, 8n, 1n), "entry_not_in_table");
  });
});

describe("Linker", () => {
  const blocks = chain(4);

  it("links a chain and refuses gaps, forks and unknown certificates", () => {
    const verified = blocks.map(({ built, certificate }, i) => verifyBlock(trust, blockAnswer(built, certificate), BigInt(i + 1)));
    const linker = new Linker();
    for (const block of verified.slice(0, 2)) assert.equal(linker.link(block), true);
    refused(() => linker.link(verified[3]!), "not_next", ProofError);

    // Block 3 names the certificate of block 2 its proposer chose; a node that
    // served another valid one for block 2 is asked again.
    const other = certify(blocks[1]!.built.header, [1, 2, 3]);
    const linker2 = new Linker();
    linker2.link(verified[0]!);
    linker2.link(verifyBlock(trust, blockAnswer(blocks[1]!.built, other), 2n));
    assert.equal(linker2.link(verified[2]!), false);
    linker2.addCertificate(verified[1]!);
    assert.equal(linker2.link(verified[2]!), true);

    const fork = buildBlock([], { header: blocks[0]!.built.header, certificate: blocks[0]!.certificate }, 5n);
    const forked = verifyBlock(trust, blockAnswer(fork, certify(fork.header)), 2n);
    const linker3 = new Linker();
    linker3.link(verified[0]!);
    linker3.link(forked);
    refused(() => linker3.link(verified[2]!), "wrong_parent", ProofError);
  });
});

describe("Merkle audit paths", () => {
  it("cannot claim another place at an end: first stays first, last stays last", () => {
    // A path does not always fix the size (index 0 of 3 items and of 4 take
    // the same path), but whether an item is first or last it does fix; the
    // absence proofs rest on exactly that.
    for (let n = 1; n <= 14; n++) {
      const items = Array.from({ length: n }, (_, i) => utf8(`entry ${i}`));
      const root = merkleRoot(items);
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(items, i);
        for (let size = 1n; size <= BigInt(2 * n + 1); size++) {
          for (let index = 0n; index < size; index++) {
            if (!verifyInclusion(items[i]!, { index, size, path: proof.path }, root)) continue;
            assert.equal(index === 0n, i === 0, `n=${n} i=${i} claimed ${index}/${size}`);
            assert.equal(index === size - 1n, i === n - 1, `n=${n} i=${i} claimed ${index}/${size}`);
          }
        }
      }
    }
  });

  it("cannot show two items as adjacent when others lie between them", () => {
    for (let n = 3; n <= 9; n++) {
      const items = Array.from({ length: n }, (_, i) => utf8(`entry ${i}`));
      const root = merkleRoot(items);
      const paths = items.map((_, i) => inclusionProof(items, i).path);
      for (let size = 2n; size <= BigInt(2 * n); size++) {
        for (let index = 0n; index + 1n < size; index++) {
          const lefts = items.filter((item, j) => verifyInclusion(item, { index, size, path: paths[j]! }, root));
          if (lefts.length === 0) continue;
          for (let l = 0; l < n; l++) {
            if (!verifyInclusion(items[l]!, { index: index + 1n, size, path: paths[l]! }, root)) continue;
            for (const left of lefts) {
              assert.equal(items.indexOf(left) + 1, l, `n=${n}: ${items.indexOf(left)} and ${l} claimed adjacent as ${index}/${size}`);
            }
          }
        }
      }
    }
  });

  it("verify for every index of trees of 1 to 40 items, and only there", () => {
    for (let n = 1; n <= 40; n++) {
      const items = Array.from({ length: n }, (_, i) => utf8(`item ${i}`));
      const root = merkleRoot(items);
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(items, i);
        assert.ok(verifyInclusion(items[i]!, proof, root), `n=${n} i=${i}`);
        assert.ok(!verifyInclusion(items[(i + 1) % n]!, proof, root) || n === 1);
        if (n > 1) assert.ok(!verifyInclusion(items[i]!, { ...proof, index: BigInt((i + 1) % n) }, root), `index n=${n} i=${i}`);
        assert.ok(!verifyInclusion(items[i]!, { ...proof, path: [...proof.path, root] }, root));
      }
    }
  });
});
