/**
 * The client against a live devnet of real node processes (started by the
 * Python test `tests/node/test_typescript_client.py`, which sets the
 * environment below): keys, signing, submit, status and wait, reading blocks
 * and namespaces, and proving them with genesis.json alone; then the same
 * reads through a lying proxy, which the light client must refuse.
 *
 *     SEQ_RPC      a node's base URL        SEQ_HOME     the devnet's directory
 *     SEQ_GENESIS  its genesis.json         SEQ_RPC_2    another node's URL
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Client,
  ClientError,
  LightClient,
  VerificationError,
  Wallet,
  devAccount,
  loadKey,
  parseGenesis,
  parseJson,
  stringifyJson,
  toHex,
  txId,
  utf8,
  type Genesis,
  type Transaction,
} from "../src/index.js";

const RPC = process.env.SEQ_RPC;
const RPC_2 = process.env.SEQ_RPC_2 ?? RPC;
const HOME = process.env.SEQ_HOME;
const GENESIS = process.env.SEQ_GENESIS;
const live = RPC && HOME && GENESIS ? false : "SEQ_RPC, SEQ_HOME and SEQ_GENESIS name no devnet";

describe("against a live devnet", { skip: live }, () => {
  let genesis: Genesis;
  let client: Client;
  let light: LightClient;
  const ours: Array<{ id: Uint8Array; namespace: bigint }> = [];

  before(() => {
    genesis = parseGenesis(parseJson(readFileSync(GENESIS!, "utf8")));
    client = new Client(RPC!);
    light = new LightClient(RPC_2!, genesis);
  });

  async function wallet(index: number): Promise<Wallet> {
    return new Wallet(await loadKey(join(HOME!, "accounts", `account${index}.json`)), genesis.chain_id);
  }

  it("derives the devnet's dev accounts from its seed, as the devnet wrote them", async () => {
    for (const index of [0, 1, 5]) {
      const key = await loadKey(join(HOME!, "accounts", `account${index}.json`));
      assert.equal(devAccount(index).address, key.address);
    }
    assert.equal((await loadKey(join(HOME!, "wallet.json"))).address, devAccount(0).address);
  });

  it("sends a transaction, waits for it final, and proves it with genesis alone", async () => {
    const w = await wallet(1);
    const id = await client.send(w, utf8("hello from typescript"), { gasPrice: 10n, namespace: 7n });
    ours.push({ id, namespace: 7n });
    const status = await client.waitFinal(id, { timeoutMs: 30_000, verify: true });
    assert.equal(status.status, "committed");
    const proven = await light.tx(id);
    assert.equal(proven.block.height, status.height);
    assert.equal(toHex(proven.block.blockId), toHex(status.blockId!));
    assert.ok(proven.block.certificate.signatures.length >= 3);
  });

  it("submits a batch, lets the node wait for the last, and reads each namespace with its proof", async () => {
    const w = await wallet(2);
    const first = await client.nextNonce(w.sender);
    const txs: Transaction[] = [7n, 9n, 7n, 9n].map((namespace, i) =>
      w.sign({ nonce: first + BigInt(i), payload: utf8(`batch ${i}`), gasPrice: 5n, namespace }),
    );
    const results = await client.submitMany(txs.slice(0, 3));
    for (const [i, result] of results.entries()) {
      assert.ok(result instanceof Uint8Array, `tx ${i}: ${String(result)}`);
      ours.push({ id: result, namespace: txs[i]!.namespace });
    }
    const last = await client.submitAndWait(txs[3]!, { timeoutMs: 30_000 });
    ours.push({ id: txId(txs[3]!), namespace: 9n });
    assert.equal(last.status, "committed");
    for (const tx of txs) {
      const status = await client.waitFinal(txId(tx), { timeoutMs: 30_000 });
      const seven = await light.namespace(7n, status.height!);
      const nine = await light.namespace(9n, status.height!);
      const eight = await light.namespace(8n, status.height!);
      assert.equal(eight.txs.length, 0);
      const mine = tx.namespace === 7n ? seven : nine;
      assert.ok(mine.txIds.some((id) => toHex(id) === toHex(txId(tx))), "the namespace view holds the transaction");
      const block = await light.block(status.height!, { full: true });
      const sevenInBlock = block.txs!.filter((t) => t.namespace === 7n).map((t) => toHex(txId(t)));
      assert.deepEqual(seven.txIds.map(toHex), sevenInBlock, "the view is exactly the block's namespace 7, in order");
    }
  });

  it("proves a range of blocks linked from height 1 to the tip", async () => {
    const tip = (await client.block("latest")).header as Record<string, unknown>;
    const height = BigInt(tip.height as number);
    const blocks = await light.blocks(1n, height, { full: true });
    assert.equal(blocks.length, Number(height));
    assert.equal(blocks[blocks.length - 1]!.height, height);
  });

  it("follows namespace 7 from height 1: every one of ours exactly once, in order, proven and linked", async () => {
    const want = ours.filter((t) => t.namespace === 7n).map((t) => toHex(t.id));
    const seen: string[] = [];
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), 30_000);
    try {
      for await (const item of light.follow({ namespace: 7n, from: 1n, signal: stop.signal })) {
        assert.equal(item.kind, "namespace");
        if (item.kind !== "namespace") continue;
        seen.push(...item.part.txIds.map(toHex));
        if (want.every((id) => seen.includes(id))) break;
      }
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(seen.filter((id) => want.includes(id)), want);
    assert.equal(new Set(seen).size, seen.length, "no transaction twice");
  });

  it("finds a sender's transactions and a namespace's over a height range", async () => {
    const w = await wallet(1);
    const { txs } = await client.accountTxs(w.sender, { fromNonce: 0n });
    assert.equal(toHex(txs[0]!.txId), toHex(ours[0]!.id));
    assert.equal(txs[0]!.nonce, 0n);
    const tip = BigInt(((await client.block("latest")).header as Record<string, number>).height!);
    const found: string[] = [];
    let from: bigint | null = 1n;
    while (from !== null) {
      const page: Awaited<ReturnType<Client["namespaceTxs"]>> = await client.namespaceTxs(7n, { from, to: tip });
      found.push(...page.txs.map((t) => toHex(t.txId)));
      from = page.nextFrom;
    }
    for (const t of ours.filter((o) => o.namespace === 7n)) assert.ok(found.includes(toHex(t.id)));
  });

  it("gives the node's refusals with their codes", async () => {
    const w = await wallet(1);
    const stale = w.sign({ nonce: 0n, payload: utf8("again"), gasPrice: 10n });
    await assert.rejects(client.submit(stale), (e: unknown) => e instanceof ClientError && e.code === "nonce_too_low" && e.status === 409 && /next nonce/.test(e.message));
    const next = await client.nextNonce(w.sender);
    const forged = { ...w.sign({ nonce: next, payload: utf8("x"), gasPrice: 10n }) };
    forged.signature = Uint8Array.from(forged.signature, (b, i) => (i === 0 ? b ^ 1 : b));
    await assert.rejects(client.submit(forged), (e: unknown) => e instanceof ClientError && e.code === "bad_signature");
    const other = new Wallet(w.key, "another-chain").sign({ nonce: next, payload: utf8("x"), gasPrice: 10n });
    await assert.rejects(client.submit(other), (e: unknown) => e instanceof ClientError && e.code === "wrong_chain");
    assert.equal(await client.txStatus(new Uint8Array(32)), null);
  });

  describe("through a lying node", () => {
    let proxy: Server;
    let lie: (path: string, body: any) => any = (_p, b) => b;
    let lyingUrl = "";

    before(async () => {
      // Forwards to the real node, and rewrites every JSON answer with `lie`.
      const target = new URL(RPC_2!);
      proxy = createServer((req, res) => {
        const upstream = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
          const chunks: Buffer[] = [];
          answer.on("data", (c: Buffer) => chunks.push(c));
          answer.on("end", () => {
            let body = Buffer.concat(chunks).toString("utf8");
            if ((answer.headers["content-type"] ?? "").includes("json")) body = stringifyJson(lie(req.url ?? "", parseJson(body)));
            res.writeHead(answer.statusCode ?? 500, { "content-type": "application/json" });
            res.end(body);
          });
        });
        req.pipe(upstream);
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      lyingUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    after(() => proxy.close());

    async function refused(read: (liar: LightClient) => Promise<unknown>, reason: string): Promise<void> {
      await assert.rejects(read(new LightClient(lyingUrl, genesis)), (e: unknown) => {
        assert.ok(e instanceof VerificationError, `expected a VerificationError, got ${String(e)}`);
        assert.equal(e.reason, reason, e.message);
        return true;
      });
    }

    it("refuses a namespace view with one transaction left out and the count fixed", async () => {
      const status = await client.waitFinal(ours[1]!.id);
      const height = status.height!;
      const honest = await new LightClient(lyingUrl, genesis).namespace(7n, height);
      assert.ok(honest.txs.length >= 1);
      lie = (path, body) => {
        if (!path.startsWith("/namespaces/")) return body;
        body.txs.pop();
        body.entry.count -= 1n; // every JSON integer parses as a bigint
        return body;
      };
      await refused((liar) => liar.namespace(7n, height), "entry_not_in_table");
    });

    it("refuses absence claimed for a namespace the block holds", async () => {
      const status = await client.waitFinal(ours[0]!.id);
      lie = (path, body) => (path.startsWith("/namespaces/") ? { ...body, entry: null, entry_proof: null, txs: [], absence: { left: null, right: null } } : body);
      await refused((liar) => liar.namespace(7n, status.height!), "table_not_empty");
    });

    it("refuses a block whose certificate lost a signer, or whose transactions were swapped", async () => {
      const status = await client.waitFinal(ours[0]!.id);
      lie = (path, body) => {
        if (path.startsWith("/blocks/")) body.certificate.signatures = body.certificate.signatures.slice(0, 2);
        return body;
      };
      await refused((liar) => liar.block(status.height!), "insufficient_power");
      lie = (path, body) => {
        if (path.startsWith("/blocks/")) body.tx_ids = [...body.tx_ids].reverse().concat("00".repeat(32));
        return body;
      };
      await refused((liar) => liar.block(status.height!), "wrong_tx_root");
    });

    it("refuses a transaction status that points at another block, or whose path does not reach tx_root", async () => {
      lie = (path, body) => {
        if (path.startsWith("/tx/")) return { ...body, block_id: "00".repeat(32) };
        return body;
      };
      await refused((liar) => liar.tx(ours[0]!.id), "wrong_block_id");
      lie = (path, body) => {
        if (path.startsWith("/tx/")) body.proof.path = body.proof.path.map(() => "11".repeat(32)).concat(["22".repeat(32)]);
        return body;
      };
      await refused((liar) => liar.tx(ours[0]!.id), "not_included");
      lie = (_p, b) => b;
    });
  });
});
