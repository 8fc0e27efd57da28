/**
 * Server-sent events, parsed incrementally and within a bound: a node that
 * never ends a line or an event cannot make the reader hold unbounded memory.
 * Comment lines (keepalives) are skipped.
 */

import { ClientError, BAD_RESPONSE } from "./errors.js";

export interface SseEvent {
  event: string;
  id: string | null;
  data: string;
}

/** The biggest legitimate event is a full block as JSON. */
export const EVENT_BYTES_MAX = 64 * 1024 * 1024;

const decoder = new TextDecoder("utf-8", { fatal: true });

export class SseParser {
  private storage = new Uint8Array(4096);
  private length = 0;
  private start = 0; // the first byte not yet consumed
  private scanned = 0; // bytes from `start` already searched for a newline
  private event = "message";
  private id: string | null = null;
  private data: string[] = [];
  private size = 0;

  constructor(private readonly max = EVENT_BYTES_MAX) {}

  feed(chunk: Uint8Array): SseEvent[] {
    this.append(chunk);
    const events: SseEvent[] = [];
    for (;;) {
      const from = this.start + this.scanned;
      const end = this.buffer.subarray(from).indexOf(0x0a);
      if (end < 0) {
        this.scanned = this.buffer.length - this.start;
        break;
      }
      let line = this.buffer.subarray(this.start, from + end);
      let end_ = line.length;
      while (end_ > 0 && line[end_ - 1] === 0x0d) end_--; // as the node's own reader does
      line = line.subarray(0, end_);
      this.start = from + end + 1;
      this.scanned = 0;
      const event = this.line(line);
      if (event !== null) events.push(event);
    }
    if (this.buffer.length - this.start + this.size > this.max) {
      throw new ClientError(BAD_RESPONSE, `an event stream line or event over ${this.max} bytes`);
    }
    return events;
  }

  private append(chunk: Uint8Array): void {
    // A growing buffer (doubling), compacted when what was consumed is at
    // least half of it: amortized linear in the bytes read.
    const pending = this.length - this.start;
    if (pending + chunk.length > this.storage.length) {
      const grown = new Uint8Array(Math.max(2 * this.storage.length, pending + chunk.length));
      grown.set(this.storage.subarray(this.start, this.length));
      this.storage = grown;
      this.length = pending;
      this.start = 0;
    } else if (this.length + chunk.length > this.storage.length || this.start >= this.length / 2) {
      this.storage.copyWithin(0, this.start, this.length);
      this.length = pending;
      this.start = 0;
    }
    this.storage.set(chunk, this.length);
    this.length += chunk.length;
  }

  private get buffer(): Uint8Array {
    return this.storage.subarray(0, this.length);
  }

  private line(line: Uint8Array): SseEvent | null {
    if (line.length === 0) return this.dispatch();
    if (line[0] === 0x3a) return null; // ":" comment
    let text: string;
    try {
      text = decoder.decode(line);
    } catch {
      throw new ClientError(BAD_RESPONSE, "an event stream line that is not UTF-8");
    }
    this.size += line.length;
    if (this.size > this.max) throw new ClientError(BAD_RESPONSE, `an event over ${this.max} bytes`);
    const colon = text.indexOf(":");
    const name = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "id") this.id = value;
    else if (name === "data") this.data.push(value);
    return null;
  }

  private dispatch(): SseEvent | null {
    const event = this.data.length > 0 ? { event: this.event, id: this.id, data: this.data.join("\n") } : null;
    this.event = "message";
    this.data = [];
    this.size = 0;
    return event;
  }
}
