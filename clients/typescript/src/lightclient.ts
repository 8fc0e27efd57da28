/**
 * A client that believes nothing the node says unless it is proven against
 * genesis.json: every block's header is hashed, its certificate checked with
 * the genesis validators, its transactions or namespace proof checked against
 * the header, and ranges and streams linked block to block.
 *
 *     const light = new LightClient(url, parseGenesis(parseJson(genesisText)));
 *     const { block, status } = await light.tx(txId);       // final, proven
 *     for await (const part of light.follow({ namespace: 7n, from: 1n })) { ... }
 *
 * A `VerificationError` means the node served something false; a
 * `ClientError` that it could not be asked.
 */

import { Client, type ClientOptions, type TxStatus } from "./client.js";
import { ClientError, InputError, ProofError, UNREACHABLE } from "./errors.js";
import { bytesEqual, toHex } from "./hex.js";
import { toU64 } from "./keys.js";
import {
  Linker,
  Trust,
  checkInclusion,
  verifyBlock,
  verifyNamespace,
  type VerifiedBlock,
  type VerifiedNamespace,
} from "./light.js";
import type { Genesis } from "./types.js";

export interface VerifiedTx {
  status: TxStatus;
  block: VerifiedBlock;
}

export interface FollowOptions {
  /** The first height (default 1). */
  from?: bigint | number;
  /** Follow one namespace (its part of each block, with proofs); otherwise whole blocks. */
  namespace?: bigint | number;
  /** Whole blocks: with transaction bodies (default true). */
  full?: boolean;
  signal?: AbortSignal;
  /** Consecutive connections that brought no block, before giving up (default 10); each waits longer, up to 5 s. */
  reconnects?: number;
  /** Resume after a block stored earlier: `new Linker(h, blockId)` with `from` = h + 1. */
  linker?: Linker;
  /** Passed to `Client.events`: the longest silence of a stream (default 45 s). */
  idleMs?: number;
}

export type Followed = { kind: "block"; block: VerifiedBlock } | { kind: "namespace"; part: VerifiedNamespace };

const BLOCKS_PAGE = 100;

/** Worth asking again: no answer, a node busy or restarting (429, 5xx, an error event), an answer cut short. */
function retriable(error: ClientError): boolean {
  if (error.code === UNREACHABLE || error.code === "timeout" || error.code === "bad_response") return true;
  return error.status === 429 || (error.status !== undefined && error.status >= 500);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done);
  });
}

export class LightClient {
  readonly trust: Trust;
  readonly client: Client;

  constructor(baseUrl: string, genesis: Genesis, options: ClientOptions = {}) {
    this.trust = new Trust(genesis);
    this.client = new Client(baseUrl, options);
  }

  async block(height: bigint | number, { full = false } = {}): Promise<VerifiedBlock> {
    const h = toU64("height", height);
    const block = verifyBlock(this.trust, await this.client.block(h, { full }), h);
    if (full && block.txs === null) {
      throw new ProofError("malformed", `block ${h}: the transactions were asked for and not served`);
    }
    return block;
  }

  async namespace(namespace: bigint | number, height: bigint | number): Promise<VerifiedNamespace> {
    const ns = toU64("namespace", namespace);
    const h = toU64("height", height);
    return verifyNamespace(this.trust, await this.client.namespaceBlock(ns, h), ns, h);
  }

  /** A committed transaction, proven: its block is final and its audit path reaches that block's tx_root. */
  async tx(id: Uint8Array): Promise<VerifiedTx> {
    const status = await this.client.txStatus(id);
    if (status === null || status.status !== "committed") {
      const seen = status === null ? "unknown to the node" : status.status;
      throw new ProofError("not_committed", `transaction ${toHex(id)} is ${seen}, not committed`);
    }
    const block = await this.block(status.height!);
    if (!bytesEqual(block.blockId, status.blockId!)) {
      throw new ProofError("wrong_block_id", `transaction ${toHex(id)}: block ${block.height} is not the block its status names`);
    }
    checkInclusion(block, id, status.proof!);
    // An audit path proves that the transaction is in the block, not always
    // where (item 2 of 3 takes the path of item 1 of 2): the ids the block's
    // tx_root covers say where.
    const ids = block.txIds!;
    const index = status.index!;
    if (status.proof!.size !== BigInt(ids.length) || index >= BigInt(ids.length) || !bytesEqual(ids[Number(index)]!, id)) {
      throw new ProofError("wrong_index", `transaction ${toHex(id)} is not at index ${index} of block ${block.height}`);
    }
    return { status, block };
  }

  /**
   * Blocks `first..last`, each proven and linked to the one before; with
   * `linker` (say `new Linker(h, id)` of a block stored earlier, h = first - 1),
   * linked to what it last linked as well.
   */
  async blocks(
    first: bigint | number,
    last: bigint | number,
    { full = false, linker = new Linker() }: { full?: boolean; linker?: Linker } = {},
  ): Promise<VerifiedBlock[]> {
    const from = toU64("first", first);
    const to = toU64("last", last);
    if (from < 1n || to < from) throw new InputError(`not a range of heights: ${from}..${to}`);
    const out: VerifiedBlock[] = [];
    let next = from;
    while (next <= to) {
      const page = Number(to - next + 1n > BigInt(BLOCKS_PAGE) ? BigInt(BLOCKS_PAGE) : to - next + 1n);
      const answers = await this.client.blocks(next, page, { full });
      if (answers.length === 0) {
        throw new ProofError("missing", `the node served no block at height ${next} (asked for ${from}..${to})`);
      }
      for (const answer of answers.slice(0, page)) {
        const block = verifyBlock(this.trust, answer, next);
        await this.link(linker, block);
        out.push(block);
        next += 1n;
      }
    }
    return out;
  }

  /** Link `block` after the linker's last, asking for the parent again when its certificate is not the one named. */
  async link(linker: Linker, block: VerifiedBlock): Promise<void> {
    if (linker.link(block)) return;
    linker.addCertificate(await this.block(block.height - 1n));
    if (!linker.link(block)) throw linker.unsettled(block);
  }

  /**
   * Finalized blocks (or one namespace's part of each) from `from` on, each
   * proven and linked, as the node streams them; reconnects after a dropped
   * stream from the next height, never skipping or repeating one.
   */
  async *follow(options: FollowOptions = {}): AsyncGenerator<Followed> {
    const namespace = options.namespace === undefined ? undefined : toU64("namespace", options.namespace);
    const reconnects = options.reconnects ?? 10;
    let next = toU64("from", options.from ?? 1n);
    if (next < 1n) next = 1n;
    const linker = options.linker ?? new Linker();
    if (linker.height !== null && linker.height + 1n !== next) {
      throw new InputError(`the linker ends at block ${linker.height}: follow from ${linker.height + 1n}, not ${next}`);
    }
    // Connections in a row that brought no block: a node restarting, shedding
    // subscribers or closing at once is asked again, ever more slowly, and
    // given up on after `reconnects`.
    let failures = 0;
    while (!options.signal?.aborted) {
      let delivered = false;
      let retryAfterMs = 0;
      try {
        const stream = this.client.events({
          from: next,
          ...(namespace !== undefined ? { namespace } : {}),
          ...(options.full === false ? { full: false } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
        });
        for await (const answer of stream) {
          let item: Followed;
          if (namespace !== undefined) {
            const part = verifyNamespace(this.trust, answer, namespace, next);
            await this.link(linker, part.block);
            item = { kind: "namespace", part };
          } else {
            const block = verifyBlock(this.trust, answer, next);
            await this.link(linker, block);
            item = { kind: "block", block };
          }
          next += 1n;
          delivered = true;
          failures = 0;
          yield item;
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        if (!(error instanceof ClientError) || !retriable(error)) throw error;
        if (failures + 1 > reconnects) throw error;
        retryAfterMs = error.retryAfterMs ?? 0;
      }
      if (options.signal?.aborted) return;
      if (!delivered && ++failures > reconnects) {
        throw new ClientError(UNREACHABLE, `GET /events: ${reconnects} connections in a row brought no block`);
      }
      const pause = Math.max(Math.min(100 * 2 ** failures, 5_000), retryAfterMs);
      await sleep(pause, options.signal);
    }
  }
}
