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
import { ClientError, ProofError, UNREACHABLE } from "./errors.js";
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
  /** Consecutive failed connections before giving up (default 10); each waits longer, up to 5 s. */
  reconnects?: number;
}

export type Followed = { kind: "block"; block: VerifiedBlock } | { kind: "namespace"; part: VerifiedNamespace };

const BLOCKS_PAGE = 100;

export class LightClient {
  readonly trust: Trust;
  readonly client: Client;

  constructor(baseUrl: string, genesis: Genesis, options: ClientOptions = {}) {
    this.trust = new Trust(genesis);
    this.client = new Client(baseUrl, options);
  }

  async block(height: bigint | number, { full = false } = {}): Promise<VerifiedBlock> {
    const h = toU64("height", height);
    return verifyBlock(this.trust, await this.client.block(h, { full }), h);
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
      throw new ClientError("not_committed", `transaction ${toHex(id)} is ${status === null ? "unknown to the node" : status.status}`);
    }
    const block = await this.block(status.height!);
    if (!bytesEqual(block.blockId, status.blockId!)) {
      throw new ProofError("wrong_block_id", `transaction ${toHex(id)}: block ${block.height} is not the block its status names`);
    }
    checkInclusion(block, id, status.proof!);
    return { status, block };
  }

  /** Blocks `first..last`, each proven and linked to the one before. */
  async blocks(first: bigint | number, last: bigint | number, { full = false } = {}): Promise<VerifiedBlock[]> {
    const from = toU64("first", first);
    const to = toU64("last", last);
    if (from < 1n || to < from) throw new ProofError("malformed", `not a range of heights: ${from}..${to}`);
    const linker = new Linker();
    const out: VerifiedBlock[] = [];
    let next = from;
    while (next <= to) {
      const limit = Number(to - next + 1n > BigInt(BLOCKS_PAGE) ? BigInt(BLOCKS_PAGE) : to - next + 1n);
      const answers = await this.client.blocks(next, limit, { full });
      if (answers.length === 0) {
        throw new ProofError("missing", `the node served no block at height ${next} (asked for ${from}..${to})`);
      }
      for (const answer of answers.slice(0, Number(to - next + 1n))) {
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
    const linker = new Linker();
    let failures = 0;
    while (!options.signal?.aborted) {
      try {
        const stream = this.client.events({
          from: next,
          ...(namespace !== undefined ? { namespace } : {}),
          ...(options.full === false ? { full: false } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        });
        for await (const answer of stream) {
          failures = 0;
          if (namespace !== undefined) {
            const part = verifyNamespace(this.trust, answer, namespace, next);
            await this.link(linker, part.block);
            next += 1n;
            yield { kind: "namespace", part };
          } else {
            const block = verifyBlock(this.trust, answer, next);
            await this.link(linker, block);
            next += 1n;
            yield { kind: "block", block };
          }
        }
      } catch (error) {
        if (options.signal?.aborted) return;
        const retriable = error instanceof ClientError && (error.code === UNREACHABLE || error.code === "timeout");
        if (!retriable || ++failures > reconnects) throw error;
      }
      if (options.signal?.aborted) return;
      // The stream ended or broke: ask again from the next height, after a pause that grows.
      await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 5_000)));
    }
  }
}
