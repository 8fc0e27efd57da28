/** LightClient over a fake node: follow's reconnects and time limits, tx's index, resuming a Linker. */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  ClientError,
  InputError,
  Key,
  LightClient,
  Linker,
  ProofError,
  Wallet,
  blockId,
  inclusionProof,
  stringifyJson,
  toHex,
  txId,
  utf8,
  type Transaction,
} from "../src/index.js";
import { blockAnswer, buildBlock, certify, genesis, type Built } from "./helpers.js";

const wallet = new Wallet(new Key(new Uint8Array(32).fill(5)), "devnet-1");
const chain: Array<{ built: Built; answer: Record<string, unknown> }> = [];
for (let h = 0; h < 4; h++) {
  const txs: Transaction[] = [0, 1, 2].map((i) => wallet.sign({ nonce: BigInt(3 * h + i), payload: utf8(`${h}.${i}`), gasPrice: 1n }));
  const prev = chain[h - 1];
  const parent = prev ? { header: prev.built.header, certificate: certify(prev.built.header) } : null;
  const built = buildBlock(txs, parent, 1n + BigInt(h));
  chain.push({ built, answer: blockAnswer(built, certify(built.header)) });
}

const sse = (heights: number[]) =>
  heights.map((h) => `event: block\nid: ${h}\ndata: ${stringifyJson(chain[h - 1]!.answer)}\n\n`).join("");

type Route = (url: URL, n: number) => Response | Promise<Response>;

function fakeNode(route: Route): { fetch: typeof fetch; calls: () => number } {
  let n = 0;
  const fake = (async (input: string | URL | Request) => route(new URL(String(input)), n++)) as typeof fetch;
  return { fetch: fake, calls: () => n };
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(stringifyJson(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function blockRoute(url: URL): Response | null {
  const m = url.pathname.match(/^\/blocks\/(\d+)$/);
  return m ? json(chain[Number(m[1]) - 1]!.answer) : null;
}

async function collect(light: LightClient, options: Parameters<LightClient["follow"]>[0], count: number): Promise<bigint[]> {
  const heights: bigint[] = [];
  for await (const item of light.follow(options)) {
    if (item.kind === "block") heights.push(item.block.height);
    if (heights.length === count) break;
  }
  return heights;
}

describe("LightClient.follow", () => {
  it("rides out a 503, a stream that ends and one cut mid-event, missing and repeating nothing", async () => {
    const node = fakeNode((url, n) => {
      if (url.pathname !== "/events") return blockRoute(url)!;
      const from = Number(url.searchParams.get("from"));
      if (n === 0) return json({ error: { code: "overloaded", message: "busy" } }, 503, { "retry-after": "0" });
      if (n === 1) return new Response(sse([from, from + 1]));
      if (n === 2) return new Response(sse([from]) + sse([from + 1]).slice(0, 100)); // cut inside an event
      return new Response(sse([from]));
    });
    const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
    assert.deepEqual(await collect(light, { from: 1n }, 4), [1n, 2n, 3n, 4n]);
  });

  it("gives up after `reconnects` connections that brought no block, waiting longer each time", async () => {
    const node = fakeNode(() => new Response(""));
    const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
    const started = Date.now();
    await assert.rejects(collect(light, { reconnects: 3 }, 1), (e: unknown) => e instanceof ClientError && /3 connections in a row brought no block/.test(e.message));
    assert.equal(node.calls(), 4);
    assert.ok(Date.now() - started >= 200 + 400 + 800 - 50, "backs off");
  });

  it("counts a silent stream as dead after idleMs, and a node that never answers after timeoutMs", async () => {
    const silent = fakeNode(() => new Response(new ReadableStream({ pull: () => new Promise(() => undefined) })));
    const light = new LightClient("http://node", genesis(), { fetch: silent.fetch });
    await assert.rejects(collect(light, { reconnects: 1, idleMs: 100 }, 1), (e: unknown) => e instanceof ClientError && e.code === "timeout" && /for 0.1 s/.test(e.message));
    assert.equal(silent.calls(), 2);
    const mute = fakeNode(() => new Promise<Response>(() => undefined));
    const light2 = new LightClient("http://node", genesis(), { fetch: mute.fetch, timeoutMs: 100 });
    await assert.rejects(collect(light2, { reconnects: 1 }, 1), (e: unknown) => e instanceof ClientError && e.code === "timeout" && /no answer within 0.1 s/.test(e.message));
  });

  it("ends quietly when the caller aborts, and refuses time limits a timer cannot keep", async () => {
    const node = fakeNode((url) => (url.pathname === "/events" ? new Response(sse([1, 2, 3])) : blockRoute(url)!));
    const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
    const stop = new AbortController();
    const seen: bigint[] = [];
    for await (const item of light.client.events({ signal: stop.signal })) {
      seen.push(BigInt(((item as any).header as any).height));
      stop.abort(); // the rest of the chunk is not handed out
    }
    assert.deepEqual(seen, [1n]);
    for (const bad of [0, -1, 1.5, Infinity, NaN, 2 ** 31]) {
      assert.throws(() => new LightClient("http://node", genesis(), { timeoutMs: bad }), InputError);
      await assert.rejects(light.client.events({ idleMs: bad }).next(), InputError);
    }
  });

  it("stops at once on a lie, without asking again", async () => {
    const node = fakeNode((url) => {
      const forged = structuredClone(chain[0]!.answer) as any;
      forged.tx_ids.pop();
      return url.pathname === "/events" ? new Response(`event: block\nid: 1\ndata: ${stringifyJson(forged)}\n\n`) : blockRoute(url)!;
    });
    const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
    await assert.rejects(collect(light, {}, 1), (e: unknown) => e instanceof ProofError && e.reason === "wrong_tx_root");
    assert.equal(node.calls(), 1);
  });

  it("resumes after a stored block, and refuses a chain that does not build on it", async () => {
    const events = fakeNode((url) => (url.pathname === "/events" ? new Response(sse([Number(url.searchParams.get("from"))])) : blockRoute(url)!));
    const light = new LightClient("http://node", genesis(), { fetch: events.fetch });
    const stored = blockId(chain[1]!.built.header);
    assert.deepEqual(await collect(light, { from: 3n, linker: new Linker(2n, stored) }, 1), [3n]);
    await assert.rejects(collect(light, { from: 3n, linker: new Linker(2n, new Uint8Array(32)) }, 1), (e: unknown) => e instanceof ProofError && e.reason === "wrong_parent");
    await assert.rejects(collect(light, { from: 5n, linker: new Linker(2n, stored) }, 1), InputError);
    assert.throws(() => new Linker(2n, null), InputError);
  });
});

describe("LightClient.tx", () => {
  const built = chain[0]!.built;
  const ids = built.txs.map(txId);
  const status = (index: number, proofIndex: number, size: number) => {
    const proof = inclusionProof(ids.slice(0, size), proofIndex);
    return { tx_id: toHex(ids[2]!), status: "committed", height: 1, index, block_id: toHex(blockId(built.header)), proof: { index: proof.index, size: proof.size, path: proof.path.map(toHex) } };
  };

  it("proves where a transaction is, not only that it is in the block", async () => {
    // Item 2 of 3 takes the same audit path as item 1 of 2: served as index 1 of 2, it verifies against tx_root.
    const honest = inclusionProof(ids, 2);
    const lie = { ...status(1, 1, 2), proof: { index: 1n, size: 2n, path: honest.path.map(toHex) } };
    for (const [answer, expected] of [[status(2, 2, 3), null], [lie, "wrong_index"]] as const) {
      const node = fakeNode((url) => (url.pathname.startsWith("/tx/") ? json(answer) : blockRoute(url)!));
      const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
      if (expected === null) assert.equal((await light.tx(ids[2]!)).status.index, 2n);
      else await assert.rejects(light.tx(ids[2]!), (e: unknown) => e instanceof ProofError && e.reason === expected);
    }
  });

  it("calls a pending transaction not committed, a ProofError as in Python", async () => {
    const node = fakeNode(() => json({ tx_id: toHex(ids[0]!), status: "pending" }));
    const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
    await assert.rejects(light.tx(ids[0]!), (e: unknown) => e instanceof ProofError && e.reason === "not_committed");
  });

  it("refuses a full block served without its transactions, and a caller's range that is no range", async () => {
    const node = fakeNode((url) => {
      const { txs: _txs, ...bare } = chain[0]!.answer;
      return url.pathname === "/blocks/1" ? json(bare) : blockRoute(url)!;
    });
    const light = new LightClient("http://node", genesis(), { fetch: node.fetch });
    await assert.rejects(light.block(1n, { full: true }), (e: unknown) => e instanceof ProofError && e.reason === "malformed");
    assert.equal((await light.block(1)).height, 1n);
    await assert.rejects(light.blocks(3n, 2n), InputError);
  });
});
