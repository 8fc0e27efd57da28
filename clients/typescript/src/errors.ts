/**
 * One error tree for the whole client.
 *
 *     SequencerError
 *     ├── InputError          the caller passed a value the protocol cannot carry
 *     ├── ClientError         a call failed: the node's own error (its `code`,
 *     │                       HTTP `status`), or the client's: `unreachable`,
 *     │                       `timeout`, `bad_response`
 *     └── VerificationError   an answer does not prove what it claims (`reason`
 *         ├── CertificateError    names the rule that broke)
 *         └── ProofError
 *
 * A `VerificationError` means the node lied or is broken: retrying the same
 * node will not help, asking another might.
 */

export class SequencerError extends Error {
  override name = "SequencerError";
}

/** A value the protocol cannot carry (a nonce above 2^64-1, a short key, bad hex). */
export class InputError extends SequencerError {
  override name = "InputError";
}

/** The client's own codes; every other code is the node's (`invalid_signature`, `nonce_too_low`, ...). */
export const UNREACHABLE = "unreachable";
export const TIMEOUT = "timeout";
export const BAD_RESPONSE = "bad_response";

export class ClientError extends SequencerError {
  override name = "ClientError";
  readonly code: string;
  /** The HTTP status of the answer, when there was one. */
  readonly status: number | undefined;

  /** How long the node asked to wait before asking again (its Retry-After), when it did. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, status?: number, retryAfterMs?: number) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

export class VerificationError extends SequencerError {
  override name = "VerificationError";
  /** The rule that broke: `wrong_tx_root`, `insufficient_power`, `not_adjacent`, ... */
  readonly reason: string;

  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** The certificate does not finalize the block (signers, signatures, power). */
export class CertificateError extends VerificationError {
  override name = "CertificateError";
}

/** A hash, a proof or a link between blocks does not hold; `malformed` when the answer does not parse. */
export class ProofError extends VerificationError {
  override name = "ProofError";
}
