/**
 * A wallet's client of the node's HTTP API.
 *
 *     const client = new Client("http://127.0.0.1:26600");
 *     const id = await client.send(wallet, utf8("hello"), { gasPrice: 10n });
 *     const status = await client.waitFinal(id);
 *
 * Every failure is a `ClientError`: the node's own (its `code`: `nonce_too_low`,
 * `invalid_signature`, ...; `status` is the HTTP status), or the client's:
 * `unreachable` (naming the URL), `timeout`, `bad_response` (an answer that
 * does not parse). Answers are read within a bound (`responseBytesMax`) and
 * each request within a time (`timeoutMs`). A 429 or 503 that names a
 * Retry-After is asked again a few times: the node refused it before doing
 * anything. What the node says is parsed, not proven; `LightClient` proves it.
 */

import { BAD_RESPONSE, ClientError, InputError, TIMEOUT, UNREACHABLE } from "./errors.js";
import { bytesEqual, fromHex, joinBytes, toHex } from "./hex.js";
import { blockId, txId } from "./ids.js";
import { parseJson, stringifyJson } from "./json.js";
import { toU64, type Wallet } from "./keys.js";
import { verifyInclusion } from "./merkle.js";
import { SseParser } from "./sse.js";
import { parseHeader, parseProof, readU64, transactionJson, type InclusionProof, type Transaction } from "./types.js";

/** The largest answer read: a full block is 4 MiB of transactions, twice that as hex, plus keys. */
export const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
const RETRIES = 3;
const EVENTS_IDLE_MS = 45_000;
const RETRY_AFTER_MS_MAX = 5_000;
const SNIPPET_CHARS_MAX = 200;

export type TxState = "pending" | "queued" | "evicted" | "expired" | "committed";
export type WaitLevel = "final" | "l1";

export interface TxStatus {
  txId: Uint8Array;
  status: TxState;
  /** Committed only: where, and the audit path to the block's tx_root. */
  height?: bigint;
  index?: bigint;
  blockId?: Uint8Array;
  proof?: InclusionProof;
  /** Evicted or expired: why it was dropped. */
  reason?: string;
  /** Committed, once a confirmed L1 batch holds its block. */
  l1?: { batchNumber: bigint; commitment: Uint8Array };
}

export interface ClientOptions {
  /** Per request (default 10 s). */
  timeoutMs?: number;
  responseBytesMax?: number;
  /** Another `fetch` (a test's, a proxy's). */
  fetch?: typeof fetch;
}

export interface SendOptions {
  gasPrice?: bigint | number;
  /** Asked of the node when not given. */
  nonce?: bigint | number;
  namespace?: bigint | number;
}

export interface WaitOptions {
  timeoutMs?: number;
  pollMs?: number;
  level?: WaitLevel;
  /** Check the inclusion proof against the block's header (the certificate is `LightClient`'s). */
  verify?: boolean;
}

export interface EventsOptions {
  from?: bigint | number;
  namespace?: bigint | number;
  /** Block events carry transaction bodies unless false. */
  full?: boolean;
  signal?: AbortSignal;
  /** The longest silence before the stream counts as dead (default 45 s; the node sends a keepalive every 15 s). */
  idleMs?: number;
}

export interface AccountTx {
  nonce: bigint;
  txId: Uint8Array;
  height: bigint;
  index: bigint;
}

export interface NamespaceTx {
  height: bigint;
  index: bigint;
  txId: Uint8Array;
  tx: unknown;
}

type Json = Record<string, unknown>;
type Params = Record<string, string>;

interface Exchange {
  what: string;
  status: number;
  body: string;
  retryAfter: string | null;
}

export class Client {
  readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly responseBytesMax: number;
  private readonly fetchImpl: typeof fetch;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new InputError(`not a URL: ${JSON.stringify(baseUrl)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new InputError(`not an http(s) URL: ${baseUrl}`);
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.timeoutMs = checkMs("timeoutMs", options.timeoutMs ?? 10_000);
    this.responseBytesMax = options.responseBytesMax ?? RESPONSE_BYTES_MAX;
    this.fetchImpl = options.fetch ?? fetch;
  }

  // ---------------------------------------------------------------- transport

  private url(path: string, params?: Params): string {
    const query = params && Object.keys(params).length > 0 ? "?" + new URLSearchParams(params).toString() : "";
    return this.baseUrl + path + query;
  }

  private async exchange(
    method: "GET" | "POST",
    path: string,
    params?: Params,
    body?: string,
    timeoutMs = this.timeoutMs,
  ): Promise<Exchange> {
    const url = this.url(path, params);
    const what = `${method} ${path}`;
    for (let attempt = 0; ; attempt++) {
      const answer = await this.once(method, url, what, body, timeoutMs);
      const wait = retryWaitMs(answer, attempt);
      if (wait === null) return answer;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private async once(method: string, url: string, what: string, body: string | undefined, timeoutMs: number): Promise<Exchange> {
    const signal = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      const init: RequestInit = { method, signal };
      if (body !== undefined) {
        init.body = body;
        init.headers = { "content-type": "application/json" };
      }
      response = await this.fetchImpl(url, init);
    } catch (error) {
      throw transportError(error, what, url, timeoutMs);
    }
    let text: string;
    try {
      text = await readCapped(response, this.responseBytesMax, what);
    } catch (error) {
      if (error instanceof ClientError) throw error;
      throw transportError(error, what, url, timeoutMs);
    }
    return { what, status: response.status, body: text, retryAfter: response.headers.get("retry-after") };
  }

  private async json(method: "GET" | "POST", path: string, params?: Params, body?: string): Promise<{ exchange: Exchange; value: unknown }> {
    const exchange = await this.exchange(method, path, params, body);
    if (exchange.status < 200 || exchange.status >= 300) throw errorOf(exchange);
    return { exchange, value: decode(exchange) };
  }

  /** Any GET whose answer is a JSON object, as it is (the light client checks it). */
  async getJson(path: string, params?: Params): Promise<Json> {
    const { exchange, value } = await this.json("GET", path, params);
    return asObject(exchange, value, "$");
  }

  // ---------------------------------------------------------------- transactions

  /** Submit one transaction; its id once the node acknowledged it (202). */
  async submit(tx: Transaction): Promise<Uint8Array> {
    const { exchange, value } = await this.json("POST", "/tx", undefined, stringifyJson(transactionJson(tx)));
    return acceptedId(exchange, asObject(exchange, value, "$").tx_id, tx, "$.tx_id");
  }

  /** Submit many in one request; per transaction its id or the node's error, in order. */
  async submitMany(txs: readonly Transaction[]): Promise<Array<Uint8Array | ClientError>> {
    const body = stringifyJson(txs.map(transactionJson));
    const { exchange, value } = await this.json("POST", "/txs", undefined, body);
    const results = asObject(exchange, value, "$").results;
    if (!Array.isArray(results) || results.length !== txs.length) {
      throw bad(exchange, `expected ${txs.length} results`);
    }
    return results.map((item, i) => {
      const o = asObject(exchange, item, `$.results[${i}]`);
      if (o.error !== undefined && o.error !== null) {
        const info = errorInfo(o.error);
        if (info === null) throw bad(exchange, `$.results[${i}].error is not an error object`);
        return new ClientError(info.code, info.message);
      }
      return acceptedId(exchange, o.tx_id, txs[i]!, `$.results[${i}].tx_id`);
    });
  }

  /** Where a transaction stands; null if the node does not know it. */
  async txStatus(id: Uint8Array, { verify = false } = {}): Promise<TxStatus | null> {
    const exchange = await this.exchange("GET", `/tx/${hexArg("txId", id)}`);
    if (exchange.status === 404) {
      const error = errorOf(exchange);
      if (error.code === "not_found") return null;
      throw error;
    }
    if (exchange.status < 200 || exchange.status >= 300) throw errorOf(exchange);
    const status = parseStatus(exchange, decode(exchange), id);
    if (verify && status.status === "committed") await this.checkInclusion(status);
    return status;
  }

  /** The tx's audit path reaches the tx_root of a header that hashes to the block id named. */
  private async checkInclusion(status: TxStatus): Promise<void> {
    const block = await this.block(status.height!);
    const where = `transaction ${toHex(status.txId)} at height ${status.height}`;
    let header;
    try {
      header = parseHeader(block.header, "header");
    } catch (error) {
      throw new ClientError(BAD_RESPONSE, `${where}: ${(error as Error).message}`);
    }
    if (!bytesEqual(blockId(header), status.blockId!) || header.height !== status.height) {
      throw new ClientError("bad_proof", `${where}: the block served is not the one named`);
    }
    if (!verifyInclusion(status.txId, status.proof!, header.tx_root)) {
      throw new ClientError("bad_proof", `${where}: the proof does not reach the block's tx_root`);
    }
  }

  /** The nonce the node expects next from `sender` (pending transactions counted). */
  async nextNonce(sender: Uint8Array): Promise<bigint> {
    const exchange = await this.exchange("GET", `/accounts/${hexArg("sender", sender)}`);
    if (exchange.status === 404 && errorOf(exchange).code === "not_found") return 0n;
    if (exchange.status < 200 || exchange.status >= 300) throw errorOf(exchange);
    const body = asObject(exchange, decode(exchange), "$");
    return u64(exchange, body.next_nonce, "$.next_nonce");
  }

  /** Sign with `wallet` (asking the node for the nonce when not given) and submit. */
  async send(wallet: Wallet, payload: Uint8Array, options: SendOptions = {}): Promise<Uint8Array> {
    const nonce = options.nonce ?? (await this.nextNonce(wallet.sender));
    const args = { nonce, payload, gasPrice: options.gasPrice ?? 1n };
    const tx = wallet.sign(options.namespace === undefined ? args : { ...args, namespace: options.namespace });
    return this.submit(tx);
  }

  /**
   * Poll until committed (level `l1`: and held by a confirmed L1 batch); a
   * `timeout` error after `timeoutMs`. A dropped transaction (evicted,
   * expired) is an error with that code at once: it will not commit.
   */
  async waitFinal(id: Uint8Array, options: WaitOptions = {}): Promise<TxStatus> {
    const { timeoutMs = 30_000, pollMs = 50, level = "final", verify = false } = options;
    if (level !== "final" && level !== "l1") throw new InputError(`level must be final or l1, got ${String(level)}`);
    if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) throw new InputError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
    checkMs("pollMs", pollMs);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.txStatus(id, { verify });
      if (status !== null && status.status === "committed" && (level === "final" || status.l1 !== undefined)) {
        return status;
      }
      if (status !== null && (status.status === "evicted" || status.status === "expired")) {
        throw new ClientError(status.status, `transaction ${toHex(id)} was ${status.status}: ${status.reason ?? ""}`);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        let seen = status === null ? "unknown to the node" : status.status;
        if (status?.status === "committed") seen = "committed, in no confirmed L1 batch yet";
        throw new ClientError(TIMEOUT, `transaction ${toHex(id)} still ${seen} after ${timeoutMs / 1000} s`);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, remaining)));
    }
  }

  /**
   * Submit and let the node wait for the commit (`POST /tx?wait=final`):
   * the committed (or dropped) status, or, after `timeoutMs` (at most 60 s),
   * the status then (pending or queued).
   */
  async submitAndWait(tx: Transaction, { timeoutMs = 30_000 } = {}): Promise<TxStatus> {
    if (!(Number.isInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= 60_000)) {
      throw new InputError(`timeoutMs must be an integer in 0..60000, got ${timeoutMs}`);
    }
    const params = { wait: "final", timeout_ms: String(timeoutMs) };
    const body = stringifyJson(transactionJson(tx));
    // The node holds the answer up to `timeoutMs`: the request gets that on top of the usual time.
    const exchange = await this.exchange("POST", "/tx", params, body, this.timeoutMs + timeoutMs);
    if (exchange.status < 200 || exchange.status >= 300) throw errorOf(exchange);
    return parseStatus(exchange, decode(exchange), txId(tx));
  }

  // ---------------------------------------------------------------- reading

  async status(): Promise<Json> {
    return this.getJson("/status");
  }

  /** A block as JSON (`full`: with its transactions). Prove it with `LightClient.block`. */
  async block(height: bigint | number | "latest", { full = false } = {}): Promise<Json> {
    const at = height === "latest" ? "latest" : String(toU64("height", height));
    return this.getJson(`/blocks/${at}`, full ? { full: "true" } : undefined);
  }

  /** Up to `limit` blocks from `from` (the node may answer fewer: page on from the last). */
  async blocks(from: bigint | number, limit: number, { full = false } = {}): Promise<Json[]> {
    const params: Params = { from: String(toU64("from", from)), limit: String(limit) };
    if (full) params.full = "true";
    const { exchange, value } = await this.json("GET", "/blocks", params);
    const blocks = asObject(exchange, value, "$").blocks;
    if (!Array.isArray(blocks)) throw bad(exchange, "$.blocks is not a list");
    return blocks.map((b, i) => asObject(exchange, b, `$.blocks[${i}]`));
  }

  /** One namespace's part of a block, with its proofs. Prove it with `LightClient.namespace`. */
  async namespaceBlock(namespace: bigint | number, height: bigint | number): Promise<Json> {
    return this.getJson(`/namespaces/${toU64("namespace", namespace)}/blocks/${toU64("height", height)}`);
  }

  /** A sender's committed transactions by nonce, paged (`nextFromNonce` null when done). */
  async accountTxs(
    sender: Uint8Array,
    { fromNonce = 0n, limit }: { fromNonce?: bigint | number; limit?: number } = {},
  ): Promise<{ txs: AccountTx[]; nextFromNonce: bigint | null }> {
    const params: Params = { from_nonce: String(toU64("fromNonce", fromNonce)) };
    if (limit !== undefined) params.limit = String(limit);
    const { exchange, value } = await this.json("GET", `/accounts/${hexArg("sender", sender)}/txs`, params);
    const body = asObject(exchange, value, "$");
    const txs = listOf(exchange, body.txs, "$.txs").map((item, i) => {
      const o = asObject(exchange, item, `$.txs[${i}]`);
      return {
        nonce: u64(exchange, o.nonce, `$.txs[${i}].nonce`),
        txId: hex32(exchange, o.tx_id, `$.txs[${i}].tx_id`),
        height: u64(exchange, o.height, `$.txs[${i}].height`),
        index: u64(exchange, o.index, `$.txs[${i}].index`),
      };
    });
    const next = body.next_from_nonce;
    return { txs, nextFromNonce: next === null || next === undefined ? null : u64(exchange, next, "$.next_from_nonce") };
  }

  /** A namespace's committed transactions over heights `from..to`, paged (`nextFrom` null when done). */
  async namespaceTxs(
    namespace: bigint | number,
    { from, to }: { from: bigint | number; to: bigint | number },
  ): Promise<{ txs: NamespaceTx[]; nextFrom: bigint | null }> {
    const params = { from: String(toU64("from", from)), to: String(toU64("to", to)) };
    const { exchange, value } = await this.json("GET", `/namespaces/${toU64("namespace", namespace)}/txs`, params);
    const body = asObject(exchange, value, "$");
    const txs = listOf(exchange, body.txs, "$.txs").map((item, i) => {
      const o = asObject(exchange, item, `$.txs[${i}]`);
      return {
        height: u64(exchange, o.height, `$.txs[${i}].height`),
        index: u64(exchange, o.index, `$.txs[${i}].index`),
        txId: hex32(exchange, o.tx_id, `$.txs[${i}].tx_id`),
        tx: o.tx,
      };
    });
    const next = body.next_from;
    return { txs, nextFrom: next === null || next === undefined ? null : u64(exchange, next, "$.next_from") };
  }

  /**
   * Finalized blocks as the node streams them (`GET /events`, server-sent
   * events), each as its JSON object: the block, or with `namespace` the
   * namespace view. Ends when the node closes the stream or `signal` aborts;
   * resume with `from` = the next height.
   */
  async *events(options: EventsOptions = {}): AsyncGenerator<Json> {
    const params: Params = {};
    if (options.from !== undefined) params.from = String(toU64("from", options.from));
    if (options.namespace !== undefined) params.namespace = String(toU64("namespace", options.namespace));
    if (options.full === false) params.full = "false";
    const idleMs = checkMs("idleMs", options.idleMs ?? EVENTS_IDLE_MS);
    const url = this.url("/events", params);
    const what = "GET /events";
    // One controller for the whole stream: the caller's signal, the time to
    // the answer's head (`timeoutMs`), then the longest silence (`idleMs`; the
    // node sends a keepalive every 15 s), each aborts it.
    const stop = new AbortController();
    let timedOut: string | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number, why: string) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = why;
        stop.abort();
      }, ms);
    };
    const onAbort = () => stop.abort();
    options.signal?.addEventListener("abort", onAbort);
    if (options.signal?.aborted) stop.abort();
    const failed = (error: unknown) =>
      timedOut !== null ? new ClientError(TIMEOUT, `${what} to ${url}: ${timedOut}`) : transportError(error, what, url, this.timeoutMs);
    try {
      arm(this.timeoutMs, `no answer within ${this.timeoutMs / 1000} s`);
      let response: Response;
      try {
        response = await abortable(this.fetchImpl(url, { headers: { accept: "text/event-stream" }, signal: stop.signal }), stop.signal);
      } catch (error) {
        if (options.signal?.aborted) return; // the caller's abort ends the stream quietly
        throw failed(error);
      }
      if (!response.ok) {
        const body = await readCapped(response, 64 * 1024, what).catch(() => "");
        throw errorOf({ what, status: response.status, body, retryAfter: response.headers.get("retry-after") });
      }
      if (response.body === null) throw new ClientError(BAD_RESPONSE, `${what}: no body`);
      const parser = new SseParser(this.responseBytesMax);
      const reader = response.body.getReader();
      try {
        for (;;) {
          arm(idleMs, `nothing, not even a keepalive, for ${idleMs / 1000} s`);
          let chunk;
          try {
            chunk = await abortable(reader.read(), stop.signal);
          } catch (error) {
            if (options.signal?.aborted) return;
            throw failed(error);
          }
          if (chunk.done) return;
          for (const event of parser.feed(chunk.value)) {
            if (options.signal?.aborted) return;
            const exchange = { what, status: response.status, body: event.data, retryAfter: null };
            if (event.event === "error") throw errorOf({ ...exchange, status: 503 });
            if (event.event !== "block") continue;
            clearTimeout(timer); // the caller's time with an event is not the node's silence
            yield asObject(exchange, decode(exchange), "$");
          }
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }
}

// ------------------------------------------------------------------ parsing helpers

// setTimeout takes at most 2^31-1 ms (about 24 days), and fires at once past it.
const TIMER_MS_MAX = 2 ** 31 - 1;

function checkMs(name: string, value: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > TIMER_MS_MAX) {
    throw new InputError(`${name} must be an integer number of milliseconds in 1..${TIMER_MS_MAX}, got ${String(value)}`);
  }
  return value;
}

/** `promise`, or a rejection once `signal` aborts, whether or not what made the promise listens to it. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new DOMException("aborted", "AbortError"));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DOMException("aborted", "AbortError"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => (signal.removeEventListener("abort", onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener("abort", onAbort), reject(error)),
    );
  });
}

function retryWaitMs(answer: Exchange, attempt: number): number | null {
  if (answer.status !== 429 && answer.status !== 503) return null;
  if (attempt >= RETRIES) return null;
  return retryAfterMs(answer) ?? null;
}

/** The wait the node named (Retry-After, in seconds), clamped; undefined when it named none. */
function retryAfterMs(exchange: Exchange): number | undefined {
  const seconds = exchange.retryAfter === null ? NaN : Number(exchange.retryAfter);
  return Number.isFinite(seconds) ? Math.min(Math.max(seconds * 1000, 0), RETRY_AFTER_MS_MAX) : undefined;
}

async function readCapped(response: Response, max: number, what: string): Promise<string> {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel().catch(() => undefined);
    throw new ClientError(BAD_RESPONSE, `${what}: an answer of ${declared} bytes, over ${max}`, response.status);
  }
  if (response.body === null) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw new ClientError(BAD_RESPONSE, `${what}: an answer over ${max} bytes`, response.status);
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(joinBytes(chunks));
  } catch {
    throw new ClientError(BAD_RESPONSE, `${what}: an answer that is not UTF-8`, response.status);
  }
}

function transportError(error: unknown, what: string, url: string, timeoutMs: number): ClientError {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") {
    return new ClientError(TIMEOUT, `${what} to ${url}: no answer within ${timeoutMs / 1000} s`);
  }
  if (e?.name === "AbortError") return new ClientError(TIMEOUT, `${what} to ${url}: aborted`);
  const cause = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
  return new ClientError(UNREACHABLE, `${what} to ${url}: ${cause}`);
}

function snippet(text: string): string {
  return text.length > SNIPPET_CHARS_MAX ? text.slice(0, SNIPPET_CHARS_MAX) + "..." : text;
}

function bad(exchange: Exchange, problem: string): ClientError {
  return new ClientError(BAD_RESPONSE, `${exchange.what}: ${problem}`, exchange.status);
}

function decode(exchange: Exchange): unknown {
  try {
    return parseJson(exchange.body);
  } catch (error) {
    throw bad(exchange, `not JSON (${(error as Error).message}): ${JSON.stringify(snippet(exchange.body))}`);
  }
}

function errorInfo(value: unknown): { code: string; message: string } | null {
  if (typeof value !== "object" || value === null) return null;
  const { code, message } = value as Json;
  if (typeof code !== "string" || code.length === 0 || code.length > 64) return null;
  return { code, message: typeof message === "string" ? message : "" };
}

function errorOf(exchange: Exchange): ClientError {
  let value: unknown = null;
  try {
    value = parseJson(exchange.body);
  } catch {
    // below
  }
  const info = typeof value === "object" && value !== null ? errorInfo((value as Json).error) : null;
  if (info === null) {
    return bad(exchange, `HTTP ${exchange.status} without an error object: ${JSON.stringify(snippet(exchange.body))}`);
  }
  return new ClientError(info.code, info.message, exchange.status, retryAfterMs(exchange));
}

function asObject(exchange: Exchange, value: unknown, path: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad(exchange, `${path} is not an object`);
  return value as Json;
}

function listOf(exchange: Exchange, value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) throw bad(exchange, `${path} is not a list`);
  return value;
}

function u64(exchange: Exchange, value: unknown, path: string): bigint {
  try {
    return readU64(value, path);
  } catch (error) {
    throw bad(exchange, (error as Error).message);
  }
}

function hex32(exchange: Exchange, value: unknown, path: string): Uint8Array {
  if (typeof value !== "string") throw bad(exchange, `${path} is not hex`);
  try {
    return fromHex(value, 32, path);
  } catch (error) {
    throw bad(exchange, (error as Error).message);
  }
}

function hexArg(name: string, value: Uint8Array): string {
  if (!(value instanceof Uint8Array) || value.length !== 32) throw new InputError(`${name} must be 32 bytes`);
  return toHex(value);
}

function acceptedId(exchange: Exchange, value: unknown, tx: Transaction, path: string): Uint8Array {
  const got = hex32(exchange, value, path);
  if (!bytesEqual(got, txId(tx))) throw bad(exchange, `tx_id ${toHex(got)} is not the id of the transaction sent`);
  return got;
}

const STATES: readonly string[] = ["pending", "queued", "evicted", "expired", "committed"];

function parseStatus(exchange: Exchange, value: unknown, id: Uint8Array): TxStatus {
  const body = asObject(exchange, value, "$");
  if (!bytesEqual(hex32(exchange, body.tx_id, "$.tx_id"), id)) {
    throw bad(exchange, `the answer is about transaction ${String(body.tx_id).slice(0, 64)}`);
  }
  const state = body.status;
  if (typeof state !== "string" || !STATES.includes(state)) throw bad(exchange, `$.status is ${JSON.stringify(state)}`);
  // A location of a pending or queued one is not final: not kept.
  if (state === "pending" || state === "queued") return { txId: id, status: state };
  if (state === "evicted" || state === "expired") {
    return { txId: id, status: state, reason: typeof body.reason === "string" ? body.reason : "" };
  }
  const height = u64(exchange, body.height, "$.height");
  const index = u64(exchange, body.index, "$.index");
  if (height < 1n) throw bad(exchange, `height ${height} is not a block height`);
  let proof: InclusionProof;
  try {
    proof = parseProof(body.proof, "$.proof");
  } catch (error) {
    throw bad(exchange, (error as Error).message);
  }
  if (proof.index !== index) throw bad(exchange, `the proof is for index ${proof.index}, not ${index}`);
  const status: TxStatus = { txId: id, status: "committed", height, index, blockId: hex32(exchange, body.block_id, "$.block_id"), proof };
  if (body.l1 !== undefined && body.l1 !== null) {
    const l1 = asObject(exchange, body.l1, "$.l1");
    status.l1 = {
      batchNumber: u64(exchange, l1.batch_number, "$.l1.batch_number"),
      commitment: hex32(exchange, l1.commitment, "$.l1.commitment"),
    };
  }
  return status;
}
