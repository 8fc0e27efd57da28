/**
 * Mutated answers: one value anywhere in an honest answer replaced by
 * something else (another type, a flipped hex digit, nothing). The verifier
 * must refuse with a `VerificationError`, or prove exactly what the honest
 * answer proves; any other exception (a TypeError from a field of the wrong
 * type, say) is a bug. Seeded, so a failure names the case that replays it.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Key, Trust, VerificationError, Wallet, toHex, utf8, verifyBlock, verifyNamespace } from "../src/index.js";
import { blockAnswer, buildBlock, certify, clone, genesis, namespaceAnswer, vectorTxs } from "./helpers.js";

const CASES = Number(process.env.SEQ_FUZZ_CASES ?? 200); // per verifier; each case checks 3 signatures
const SEED = Number(process.env.SEQ_FUZZ_SEED ?? 1);

/** xorshift32: a reproducible stream of draws. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

type Path = Array<string | number>;

function paths(value: unknown, at: Path = []): Path[] {
  const out: Path[] = at.length ? [at] : [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}

function replacement(old: unknown, draw: () => number): unknown {
  const choices: Array<() => unknown> = [
    () => undefined, // deleted
    () => null,
    () => 0n,
    () => (1n << 64n),
    () => -1n,
    () => 1.5,
    () => true,
    () => "zz",
    () => "",
    () => [],
    () => ({}),
    () => (typeof old === "string" && old.length > 0 ? flip(old, draw) : "00".repeat(32)),
    () => (typeof old === "bigint" ? old + 1n : 7n),
    () => (Array.isArray(old) ? [...old, ...old.slice(0, 1)] : [old]),
    () => (Array.isArray(old) ? old.slice(1) : { extra: old }),
  ];
  return choices[Math.floor(draw() * choices.length)]!();
}

function flip(text: string, draw: () => number): string {
  const i = Math.floor(draw() * text.length);
  const digits = "0123456789abcdef";
  const c = digits[(digits.indexOf(text[i]!) + 1 + Math.floor(draw() * 15)) % 16] ?? "0";
  return text.slice(0, i) + c + text.slice(i + 1);
}

function mutate(answer: unknown, draw: () => number): { mutated: any; where: string } {
  const mutated = clone(answer) as any;
  const all = paths(mutated);
  const path = all[Math.floor(draw() * all.length)]!;
  let parent = mutated;
  for (const key of path.slice(0, -1)) parent = parent[key as never];
  const last = path[path.length - 1]!;
  const value = replacement(parent[last as never], draw);
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last as never];
  } else parent[last as never] = value;
  if (draw() < 0.1 && typeof mutated === "object") mutated.unexpected = 1;
  return { mutated, where: path.join(".") };
}

function fuzz(name: string, honest: unknown, verify: (answer: unknown) => string): void {
  it(`${name}: ${CASES} mutated answers are refused or prove the same (seed ${SEED})`, () => {
    const expected = verify(honest);
    const draw = rng(SEED);
    let refused = 0;
    for (let n = 0; n < CASES; n++) {
      const { mutated, where } = mutate(honest, draw);
      try {
        assert.equal(verify(mutated), expected, `case ${n} (${where}) proved something else`);
      } catch (error) {
        if (error instanceof assert.AssertionError) throw error;
        if (!(error instanceof VerificationError)) {
          assert.fail(`case ${n} (${where}): ${String(error)} is not a VerificationError`);
        }
        refused++;
      }
    }
    assert.ok(refused > CASES / 2, `only ${refused} of ${CASES} refused`);
  });
}

describe("verifiers under mutation", () => {
  const trust = new Trust(genesis());
  const extra = new Wallet(new Key(new Uint8Array(32).fill(9)), "devnet-1").sign({ nonce: 0n, payload: utf8("x"), gasPrice: 1n, namespace: 20n });
  const built = buildBlock([...vectorTxs(), extra], null);
  const certificate = certify(built.header);

  fuzz("blocks", blockAnswer(built, certificate), (a) => {
    const b = verifyBlock(trust, a, 1n);
    // Bodies are optional (`?full=false`): without them the answer proves the ids, which is the same.
    return [toHex(b.blockId), ...(b.txIds ?? []).map(toHex)].join(",");
  });
  for (const ns of [7n, 8n, 9n, 20n, 21n, 3n]) {
    fuzz(`namespace ${ns}`, namespaceAnswer(built, certificate, ns), (a) => {
      const v = verifyNamespace(trust, a, ns, 1n);
      return [toHex(v.block.blockId), ...v.txIds.map(toHex)].join(",");
    });
  }
});
