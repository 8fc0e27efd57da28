/**
 * The commit-certificate check, with the validators of genesis alone: the
 * indices strictly increase and name validators, the signers hold more than
 * 2/3 of the voting power, and every signature verifies as a precommit for
 * the certificate's (height, round, block_id).
 */

import { CertificateError } from "./errors.js";
import { bytesEqual } from "./hex.js";
import { PRECOMMIT, voteSigningBytes } from "./ids.js";
import { toU64, verifySignature } from "./keys.js";
import type { CommitCertificate, Genesis } from "./types.js";

export class ValidatorSet {
  readonly publicKeys: readonly Uint8Array[];
  readonly powers: readonly bigint[];
  readonly totalPower: bigint;

  constructor(genesis: Genesis) {
    this.publicKeys = genesis.validators.map((v) => v.public_key);
    this.powers = genesis.validators.map((v) => v.power);
    this.totalPower = this.powers.reduce((a, b) => a + b, 0n);
  }

  get size(): number {
    return this.publicKeys.length;
  }

  isQuorum(power: bigint): boolean {
    return 3n * power > 2n * this.totalPower;
  }
}

export interface Expected {
  height?: bigint | number;
  blockId?: Uint8Array;
}

/** Throws `CertificateError` unless `certificate` finalizes what `expected` names. */
export function verifyCertificate(
  certificate: CommitCertificate,
  validators: ValidatorSet,
  chainId: string,
  expected: Expected = {},
): void {
  const height = expected.height === undefined ? undefined : toU64("height", expected.height);
  if (height !== undefined && certificate.height !== height) {
    throw new CertificateError(
      "wrong_height",
      `certificate is for height ${certificate.height}, expected ${height}`,
    );
  }
  if (expected.blockId !== undefined && !bytesEqual(certificate.block_id, expected.blockId)) {
    throw new CertificateError("wrong_block", "certificate is for a different block");
  }
  // Indices and power first: a certificate short of a quorum costs no signature check.
  let power = 0n;
  let previous = -1;
  for (const [index] of certificate.signatures) {
    if (index === previous) throw new CertificateError("duplicate_signer", `validator ${index} signs twice`);
    if (index < previous) throw new CertificateError("unsorted", "signatures are not sorted by validator index");
    if (index >= validators.size) {
      throw new CertificateError(
        "unknown_validator",
        `validator index ${index} is not in the set of ${validators.size}`,
      );
    }
    power += validators.powers[index]!;
    previous = index;
  }
  if (!validators.isQuorum(power)) {
    throw new CertificateError(
      "insufficient_power",
      `signers hold ${power} of ${validators.totalPower} voting power, need more than 2/3`,
    );
  }
  const message = voteSigningBytes(chainId, PRECOMMIT, certificate.height, certificate.round, certificate.block_id);
  for (const [index, signature] of certificate.signatures) {
    if (!verifySignature(validators.publicKeys[index]!, message, signature)) {
      throw new CertificateError("bad_signature", `signature of validator ${index} is not a valid precommit`);
    }
  }
}
