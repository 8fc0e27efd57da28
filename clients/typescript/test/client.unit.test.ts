/** Keys, key files, parsers, SSE and the HTTP client against a local fake server: the parts that need no devnet. */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import {
  Client,
  ClientError,
  InputError,
  Key,
  SseParser,
  Wallet,
  devAccount,
  loadKey,
  parseGenesis,
  parseJson,
  parseTransaction,
  saveKey,
  stringifyJson,
  toHex,
  transactionJson,
  txId,
  utf8,
  verifySignature,
} from "../src/index.js";

describe("keys and wallets", () => {
  it("derives the devnet's dev accounts from the seed", () => {
    // Account 0 of the default seed is every devnet's dev wallet; pinned so a change in either side shows.
    assert.equal(devAccount(0).address, devAccount(0, "devnet").address);
    assert.notEqual(devAccount(0).address, devAccount(1).address);
    assert.notEqual(devAccount(0).address, devAccount(0, "other").address);
    assert.throws(() => devAccount(-1), InputError);
  });

  it("verifies signatures as RFC 8032 does, not ZIP-215: a small-order key signs nothing", () => {
    // The identity point as key and R, S = 0: valid under ZIP-215's rules, refused by the nodes.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    const signature = new Uint8Array(64);
    signature[0] = 1;
    assert.equal(verifySignature(identity, utf8("anything"), signature), false);
    const key = Key.generate();
    assert.equal(verifySignature(key.publicKey, utf8("m"), key.sign(utf8("m"))), true);
    assert.equal(verifySignature(key.publicKey, utf8("n"), key.sign(utf8("m"))), false);
  });

  it("refuses values a transaction cannot carry", () => {
    const wallet = new Wallet(Key.generate(), "devnet-1");
    assert.throws(() => wallet.sign({ nonce: -1n, payload: utf8("x"), gasPrice: 1n }), /nonce must be an integer in 0..2\^64-1/);
    assert.throws(() => wallet.sign({ nonce: 0n, payload: utf8("x"), gasPrice: 1n << 64n }), /gasPrice/);
    assert.throws(() => wallet.sign({ nonce: 0.5, payload: utf8("x"), gasPrice: 1n }), /nonce/);
    assert.throws(() => wallet.sign({ nonce: 0n, payload: new Uint8Array(1024 * 1024 + 1), gasPrice: 1n }), /at most 1048576/);
    assert.throws(() => new Wallet(Key.generate(), ""), /chain_id/);
    assert.throws(() => new Wallet(Key.generate(), "x".repeat(65)), /chain_id/);
    assert.throws(() => new Key(new Uint8Array(31)), /32 bytes/);
  });

  it("round-trips key files in the node's format, owner-readable only, never overwriting", async () => {
    const dir = mkdtempSync(join(tmpdir(), "seq-keys-"));
    const key = Key.generate();
    const file = join(dir, "sub", "wallet.json");
    await saveKey(key, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const document = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(Object.keys(document).sort(), ["private_key", "public_key", "type"]);
    assert.equal((await loadKey(file)).address, key.address);
    await assert.rejects(saveKey(Key.generate(), file), /already exists/);
    assert.equal((await loadKey(file)).address, key.address);
    writeFileSync(file, JSON.stringify({ ...document, public_key: devAccount(0).address }));
    await assert.rejects(loadKey(file), /does not match/);
    writeFileSync(file, "{");
    await assert.rejects(loadKey(file), /not JSON/);
    await assert.rejects(loadKey(join(dir, "missing.json")), /cannot read key file/);
  });
});

describe("parsers", () => {
  const wallet = new Wallet(Key.generate(), "devnet-1");
  const tx = wallet.sign({ nonce: (1n << 64n) - 1n, payload: utf8("big"), gasPrice: (1n << 64n) - 1n, namespace: 1n << 63n });

  it("keep integers above 2^53 exact through JSON", () => {
    const text = stringifyJson(transactionJson(tx));
    assert.match(text, /"nonce":18446744073709551615/);
    const back = parseTransaction(parseJson(text));
    assert.equal(back.nonce, tx.nonce);
    assert.equal(toHex(txId(back)), toHex(txId(tx)));
  });

  it("name the path of the first wrong field", () => {
    const json = parseJson(stringifyJson(transactionJson(tx))) as Record<string, unknown>;
    assert.throws(() => parseTransaction({ ...json, nonce: -1 }), /\$\.nonce: expected an integer in 0\.\./);
    assert.throws(() => parseTransaction({ ...json, nonce: 1.5 }), /\$\.nonce: expected an integer/);
    assert.throws(() => parseTransaction({ ...json, nonce: 18446744073709551616n }), /\$\.nonce/);
    assert.throws(() => parseTransaction({ ...json, sender: "zz" }), /\$\.sender/);
    assert.throws(() => parseTransaction({ ...json, extra: 1 }), /\$\.extra: unknown field/);
    const { signature: _s, ...unsigned } = json;
    assert.throws(() => parseTransaction(unsigned), /missing field `signature`/);
    assert.equal(parseTransaction({ ...json, sender: "0X" + String(json.sender).toUpperCase() }).sender.length, 32);
  });

  it("read the repository's example genesis", () => {
    const text = readFileSync(new URL("../../../../configs/genesis.example.json", import.meta.url), "utf8");
    const genesis = parseGenesis(parseJson(text));
    assert.equal(genesis.validators.length, 4);
    assert.throws(() => parseGenesis({ ...(parseJson(text) as object), initial_height: 2 }), /must be 1/);
  });
});

describe("SseParser", () => {
  it("assembles events across chunk boundaries and skips comments", () => {
    const parser = new SseParser();
    const text = ": keepalive\n\nevent: block\nid: 7\ndata: {\"a\":\ndata: 1}\r\n\r\n";
    const events = [];
    for (const byte of utf8(text)) events.push(...parser.feed(Uint8Array.of(byte)));
    assert.deepEqual(events, [{ event: "block", id: "7", data: "{\"a\":\n1}" }]);
  });

  it("refuses a line that never ends past its bound", () => {
    const parser = new SseParser(1024);
    parser.feed(utf8("data: "));
    assert.throws(() => parser.feed(new Uint8Array(2048).fill(0x61)), (e: unknown) => e instanceof ClientError && e.code === "bad_response");
  });
});

describe("Client against a fake node", () => {
  let server: Server;
  let url = "";
  let answer: (path: string) => { status: number; body: string; headers?: Record<string, string> } = () => ({ status: 200, body: "{}" });
  let calls = 0;

  before(async () => {
    server = createServer((request, response) => {
      calls++;
      const { status, body, headers } = answer(request.url ?? "");
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const wallet = new Wallet(Key.generate(), "devnet-1");
  const tx = wallet.sign({ nonce: 0n, payload: utf8("x"), gasPrice: 1n });

  it("gives the node's error with its code and status", async () => {
    answer = () => ({ status: 409, body: JSON.stringify({ error: { code: "nonce_too_low", message: "next nonce is 3" } }) });
    await assert.rejects(new Client(url).submit(tx), (e: unknown) => e instanceof ClientError && e.code === "nonce_too_low" && e.status === 409 && /next nonce is 3/.test(e.message));
  });

  it("refuses an acknowledgement for another transaction", async () => {
    answer = () => ({ status: 202, body: JSON.stringify({ tx_id: "00".repeat(32) }) });
    await assert.rejects(new Client(url).submit(tx), (e: unknown) => e instanceof ClientError && e.code === "bad_response" && /not the id of the transaction sent/.test(e.message));
  });

  it("calls an answer that is not JSON bad_response, with a snippet", async () => {
    answer = () => ({ status: 500, body: "<html>oops</html>" });
    await assert.rejects(new Client(url).status(), (e: unknown) => e instanceof ClientError && e.code === "bad_response" && /oops/.test(e.message));
  });

  it("stops reading an answer past its bound", async () => {
    answer = () => ({ status: 200, body: JSON.stringify({ pad: "x".repeat(10_000) }) });
    await assert.rejects(new Client(url, { responseBytesMax: 1000 }).status(), (e: unknown) => e instanceof ClientError && e.code === "bad_response" && /over 1000 bytes/.test(e.message));
  });

  it("asks again after a 429 that names Retry-After, a bounded number of times", async () => {
    calls = 0;
    answer = () => ({ status: 429, body: JSON.stringify({ error: { code: "rate_limited", message: "slow down" } }), headers: { "retry-after": "0" } });
    await assert.rejects(new Client(url).status(), (e: unknown) => e instanceof ClientError && e.code === "rate_limited");
    assert.equal(calls, 4);
  });

  it("names the URL when the node cannot be reached", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(new Client(`http://127.0.0.1:${port}`).status(), (e: unknown) => e instanceof ClientError && e.code === "unreachable" && e.message.includes(`127.0.0.1:${port}/status`));
  });

  it("times out a node that never answers", async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      await assert.rejects(new Client(`http://127.0.0.1:${port}`, { timeoutMs: 200 }).status(), (e: unknown) => e instanceof ClientError && e.code === "timeout");
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  it("refuses URLs that are not http", () => {
    assert.throws(() => new Client("ftp://x"), InputError);
    assert.throws(() => new Client("nonsense"), InputError);
  });
});

// The key files the Python side writes load here (and the other way), when a python is given.
describe("key files across languages", { skip: process.env.SEQ_PYTHON ? false : "SEQ_PYTHON not set" }, () => {
  it("loads a key the Python client saved, and Python loads ours", async () => {
    const dir = mkdtempSync(join(tmpdir(), "seq-cross-"));
    const python = process.env.SEQ_PYTHON!;
    const pyFile = join(dir, "py.json");
    const code = `import sys\nfrom sequencer.crypto import PrivateKey, save_key, load_key\nk = PrivateKey(bytes(range(32)))\nsave_key(k, sys.argv[1])\nprint(load_key(sys.argv[2]).public_key.hex())`;
    const tsFile = join(dir, "ts.json");
    const key = Key.generate();
    await saveKey(key, tsFile);
    const printed = execFileSync(python, ["-c", code, pyFile, tsFile], { encoding: "utf8" }).trim();
    assert.equal(printed, key.address);
    assert.equal((await loadKey(pyFile)).address, "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
  });
});
